vcl 4.1;
# Varnish in front of a cdnsync-published site, purged by cdnsync.
#
#   cdnsync publish ./dist --to s3://my-bucket/site --purge-url http://127.0.0.1:6081
#   cdnsync publish ./dist --to s3://my-bucket/site --purge-url http://127.0.0.1:6081 --purge-method ban
#
# - PURGE and BAN are accepted only from the addresses in `acl purgers`.
# - cdnsync's Cache-Control is respected for browsers. Entry pages
#   (`max-age=0, must-revalidate`) are cached here for a day anyway, because
#   cdnsync purges exactly the entry paths a publish changes; fingerprinted
#   assets (`immutable`, one year) and plain files (`max-age=300`) keep the TTL
#   cdnsync gave them.
# - BAN takes a regex over the URL path in the `X-Ban-Url` header; objects
#   remember their URL and host (x-url, x-host) so the bans are
#   ban-lurker friendly.
#
# The backend below is `cdnsync serve ./public --port 8080` (a local target).
# For an S3 bucket instead, point it at the bucket's regional endpoint through
# a TLS-terminating sidecar (Varnish itself speaks plain HTTP to backends) and
# prefix the path in vcl_backend_fetch, e.g.:
#   set bereq.url = "/my-bucket/site" + bereq.url;
#   set bereq.http.host = "s3.eu-west-1.amazonaws.com";
# (a private bucket needs signed requests: use CloudFront with OAC there).


backend site {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
}

acl purgers {
    "127.0.0.1";
    "::1";
    # "10.0.0.0"/8;   # the CI runners / deploy hosts allowed to purge
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "PURGE not allowed from " + client.ip));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "BAN not allowed from " + client.ip));
        }
        if (!req.http.X-Ban-Url) {
            return (synth(400, "BAN needs an X-Ban-Url header (a regex over the path)"));
        }
        ban("obj.http.x-host == " + req.http.host + " && obj.http.x-url ~ " + req.http.X-Ban-Url);
        return (synth(200, "Banned"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "Method not allowed"));
    }
    # A static site: cookies and auth do not vary the response.
    unset req.http.Cookie;
    unset req.http.Authorization;
    return (hash);
}

sub vcl_backend_response {
    # For bans (the lurker only sees the object, not the request).
    set beresp.http.x-url = bereq.url;
    set beresp.http.x-host = bereq.http.host;
    if (beresp.status >= 500) {
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    if (beresp.http.Cache-Control ~ "max-age=0" && beresp.http.Cache-Control ~ "must-revalidate") {
        # cdnsync entry page: cache here, cdnsync purges it when it changes.
        set beresp.ttl = 1d;
        set beresp.grace = 10s;
    }
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.x-url;
    unset resp.http.x-host;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
