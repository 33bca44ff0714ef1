//! Registry error responses: any status, `Retry-After` and body give a `RegistryError` whose
//! message is one line. Input: 2 bytes of status, a `Retry-After` value up to the first
//! newline, then the body.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use oci_distribution_proto::RegistryError;

fuzz_target!(|data: &[u8]| {
    let Some((status, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let code = 400 + u16::from_be_bytes(*status) % 200;
    let Ok(status) = http::StatusCode::from_u16(code) else {
        return;
    };
    let (retry_after, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i + 1..).unwrap_or_default(),
        ),
        None => (&[][..], rest),
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(retry_after) {
        headers.insert(http::header::RETRY_AFTER, value);
    }
    let error = RegistryError::from_response_parts(status, &headers, body);
    let shown = error.to_string();
    assert!(!shown.contains('\n'), "{shown}");
    let _ = error.is_retryable();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = error.retry_after_at(now);
});
