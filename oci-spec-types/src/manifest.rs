//! Image manifests, indexes, their Docker schema 2 twins, and [`Manifest`], which dispatches on
//! the media type. [`ManifestBytes`] keeps the exact bytes beside the parsed value, because a
//! manifest's digest is of the bytes sent or received, never of a re-serialization.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::descriptor::{Annotations, Extra};
use crate::{Descriptor, Digest, Error, MediaType};

/// The largest manifest registries accept (distribution refuses larger bodies); clients
/// should refuse to read more than this.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// An OCI image manifest (also the shape of a Docker schema 2 manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json` (optional in the OCI spec, recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// The type of artifact this manifest describes (image-spec 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The configuration blob (the empty descriptor for artifacts without one).
    pub config: Descriptor,
    /// The layers, base first. For artifacts: one per file.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (signatures, SBOMs, attestations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageManifest {
    /// An OCI image manifest with `schemaVersion` 2 and its media type set.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(MediaType::ImageManifest),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: Annotations::new(),
            extra: Extra::new(),
        }
    }

    /// An image-spec 1.1 artifact: `artifactType` set, the empty config, the given layers.
    pub fn artifact(artifact_type: MediaType, layers: Vec<Descriptor>) -> Self {
        let mut manifest = Self::new(Descriptor::empty(), layers);
        manifest.artifact_type = Some(artifact_type);
        manifest
    }

    /// The artifact type: `artifactType`, else the config's media type (image-spec 1.1 rule).
    pub fn effective_artifact_type(&self) -> &MediaType {
        self.artifact_type
            .as_ref()
            .unwrap_or(&self.config.media_type)
    }
}

/// An OCI image index (also the shape of a Docker manifest list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.index.v1+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// The type of artifact this index describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The manifests, usually one per platform.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageIndex {
    /// An OCI image index with `schemaVersion` 2 and its media type set.
    pub fn new(manifests: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(MediaType::ImageIndex),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: Annotations::new(),
            extra: Extra::new(),
        }
    }
}

/// The withdrawn OCI artifact manifest (`application/vnd.oci.artifact.manifest.v1+json`):
/// parsed so that old artifacts can be read, never produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    /// `application/vnd.oci.artifact.manifest.v1+json`.
    pub media_type: MediaType,
    /// The artifact's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    /// The blobs.
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Any manifest, by kind.
///
/// ```
/// use oci_spec_types::{Manifest, MediaType};
/// let json = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
/// let m = Manifest::from_slice(json, None)?;
/// assert_eq!(m.media_type(), MediaType::ImageIndex);
/// # Ok::<(), oci_spec_types::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Manifest {
    /// An OCI image manifest.
    Image(ImageManifest),
    /// An OCI image index.
    Index(ImageIndex),
    /// A Docker schema 2 image manifest.
    DockerImage(ImageManifest),
    /// A Docker schema 2 manifest list.
    DockerList(ImageIndex),
    /// The withdrawn OCI artifact manifest (read only).
    Artifact(ArtifactManifest),
}

impl Manifest {
    /// Parses a manifest. The kind comes from the body's `mediaType`, else from `content_type`
    /// (the response's `Content-Type`), else from its shape (`manifests` makes an index,
    /// `config` an image manifest; both at once is [`Error::AmbiguousManifestKind`]). When the
    /// body's `mediaType` and a manifest `Content-Type` are both present they must be equal
    /// ([`Error::MediaTypeMismatch`]); a generic `Content-Type` such as `application/json` is
    /// ignored. Docker schema 1, by `schemaVersion` or media type, is refused
    /// ([`Error::UnsupportedSchemaVersion`]); so is any `schemaVersion` but 2 in an image
    /// manifest or index. Unknown fields are kept in the `extra` maps.
    ///
    /// JSON errors ([`Error::InvalidJson`]) carry serde_json's line and column.
    pub fn from_slice(bytes: &[u8], content_type: Option<&MediaType>) -> Result<Self, Error> {
        let probe: Probe = parse_json(bytes)?;
        let declared = probe.media_type.map(MediaType::from);
        // A generic Content-Type says nothing about the kind; only a manifest type can conflict.
        let content_type =
            content_type.filter(|t| t.is_manifest() || t.is_index() || is_docker_schema1(t));
        if probe.schema_version == Some(1)
            || declared.as_ref().is_some_and(is_docker_schema1)
            || content_type.is_some_and(is_docker_schema1)
        {
            return Err(Error::UnsupportedSchemaVersion { found: 1 });
        }
        if let (Some(declared), Some(content_type)) = (&declared, content_type)
            && declared != content_type
        {
            return Err(Error::MediaTypeMismatch {
                declared: declared.clone(),
                content_type: content_type.clone(),
            });
        }
        let kind = match declared.or_else(|| content_type.cloned()) {
            Some(kind) => kind,
            None => match (probe.has_config, probe.has_manifests) {
                (true, true) => return Err(Error::AmbiguousManifestKind),
                (true, false) => MediaType::ImageManifest,
                (false, true) => MediaType::ImageIndex,
                (false, false) => return Err(Error::UnknownManifestKind { media_type: None }),
            },
        };
        if kind == MediaType::ArtifactManifest {
            // The artifact manifest has no schemaVersion; one present is an unknown field.
            return Ok(Self::Artifact(parse_json(bytes)?));
        }
        if !(kind.is_manifest() || kind.is_index()) {
            return Err(Error::UnknownManifestKind {
                media_type: Some(kind),
            });
        }
        if let Some(found) = probe.schema_version
            && found != 2
        {
            return Err(Error::UnsupportedSchemaVersion { found });
        }
        Ok(match kind {
            MediaType::DockerManifest => Self::DockerImage(parse_json(bytes)?),
            MediaType::ImageIndex => Self::Index(parse_json(bytes)?),
            MediaType::DockerManifestList => Self::DockerList(parse_json(bytes)?),
            _ => Self::Image(parse_json(bytes)?),
        })
    }

    /// The manifest's media type (what to send as `Content-Type` when pushing it).
    pub fn media_type(&self) -> MediaType {
        match self {
            Self::Image(m) => m.media_type.clone().unwrap_or(MediaType::ImageManifest),
            Self::Index(i) => i.media_type.clone().unwrap_or(MediaType::ImageIndex),
            Self::DockerImage(_) => MediaType::DockerManifest,
            Self::DockerList(_) => MediaType::DockerManifestList,
            Self::Artifact(_) => MediaType::ArtifactManifest,
        }
    }

    /// The artifact type: `artifactType`, else (for image manifests) the config media type.
    pub fn artifact_type(&self) -> Option<&MediaType> {
        match self {
            Self::Image(m) | Self::DockerImage(m) => Some(m.effective_artifact_type()),
            Self::Index(i) | Self::DockerList(i) => i.artifact_type.as_ref(),
            Self::Artifact(a) => a.artifact_type.as_ref(),
        }
    }

    /// The `subject` descriptor, if this manifest refers to another.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Self::Image(m) | Self::DockerImage(m) => m.subject.as_ref(),
            Self::Index(i) | Self::DockerList(i) => i.subject.as_ref(),
            Self::Artifact(a) => a.subject.as_ref(),
        }
    }

    /// The manifest's annotations.
    pub fn annotations(&self) -> &Annotations {
        match self {
            Self::Image(m) | Self::DockerImage(m) => &m.annotations,
            Self::Index(i) | Self::DockerList(i) => &i.annotations,
            Self::Artifact(a) => &a.annotations,
        }
    }

    /// Every descriptor this manifest points at, in order: config then layers for an image,
    /// the manifests of an index, the blobs of an artifact manifest. The subject is not a child.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Self::Image(m) | Self::DockerImage(m) => {
                std::iter::once(&m.config).chain(&m.layers).collect()
            }
            Self::Index(i) | Self::DockerList(i) => i.manifests.iter().collect(),
            Self::Artifact(a) => a.blobs.iter().collect(),
        }
    }

    /// Serializes to compact JSON. Only for manifests built here: a received manifest keeps its
    /// own bytes in [`ManifestBytes`].
    pub fn to_vec(&self) -> Vec<u8> {
        let result = match self {
            Self::Image(m) | Self::DockerImage(m) => serde_json::to_vec(m),
            Self::Index(i) | Self::DockerList(i) => serde_json::to_vec(i),
            Self::Artifact(a) => serde_json::to_vec(a),
        };
        // Maps with string keys and plain structs cannot fail to serialize.
        result.unwrap_or_default()
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson {
        what: "manifest",
        message: e.to_string(),
    })
}

/// The Docker schema 1 media types (signed and unsigned), refused as schema 1.
fn is_docker_schema1(media_type: &MediaType) -> bool {
    *media_type == MediaType::DockerManifestV1Signed
        || media_type.as_str() == "application/vnd.docker.distribution.manifest.v1+json"
}

/// The fields that decide a manifest's kind, read without building the whole document.
#[derive(Default)]
struct Probe {
    media_type: Option<String>,
    /// `schemaVersion`; anything but a non-negative integer is refused while probing.
    schema_version: Option<u64>,
    has_config: bool,
    has_manifests: bool,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;

        impl<'de> serde::de::Visitor<'de> for ProbeVisitor {
            type Value = Probe;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a manifest (a JSON object)")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Probe, A::Error> {
                use serde::de::{Error as _, IgnoredAny};
                let mut probe = Probe::default();
                let (mut seen_media_type, mut seen_schema_version) = (false, false);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "mediaType" => {
                            if std::mem::replace(&mut seen_media_type, true) {
                                return Err(A::Error::duplicate_field("mediaType"));
                            }
                            probe.media_type = match map.next_value::<Value>()? {
                                Value::String(s) => Some(s),
                                Value::Null => None,
                                _ => {
                                    return Err(A::Error::custom(
                                        "`mediaType` must be a string, such as \"application/vnd.oci.image.manifest.v1+json\"",
                                    ));
                                }
                            };
                        }
                        "schemaVersion" => {
                            if std::mem::replace(&mut seen_schema_version, true) {
                                return Err(A::Error::duplicate_field("schemaVersion"));
                            }
                            let value = map.next_value::<Value>()?;
                            let Some(version) = value.as_u64() else {
                                return Err(A::Error::custom(format_args!(
                                    "`schemaVersion` must be the number 2, found {value}"
                                )));
                            };
                            probe.schema_version = Some(version);
                        }
                        "config" => {
                            probe.has_config = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        "manifests" => {
                            probe.has_manifests = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(probe)
            }
        }

        deserializer.deserialize_map(ProbeVisitor)
    }
}

impl From<ImageManifest> for Manifest {
    fn from(m: ImageManifest) -> Self {
        Self::Image(m)
    }
}

impl From<ImageIndex> for Manifest {
    fn from(i: ImageIndex) -> Self {
        Self::Index(i)
    }
}

/// A manifest with its exact bytes, digest and media type: what is pushed or was pulled.
///
/// ```
/// use oci_spec_types::{Descriptor, ImageManifest, ManifestBytes, MediaType};
/// let manifest = ImageManifest::artifact(MediaType::from("application/vnd.example"), vec![]);
/// let raw = ManifestBytes::from_manifest(manifest.into());
/// let again = ManifestBytes::parse(raw.bytes().to_vec(), Some(&MediaType::ImageManifest))?;
/// assert_eq!(raw.digest(), again.digest());
/// assert_eq!(raw.descriptor().size, raw.bytes().len() as u64);
/// # Ok::<(), oci_spec_types::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBytes {
    bytes: Vec<u8>,
    digest: Digest,
    manifest: Manifest,
}

impl ManifestBytes {
    /// Parses received bytes; the digest is computed over exactly these bytes.
    pub fn parse(bytes: Vec<u8>, content_type: Option<&MediaType>) -> Result<Self, Error> {
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                size: bytes.len() as u64,
            });
        }
        let manifest = Manifest::from_slice(&bytes, content_type)?;
        let digest = Digest::sha256_of(&bytes);
        Ok(Self {
            bytes,
            digest,
            manifest,
        })
    }

    /// Serializes a manifest built here, once; the digest is of those bytes.
    pub fn from_manifest(manifest: Manifest) -> Self {
        let bytes = manifest.to_vec();
        let digest = Digest::sha256_of(&bytes);
        Self {
            bytes,
            digest,
            manifest,
        }
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the bytes out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The sha256 digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's media type.
    pub fn media_type(&self) -> MediaType {
        self.manifest.media_type()
    }

    /// A descriptor of this manifest (media type, digest, size, and its artifact type).
    pub fn descriptor(&self) -> Descriptor {
        let mut descriptor = Descriptor::new(
            self.media_type(),
            self.digest.clone(),
            self.bytes.len() as u64,
        );
        descriptor.artifact_type = match &self.manifest {
            Manifest::Image(m) => m.artifact_type.clone(),
            Manifest::Index(i) => i.artifact_type.clone(),
            Manifest::Artifact(a) => a.artifact_type.clone(),
            Manifest::DockerImage(_) | Manifest::DockerList(_) => None,
        };
        descriptor
    }
}
