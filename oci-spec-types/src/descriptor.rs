//! Descriptors and platforms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Digest, MediaType, base64};

/// Annotations: string keys to string values, kept sorted so serialization is deterministic.
pub type Annotations = BTreeMap<String, String>;

/// Unknown JSON fields, kept so that a parse -> serialize round trip loses nothing.
///
/// They serialize after the known fields, sorted by key. A key that names a known field must
/// not be inserted by hand (it would be written twice). Values are kept as serde_json keeps
/// them: integers that fit `u64` or `i64` exactly, other numbers as `f64`.
pub type Extra = BTreeMap<String, Value>;

/// A content descriptor: what a piece of content is, its digest and its size.
///
/// ```
/// use oci_spec_types::{Descriptor, MediaType};
/// let bytes = b"hello";
/// let d = Descriptor::for_bytes(MediaType::ImageLayer, bytes);
/// assert_eq!(d.size, 5);
/// assert!(d.digest.matches(bytes));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: MediaType,
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The size in bytes of the referenced content.
    pub size: u64,
    /// URLs the content may be downloaded from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Annotations,
    /// The content itself, base64 in JSON; it must hash to `digest`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64::option"
    )]
    pub data: Option<Vec<u8>>,
    /// The platform of the referenced manifest, in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Descriptor {
    /// A descriptor with just the three required fields.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Self {
        Self {
            media_type,
            digest,
            size,
            urls: Vec::new(),
            annotations: Annotations::new(),
            data: None,
            platform: None,
            artifact_type: None,
            extra: Extra::new(),
        }
    }

    /// The descriptor of `bytes` (sha256 digest and length).
    pub fn for_bytes(media_type: MediaType, bytes: &[u8]) -> Self {
        Self::new(media_type, Digest::sha256_of(bytes), bytes.len() as u64)
    }

    /// The well-known empty descriptor: `application/vnd.oci.empty.v1+json`, the two bytes `{}`.
    /// Used as the config of artifacts that have none.
    pub fn empty() -> Self {
        Self::for_bytes(MediaType::EmptyJson, EMPTY_JSON)
    }

    /// The `org.opencontainers.image.title` annotation (a file name, for artifacts).
    pub fn title(&self) -> Option<&str> {
        self.annotations
            .get(crate::annotations::TITLE)
            .map(String::as_str)
    }

    /// Sets an annotation and returns the descriptor, for building in one expression.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Whether the embedded `data`, if any, matches the size and digest.
    pub fn data_is_valid(&self) -> bool {
        self.data
            .as_ref()
            .is_none_or(|data| data.len() as u64 == self.size && self.digest.matches(data))
    }
}

/// The content of the empty descriptor: `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";

/// The platform a manifest runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    /// The CPU architecture, such as `amd64` or `arm64`.
    pub architecture: String,
    /// The operating system, such as `linux` or `windows`.
    pub os: String,
    /// The operating system version, such as `10.0.14393.1066`.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required operating system features, such as `win32k`.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// The CPU variant, such as `v8` for arm64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// CPU features (Docker lists only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Platform {
    /// A platform from os and architecture.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            ..Self::default()
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` takes it), with `os` and `arch` required.
    /// Each part is letters, digits, `.`, `_` and `-`.
    ///
    /// ```
    /// use oci_spec_types::Platform;
    /// let p = Platform::parse("linux/arm64/v8").unwrap();
    /// assert_eq!((p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()), ("linux", "arm64", Some("v8")));
    /// assert_eq!(p.to_string(), "linux/arm64/v8");
    /// assert!(Platform::parse("linux").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        let invalid = |reason| crate::Error::InvalidPlatform {
            input: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid(
                "the platform is empty; expected os/arch or os/arch/variant, such as linux/amd64",
            ));
        }
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts[..] {
            [os, arch] => (os, arch, None),
            [os, arch, variant] => (os, arch, Some(variant)),
            [_] => {
                return Err(invalid(
                    "the architecture is missing; expected os/arch, such as linux/amd64",
                ));
            }
            _ => {
                return Err(invalid(
                    "too many `/`; expected os/arch or os/arch/variant, such as linux/arm64/v8",
                ));
            }
        };
        if os.is_empty() {
            return Err(invalid(
                "the os before the first `/` is empty, such as `linux` in linux/amd64",
            ));
        }
        if arch.is_empty() {
            return Err(invalid(
                "the architecture after the first `/` is empty, such as `amd64` in linux/amd64",
            ));
        }
        if variant == Some("") {
            return Err(invalid(
                "the variant after the second `/` is empty; drop the `/` or name one, such as linux/arm64/v8",
            ));
        }
        let allowed = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if ![os, arch].into_iter().chain(variant).all(allowed) {
            return Err(invalid(
                "a part has a character other than letters, digits, `.`, `_` and `-`",
            ));
        }
        let mut platform = Self::new(os, arch);
        platform.variant = variant.map(str::to_owned);
        Ok(platform)
    }

    /// Whether `self` (the wanted platform) is satisfied by `candidate`: os and architecture
    /// equal, and the variant and os version equal when `self` names them.
    pub fn matches(&self, candidate: &Self) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && self
                .variant
                .as_ref()
                .is_none_or(|v| candidate.variant.as_ref() == Some(v))
            && self
                .os_version
                .as_ref()
                .is_none_or(|v| candidate.os_version.as_ref() == Some(v))
    }
}

/// `os/arch[/variant]`, the form [`Platform::parse`] reads.
impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}
