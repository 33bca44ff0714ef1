//! Media types of the OCI image spec and Docker's schema 2, with any other string kept as is.

use std::fmt;
use std::str::FromStr;

macro_rules! media_types {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, )*) => {
        /// A media type. The known ones are variants; any other string is kept in
        /// [`MediaType::Other`] exactly as written.
        ///
        /// ```
        /// use oci_spec_types::MediaType;
        /// let t: MediaType = "application/vnd.oci.image.manifest.v1+json".parse().unwrap();
        /// assert_eq!(t, MediaType::ImageManifest);
        /// assert!(t.is_manifest());
        /// let custom = MediaType::from("application/vnd.example.sbom+json");
        /// assert_eq!(custom.as_str(), "application/vnd.example.sbom+json");
        /// ```
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MediaType {
            $( $(#[$doc])* $variant, )*
            /// Any other media type, kept as written.
            Other(String),
        }

        impl MediaType {
            /// The media type as a string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for MediaType {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

media_types! {
    /// `application/vnd.oci.image.manifest.v1+json`
    ImageManifest => "application/vnd.oci.image.manifest.v1+json",
    /// `application/vnd.oci.image.index.v1+json`
    ImageIndex => "application/vnd.oci.image.index.v1+json",
    /// `application/vnd.oci.image.config.v1+json`
    ImageConfig => "application/vnd.oci.image.config.v1+json",
    /// `application/vnd.oci.image.layer.v1.tar`
    ImageLayer => "application/vnd.oci.image.layer.v1.tar",
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    ImageLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
    /// `application/vnd.oci.image.layer.v1.tar+zstd`
    ImageLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar` (deprecated)
    ImageLayerNonDistributable => "application/vnd.oci.image.layer.nondistributable.v1.tar",
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar+gzip` (deprecated)
    ImageLayerNonDistributableGzip => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    /// `application/vnd.oci.image.layer.nondistributable.v1.tar+zstd` (deprecated)
    ImageLayerNonDistributableZstd => "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    /// `application/vnd.oci.empty.v1+json`: the two bytes `{}`, see [`crate::Descriptor::empty`].
    EmptyJson => "application/vnd.oci.empty.v1+json",
    /// `application/vnd.oci.artifact.manifest.v1+json`: the withdrawn OCI artifact manifest,
    /// readable but never written.
    ArtifactManifest => "application/vnd.oci.artifact.manifest.v1+json",
    /// `application/vnd.docker.distribution.manifest.v2+json`: Docker's schema 2 image manifest.
    DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
    /// `application/vnd.docker.container.image.v1+json`
    DockerConfig => "application/vnd.docker.container.image.v1+json",
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip`
    DockerLayer => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    /// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`
    DockerForeignLayer => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    /// `application/vnd.docker.distribution.manifest.v1+prettyjws`: schema 1, recognised only to be refused.
    DockerManifestV1Signed => "application/vnd.docker.distribution.manifest.v1+prettyjws",
}

impl MediaType {
    /// Every manifest media type this crate parses, in order of preference; what a client puts
    /// in `Accept` when it fetches a manifest.
    pub const MANIFEST_TYPES: [Self; 5] = [
        Self::ImageManifest,
        Self::ImageIndex,
        Self::DockerManifest,
        Self::DockerManifestList,
        Self::ArtifactManifest,
    ];

    /// Whether this is a single-image manifest type (OCI, Docker schema 2, or the OCI artifact manifest).
    pub fn is_manifest(&self) -> bool {
        matches!(
            self,
            Self::ImageManifest | Self::DockerManifest | Self::ArtifactManifest
        )
    }

    /// Whether this is an index type (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self, Self::ImageIndex | Self::DockerManifestList)
    }

    /// Whether this is a layer type of the OCI or Docker specs.
    pub fn is_layer(&self) -> bool {
        matches!(
            self,
            Self::ImageLayer
                | Self::ImageLayerGzip
                | Self::ImageLayerZstd
                | Self::ImageLayerNonDistributable
                | Self::ImageLayerNonDistributableGzip
                | Self::ImageLayerNonDistributableZstd
                | Self::DockerLayer
                | Self::DockerForeignLayer
        )
    }

    /// The essence of a `Content-Type` value: parameters after `;` and surrounding spaces
    /// dropped. Media types are case-insensitive (RFC 9110), so a known type in another case
    /// maps to its variant; any other type is kept as written.
    ///
    /// ```
    /// use oci_spec_types::MediaType;
    /// assert_eq!(MediaType::from_content_type("application/json; charset=utf-8").as_str(), "application/json");
    /// assert_eq!(
    ///     MediaType::from_content_type("Application/VND.OCI.Image.Manifest.v1+JSON"),
    ///     MediaType::ImageManifest
    /// );
    /// ```
    pub fn from_content_type(value: &str) -> Self {
        let essence = value.split(';').next().unwrap_or_default().trim();
        match Self::from(essence) {
            Self::Other(_) => match Self::from(essence.to_ascii_lowercase().as_str()) {
                Self::Other(_) => Self::Other(essence.to_owned()),
                known => known,
            },
            known => known,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaType({})", self.as_str())
    }
}

impl From<String> for MediaType {
    fn from(s: String) -> Self {
        match Self::from(s.as_str()) {
            Self::Other(_) => Self::Other(s),
            known => known,
        }
    }
}

impl FromStr for MediaType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s))
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::from(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_strings_map_to_variants_and_back() {
        for t in MediaType::MANIFEST_TYPES {
            assert_eq!(MediaType::from(t.as_str()), t);
            assert_eq!(MediaType::from(t.as_str().to_owned()), t);
        }
        let other = MediaType::from(String::from("text/plain"));
        assert_eq!(other, MediaType::Other("text/plain".into()));
        assert_eq!(format!("{other:?}"), "MediaType(text/plain)");
    }

    #[test]
    fn content_type_essence() {
        assert_eq!(
            MediaType::from_content_type(" application/vnd.oci.image.index.v1+json ;charset=x"),
            MediaType::ImageIndex
        );
        assert_eq!(
            MediaType::from_content_type("Text/Plain"),
            MediaType::Other("Text/Plain".into())
        );
        assert_eq!(
            MediaType::from_content_type(""),
            MediaType::Other(String::new())
        );
        assert_eq!(
            MediaType::from_content_type(";"),
            MediaType::Other(String::new())
        );
    }
}
