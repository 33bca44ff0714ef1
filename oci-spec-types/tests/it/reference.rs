//! `Reference` and `ReferenceError`.

use oci_spec_types::{Digest, DigestError, MAX_NAME_LEN, MAX_TAG_LEN, Reference, ReferenceError};
use proptest::prelude::*;

const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// An input and the parts it must parse into: registry, repository, tag, digest.
type Case<'a> = (
    String,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a Digest>,
);

#[test]
fn valid_references() {
    let digest = Digest::parse(D).unwrap();
    let cases: Vec<Case<'_>> = vec![
        ("localhost/a".into(), "localhost", "a", None, None),
        (
            "localhost:5000/hello/world:v1".into(),
            "localhost:5000",
            "hello/world",
            Some("v1"),
            None,
        ),
        (
            format!("example.azurecr.io/team/app@{D}"),
            "example.azurecr.io",
            "team/app",
            None,
            Some(&digest),
        ),
        (
            format!("example.azurecr.io/app:1.0@{D}"),
            "example.azurecr.io",
            "app",
            Some("1.0"),
            Some(&digest),
        ),
        (
            "127.0.0.1:5000/a_b/c__d/e---f/g.h:_x".into(),
            "127.0.0.1:5000",
            "a_b/c__d/e---f/g.h",
            Some("_x"),
            None,
        ),
        (
            "[::1]:5000/repo:latest".into(),
            "[::1]:5000",
            "repo",
            Some("latest"),
            None,
        ),
        (
            "[2001:db8::1]/repo".into(),
            "[2001:db8::1]",
            "repo",
            None,
            None,
        ),
        (
            "[::ffff:192.0.2.1]:443/r".into(),
            "[::ffff:192.0.2.1]:443",
            "r",
            None,
            None,
        ),
        // The registry is always the part before the first `/`, ORAS-style: no docker.io default.
        (
            "library/alpine:3.20".into(),
            "library",
            "alpine",
            Some("3.20"),
            None,
        ),
        (
            "docker.io/library/alpine".into(),
            "docker.io",
            "library/alpine",
            None,
            None,
        ),
        ("Example.COM:0/x".into(), "Example.COM:0", "x", None, None),
        ("r/a:A-Z.0_9".into(), "r", "a", Some("A-Z.0_9"), None),
    ];
    for (input, registry, repository, tag, digest) in cases {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest(), digest, "{input}");
        assert_eq!(r.to_string(), input);
        assert_eq!(format!("{r:?}"), format!("Reference({input})"));
        assert_eq!(input.parse::<Reference>().as_ref(), Ok(&r));
        assert_eq!(r.target(), digest.map(Digest::as_str).or(tag));
    }
}

#[test]
fn builders() {
    let repo = Reference::new("localhost:5000", "a/b").unwrap();
    assert_eq!(repo.to_string(), "localhost:5000/a/b");
    assert_eq!(repo.target(), None);
    let tagged = repo.with_tag("v1").unwrap();
    assert_eq!(tagged.to_string(), "localhost:5000/a/b:v1");
    let digest = Digest::parse(D).unwrap();
    let pinned = tagged.with_digest(digest.clone());
    assert_eq!(pinned.to_string(), format!("localhost:5000/a/b@{D}"));
    assert_eq!(pinned.tag(), None);
    assert_eq!(pinned.target(), Some(D));
    let both = Reference::parse(&format!("localhost:5000/a/b:v1@{D}")).unwrap();
    assert_eq!(both.target(), Some(D), "the digest wins");
    assert_eq!(both.with_tag("v2").unwrap().digest(), None);
    assert_eq!(both.repository_only(), repo);
    assert!(matches!(
        repo.with_tag(".bad"),
        Err(ReferenceError::InvalidTag { .. })
    ));
    assert!(matches!(
        Reference::new("bad host", "a"),
        Err(ReferenceError::InvalidRegistry { .. })
    ));
    assert!(matches!(
        Reference::new("localhost", "A"),
        Err(ReferenceError::InvalidRepository { .. })
    ));
    assert!(matches!(
        Reference::new("localhost", "a:b"),
        Err(ReferenceError::InvalidRepository { .. })
    ));
    let long = "a".repeat(MAX_NAME_LEN);
    assert!(matches!(
        Reference::new("localhost", &long),
        Err(ReferenceError::NameTooLong { length }) if length == MAX_NAME_LEN + 10
    ));
}

#[test]
fn serde_as_a_string() {
    let r = Reference::parse(&format!("localhost:5000/a:v1@{D}")).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, format!("\"localhost:5000/a:v1@{D}\""));
    assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    let err = serde_json::from_str::<Reference>("\"alpine\"").unwrap_err();
    assert!(err.to_string().contains("missing registry"), "{err}");
}

/// The variant name of an error, to compare kinds.
fn kind(e: &ReferenceError) -> &'static str {
    match e {
        ReferenceError::Empty => "Empty",
        ReferenceError::MissingRegistry { .. } => "MissingRegistry",
        ReferenceError::MissingRepository { .. } => "MissingRepository",
        ReferenceError::InvalidRegistry { .. } => "InvalidRegistry",
        ReferenceError::InvalidRepository { .. } => "InvalidRepository",
        ReferenceError::InvalidTag { .. } => "InvalidTag",
        ReferenceError::InvalidDigest(_) => "InvalidDigest",
        ReferenceError::NameTooLong { .. } => "NameTooLong",
        _ => "unknown",
    }
}

#[test]
fn every_reference_error() {
    let long_repo = "a".repeat(MAX_NAME_LEN - "localhost/".len() + 1);
    let long_tag = "t".repeat(MAX_TAG_LEN + 1);
    // (input, variant, the part it names, words of the reason)
    let cases: Vec<(String, &str, &str, &str)> = vec![
        ("".into(), "Empty", "", "empty reference"),
        (
            "alpine:3.20".into(),
            "MissingRegistry",
            "\"alpine:3.20\"",
            "localhost:5000/alpine:3.20",
        ),
        (
            "alpine".into(),
            "MissingRegistry",
            "\"alpine\"",
            "no default registry",
        ),
        (
            "localhost:5000".into(),
            "MissingRepository",
            "\"localhost:5000\"",
            "localhost:5000/repository",
        ),
        (
            "myregistry.azurecr.io".into(),
            "MissingRepository",
            "\"myregistry.azurecr.io\"",
            "no repository",
        ),
        (
            "/repo".into(),
            "InvalidRegistry",
            "\"\"",
            "registry host is empty",
        ),
        (
            ":5000/repo".into(),
            "InvalidRegistry",
            "\":5000\"",
            "host before `:` is empty",
        ),
        (
            "local host/repo".into(),
            "InvalidRegistry",
            "\"local host\"",
            "only letters, digits",
        ),
        (
            "a..b/repo".into(),
            "InvalidRegistry",
            "\"a..b\"",
            "empty part between dots",
        ),
        (
            ".a/repo".into(),
            "InvalidRegistry",
            "\".a\"",
            "empty part between dots",
        ),
        (
            "-a.com/repo".into(),
            "InvalidRegistry",
            "\"-a.com\"",
            "start or end with `-`",
        ),
        (
            "a-.com/repo".into(),
            "InvalidRegistry",
            "\"a-.com\"",
            "start or end with `-`",
        ),
        (
            "host:/repo".into(),
            "InvalidRegistry",
            "\"host:\"",
            "port after `:` is empty",
        ),
        (
            "host:abc/repo".into(),
            "InvalidRegistry",
            "\"host:abc\"",
            "digits only",
        ),
        (
            "host:1:2/repo".into(),
            "InvalidRegistry",
            "\"host:1:2\"",
            "digits only",
        ),
        (
            "host:65536/repo".into(),
            "InvalidRegistry",
            "\"host:65536\"",
            "0 to 65535",
        ),
        (
            "[::1/repo".into(),
            "InvalidRegistry",
            "\"[::1\"",
            "closing `]`",
        ),
        (
            "[::g]/repo".into(),
            "InvalidRegistry",
            "\"[::g]\"",
            "not an IPv6 address",
        ),
        (
            "[]/repo".into(),
            "InvalidRegistry",
            "\"[]\"",
            "not an IPv6 address",
        ),
        (
            "[::1]x/repo".into(),
            "InvalidRegistry",
            "\"[::1]x\"",
            "only `:port` may follow",
        ),
        (
            "[::1]:/repo".into(),
            "InvalidRegistry",
            "\"[::1]:\"",
            "port after `:` is empty",
        ),
        (
            "::1/repo".into(),
            "InvalidRegistry",
            "\"::1\"",
            "host before `:` is empty",
        ),
        (
            "a[::1]/repo".into(),
            "InvalidRegistry",
            "\"a[::1]\"",
            "in brackets",
        ),
        (
            "host/".into(),
            "InvalidRepository",
            "\"\"",
            "repository is empty",
        ),
        (
            "host/:v1".into(),
            "InvalidRepository",
            "\"\"",
            "repository is empty",
        ),
        (
            "host/a//b".into(),
            "InvalidRepository",
            "\"a//b\"",
            "path component is empty",
        ),
        (
            "host/a/".into(),
            "InvalidRepository",
            "\"a/\"",
            "path component is empty",
        ),
        (
            "host/Alpine".into(),
            "InvalidRepository",
            "\"Alpine\"",
            "lower case",
        ),
        (
            "host/a b".into(),
            "InvalidRepository",
            "\"a b\"",
            "only lower-case letters",
        ),
        (
            "host/-a".into(),
            "InvalidRepository",
            "\"-a\"",
            "start and end with a letter or digit",
        ),
        (
            "host/a.".into(),
            "InvalidRepository",
            "\"a.\"",
            "start and end with a letter or digit",
        ),
        (
            "host/a..b".into(),
            "InvalidRepository",
            "\"a..b\"",
            "separators are",
        ),
        (
            "host/a___b".into(),
            "InvalidRepository",
            "\"a___b\"",
            "separators are",
        ),
        (
            "host/a._b".into(),
            "InvalidRepository",
            "\"a._b\"",
            "separators are",
        ),
        ("host/a:".into(), "InvalidTag", "\"\"", "tag is empty"),
        (
            "host/a:.v1".into(),
            "InvalidTag",
            "\".v1\"",
            "must start with",
        ),
        (
            "host/a:-v1".into(),
            "InvalidTag",
            "\"-v1\"",
            "must start with",
        ),
        (
            "host/a:v1/b".into(),
            "InvalidTag",
            "\"v1/b\"",
            "only letters, digits",
        ),
        (
            "host/a:v:1".into(),
            "InvalidTag",
            "\"v:1\"",
            "only letters, digits",
        ),
        (
            "host/a:vé".into(),
            "InvalidTag",
            "\"vé\"",
            "only letters, digits",
        ),
        (
            format!("host/a:{long_tag}"),
            "InvalidTag",
            "\"ttt",
            "at most 128",
        ),
        (
            "host/a@".into(),
            "InvalidDigest",
            "empty digest",
            "invalid digest in reference",
        ),
        (
            "host/a@v1".into(),
            "InvalidDigest",
            "\"v1\"",
            "write `:tag` instead of `@`",
        ),
        (
            "host/a@sha256:abc".into(),
            "InvalidDigest",
            "found 3",
            "invalid digest in reference",
        ),
        (
            format!("host/a@{D}@x"),
            "InvalidDigest",
            "@x",
            "invalid digest encoding",
        ),
        (
            format!("localhost/{long_repo}"),
            "NameTooLong",
            "256",
            "at most 255",
        ),
    ];
    for (input, variant, part, reason) in cases {
        let err = Reference::parse(&input).unwrap_err();
        assert_eq!(kind(&err), variant, "{input:?}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(part),
            "{input:?}: {message} should name {part}"
        );
        assert!(
            message.contains(reason),
            "{input:?}: {message} should say {reason}"
        );
        let source = std::error::Error::source(&err);
        assert_eq!(source.is_some(), variant == "InvalidDigest", "{input:?}");
    }
    let err = Reference::parse("host/a@sha256:abc").unwrap_err();
    assert!(matches!(
        err,
        ReferenceError::InvalidDigest(DigestError::WrongLength { found: 3, .. })
    ));
}

#[test]
fn length_limits_are_inclusive() {
    let repo = "a".repeat(MAX_NAME_LEN - "localhost/".len());
    let r = Reference::parse(&format!("localhost/{repo}")).unwrap();
    assert_eq!(r.registry().len() + 1 + r.repository().len(), MAX_NAME_LEN);
    let tag = "t".repeat(MAX_TAG_LEN);
    assert_eq!(
        Reference::parse(&format!("h/a:{tag}")).unwrap().tag(),
        Some(tag.as_str())
    );
}

/// A registry: a dotted host name, `localhost`, an IPv4 or IPv6 address; optional port.
fn registry() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?){0,3}",
        Just("localhost".to_owned()),
        any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
    ];
    (host, prop::option::of(any::<u16>())).prop_map(|(host, port)| match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

fn repository() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}", 1..4)
        .prop_map(|components| components.join("/"))
}

fn tag() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}"
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}")),
        "[0-9a-f]{128}".prop_map(|hex| format!("sha512:{hex}")),
        "[a-z0-9]{1,6}(\\+[a-z0-9]{1,6})?:[a-zA-Z0-9=_-]{1,40}",
    ]
}

proptest! {
    #![proptest_config(crate::proptest_config(512))]

    #[test]
    fn generated_references_round_trip(
        registry in registry(),
        repository in repository(),
        tag in prop::option::of(tag()),
        digest in prop::option::of(digest()),
    ) {
        prop_assume!(registry.len() + 1 + repository.len() <= MAX_NAME_LEN);
        let mut input = format!("{registry}/{repository}");
        if let Some(tag) = &tag {
            input = format!("{input}:{tag}");
        }
        if let Some(digest) = &digest {
            input = format!("{input}@{digest}");
        }
        let r = Reference::parse(&input).map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
        prop_assert_eq!(r.registry(), registry.as_str());
        prop_assert_eq!(r.repository(), repository.as_str());
        prop_assert_eq!(r.tag(), tag.as_deref());
        prop_assert_eq!(r.digest().map(Digest::as_str), digest.as_deref());
        prop_assert_eq!(r.to_string(), input.clone());
        prop_assert_eq!(Reference::parse(&r.to_string()), Ok(r.clone()));
        let rebuilt = Reference::new(&registry, &repository).unwrap();
        prop_assert_eq!(rebuilt, r.repository_only());
    }

    #[test]
    fn any_string_parses_or_errs_without_panic(input in any::<String>()) {
        if let Ok(r) = Reference::parse(&input) {
            prop_assert_eq!(r.to_string(), input);
        }
    }

    #[test]
    fn reference_like_strings_never_panic(input in "[a-zA-Z0-9./:@_\\[\\]-]{0,80}") {
        match Reference::parse(&input) {
            Ok(r) => prop_assert_eq!(r.to_string(), input),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
