//! `Link` header parsing: never panics, and a next-page URL is always http or https.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_distribution_proto::{PageRequest, next_link};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.append(http::header::LINK, value);
    let base = url::Url::parse("https://registry.example/v2/_catalog?n=10").expect("static URL");
    if let Ok(Some(next)) = next_link(&headers, &base) {
        assert!(matches!(next.scheme(), "http" | "https"), "{next}");
        let _ = PageRequest::from_url(&next);
    }
});
