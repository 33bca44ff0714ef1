//! The crate's error type.

use std::path::PathBuf;

/// What went wrong getting or storing credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The docker configuration file could not be read, parsed or written.
    #[error("docker config {path}: {message}")]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A docker credential helper failed or is missing.
    #[error("credential helper {helper:?}: {message}")]
    CredentialHelper {
        /// The helper's name (`docker-credential-<name>`).
        helper: String,
        /// What went wrong, and how to fix it.
        message: String,
    },
}
