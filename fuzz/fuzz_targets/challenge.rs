//! `WWW-Authenticate` parsing: never panics, and every parsed challenge prints as header text
//! that parses back to the same challenges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_distribution_proto::{parse_challenges, parse_challenges_from};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::WWW_AUTHENTICATE, value);
        let _ = parse_challenges_from(&headers);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenges) = parse_challenges(text) else {
        return;
    };
    let shown = challenges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let again = parse_challenges(&shown).expect("displayed challenges parse");
    assert_eq!(again, challenges, "{shown}");
});
