//! Token scope parsing: never panics; a parsed scope prints canonically and parses back equal,
//! and merging keeps what each scope granted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_distribution_proto::{Scope, merge_scopes};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scopes: Vec<Scope> = text.split(' ').filter_map(|s| s.parse().ok()).collect();
    for scope in &scopes {
        let shown = scope.to_string();
        assert_eq!(shown.parse::<Scope>().as_ref(), Ok(scope), "{shown}");
    }
    let merged = merge_scopes(scopes.clone());
    for scope in &scopes {
        assert!(merged.iter().any(|m| m.covers(scope)), "{scope}");
    }
});
