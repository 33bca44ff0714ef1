//! Pluggable registry credentials and the Azure Container Registry token exchange.
//!
//! Third layer: `oci-spec-types` <- `oci-distribution-proto` <- **`acr-auth`** <- `acr-client`
//! <- `acr-cli`. It reaches token endpoints only through the protocol crate's transport trait,
//! so it stays free of any particular HTTP stack.
//!
//! ```
//! // Credentials arrive with the auth issue; the crate exists so the layers compile.
//! use acr_auth::proto::types::Reference;
//! let r: Reference = "myregistry.azurecr.io/hello:v1".parse().unwrap();
//! assert_eq!(r.registry(), "myregistry.azurecr.io");
//! ```
#![forbid(unsafe_code)]

pub use oci_distribution_proto as proto;
