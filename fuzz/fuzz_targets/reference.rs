//! Image reference parsing: never panics, and a parsed reference prints to text that parses
//! back to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec_types::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = Reference::parse(text) else {
        return;
    };
    let shown = reference.to_string();
    let again = Reference::parse(&shown).expect("a displayed reference parses");
    assert_eq!(again, reference, "{shown}");
});
