//! Manifest parsing: `Manifest::from_slice` and `ManifestBytes::parse` on arbitrary bytes, with
//! the first byte choosing the `Content-Type` (none, each manifest type, or a generic one).
//! Whatever parses must keep its digest over the exact bytes and survive a serialize/parse
//! round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec_types::{Digest, Manifest, ManifestBytes, MediaType};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = match usize::from(selector) % 7 {
        0 => None,
        1 => Some(MediaType::from("application/json")),
        i => MediaType::MANIFEST_TYPES.get(i - 2).cloned(),
    };
    let _ = Manifest::from_slice(body, content_type.as_ref());
    let Ok(parsed) = ManifestBytes::parse(body.to_vec(), content_type.as_ref()) else {
        return;
    };
    assert_eq!(parsed.digest(), &Digest::sha256_of(body));
    assert_eq!(parsed.descriptor().size, body.len() as u64);

    let rebuilt = ManifestBytes::from_manifest(parsed.manifest().clone());
    let media_type = parsed.media_type();
    let again = ManifestBytes::parse(rebuilt.bytes().to_vec(), Some(&media_type))
        .expect("a parsed manifest re-serializes to a parseable one");
    assert_eq!(again.manifest(), parsed.manifest());
});
