//! Integration tests: the real `cdnsync` binary against a real S3-compatible
//! server (moto; s3s-fs for signature checks) and local-directory targets.

mod util;

mod action;
mod bad_input;
mod browser;
mod cli;
mod cloudfront;
mod compression;
mod concurrency;
mod conformance;
mod consistency;
mod day_one;
mod doctor;
mod errors;
mod faults;
mod migrate;
mod original_urls;
mod publish_local;
mod publish_s3;
mod releases;
mod routing;
mod trust;
mod varnish;
