//! The store conformance suite (also run on the memory and local backends
//! by unit tests) against real S3-compatible servers.

use cdnsync::store::s3::{S3Options, S3Store};

use crate::util::*;

fn connect(endpoint: &str, bucket: &str, key: &str, secret: &str) -> S3Store {
    // SAFETY-free: the SDK reads credentials from the environment of this
    // test process, which only tests in this module set, to the same values.
    let r = rt();
    let c = client(endpoint, key, secret);
    r.block_on(c.create_bucket().bucket(bucket).send()).unwrap();
    let opts = S3Options {
        bucket: bucket.into(),
        endpoint_url: Some(endpoint.into()),
        list_page_size: Some(2),
        ..Default::default()
    };
    r.block_on(cdnsync::connect::s3_store_with(
        &opts,
        Some("us-east-1"),
        false,
    ))
    .unwrap()
}

#[test]
fn s3_store_conformance_on_moto() {
    // aws-config reads credentials from the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let bucket = unique_bucket("conf");
    let store = connect(&moto_endpoint(), &bucket, "test", "test");
    rt().block_on(cdnsync::store::conformance::run(&store, "conf"));
}
