//! The OCI distribution protocol, sans-IO.
//!
//! Second layer of the workspace: `oci-spec-types` <- **`oci-distribution-proto`** <- `acr-auth`
//! <- `acr-client` <- `acr-cli`. It builds `http::Request`s and interprets `http::Response`s;
//! it never opens a socket, sleeps or reads the clock, so any HTTP client can drive it.
//!
//! ```
//! // Filled in by the protocol issue; the crate exists so the layers compile from day one.
//! use oci_spec_types::Digest;
//! let _ = Digest::sha256_of(b"");
//! ```
#![forbid(unsafe_code)]

pub use oci_spec_types as types;
