"""Fix two gaps in moto 5.2.5 that `cdnsync doctor`'s tests run into.

1. The CloudFront model accepts `S3OriginConfig` and `OriginAccessControlId` on
   an origin but drops both from GetDistributionConfig, so OAC could not be
   told from OAI from a public origin. Keep them (moto serializes its Origin
   model by attribute name).
2. GetBucketVersioning answers with a `<GetBucketVersioningResponse>` root;
   the AWS SDK for Rust (rightly) requires `<VersioningConfiguration>`.

Idempotent: a patched file is left alone.
"""
import pathlib
import sys

import moto.cloudfront.models as cf
import moto.s3.responses as s3

MARKER = "# cdnsync patch"


def patch(module, anchor, replacement):
    path = pathlib.Path(module.__file__)
    text = path.read_text()
    if f"{MARKER}: {replacement[0]}" in text:
        return
    if anchor not in text:
        sys.exit(f"patch-moto: anchor not found in {path}")
    path.write_text(text.replace(anchor, replacement[1].replace("@MARK@", f"{MARKER}: {replacement[0]}"), 1))


patch(
    cf,
    '        self.s3_access_identity = ""\n',
    (
        "origin access",
        '        self.s3_access_identity = ""\n'
        "        @MARK@\n"
        '        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""\n'
        '        if "S3OriginConfig" in origin:\n'
        '            self.s3_origin_config = {"OriginAccessIdentity": origin["S3OriginConfig"].get("OriginAccessIdentity") or ""}\n',
    ),
)

patch(
    s3,
    '        result = {"Status": versioning}\n'
    '        self.data["Action"] = "GetBucketVersioning"\n'
    "        return self.serialized(ActionResult(result))\n",
    (
        "versioning root",
        "        @MARK@\n"
        '        status = f"<Status>{versioning}</Status>" if versioning else ""\n'
        "        return 200, {}, (\n"
        '            \'<?xml version="1.0" encoding="UTF-8"?>\'\n'
        '            \'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\'\n'
        '            f"{status}</VersioningConfiguration>"\n'
        "        )\n",
    ),
)
