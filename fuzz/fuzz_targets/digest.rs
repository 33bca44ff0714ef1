//! Digest parsing: never panics; a parsed digest keeps its text exactly and its parts rebuild it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec_types::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(digest) = Digest::parse(text) else {
        return;
    };
    assert_eq!(digest.as_str(), text);
    assert_eq!(
        format!("{}:{}", digest.algorithm_str(), digest.encoded()),
        text
    );
    assert_eq!(Digest::parse(&digest.to_string()), Ok(digest.clone()));
    let _ = oci_distribution_proto::referrers_tag(&digest);
});
