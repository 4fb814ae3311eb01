"""Check that a running (patched, see patch-moto.py) moto server does the
CloudFront calls cdnsync's edge routing needs, with the element and header
names the AWS SDKs read.

    check-moto-cloudfront.py http://127.0.0.1:PORT

Starts nothing: point it at a moto_server. Needs boto3 (moto's venv has it).
Every name it creates carries a random suffix, so it can run again against
the same server. Exit 0 when every check passes, 1 at the first that fails.
"""
import json
import sys
import uuid
import xml.etree.ElementTree as ET

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if len(sys.argv) != 2:
    sys.exit(__doc__)
ENDPOINT = sys.argv[1]

cf = boto3.client(
    "cloudfront",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
    config=Config(retries={"max_attempts": 1}),
)

# The raw answer to each operation (status, headers, body), to check what an
# SDK other than boto3 (the Rust one) parses: root elements and header names.
raw = {}


def _record(http_response, model, **_):
    # A streamed body (GetFunction's code) is left for boto3 to read.
    body = None if model.has_streaming_output else http_response.content
    raw[model.name] = (http_response.status_code, http_response.headers, body)


cf.meta.events.register("after-call.cloudfront", _record)

checks = 0


def check(cond, what, detail=None):
    global checks
    if not cond:
        print(f"FAIL: {what}" + (f"\n  {detail}" if detail is not None else ""), file=sys.stderr)
        sys.exit(1)
    checks += 1
    print(f"ok: {what}")


def root_of(op):
    """The body's root element, without its namespace, and the namespace."""
    root = ET.fromstring(raw[op][2])
    ns, _, tag = root.tag.rpartition("}")
    return tag, ns.lstrip("{")


def error_of(call):
    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return None


suffix = uuid.uuid4().hex[:8]
fn = f"cdnsync-check-{suffix}"
runtime = "cloudfront-js-2.0"
code_v1 = b"function handler(event) { return event.request; } // v1"
code_v2 = b"function handler(event) { return event.request; } // v2"
code_v3 = b"function handler(event) { return event.request; } // v3"

# --- CloudFront Functions ---------------------------------------------------

out = cf.create_function(Name=fn, FunctionConfig={"Comment": "v1", "Runtime": runtime}, FunctionCode=code_v1)
etag1 = out.get("ETag")
summary = out["FunctionSummary"]
arn = summary["FunctionMetadata"]["FunctionARN"]
check(bool(etag1), "CreateFunction returns an ETag")
check(summary["FunctionMetadata"]["Stage"] == "DEVELOPMENT", "CreateFunction: Stage DEVELOPMENT")
check(arn.endswith(f":function/{fn}"), "CreateFunction: FunctionARN", arn)

out = cf.describe_function(Name=fn, Stage="DEVELOPMENT")
check(out.get("ETag") == etag1, "DescribeFunction?Stage=DEVELOPMENT: same ETag", out.get("ETag"))
check(root_of("DescribeFunction")[0] == "FunctionSummary", "DescribeFunction: root <FunctionSummary>")
check(cf.describe_function(Name=fn)["ETag"] == etag1, "DescribeFunction without Stage: DEVELOPMENT")

out = cf.get_function(Name=fn, Stage="DEVELOPMENT")
check(out["FunctionCode"].read() == code_v1, "GetFunction?Stage=DEVELOPMENT: the code bytes")
check(out.get("ETag") == etag1, "GetFunction: ETag header", out.get("ETag"))
check(out.get("ContentType") == "application/octet-stream", "GetFunction: Content-Type", out.get("ContentType"))

err = error_of(lambda: cf.describe_function(Name=fn, Stage="LIVE"))
check(err == (404, "NoSuchFunctionExists"), "DescribeFunction?Stage=LIVE before publishing: 404 NoSuchFunctionExists", err)
err = error_of(lambda: cf.get_function(Name=fn, Stage="LIVE"))
check(err == (404, "NoSuchFunctionExists"), "GetFunction?Stage=LIVE before publishing: 404 NoSuchFunctionExists", err)

cfg_v2 = {"Comment": "v2", "Runtime": runtime}
err = error_of(lambda: cf.update_function(Name=fn, IfMatch="WRONG", FunctionConfig=cfg_v2, FunctionCode=code_v2))
check(err == (412, "PreconditionFailed"), "UpdateFunction with a wrong If-Match: 412 PreconditionFailed", err)
err = error_of(lambda: cf.update_function(Name=f"{fn}-nope", IfMatch=etag1, FunctionConfig=cfg_v2, FunctionCode=code_v2))
check(err == (404, "NoSuchFunctionExists"), "UpdateFunction of an unknown name: 404 NoSuchFunctionExists", err)
check(cf.get_function(Name=fn)["FunctionCode"].read() == code_v1, "a refused UpdateFunction changes nothing")

out = cf.update_function(Name=fn, IfMatch=etag1, FunctionConfig=cfg_v2, FunctionCode=code_v2)
etag2 = out.get("ETag")
check(bool(etag2) and etag2 != etag1, "UpdateFunction returns a new ETag", (etag1, etag2))
headers = raw["UpdateFunction"][1]
check(headers.get("ETtag") == etag2 and headers.get("ETag") == etag2, "UpdateFunction: ETag in both `ETtag` (the model's name) and `ETag` headers", dict(headers))
check(root_of("UpdateFunction")[0] == "FunctionSummary", "UpdateFunction: root <FunctionSummary>")
check(out["FunctionSummary"]["FunctionConfig"] == cfg_v2, "UpdateFunction: new FunctionConfig", out["FunctionSummary"])
check(out["FunctionSummary"]["FunctionMetadata"]["Stage"] == "DEVELOPMENT", "UpdateFunction: Stage DEVELOPMENT")
check(cf.describe_function(Name=fn)["ETag"] == etag2, "DescribeFunction: the new ETag")
check(cf.get_function(Name=fn)["FunctionCode"].read() == code_v2, "GetFunction: the updated code")

err = error_of(lambda: cf.publish_function(Name=fn, IfMatch=etag1))
check(err == (412, "PreconditionFailed"), "PublishFunction with a stale If-Match: 412 PreconditionFailed", err)
out = cf.publish_function(Name=fn, IfMatch=etag2)
meta = out["FunctionSummary"]["FunctionMetadata"]
check(root_of("PublishFunction")[0] == "FunctionSummary", "PublishFunction: root <FunctionSummary>")
check(meta["Stage"] == "LIVE" and meta["FunctionARN"] == arn, "PublishFunction: Stage LIVE and the FunctionARN", meta)
live_etag = raw["PublishFunction"][1].get("ETag")
check(bool(live_etag), "PublishFunction: an ETag header (outside the model)")

out = cf.describe_function(Name=fn, Stage="LIVE")
check(out["ETag"] == live_etag, "DescribeFunction?Stage=LIVE: the LIVE ETag", (out["ETag"], live_etag))
check(out["FunctionSummary"]["FunctionMetadata"]["Stage"] == "LIVE", "DescribeFunction?Stage=LIVE: Stage LIVE")
out = cf.get_function(Name=fn, Stage="LIVE")
check(out["FunctionCode"].read() == code_v2 and out["ETag"] == live_etag, "GetFunction?Stage=LIVE: the published code and ETag")

out = cf.update_function(Name=fn, IfMatch=etag2, FunctionConfig={"Comment": "v3", "Runtime": runtime}, FunctionCode=code_v3)
etag3 = out["ETag"]
check(cf.get_function(Name=fn, Stage="DEVELOPMENT")["FunctionCode"].read() == code_v3, "after another update: DEVELOPMENT has the new code")
check(cf.get_function(Name=fn, Stage="LIVE")["FunctionCode"].read() == code_v2, "after another update: LIVE keeps the published code")
check(cf.describe_function(Name=fn, Stage="LIVE")["FunctionSummary"]["FunctionConfig"]["Comment"] == "v2", "after another update: LIVE keeps the published config")

event = json.dumps({"version": "1.0", "context": {"eventType": "viewer-request"},
                    "viewer": {"ip": "198.51.100.1"},
                    "request": {"method": "GET", "uri": "/index.html", "querystring": {}, "headers": {}, "cookies": {}}})
err = error_of(lambda: cf.test_function(Name=fn, IfMatch="WRONG", Stage="DEVELOPMENT", EventObject=event.encode()))
check(err == (412, "PreconditionFailed"), "TestFunction with a wrong If-Match: 412 PreconditionFailed", err)
out = cf.test_function(Name=fn, IfMatch=etag3, Stage="DEVELOPMENT", EventObject=event.encode())
result = out["TestResult"]
check(root_of("TestFunction")[0] == "TestResult", "TestFunction: root <TestResult>")
check(result["FunctionSummary"]["Name"] == fn and result["FunctionSummary"]["FunctionMetadata"]["Stage"] == "DEVELOPMENT",
      "TestFunction: FunctionSummary of the stage tested", result["FunctionSummary"])
check(result["ComputeUtilization"] == "1", "TestFunction: ComputeUtilization", result)
check(result.get("FunctionExecutionLogs", []) == [], "TestFunction: no FunctionExecutionLogs", result)
check(result.get("FunctionErrorMessage", "") == "", "TestFunction: empty FunctionErrorMessage", result)
check(result["FunctionOutput"] == event, "TestFunction: FunctionOutput echoes the event", result["FunctionOutput"])
out = cf.test_function(Name=fn, IfMatch=live_etag, Stage="LIVE", EventObject=event.encode())
check(out["TestResult"]["FunctionSummary"]["FunctionMetadata"]["Stage"] == "LIVE", "TestFunction?Stage=LIVE with the LIVE ETag")

# --- Distributions ---------------------------------------------------------

policy = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # Managed-CachingOptimized
headers_policy = "67f7725c-6f97-4210-82d7-5512b31e9d03"  # Managed-SecurityHeadersPolicy


def behavior(**more):
    return {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https", "CachePolicyId": policy, **more}


config = {
    "CallerReference": f"cdnsync-check-{suffix}",
    "Comment": "cdnsync check",
    "Enabled": True,
    "Origins": {"Quantity": 1, "Items": [{
        "Id": "s3",
        "DomainName": f"cdnsync-check-{suffix}.s3.us-east-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }]},
    "DefaultCacheBehavior": behavior(),
    "CacheBehaviors": {"Quantity": 1, "Items": [behavior(PathPattern="/api/*", Compress=False)]},
}
out = cf.create_distribution(DistributionConfig=config)
dist_id, dist_etag = out["Distribution"]["Id"], out["ETag"]
check(bool(dist_etag), "CreateDistribution returns an ETag")

out = cf.get_distribution_config(Id=dist_id)
got = out["DistributionConfig"]
check(out["ETag"] == dist_etag, "GetDistributionConfig: the ETag")
check(got["DefaultCacheBehavior"]["Compress"] is False, "an omitted Compress reads back false", got["DefaultCacheBehavior"]["Compress"])
check(got["DefaultCacheBehavior"]["FunctionAssociations"] == {"Quantity": 0}, "no FunctionAssociations: Quantity 0",
      got["DefaultCacheBehavior"]["FunctionAssociations"])
check(got["CustomErrorResponses"] == {"Quantity": 0}, "no CustomErrorResponses: Quantity 0", got["CustomErrorResponses"])
cb = got["CacheBehaviors"]["Items"][0]
check((cb["PathPattern"], cb["TargetOriginId"], cb["Compress"]) == ("/api/*", "s3", False), "CacheBehavior: PathPattern, TargetOriginId, Compress", cb)

default_assoc = {"Quantity": 1, "Items": [{"FunctionARN": arn, "EventType": "viewer-request"}]}
api_assoc = {"Quantity": 2, "Items": [{"FunctionARN": arn, "EventType": "viewer-request"},
                                      {"FunctionARN": arn, "EventType": "viewer-response"}]}
errors = {"Quantity": 2, "Items": [
    {"ErrorCode": 404, "ResponsePagePath": "/index.html", "ResponseCode": "200", "ErrorCachingMinTTL": 10},
    {"ErrorCode": 403, "ResponsePagePath": "/403.html", "ResponseCode": "403", "ErrorCachingMinTTL": 0},
]}
update = dict(got)
update["DefaultCacheBehavior"] = dict(got["DefaultCacheBehavior"], Compress=True, FunctionAssociations=default_assoc,
                                      ResponseHeadersPolicyId=headers_policy)
update["CacheBehaviors"] = {"Quantity": 1, "Items": [dict(cb, Compress=True, FunctionAssociations=api_assoc,
                                                          ResponseHeadersPolicyId=headers_policy)]}
update["CustomErrorResponses"] = errors

err = error_of(lambda: cf.update_distribution(Id=dist_id, IfMatch="WRONG", DistributionConfig=update))
check(err == (412, "PreconditionFailed"), "UpdateDistribution with a wrong If-Match: 412 PreconditionFailed", err)
check(cf.get_distribution_config(Id=dist_id)["DistributionConfig"]["CustomErrorResponses"] == {"Quantity": 0},
      "a refused UpdateDistribution changes nothing")

out = cf.update_distribution(Id=dist_id, IfMatch=dist_etag, DistributionConfig=update)
new_etag = out["ETag"]
check(bool(new_etag) and new_etag != dist_etag, "UpdateDistribution returns a new ETag", (dist_etag, new_etag))
check(root_of("UpdateDistribution")[0] == "Distribution", "UpdateDistribution: root <Distribution>")


def check_updated(cfg, where):
    d = cfg["DefaultCacheBehavior"]
    check(d["FunctionAssociations"] == default_assoc, f"{where}: DefaultCacheBehavior.FunctionAssociations", d["FunctionAssociations"])
    check(d["Compress"] is True, f"{where}: DefaultCacheBehavior.Compress true")
    check(d["TargetOriginId"] == "s3", f"{where}: DefaultCacheBehavior.TargetOriginId")
    check(d.get("ResponseHeadersPolicyId") == headers_policy, f"{where}: DefaultCacheBehavior.ResponseHeadersPolicyId", d.get("ResponseHeadersPolicyId"))
    check(cfg["CacheBehaviors"]["Quantity"] == 1, f"{where}: CacheBehaviors.Quantity")
    c = cfg["CacheBehaviors"]["Items"][0]
    check(c["FunctionAssociations"] == api_assoc, f"{where}: CacheBehavior.FunctionAssociations", c["FunctionAssociations"])
    check((c["PathPattern"], c["TargetOriginId"], c["Compress"]) == ("/api/*", "s3", True),
          f"{where}: CacheBehavior PathPattern, TargetOriginId, Compress", c)
    check(c.get("ResponseHeadersPolicyId") == headers_policy, f"{where}: CacheBehavior.ResponseHeadersPolicyId", c.get("ResponseHeadersPolicyId"))
    check(cfg["CustomErrorResponses"] == errors, f"{where}: CustomErrorResponses", cfg["CustomErrorResponses"])


check_updated(out["Distribution"]["DistributionConfig"], "UpdateDistribution answer")
out = cf.get_distribution_config(Id=dist_id)
check(out["ETag"] == new_etag, "GetDistributionConfig after the update: the new ETag")
check(root_of("GetDistributionConfig")[0] == "DistributionConfig", "GetDistributionConfig: root <DistributionConfig>")
check_updated(out["DistributionConfig"], "GetDistributionConfig")
out = cf.get_distribution(Id=dist_id)
check(out["ETag"] == new_etag, "GetDistribution after the update: the new ETag")
check_updated(out["Distribution"]["DistributionConfig"], "GetDistribution")

err = error_of(lambda: cf.update_distribution(Id=dist_id, IfMatch=dist_etag, DistributionConfig=update))
check(err == (412, "PreconditionFailed"), "UpdateDistribution with the replaced ETag: 412 PreconditionFailed", err)

print(f"check-moto-cloudfront: all {checks} checks passed against {ENDPOINT}")
