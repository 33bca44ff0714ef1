//! The integration tests of `oci-spec-types`, in one binary (linking dominates build time).

mod descriptor;
mod digest;
mod error;
mod manifest;
mod media_type;
mod reference;

/// Proptest settings shared by every property: enough cases to find edge cases, few enough
/// to keep the suite fast on a small machine.
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
