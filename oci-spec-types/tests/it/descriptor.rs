//! `Descriptor`, the empty descriptor, `data`, and `Platform`.

use oci_spec_types::{Descriptor, Digest, EMPTY_JSON, Error, MediaType, Platform, annotations};
use serde_json::{Value, json};

const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

#[test]
fn the_empty_descriptor() {
    let d = Descriptor::empty();
    assert_eq!(d.media_type, MediaType::EmptyJson);
    assert_eq!(d.media_type.as_str(), "application/vnd.oci.empty.v1+json");
    assert_eq!(d.digest.as_str(), EMPTY_DIGEST);
    assert_eq!(d.size, 2);
    assert_eq!(EMPTY_JSON, b"{}");
    assert!(d.data.is_none() && d.data_is_valid());
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2})
    );
}

#[test]
fn the_spec_empty_descriptor_with_data() {
    let bytes = include_bytes!("../fixtures/oci-spec-empty-descriptor.json");
    let d: Descriptor = serde_json::from_slice(bytes).unwrap();
    assert_eq!(d.data.as_deref(), Some(&b"{}"[..]));
    assert!(d.data_is_valid());
    let mut without_data = d.clone();
    without_data.data = None;
    assert_eq!(without_data, Descriptor::empty());
    // `data` serializes back to the same base64.
    let value = serde_json::to_value(&d).unwrap();
    assert_eq!(value["data"], "e30=");
    assert_eq!(value, serde_json::from_slice::<Value>(bytes).unwrap());
}

#[test]
fn data_must_match_size_and_digest() {
    let mut d = Descriptor::empty();
    d.data = Some(b"{}".to_vec());
    assert!(d.data_is_valid());
    d.data = Some(b"[]".to_vec());
    assert!(!d.data_is_valid(), "same size, other digest");
    d.data = Some(b"{ }".to_vec());
    assert!(!d.data_is_valid(), "other size");
    let mut unknown_algorithm = Descriptor::new(
        MediaType::EmptyJson,
        Digest::parse("blake3:abc").unwrap(),
        2,
    );
    unknown_algorithm.data = Some(b"{}".to_vec());
    assert!(!unknown_algorithm.data_is_valid(), "cannot be verified");
}

#[test]
fn data_must_be_padded_standard_base64() {
    for (data, why) in [
        ("e30", "not a multiple of 4"),
        ("e3=0", "`=` padding"),
        ("e30-", "standard alphabet"),
        ("e3 0", "standard alphabet"),
        ("e31=", "canonical"),
    ] {
        let json = json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2, "data": data});
        let err = serde_json::from_value::<Descriptor>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`data`") && err.contains(why), "{data}: {err}");
    }
    let json = json!({"mediaType": "a/b", "digest": EMPTY_DIGEST, "size": 2, "data": null});
    assert_eq!(
        serde_json::from_value::<Descriptor>(json).unwrap().data,
        None
    );
}

#[test]
fn required_fields_and_types() {
    for (json, words) in [
        (json!({"digest": EMPTY_DIGEST, "size": 2}), "mediaType"),
        (json!({"mediaType": "a/b", "size": 2}), "digest"),
        (json!({"mediaType": "a/b", "digest": EMPTY_DIGEST}), "size"),
        (
            json!({"mediaType": "a/b", "digest": EMPTY_DIGEST, "size": -1}),
            "-1",
        ),
        (
            json!({"mediaType": "a/b", "digest": "sha256:xyz", "size": 2}),
            "found 3",
        ),
        (json!(["a/b", EMPTY_DIGEST, 2]), "invalid type: sequence"),
    ] {
        let err = serde_json::from_value::<Descriptor>(json.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(words), "{json}: {err}");
    }
}

#[test]
fn builders_and_annotations() {
    let d = Descriptor::for_bytes(MediaType::ImageLayer, b"hello")
        .with_annotation(annotations::TITLE, "hello.txt")
        .with_annotation("b", "2");
    assert_eq!(d.size, 5);
    assert_eq!(d.digest, Digest::sha256_of(b"hello"));
    assert_eq!(d.title(), Some("hello.txt"));
    assert_eq!(Descriptor::empty().title(), None);
    let value = serde_json::to_value(&d).unwrap();
    // Optional fields are omitted when empty; annotations serialize sorted.
    assert_eq!(
        serde_json::to_string(&value["annotations"]).unwrap(),
        r#"{"b":"2","org.opencontainers.image.title":"hello.txt"}"#
    );
    assert!(value.get("urls").is_none() && value.get("platform").is_none());
}

#[test]
fn unknown_fields_survive() {
    let json = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": EMPTY_DIGEST,
        "size": 2,
        "urls": ["https://example.com/blob"],
        "artifactType": "application/vnd.example",
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "features": ["sse4"], "vnd.x": {"y": [1]}},
        "vnd.example.extra": {"nested": [true, null, 1.5]},
    });
    let d: Descriptor = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(d.extra["vnd.example.extra"], json["vnd.example.extra"]);
    let platform = d.platform.as_ref().unwrap();
    assert_eq!(platform.extra["vnd.x"], json!({"y": [1]}));
    assert_eq!(platform.features, ["sse4"]);
    assert_eq!(
        d.artifact_type,
        Some(MediaType::from("application/vnd.example"))
    );
    assert_eq!(serde_json::to_value(&d).unwrap(), json);
}

#[test]
fn platform_parse_and_display() {
    for (input, os, arch, variant) in [
        ("linux/amd64", "linux", "amd64", None),
        ("linux/arm64/v8", "linux", "arm64", Some("v8")),
        ("windows/amd64", "windows", "amd64", None),
        ("linux/arm/v6", "linux", "arm", Some("v6")),
        ("linux/ppc64le/power9", "linux", "ppc64le", Some("power9")),
        ("linux/arm64/v8.1", "linux", "arm64", Some("v8.1")),
        ("linux/x86_64", "linux", "x86_64", None),
    ] {
        let p = Platform::parse(input).unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            (os, arch, variant)
        );
        assert_eq!(p.to_string(), input);
    }
}

#[test]
fn every_platform_error() {
    for (input, reason) in [
        ("", "the platform is empty"),
        ("linux", "architecture is missing"),
        ("/amd64", "os before the first `/` is empty"),
        ("linux/", "architecture after the first `/` is empty"),
        ("/", "os before the first `/` is empty"),
        ("linux/arm/", "variant after the second `/` is empty"),
        ("linux/arm/v7/x", "too many `/`"),
        ("linux//v7", "architecture after the first `/` is empty"),
        ("linux /amd64", "a part has a character"),
        ("linux/amd64/v8\n", "a part has a character"),
        ("linux/amd64:v8", "a part has a character"),
    ] {
        let err = Platform::parse(input).unwrap_err();
        let Error::InvalidPlatform {
            input: got,
            reason: why,
        } = &err
        else {
            panic!("{input:?}: {err:?}");
        };
        assert_eq!(got, input);
        assert!(why.contains(reason), "{input:?}: {why}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{input:?}")) && message.contains(reason),
            "{message}"
        );
    }
}

#[test]
fn platform_matching() {
    let mut candidate = Platform::new("linux", "arm64");
    candidate.variant = Some("v8".into());
    candidate.os_version = Some("1".into());
    assert!(Platform::parse("linux/arm64").unwrap().matches(&candidate));
    assert!(
        Platform::parse("linux/arm64/v8")
            .unwrap()
            .matches(&candidate)
    );
    assert!(
        !Platform::parse("linux/arm64/v9")
            .unwrap()
            .matches(&candidate)
    );
    assert!(!Platform::parse("linux/amd64").unwrap().matches(&candidate));
    assert!(
        !Platform::parse("windows/arm64")
            .unwrap()
            .matches(&candidate)
    );
    let mut wanted = Platform::new("linux", "arm64");
    wanted.os_version = Some("2".into());
    assert!(!wanted.matches(&candidate));
    wanted.os_version = Some("1".into());
    assert!(wanted.matches(&candidate));
    assert!(
        !Platform::parse("linux/arm64/v8")
            .unwrap()
            .matches(&Platform::new("linux", "arm64"))
    );
}

#[test]
fn platform_json_names() {
    let json = json!({"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.3532", "os.features": ["win32k"], "variant": "v2"});
    let p: Platform = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(p.os_version.as_deref(), Some("10.0.17763.3532"));
    assert_eq!(p.os_features, ["win32k"]);
    assert_eq!(serde_json::to_value(&p).unwrap(), json);
    assert!(serde_json::from_value::<Platform>(json!({"os": "linux"})).is_err());
}
