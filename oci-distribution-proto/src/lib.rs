//! The OCI distribution protocol, sans-IO.
//!
//! Second layer of the workspace: `oci-spec-types` <- **`oci-distribution-proto`** <- `acr-auth`
//! <- `acr-client` <- `acr-cli`. It builds `http::Request`s and interprets `http::Response`s;
//! it never opens a socket, sleeps or reads the clock, so any HTTP client can drive it.
#![forbid(unsafe_code)]

pub use oci_spec_types as types;

mod challenge;
mod pagination;
mod referrers;
mod registry_error;
mod scope;

pub use challenge::*;
pub use pagination::*;
pub use referrers::*;
pub use registry_error::*;
pub use scope::*;
