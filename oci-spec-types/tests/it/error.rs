//! `Error`: every variant's message and source.

use std::error::Error as _;

use oci_spec_types::{
    Digest, DigestError, Error, MAX_MANIFEST_SIZE, MediaType, Reference, ReferenceError,
};

#[test]
fn every_error_message() {
    let digest_error = Digest::parse("sha256:abc").unwrap_err();
    let reference_error = Reference::parse("alpine").unwrap_err();
    let cases: Vec<(Error, Vec<&str>, bool)> = vec![
        (
            Error::from(digest_error.clone()),
            vec!["sha256", "found 3"],
            true,
        ),
        (
            Error::from(reference_error.clone()),
            vec!["\"alpine\"", "missing registry"],
            true,
        ),
        (
            Error::InvalidJson {
                what: "manifest",
                message: "EOF while parsing an object at line 1 column 1".into(),
            },
            vec!["invalid manifest JSON", "line 1 column 1"],
            false,
        ),
        (
            Error::MediaTypeMismatch {
                declared: MediaType::ImageIndex,
                content_type: MediaType::ImageManifest,
            },
            vec![
                "mediaType is application/vnd.oci.image.index.v1+json",
                "served as application/vnd.oci.image.manifest.v1+json",
            ],
            false,
        ),
        (
            Error::UnknownManifestKind {
                media_type: Some(MediaType::from("text/plain")),
            },
            vec!["text/plain is not a manifest type"],
            false,
        ),
        (
            Error::UnknownManifestKind { media_type: None },
            vec![
                "cannot tell the manifest kind",
                "neither `config` nor `manifests`",
            ],
            false,
        ),
        (
            Error::AmbiguousManifestKind,
            vec![
                "cannot tell the manifest kind",
                "both `config`",
                "set `mediaType`",
            ],
            false,
        ),
        (
            Error::UnsupportedSchemaVersion { found: 1 },
            vec!["schema 1", "push the image again"],
            false,
        ),
        (
            Error::UnsupportedSchemaVersion { found: 3 },
            vec!["schemaVersion 3", "expected 2"],
            false,
        ),
        (
            Error::ManifestTooLarge {
                size: MAX_MANIFEST_SIZE + 1,
            },
            vec!["4194305 bytes", "at most 4194304"],
            false,
        ),
        (
            Error::InvalidPlatform {
                input: "linux".into(),
                reason: "the architecture is missing",
            },
            vec!["invalid platform \"linux\"", "architecture is missing"],
            false,
        ),
    ];
    for (err, words, has_source) in cases {
        let message = err.to_string();
        for word in words {
            assert!(
                message.contains(word),
                "{message:?} should contain {word:?}"
            );
        }
        assert_eq!(err.source().is_some(), has_source, "{err:?}");
    }
    assert_eq!(
        Error::from(digest_error.clone()),
        Error::Digest(digest_error.clone())
    );
    assert_eq!(
        Error::Digest(digest_error.clone())
            .source()
            .unwrap()
            .to_string(),
        digest_error.to_string()
    );
    assert_eq!(
        Error::from(reference_error.clone()),
        Error::Reference(reference_error)
    );
    // A reference's digest error chains to the digest error.
    let nested = Error::from(Reference::parse("h/a@sha256:abc").unwrap_err());
    let reference_source = nested.source().unwrap();
    assert!(reference_source.source().is_some());
    assert!(matches!(
        nested,
        Error::Reference(ReferenceError::InvalidDigest(
            DigestError::WrongLength { .. }
        ))
    ));
}
