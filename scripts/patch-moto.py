"""Fix gaps in moto 5.2.5 that cdnsync's tests (doctor, edge routing) run into.

1. The CloudFront model accepts `S3OriginConfig` and `OriginAccessControlId` on
   an origin but drops both from GetDistributionConfig, so OAC could not be
   told from OAI from a public origin. Keep them (moto serializes its Origin
   model by attribute name).
2. GetBucketVersioning answers with a `<GetBucketVersioningResponse>` root;
   the AWS SDK for Rust (rightly) requires `<VersioningConfiguration>`.
3. Edge routing (CloudFront Functions on cache behaviours): moto has Create/
   Describe/Get/List/DeleteFunction but no UpdateFunction, PublishFunction or
   TestFunction and no LIVE stage; its cache behaviours drop
   FunctionAssociations and LambdaFunctionAssociations and default Compress
   to true (AWS: false); and
   UpdateDistribution neither checks If-Match nor returns a new ETag.
   Responses are serialized by moto from the botocore model, so element and
   header names are AWS's (UpdateFunction's ETag header is `ETtag` there).

Idempotent: a patched file is left alone (each patch leaves a MARKER line);
a missing or ambiguous anchor (another moto version) stops with exit 1.
"""
import pathlib
import sys

import moto.cloudfront.exceptions as cf_exceptions
import moto.cloudfront.models as cf
import moto.cloudfront.responses as cf_responses
import moto.cloudfront.urls as cf_urls
import moto.s3.responses as s3

MARKER = "# cdnsync patch"


def patch(module, anchor, replacement):
    path = pathlib.Path(module.__file__)
    text = path.read_text()
    if f"{MARKER}: {replacement[0]}" in text:
        return
    if text.count(anchor) != 1:
        sys.exit(f"patch-moto: anchor for '{replacement[0]}' not found (or not unique) in {path}: {anchor.splitlines()[0]!r}")
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

# --- Edge routing: CloudFront Functions and cache behaviour fields ---------

# AWS answers a stale If-Match with 412 PreconditionFailed; moto has no such error.
patch(
    cf_exceptions,
    "class CloudFrontException(ServiceException):\n    pass\n",
    (
        "precondition failed",
        "class CloudFrontException(ServiceException):\n    pass\n"
        "\n\n"
        "@MARK@\n"
        "class PreconditionFailed(CloudFrontException):\n"
        '    code = "PreconditionFailed"\n'
        '    message = "The precondition given in one or more of the request-header fields evaluated to false."\n',
    ),
)

# The models below raise it.
patch(
    cf,
    "    OriginDoesNotExist,\n)\n",
    (
        "precondition import",
        "    OriginDoesNotExist,\n)\n"
        "from .exceptions import PreconditionFailed  @MARK@\n",
    ),
)

# moto hard-codes an empty FunctionAssociations on every cache behaviour; keep the request's.
patch(
    cf,
    '        self.function_associations = {"Quantity": 0}\n',
    (
        "function associations",
        "        @MARK@\n"
        '        self.function_associations = config.get("FunctionAssociations") or {"Quantity": 0}\n',
    ),
)

# moto hard-codes an empty LambdaFunctionAssociations too; keep the request's (cdnsync
# refuses to put a function beside a Lambda@Edge on the same event).
patch(
    cf,
    '        self.lambda_function_associations = {"Quantity": 0}\n',
    (
        "lambda function associations",
        "        @MARK@\n"
        '        self.lambda_function_associations = config.get("LambdaFunctionAssociations") or {"Quantity": 0}\n',
    ),
)

# An omitted Compress is false on AWS, not true, so "turned on by an update" can be told apart.
patch(
    cf,
    '        self.compress = config.get("Compress", True)\n',
    (
        "compress default",
        "        @MARK@\n"
        '        self.compress = config.get("Compress", False)\n',
    ),
)

# UpdateDistribution accepted any If-Match and kept the old ETag; AWS checks it and issues a new one.
patch(
    cf,
    "        dist.distribution_config = DistributionConfig(dist_config)\n"
    "        self.distributions[_id] = dist\n",
    (
        "distribution etag",
        "        @MARK@\n"
        "        if if_match != dist.etag:\n"
        "            raise PreconditionFailed\n"
        "        dist.distribution_config = DistributionConfig(dist_config)\n"
        "        dist.etag = random_id()\n"
        "        self.distributions[_id] = dist\n",
    ),
)

# A function has a LIVE stage (a copy made by PublishFunction) besides DEVELOPMENT.
patch(
    cf,
    '        self.stage = "DEVELOPMENT"\n',
    (
        "function live stage",
        '        self.stage = "DEVELOPMENT"\n'
        "        @MARK@\n"
        '        self.live: "CloudFrontFunction | None" = None\n',
    ),
)

# Describe/GetFunction honour ?Stage=; UpdateFunction, PublishFunction and TestFunction did not exist.
patch(
    cf,
    "    def describe_function(self, name: str) -> CloudFrontFunction:\n"
    "        if name not in self.functions:\n"
    "            raise NoSuchFunctionExists(name)\n"
    "        return self.functions[name]\n"
    "\n"
    "    def get_function(self, name: str) -> CloudFrontFunction:\n"
    "        return self.describe_function(name)\n",
    (
        "function stages",
        "    @MARK@\n"
        "    def describe_function(self, name: str, stage: str | None = None) -> CloudFrontFunction:\n"
        "        if name not in self.functions:\n"
        "            raise NoSuchFunctionExists(name)\n"
        '        if stage == "LIVE":\n'
        "            if self.functions[name].live is None:\n"
        "                raise NoSuchFunctionExists(name)\n"
        "            return self.functions[name].live\n"
        "        return self.functions[name]\n"
        "\n"
        "    def get_function(self, name: str, stage: str | None = None) -> CloudFrontFunction:\n"
        "        return self.describe_function(name, stage)\n"
        "\n"
        "    def _function_if_match(self, name: str, if_match: str | None, stage: str | None = None) -> CloudFrontFunction:\n"
        "        function = self.describe_function(name, stage)\n"
        "        if not if_match:\n"
        "            raise InvalidIfMatchVersion\n"
        "        if if_match != function.etag:\n"
        "            raise PreconditionFailed\n"
        "        return function\n"
        "\n"
        "    def update_function(self, name: str, if_match: str | None, function_config: dict[str, Any], function_code: bytes) -> CloudFrontFunction:\n"
        "        function = self._function_if_match(name, if_match)\n"
        "        function.config = function_config\n"
        "        function.code = function_code\n"
        '        function.status = "UNPUBLISHED"\n'
        "        function.last_modified_time = utcnow()\n"
        "        function.etag = random_id()\n"
        "        return function\n"
        "\n"
        "    def publish_function(self, name: str, if_match: str | None) -> CloudFrontFunction:\n"
        "        import copy\n"
        "\n"
        "        function = self._function_if_match(name, if_match)\n"
        '        function.status = "UNASSOCIATED"\n'
        "        live = copy.copy(function)\n"
        '        live.stage, live.live = "LIVE", None\n'
        "        live.last_modified_time = utcnow()\n"
        "        live.etag = random_id()\n"
        "        function.live = live\n"
        "        return live\n"
        "\n"
        "    def test_function(self, name: str, if_match: str | None, stage: str | None) -> CloudFrontFunction:\n"
        "        return self._function_if_match(name, if_match, stage)\n",
    ),
)

# Pass ?Stage= through to the backend.
patch(
    cf_responses,
    "        function = self.backend.describe_function(name=name)\n",
    (
        "describe stage",
        "        @MARK@\n"
        '        function = self.backend.describe_function(name=name, stage=self._get_param("Stage"))\n',
    ),
)

# Pass ?Stage= through; the serializer overwrites the model's Content-Type header with application/xml.
patch(
    cf_responses,
    "        function = self.backend.get_function(name=name)\n",
    (
        "get stage",
        "        @MARK@\n"
        '        function = self.backend.get_function(name=name, stage=self._get_param("Stage"))\n'
        '        self.response_headers["Content-Type"] = "application/octet-stream"\n',
    ),
)

# The three missing operations (the request parser and result serializer come from the botocore model).
patch(
    cf_responses,
    "    def list_functions(self) -> ActionResult:\n",
    (
        "function operations",
        "    @MARK@\n"
        "    def update_function(self) -> ActionResult:\n"
        "        function = self.backend.update_function(\n"
        '            name=self._get_param("Name"),\n'
        '            if_match=self._get_param("IfMatch"),\n'
        '            function_config=self._get_param("FunctionConfig", {}),\n'
        '            function_code=self._get_param("FunctionCode"),\n'
        "        )\n"
        "        # The model sends the ETag in an `ETtag` header (sic); real clients read either.\n"
        '        self.response_headers["ETag"] = function.etag\n'
        '        return ActionResult({"FunctionSummary": function.function_summary, "ETag": function.etag})\n'
        "\n"
        "    def publish_function(self) -> ActionResult:\n"
        '        live = self.backend.publish_function(name=self._get_param("Name"), if_match=self._get_param("IfMatch"))\n'
        "        # Not in the model's output (SDKs drop it); DescribeFunction?Stage=LIVE has it too.\n"
        '        self.response_headers["ETag"] = live.etag\n'
        '        return ActionResult({"FunctionSummary": live.function_summary})\n'
        "\n"
        "    def test_function(self) -> ActionResult:\n"
        '        stage = self._get_param("Stage") or "DEVELOPMENT"\n'
        '        function = self.backend.test_function(name=self._get_param("Name"), if_match=self._get_param("IfMatch"), stage=stage)\n'
        '        event = self._get_param("EventObject") or b""\n'
        "        # No JavaScript runtime here: the output is the event object, echoed.\n"
        "        result = {\n"
        '            "FunctionSummary": function.function_summary,\n'
        '            "ComputeUtilization": "1",\n'
        '            "FunctionExecutionLogs": [],\n'
        '            "FunctionErrorMessage": "",\n'
        '            "FunctionOutput": event.decode() if isinstance(event, bytes) else event,\n'
        "        }\n"
        '        return ActionResult({"TestResult": result})\n'
        "\n"
        "    def list_functions(self) -> ActionResult:\n",
    ),
)

# moto_server routes only the URL patterns listed here.
patch(
    cf_urls,
    '    "{0}/2020-05-31/function/(?P<function_name>[^/]+)/describe$": CloudFrontResponse.dispatch,\n',
    (
        "function routes",
        '    "{0}/2020-05-31/function/(?P<function_name>[^/]+)/describe$": CloudFrontResponse.dispatch,\n'
        "    @MARK@\n"
        '    "{0}/2020-05-31/function/(?P<function_name>[^/]+)/publish$": CloudFrontResponse.dispatch,\n'
        '    "{0}/2020-05-31/function/(?P<function_name>[^/]+)/test$": CloudFrontResponse.dispatch,\n',
    ),
)
