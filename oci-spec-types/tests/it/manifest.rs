//! Manifests: real fixtures, kind dispatch, round trips, unknown fields, and every error path.

use oci_spec_types::{
    Descriptor, Digest, Error, ImageIndex, ImageManifest, MAX_MANIFEST_SIZE, Manifest,
    ManifestBytes, MediaType, Platform, annotations,
};
use proptest::prelude::*;
use serde_json::Value;

/// A real manifest: its exact bytes, its kind, the media type it is served as, and its
/// digest when known independently (see `tests/fixtures/README.md`).
struct Fixture {
    name: &'static str,
    bytes: &'static [u8],
    kind: &'static str,
    media_type: MediaType,
    digest: Option<&'static str>,
}

macro_rules! fixture {
    ($file:literal, $kind:literal, $media_type:expr, $digest:expr) => {
        Fixture {
            name: $file,
            bytes: include_bytes!(concat!("../fixtures/", $file)),
            kind: $kind,
            media_type: $media_type,
            digest: $digest,
        }
    };
}

fn fixtures() -> Vec<Fixture> {
    vec![
        fixture!(
            "docker-alpine-3.18.3-amd64.json",
            "DockerImage",
            MediaType::DockerManifest,
            Some("sha256:c5c5fda71656f28e49ac9c5416b3643eaa6a108a8093151d6d1afc9463be8e33")
        ),
        fixture!(
            "docker-mcr-dotnet-runtime-7.0-amd64.json",
            "DockerImage",
            MediaType::DockerManifest,
            Some("sha256:344937e3f9ea3f6d04011aa1e8d23270b851dbb5e34eb3a98abb6d90d057d9c5")
        ),
        fixture!(
            "docker-hub-debian-manifest-list.json",
            "DockerList",
            MediaType::DockerManifestList,
            None
        ),
        fixture!(
            "regclient-image-manifest.json",
            "Image",
            MediaType::ImageManifest,
            Some("sha256:ef05efc8cfd478ac3140fce1297bd6b72dc5f5f1df31bfce690aa903a2c20310")
        ),
        fixture!(
            "regclient-index.json",
            "Index",
            MediaType::ImageIndex,
            Some("sha256:adab55c36c56f4054a64972a431e38e407d0060ce90888a2470d67598042f7c8")
        ),
        fixture!(
            "regclient-artifact-with-subject.json",
            "Image",
            MediaType::ImageManifest,
            Some("sha256:fd90fc9bbcdaace19655b8983e3d4efa946332f8c1f1aac40ac5bead09bdf9c9")
        ),
        fixture!(
            "oras-attach-manifest.json",
            "Image",
            MediaType::ImageManifest,
            None
        ),
        fixture!(
            "oci-spec-image-manifest.json",
            "Image",
            MediaType::ImageManifest,
            None
        ),
        fixture!(
            "oci-spec-image-index.json",
            "Index",
            MediaType::ImageIndex,
            None
        ),
        fixture!(
            "oci-spec-minimal-artifact.json",
            "Image",
            MediaType::ImageManifest,
            None
        ),
        fixture!(
            "oci-spec-artifact-manifest.json",
            "Artifact",
            MediaType::ArtifactManifest,
            None
        ),
        fixture!(
            "unknown-fields-index.json",
            "Index",
            MediaType::ImageIndex,
            None
        ),
    ]
}

fn fixture(name: &str) -> ManifestBytes {
    let f = fixtures().into_iter().find(|f| f.name == name).unwrap();
    ManifestBytes::parse(f.bytes.to_vec(), Some(&f.media_type)).unwrap()
}

fn kind(m: &Manifest) -> &'static str {
    match m {
        Manifest::Image(_) => "Image",
        Manifest::Index(_) => "Index",
        Manifest::DockerImage(_) => "DockerImage",
        Manifest::DockerList(_) => "DockerList",
        Manifest::Artifact(_) => "Artifact",
        _ => "unknown",
    }
}

fn image(m: &Manifest) -> &ImageManifest {
    match m {
        Manifest::Image(m) | Manifest::DockerImage(m) => m,
        other => panic!("not an image manifest: {other:?}"),
    }
}

fn index(m: &Manifest) -> &ImageIndex {
    match m {
        Manifest::Index(i) | Manifest::DockerList(i) => i,
        other => panic!("not an index: {other:?}"),
    }
}

fn parse(json: &str, content_type: Option<MediaType>) -> Result<Manifest, Error> {
    Manifest::from_slice(json.as_bytes(), content_type.as_ref())
}

#[test]
fn fixtures_parse_as_their_kind_with_their_digest() {
    for f in fixtures() {
        let raw = ManifestBytes::parse(f.bytes.to_vec(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(kind(raw.manifest()), f.kind, "{}", f.name);
        assert_eq!(raw.media_type(), f.media_type, "{}", f.name);
        assert_eq!(raw.bytes(), f.bytes);
        assert_eq!(*raw.digest(), Digest::sha256_of(f.bytes), "{}", f.name);
        if let Some(known) = f.digest {
            assert_eq!(
                raw.digest().as_str(),
                known,
                "{}: digest of the exact bytes",
                f.name
            );
        }
        let descriptor = raw.descriptor();
        assert_eq!(descriptor.media_type, f.media_type);
        assert_eq!(descriptor.digest, *raw.digest());
        assert_eq!(descriptor.size, f.bytes.len() as u64);
        assert!(descriptor.digest.matches(f.bytes));
        assert_eq!(raw.clone().into_bytes(), f.bytes);

        // The kind is the same whatever else tells it: the Content-Type, or a generic one.
        for content_type in [f.media_type.clone(), MediaType::from("application/json")] {
            let again = Manifest::from_slice(f.bytes, Some(&content_type)).unwrap();
            assert_eq!(again, *raw.manifest(), "{} as {content_type}", f.name);
        }
        // A manifest Content-Type of another kind conflicts with the body's mediaType.
        let other = if f.media_type == MediaType::ImageIndex {
            MediaType::ImageManifest
        } else {
            MediaType::ImageIndex
        };
        assert!(
            matches!(
                Manifest::from_slice(f.bytes, Some(&other)),
                Err(Error::MediaTypeMismatch { declared, content_type })
                    if declared == f.media_type && content_type == other
            ),
            "{}",
            f.name
        );
    }
}

#[test]
fn fixtures_round_trip_losing_nothing() {
    for f in fixtures() {
        let m = Manifest::from_slice(f.bytes, None).unwrap();
        let serialized = m.to_vec();
        // parse -> serialize -> parse is the identity.
        assert_eq!(
            Manifest::from_slice(&serialized, None).unwrap(),
            m,
            "{}",
            f.name
        );
        // And the JSON is the same document: every field, known or not, survives.
        let original: Value = serde_json::from_slice(f.bytes).unwrap();
        let again: Value = serde_json::from_slice(&serialized).unwrap();
        assert_eq!(again, original, "{}", f.name);
        // Built manifests keep their bytes and digest.
        let built = ManifestBytes::from_manifest(m.clone());
        assert_eq!(built.bytes(), serialized.as_slice());
        assert_eq!(*built.digest(), Digest::sha256_of(&serialized));
        let reparsed = ManifestBytes::parse(built.bytes().to_vec(), None).unwrap();
        assert_eq!(reparsed.manifest(), &m);
        assert_eq!(reparsed.digest(), built.digest());
    }
}

#[test]
fn docker_alpine_manifest() {
    let raw = fixture("docker-alpine-3.18.3-amd64.json");
    let m = image(raw.manifest());
    assert_eq!(m.schema_version, 2);
    assert_eq!(m.config.media_type, MediaType::DockerConfig);
    assert_eq!(m.config.size, 1471);
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.layers[0].media_type, MediaType::DockerLayer);
    assert!(m.layers[0].media_type.is_layer());
    assert_eq!(m.layers[0].size, 3_401_613);
    assert_eq!(raw.manifest().children().len(), 2);
    assert_eq!(
        raw.manifest().artifact_type(),
        Some(&MediaType::DockerConfig)
    );
    assert_eq!(raw.manifest().subject(), None);
    assert!(raw.manifest().annotations().is_empty());
    assert_eq!(raw.descriptor().artifact_type, None);
}

#[test]
fn docker_hub_manifest_list() {
    let raw = fixture("docker-hub-debian-manifest-list.json");
    let list = index(raw.manifest());
    assert_eq!(list.manifests.len(), 8);
    assert!(
        list.manifests
            .iter()
            .all(|d| d.media_type == MediaType::DockerManifest && d.size == 529)
    );
    let wanted = Platform::parse("linux/arm64/v8").unwrap();
    let chosen: Vec<_> = list
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
        .collect();
    assert_eq!(chosen.len(), 1);
    assert_eq!(
        chosen[0].digest.as_str(),
        "sha256:75ba88a40235cbcaa70686e0e63394b435e0a7f4497fa38f88277c4d43f2c384"
    );
    let arm = Platform::parse("linux/arm").unwrap();
    assert_eq!(
        list.manifests
            .iter()
            .filter(|d| arm.matches(d.platform.as_ref().unwrap()))
            .count(),
        2
    );
    assert_eq!(raw.manifest().children().len(), 8);
    assert_eq!(raw.manifest().artifact_type(), None);
}

#[test]
fn regclient_fixtures_point_at_each_other() {
    let image_manifest = fixture("regclient-image-manifest.json");
    let index_raw = fixture("regclient-index.json");
    let artifact = fixture("regclient-artifact-with-subject.json");
    let idx = index(index_raw.manifest());
    // The index's amd64 entry is the image manifest fixture, by digest and size.
    let amd64 = &idx.manifests[0];
    assert_eq!(amd64.platform, Some(Platform::new("linux", "amd64")));
    assert_eq!(amd64.digest, *image_manifest.digest());
    assert_eq!(amd64.size, image_manifest.bytes().len() as u64);
    assert_eq!(
        idx.manifests[2]
            .platform
            .as_ref()
            .unwrap()
            .variant
            .as_deref(),
        Some("v7")
    );
    assert_eq!(
        idx.annotations["org.opencontainers.image.base.name"],
        "ocidir://testrepo:b2"
    );
    assert_eq!(
        Digest::parse(&idx.annotations[annotations::BASE_DIGEST])
            .unwrap()
            .short(),
        "f91e00c1c151"
    );
    // The artifact's subject is the index fixture.
    let subject = artifact.manifest().subject().unwrap();
    assert_eq!(subject.digest, *index_raw.digest());
    assert_eq!(subject.size, index_raw.bytes().len() as u64);
    assert_eq!(subject.media_type, MediaType::ImageIndex);
    // No artifactType: the config media type stands in (image-spec 1.1 rule).
    let m = image(artifact.manifest());
    assert_eq!(m.artifact_type, None);
    assert_eq!(
        artifact.manifest().artifact_type(),
        Some(&MediaType::from("application/example.sbom"))
    );
    assert_eq!(m.config.digest, Descriptor::empty().digest);
    assert_eq!(artifact.manifest().children().len(), 2);
}

#[test]
fn oras_attach_manifest() {
    let raw = fixture("oras-attach-manifest.json");
    let m = image(raw.manifest());
    let cyclonedx = MediaType::from("application/vnd.cyclonedx+json");
    assert_eq!(m.artifact_type.as_ref(), Some(&cyclonedx));
    assert_eq!(raw.manifest().artifact_type(), Some(&cyclonedx));
    assert_eq!(raw.descriptor().artifact_type, Some(cyclonedx));
    // The empty config, with its content embedded as `data`.
    assert_eq!(m.config.data.as_deref(), Some(&b"{}"[..]));
    assert!(m.config.data_is_valid());
    let mut config = m.config.clone();
    config.data = None;
    assert_eq!(config, Descriptor::empty());
    assert_eq!(m.layers[0].title(), Some("hi.txt"));
    assert_eq!(m.layers[0].media_type, MediaType::ImageLayer);
    assert_eq!(m.subject.as_ref().unwrap().size, 521);
    assert_eq!(m.annotations[annotations::CREATED], "2024-07-18T14:43:47Z");
    assert_eq!(m.annotations["key1"], "val1");
}

#[test]
fn spec_examples() {
    let raw = fixture("oci-spec-image-manifest.json");
    let m = image(raw.manifest());
    assert_eq!(m.layers.len(), 3);
    assert!(
        m.layers
            .iter()
            .all(|l| l.media_type == MediaType::ImageLayerGzip)
    );
    assert_eq!(m.config.media_type, MediaType::ImageConfig);
    assert_eq!(m.subject.as_ref().unwrap().size, 7682);
    assert_eq!(m.annotations["com.example.key2"], "value2");
    assert_eq!(raw.manifest().children().len(), 4);

    let raw = fixture("oci-spec-image-index.json");
    let i = index(raw.manifest());
    let platforms: Vec<String> = i
        .manifests
        .iter()
        .map(|d| d.platform.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(platforms, ["linux/ppc64le", "linux/amd64"]);
    assert_eq!(raw.manifest().annotations().len(), 2);

    let raw = fixture("oci-spec-minimal-artifact.json");
    let m = image(raw.manifest());
    assert_eq!(m.config, Descriptor::empty());
    assert_eq!(m.layers, [Descriptor::empty()]);
    assert_eq!(
        m.effective_artifact_type(),
        &MediaType::from("application/vnd.example+type")
    );

    let raw = fixture("oci-spec-artifact-manifest.json");
    let Manifest::Artifact(a) = raw.manifest() else {
        panic!()
    };
    assert_eq!(a.media_type, MediaType::ArtifactManifest);
    assert_eq!(a.blobs.len(), 1);
    assert_eq!(raw.manifest().children(), [&a.blobs[0]]);
    assert_eq!(raw.manifest().subject().unwrap().size, 1234);
    let sbom = MediaType::from("application/vnd.example.sbom.v1");
    assert_eq!(raw.manifest().artifact_type(), Some(&sbom));
    assert_eq!(raw.descriptor().artifact_type, Some(sbom));
    assert_eq!(
        raw.manifest().annotations()["org.example.sbom.format"],
        "json"
    );
}

#[test]
fn unknown_fields_are_kept_at_every_level() {
    let raw = fixture("unknown-fields-index.json");
    let i = index(raw.manifest());
    assert_eq!(i.extra["vnd.example.top"]["nested"][1], 2.5);
    assert_eq!(i.manifests[0].extra["vnd.example.descriptor"], "kept");
    let platform = i.manifests[0].platform.as_ref().unwrap();
    assert_eq!(platform.extra["vnd.example.platform"], 7);
    assert_eq!(platform.os_features, ["win32k"]);
    assert_eq!(
        i.subject.as_ref().unwrap().extra["vnd.example.subject"][0]["a"],
        "b"
    );
    // Unknown fields never leak into the known ones, nor the other way.
    assert!(!i.extra.contains_key("manifests") && !i.extra.contains_key("mediaType"));
}

const CONFIG: &str = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#;

fn image_body(extra: &str) -> String {
    format!(r#"{{"schemaVersion":2,{extra}"config":{CONFIG},"layers":[]}}"#)
}

#[test]
fn dispatch_by_shape_when_nothing_else_says() {
    let m = parse(&image_body(""), None).unwrap();
    assert_eq!(kind(&m), "Image");
    assert_eq!(m.media_type(), MediaType::ImageManifest);
    let i = parse(r#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap();
    assert_eq!(kind(&i), "Index");
    assert_eq!(i.media_type(), MediaType::ImageIndex);
    assert_eq!(
        parse(r#"{"schemaVersion":2,"config":{},"manifests":[]}"#, None),
        Err(Error::AmbiguousManifestKind)
    );
    assert_eq!(
        parse(r#"{"schemaVersion":2,"layers":[]}"#, None),
        Err(Error::UnknownManifestKind { media_type: None })
    );
    // A generic or non-manifest Content-Type does not decide.
    for ct in [
        "application/json",
        "application/octet-stream",
        "application/vnd.oci.image.config.v1+json",
    ] {
        assert_eq!(
            kind(&parse(&image_body(""), Some(MediaType::from(ct))).unwrap()),
            "Image",
            "{ct}"
        );
    }
}

#[test]
fn dispatch_by_content_type_when_the_body_has_no_media_type() {
    let m = parse(&image_body(""), Some(MediaType::DockerManifest)).unwrap();
    assert_eq!(kind(&m), "DockerImage");
    assert_eq!(m.media_type(), MediaType::DockerManifest);
    let l = parse(
        r#"{"schemaVersion":2,"manifests":[]}"#,
        Some(MediaType::DockerManifestList),
    )
    .unwrap();
    assert_eq!(kind(&l), "DockerList");
    assert_eq!(l.media_type(), MediaType::DockerManifestList);
    let ct = MediaType::from_content_type("application/vnd.oci.image.index.v1+json; charset=utf-8");
    assert_eq!(
        kind(&parse(r#"{"schemaVersion":2,"manifests":[]}"#, Some(ct)).unwrap()),
        "Index"
    );
    // The Content-Type wins over the shape; a body of the other shape fails to parse.
    let Err(Error::InvalidJson { what, message }) =
        parse(&image_body(""), Some(MediaType::ImageIndex))
    else {
        panic!()
    };
    assert_eq!(what, "manifest");
    assert!(message.contains("missing field `manifests`"), "{message}");
}

#[test]
fn the_body_media_type_decides_and_must_agree() {
    let body = image_body(r#""mediaType":"application/vnd.docker.distribution.manifest.v2+json","#);
    assert_eq!(kind(&parse(&body, None).unwrap()), "DockerImage");
    assert_eq!(
        kind(&parse(&body, Some(MediaType::DockerManifest)).unwrap()),
        "DockerImage"
    );
    assert_eq!(
        parse(&body, Some(MediaType::ImageManifest)),
        Err(Error::MediaTypeMismatch {
            declared: MediaType::DockerManifest,
            content_type: MediaType::ImageManifest
        })
    );
    // A body mediaType that is no manifest type.
    let body = image_body(r#""mediaType":"text/plain","#);
    assert_eq!(
        parse(&body, None),
        Err(Error::UnknownManifestKind {
            media_type: Some(MediaType::from("text/plain"))
        })
    );
    assert!(matches!(
        parse(&body, Some(MediaType::ImageManifest)),
        Err(Error::MediaTypeMismatch { .. })
    ));
    let body = image_body(r#""mediaType":"application/vnd.oci.image.config.v1+json","#);
    assert_eq!(
        parse(&body, None),
        Err(Error::UnknownManifestKind {
            media_type: Some(MediaType::ImageConfig)
        })
    );
    // `"mediaType": null` is no mediaType.
    assert_eq!(
        kind(&parse(&image_body(r#""mediaType":null,"#), None).unwrap()),
        "Image"
    );
}

#[test]
fn schema_1_and_other_versions_are_refused() {
    let schema1 = r#"{"schemaVersion":1,"name":"library/hello","tag":"latest","architecture":"amd64","fsLayers":[],"history":[]}"#;
    assert_eq!(
        parse(schema1, None),
        Err(Error::UnsupportedSchemaVersion { found: 1 })
    );
    assert_eq!(
        parse(schema1, Some(MediaType::DockerManifest)),
        Err(Error::UnsupportedSchemaVersion { found: 1 })
    );
    let no_version = r#"{"name":"library/hello","tag":"latest","fsLayers":[]}"#;
    for ct in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ] {
        assert_eq!(
            parse(no_version, Some(MediaType::from_content_type(ct))),
            Err(Error::UnsupportedSchemaVersion { found: 1 }),
            "{ct}"
        );
    }
    let declared = r#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
    assert_eq!(
        parse(declared, None),
        Err(Error::UnsupportedSchemaVersion { found: 1 })
    );
    for found in [0, 3, u64::from(u32::MAX) + 1, u64::MAX] {
        let body = format!(r#"{{"schemaVersion":{found},"manifests":[]}}"#);
        assert_eq!(
            parse(&body, None),
            Err(Error::UnsupportedSchemaVersion { found }),
            "{found}"
        );
    }
    for bad in [r#""2""#, "2.0", "-2", "null", "[2]"] {
        let body = format!(r#"{{"schemaVersion":{bad},"manifests":[]}}"#);
        let Err(Error::InvalidJson { message, .. }) = parse(&body, None) else {
            panic!("{bad}")
        };
        assert!(
            message.contains("`schemaVersion` must be the number 2"),
            "{bad}: {message}"
        );
        assert!(message.contains("line 1 column"), "{message}");
    }
    let Err(Error::InvalidJson { message, .. }) = parse(r#"{"manifests":[]}"#, None) else {
        panic!()
    };
    assert!(
        message.contains("missing field `schemaVersion`"),
        "{message}"
    );
}

#[test]
fn malformed_json_errors_say_where() {
    for (body, words) in [
        ("", "EOF while parsing"),
        (r#"{"schemaVersion":2,"#, "EOF while parsing"),
        ("{]", "line 1 column 2"),
        ("[]", "expected a manifest (a JSON object)"),
        ("null", "expected a manifest (a JSON object)"),
        ("\"x\"", "expected a manifest (a JSON object)"),
        ("{} x", "trailing characters"),
        (r#"{"mediaType":5}"#, "`mediaType` must be a string"),
        (
            r#"{"mediaType":"a/b","mediaType":"c/d"}"#,
            "duplicate field `mediaType`",
        ),
        (
            r#"{"schemaVersion":2,"schemaVersion":2}"#,
            "duplicate field `schemaVersion`",
        ),
        (
            &format!(r#"{{"schemaVersion":2,"config":{CONFIG},"config":{CONFIG},"layers":[]}}"#),
            "duplicate field `config`",
        ),
        (
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:abc","size":1}]}"#,
            "64 hex characters expected, found 3",
        ),
        (
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30"}]}"#,
            "`data`",
        ),
        (r#"{"schemaVersion":2,"manifests":{}}"#, "invalid type: map"),
        (
            &format!(
                r#"{{"schemaVersion":2,"manifests":[],"x":{}1{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
            "recursion limit",
        ),
        (
            &format!(r#"{{"schemaVersion":2,"manifests":[]}}{}"#, "\u{0}"),
            "trailing characters",
        ),
        ("\u{feff}{}", "expected value"),
    ] {
        let Err(Error::InvalidJson { what, message }) = Manifest::from_slice(body.as_bytes(), None)
        else {
            panic!("{body:?} should be invalid JSON")
        };
        assert_eq!(what, "manifest");
        assert!(message.contains(words), "{body:?}: {message}");
        let shown = Error::InvalidJson { what, message }.to_string();
        assert!(shown.starts_with("invalid manifest JSON: "), "{shown}");
    }
    assert!(Manifest::from_slice(&[0xff, 0xfe], None).is_err());
}

#[test]
fn size_limit() {
    let body = br#"{"schemaVersion":2,"manifests":[]}"#;
    let mut padded = body.to_vec();
    padded.resize(MAX_MANIFEST_SIZE as usize, b' ');
    let raw = ManifestBytes::parse(padded.clone(), None).unwrap();
    assert_eq!(raw.descriptor().size, MAX_MANIFEST_SIZE);
    padded.push(b' ');
    assert_eq!(
        ManifestBytes::parse(padded, None),
        Err(Error::ManifestTooLarge {
            size: MAX_MANIFEST_SIZE + 1
        })
    );
}

#[test]
fn built_manifests() {
    let layer = Descriptor::for_bytes(MediaType::ImageLayer, b"hello")
        .with_annotation(annotations::TITLE, "hello.txt");
    let m = ImageManifest::artifact(
        MediaType::from("application/vnd.example"),
        vec![layer.clone()],
    );
    assert_eq!(m.schema_version, 2);
    assert_eq!(m.media_type, Some(MediaType::ImageManifest));
    assert_eq!(m.config, Descriptor::empty());
    assert_eq!(
        m.effective_artifact_type(),
        &MediaType::from("application/vnd.example")
    );
    let raw = ManifestBytes::from_manifest(m.clone().into());
    assert_eq!(
        std::str::from_utf8(raw.bytes()).unwrap(),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":5,"annotations":{{"org.opencontainers.image.title":"hello.txt"}}}}]}}"#,
            layer.digest
        )
    );
    assert_eq!(
        raw.descriptor().artifact_type,
        Some(MediaType::from("application/vnd.example"))
    );
    assert_eq!(raw.manifest(), &Manifest::Image(m.clone()));

    let plain = ImageManifest::new(Descriptor::for_bytes(MediaType::ImageConfig, b"{}"), vec![]);
    assert_eq!(plain.effective_artifact_type(), &MediaType::ImageConfig);
    assert_eq!(plain.artifact_type, None);

    let idx = ImageIndex::new(vec![raw.descriptor()]);
    assert_eq!(idx.media_type, Some(MediaType::ImageIndex));
    let raw_index = ManifestBytes::from_manifest(idx.clone().into());
    assert_eq!(raw_index.media_type(), MediaType::ImageIndex);
    assert_eq!(raw_index.manifest().children(), [&raw.descriptor()]);
    assert_eq!(raw_index.manifest().artifact_type(), None);
    assert_eq!(
        ManifestBytes::parse(raw_index.into_bytes(), None)
            .unwrap()
            .manifest(),
        &Manifest::Index(idx)
    );
}

/// Found by `damaged_fixtures_never_panic`: a Docker manifest whose `mediaType` key is damaged
/// is a Docker manifest only by its Content-Type, and reads back as one with its media type.
#[test]
fn a_docker_manifest_known_only_by_its_content_type_round_trips() {
    let f = &fixtures()[0];
    let text = std::str::from_utf8(f.bytes).unwrap();
    let damaged = text.replacen("\"mediaType\"", "\"#ediaType\"", 1);
    assert_ne!(damaged, text);
    let raw = ManifestBytes::parse(damaged.into_bytes(), Some(&MediaType::DockerManifest)).unwrap();
    assert_eq!(kind(raw.manifest()), "DockerImage");
    assert_eq!(raw.media_type(), MediaType::DockerManifest);
    let again = Manifest::from_slice(&raw.manifest().to_vec(), Some(&raw.media_type()));
    assert_eq!(again.as_ref(), Ok(raw.manifest()));
    // Without the header the body alone says OCI: the kind came from the header.
    let bare = Manifest::from_slice(&raw.manifest().to_vec(), None).unwrap();
    assert_eq!(kind(&bare), "Image");
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ManifestBytes::parse(bytes, None);
    }

    #[test]
    fn damaged_fixtures_never_panic(
        which in 0..12usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        content_type in prop::sample::select(MediaType::MANIFEST_TYPES.to_vec()),
    ) {
        let f = &fixtures()[which];
        let mut bytes = f.bytes.to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(raw) = ManifestBytes::parse(bytes.clone(), Some(&content_type)) {
            // Whatever parses round-trips, read with its media type as the Content-Type: a
            // damaged `mediaType` key leaves the kind to the header (Docker or OCI), which the
            // serialized body alone no longer says.
            let again = Manifest::from_slice(&raw.manifest().to_vec(), Some(&raw.media_type()));
            prop_assert_eq!(again.as_ref(), Ok(raw.manifest()));
        }
    }
}
