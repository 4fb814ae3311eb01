#!/usr/bin/env python3
"""moto's server (S3, CloudFront) plus the CloudFront KeyValueStore data
plane moto lacks, on one port: what the integration tests talk to.

    python scripts/moto-server.py HOST PORT

moto 5 has the KeyValueStore *control plane* (CreateKeyValueStore,
DescribeKeyValueStore on cloudfront.amazonaws.com) but not the data plane
(the `cloudfront-keyvaluestore` service: DescribeKeyValueStore, ListKeys,
GetKey, PutKey, DeleteKey, UpdateKeys under /key-value-stores/{KvsARN}).
Requests under /key-value-stores/ are answered here, against stores moto's
control plane created (an unknown ARN is ResourceNotFoundException), with
ETags and If-Match (ConflictException on a stale one) and AWS's limits
(key <= 512 bytes, value <= 1 KB, 50 operations per UpdateKeys, 5 MB per
store); everything else goes to moto unchanged. Signatures (SigV4A) are not
checked, as moto checks none. GET /key-value-stores/{KvsARN}/keys without
a signature is how tests read a store back.
"""

import json
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

KEY_MAX = 512
VALUE_MAX = 1024
BATCH_MAX = 50
STORE_MAX = 5 * 1024 * 1024
PREFIX = "/key-value-stores/"


class Store:
    def __init__(self, arn):
        self.arn = arn
        self.items = {}
        self.etag = uuid.uuid4().hex
        self.created = time.time()
        self.modified = self.created

    def size(self):
        return sum(len(k.encode()) + len(v.encode()) for k, v in self.items.items())

    def describe(self):
        return {
            "ItemCount": len(self.items),
            "TotalSizeInBytes": self.size(),
            "KvsARN": self.arn,
            "Created": self.created,
            "LastModified": self.modified,
            "Status": "READY",
        }


STORES = {}
LOCK = threading.Lock()


def control_plane_has(arn):
    """Whether moto's CloudFront created a key value store with this ARN."""
    from moto.cloudfront.models import cloudfront_backends

    for account in cloudfront_backends.keys():
        backend = cloudfront_backends[account]["global"]
        if any(s.arn == arn for s in backend.key_value_stores.values()):
            return True
    return False


def answer(start, status, body, headers=()):
    data = json.dumps(body).encode()
    start(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))] + list(headers),
    )
    return [data]


def error(start, status, kind, message):
    return answer(start, status, {"Message": message}, [("x-amzn-ErrorType", kind)])


def kvs(environ, start):
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
    path = raw.split("?", 1)[0][len(PREFIX):]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    method = environ["REQUEST_METHOD"]
    parts = path.split("/")
    arn = unquote(parts[0])
    rest = [unquote(p) for p in parts[1:]]
    with LOCK:
        store = STORES.get(arn)
        if store is None:
            if not control_plane_has(arn):
                return error(start, "404 Not Found", "ResourceNotFoundException", f"no key value store {arn}")
            store = STORES[arn] = Store(arn)
        etag = [("ETag", store.etag)]
        if not rest and method == "GET":
            return answer(start, "200 OK", store.describe(), etag)
        if rest == ["keys"] and method == "GET":
            keys = sorted(store.items)
            start_at = int(query.get("NextToken", ["0"])[0])
            limit = min(int(query.get("MaxResults", ["50"])[0]), 50)
            page = keys[start_at : start_at + limit]
            body = {"Items": [{"Key": k, "Value": store.items[k]} for k in page]}
            if start_at + limit < len(keys):
                body["NextToken"] = str(start_at + limit)
            return answer(start, "200 OK", body)
        if len(rest) == 2 and rest[0] == "keys" and method == "GET":
            if rest[1] not in store.items:
                return error(start, "404 Not Found", "ResourceNotFoundException", f"no key {rest[1]}")
            return answer(
                start,
                "200 OK",
                {"Key": rest[1], "Value": store.items[rest[1]], "ItemCount": len(store.items), "TotalSizeInBytes": store.size()},
            )
        writes = None
        if rest == ["keys"] and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            writes = (body.get("Puts") or [], [d["Key"] for d in body.get("Deletes") or []])
        elif len(rest) == 2 and rest[0] == "keys" and method == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            writes = ([{"Key": rest[1], "Value": body.get("Value", "")}], [])
        elif len(rest) == 2 and rest[0] == "keys" and method == "DELETE":
            writes = ([], [rest[1]])
        if writes is None:
            return error(start, "400 Bad Request", "ValidationException", f"unsupported {method} {raw}")
        if_match = environ.get("HTTP_IF_MATCH")
        if if_match != store.etag:
            return error(start, "409 Conflict", "ConflictException", f"If-Match {if_match} is not the current ETag")
        puts, deletes = writes
        if len(puts) + len(deletes) > BATCH_MAX:
            return error(start, "400 Bad Request", "ValidationException", f"more than {BATCH_MAX} keys in one update")
        for p in puts:
            if not 1 <= len(p["Key"].encode()) <= KEY_MAX:
                return error(start, "400 Bad Request", "ValidationException", f"key of {len(p['Key'].encode())} bytes")
            if len(p["Value"].encode()) > VALUE_MAX:
                return error(start, "400 Bad Request", "ValidationException", f"value of {len(p['Value'].encode())} bytes for {p['Key']}")
        items = dict(store.items)
        for d in deletes:
            items.pop(d, None)
        for p in puts:
            items[p["Key"]] = p["Value"]
        if sum(len(k.encode()) + len(v.encode()) for k, v in items.items()) > STORE_MAX:
            return error(start, "402 Payment Required", "ServiceQuotaExceededException", "over 5 MB")
        store.items = items
        store.etag = uuid.uuid4().hex
        store.modified = time.time()
        return answer(
            start,
            "200 OK",
            {"ItemCount": len(items), "TotalSizeInBytes": store.size()},
            [("ETag", store.etag)],
        )


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ, start):
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return kvs(environ, start)
        return moto(environ, start)

    run_simple(host, port, app, threaded=True)


if __name__ == "__main__":
    main()
