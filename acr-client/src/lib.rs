//! The async OCI registry and Azure Container Registry client.
//!
//! Fourth layer: `oci-spec-types` <- `oci-distribution-proto` <- `acr-auth` <- **`acr-client`**
//! <- `acr-cli`. It owns the I/O: hyper, TLS, retries, redirects, files, concurrency.
//!
//! A [`Client`] authenticates per registry (a [`Credential`](acr_auth::Credential), or what
//! `docker login` / `acr login` stored) and hands out a [`Repository`] per repository: the
//! content client. [`push_files`] and [`pull_files`] are the ORAS-style artifact operations,
//! and work on any [`ContentStore`]: a registry repository or an [`OciLayout`] folder.
//!
//! Upload a blob and a manifest, then download and verify:
//!
//! ```no_run
//! # async fn example() -> Result<(), acr_client::Error> {
//! use acr_client::{Client, ClientConfig};
//! use oci_spec_types::{ImageManifest, ManifestBytes, MediaType};
//!
//! let client = Client::new(ClientConfig::default())?;
//! let repo = client.repository(&"localhost:5000/hello".parse()?)?;
//! let layer = repo.push_bytes(MediaType::ImageLayer, "hello, registry".into()).await?;
//! repo.push_bytes(MediaType::EmptyJson, "{}".into()).await?;
//! let manifest = ImageManifest::artifact(MediaType::from("application/vnd.example"), vec![layer.clone()]);
//! let manifest = ManifestBytes::from_manifest(manifest.into());
//! repo.put_manifest(&manifest, Some("v1")).await?;
//!
//! let pulled = repo.get_manifest("v1").await?; // digest verified over the exact bytes
//! assert_eq!(pulled.digest(), manifest.digest());
//! repo.fetch_to_file(&layer, "hello.txt".as_ref()).await?; // verified before it is renamed into place
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod acr;
mod artifact;
mod client;
mod config;
mod directory;
mod error;
mod file_writer;
mod graph;
mod http;
mod layout;
mod memory;
mod repository;
mod store;
mod tls;
mod transport;

pub use acr::{
    ACR_API_VERSION, ArtifactOrder, AttributesUpdate, ChangeableAttributes, ContainerRegistry,
    ContainerRepository, DeleteRepositoryResult, ManifestPlatform, ManifestProperties, Pager,
    PurgeOptions, PurgeReport, PurgedManifest, RegistryArtifact, RepositoryProperties,
    TagProperties, glob_match, parse_manifest, parse_manifest_list, parse_repository_names,
    parse_tag, parse_tag_list, parse_time,
};
pub use acr_auth as auth;
pub use artifact::{
    DEFAULT_ARTIFACT_TYPE, DEFAULT_FILE_MEDIA_TYPE, FileToPush, ImageSpec, PULL_CONCURRENCY,
    PullOptions, PulledFile, PushOptions, pull_files, push_files, safe_relative_path,
};
pub use client::{Client, ClientConfig};
pub use config::{PlainHttp, RetryPolicy, TransportConfig};
pub use directory::{DIRECTORY_MEDIA_TYPE, MAX_UNPACKED_SIZE};
pub use error::Error;
pub use graph::{
    COPY_CONCURRENCY, CopyOptions, CopyStats, MAX_REFERRER_DEPTH, ReferrerNode, copy, discover,
    index_referrer, put_with_subject, referrers,
};
pub use layout::OciLayout;
pub use memory::MemoryStore;
pub use repository::{Progress, Repository};
pub use store::ContentStore;
pub use transport::HyperTransport;
