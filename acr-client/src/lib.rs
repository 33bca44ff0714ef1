//! The async OCI registry and Azure Container Registry client.
//!
//! Fourth layer: `oci-spec-types` <- `oci-distribution-proto` <- `acr-auth` <- **`acr-client`**
//! <- `acr-cli`. It owns the I/O: hyper, TLS, retries, redirects, files, concurrency.
//!
//! ```
//! // The content client arrives with its issue; the transport configuration is here already.
//! let config = acr_client::TransportConfig { insecure_skip_verify: false, ..Default::default() };
//! assert_eq!(config.max_redirects, 10);
//! ```
#![forbid(unsafe_code)]

mod artifact;
mod client;
mod config;
mod error;
mod http;
mod layout;
mod repository;
mod store;
mod tls;
mod transport;

pub use acr_auth as auth;
pub use artifact::{
    DEFAULT_ARTIFACT_TYPE, DEFAULT_FILE_MEDIA_TYPE, FileToPush, ImageSpec, PullOptions, PulledFile,
    PushOptions, pull_files, push_files, safe_relative_path,
};
pub use client::{Client, ClientConfig};
pub use config::{PlainHttp, RetryPolicy, TransportConfig};
pub use error::Error;
pub use layout::OciLayout;
pub use repository::{Progress, Repository};
pub use store::ContentStore;
pub use transport::HyperTransport;
