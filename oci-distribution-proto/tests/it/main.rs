//! Integration tests of `oci-distribution-proto`, in one binary (link time dominates on small
//! machines). No network: fixtures of real exchanges and an in-memory registry.

mod acr;
mod distribution;
mod fake_registry;
mod support;
