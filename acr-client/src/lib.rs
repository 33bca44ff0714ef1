//! The async OCI registry and Azure Container Registry client.
//!
//! Fourth layer: `oci-spec-types` <- `oci-distribution-proto` <- `acr-auth` <- **`acr-client`**
//! <- `acr-cli`. It owns the I/O: hyper, TLS, retries, redirects, files, concurrency.
//!
//! ```
//! // The client arrives with the content-client issue; the crate exists so the layers compile.
//! use acr_client::auth::proto::types::MediaType;
//! assert!(MediaType::ImageManifest.is_manifest());
//! ```
#![forbid(unsafe_code)]

pub use acr_auth as auth;
