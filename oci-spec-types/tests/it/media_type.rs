//! `MediaType`.

use oci_spec_types::MediaType;

#[test]
fn classification() {
    // (media type, is_manifest, is_index, is_layer)
    let cases = [
        (MediaType::ImageManifest, true, false, false),
        (MediaType::DockerManifest, true, false, false),
        (MediaType::ArtifactManifest, true, false, false),
        (MediaType::ImageIndex, false, true, false),
        (MediaType::DockerManifestList, false, true, false),
        (MediaType::ImageConfig, false, false, false),
        (MediaType::DockerConfig, false, false, false),
        (MediaType::EmptyJson, false, false, false),
        (MediaType::DockerManifestV1Signed, false, false, false),
        (MediaType::ImageLayer, false, false, true),
        (MediaType::ImageLayerGzip, false, false, true),
        (MediaType::ImageLayerZstd, false, false, true),
        (MediaType::ImageLayerNonDistributable, false, false, true),
        (
            MediaType::ImageLayerNonDistributableGzip,
            false,
            false,
            true,
        ),
        (
            MediaType::ImageLayerNonDistributableZstd,
            false,
            false,
            true,
        ),
        (MediaType::DockerLayer, false, false, true),
        (MediaType::DockerForeignLayer, false, false, true),
        (
            MediaType::from("application/vnd.example+json"),
            false,
            false,
            false,
        ),
    ];
    for (t, manifest, index, layer) in cases {
        assert_eq!(t.is_manifest(), manifest, "{t}");
        assert_eq!(t.is_index(), index, "{t}");
        assert_eq!(t.is_layer(), layer, "{t}");
        // Every known type survives its own string.
        assert_eq!(MediaType::from(t.as_str()), t);
        assert_eq!(t.as_str().parse::<MediaType>(), Ok(t.clone()));
        assert_eq!(t.to_string(), t.as_str());
    }
}

#[test]
fn spec_strings() {
    for (t, s) in [
        (
            MediaType::ImageManifest,
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            MediaType::ImageIndex,
            "application/vnd.oci.image.index.v1+json",
        ),
        (
            MediaType::ImageConfig,
            "application/vnd.oci.image.config.v1+json",
        ),
        (
            MediaType::ImageLayerGzip,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (MediaType::EmptyJson, "application/vnd.oci.empty.v1+json"),
        (
            MediaType::ArtifactManifest,
            "application/vnd.oci.artifact.manifest.v1+json",
        ),
        (
            MediaType::DockerManifest,
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
        (
            MediaType::DockerManifestList,
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
        (
            MediaType::DockerConfig,
            "application/vnd.docker.container.image.v1+json",
        ),
        (
            MediaType::DockerLayer,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
    ] {
        assert_eq!(t.as_str(), s);
    }
}

#[test]
fn manifest_types_for_accept() {
    assert_eq!(MediaType::MANIFEST_TYPES[0], MediaType::ImageManifest);
    for t in MediaType::MANIFEST_TYPES {
        assert!(t.is_manifest() || t.is_index(), "{t}");
    }
}

#[test]
fn other_types_are_kept_as_written() {
    let t = MediaType::from("Application/Vnd.Example");
    assert_eq!(t, MediaType::Other("Application/Vnd.Example".into()));
    assert_eq!(t.as_str(), "Application/Vnd.Example");
    // The body's mediaType is compared exactly; only Content-Type is case-folded.
    assert_ne!(
        MediaType::from("APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON"),
        MediaType::ImageManifest
    );
    assert_eq!(
        MediaType::from_content_type("APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON; charset=utf-8"),
        MediaType::ImageManifest
    );
}

#[test]
fn serde_as_a_string() {
    let json = serde_json::to_string(&MediaType::ImageIndex).unwrap();
    assert_eq!(json, "\"application/vnd.oci.image.index.v1+json\"");
    assert_eq!(
        serde_json::from_str::<MediaType>(&json).unwrap(),
        MediaType::ImageIndex
    );
    assert_eq!(
        serde_json::from_str::<MediaType>("\"x/y\"").unwrap(),
        MediaType::Other("x/y".into())
    );
    assert!(serde_json::from_str::<MediaType>("1").is_err());
}
