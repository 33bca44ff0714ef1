//! `Digest`, `DigestError` and `Digester`.

use std::io::Write;

use oci_spec_types::{Algorithm, Digest, DigestError, Digester};
use proptest::prelude::*;

const SHA256_ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const SHA512_ABC: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
const SHA256_EMPTY: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn known_vectors() {
    assert_eq!(Digest::sha256_of(b"abc").as_str(), SHA256_ABC);
    assert_eq!(Digest::sha512_of(b"abc").as_str(), SHA512_ABC);
    assert_eq!(Digest::sha256_of(b"").as_str(), SHA256_EMPTY);
    assert_eq!(
        Digest::compute(Algorithm::Sha256, b"abc").as_str(),
        SHA256_ABC
    );
    assert_eq!(
        Digest::compute(Algorithm::Sha512, b"abc").as_str(),
        SHA512_ABC
    );
    assert_eq!(
        Digest::sha256_of(b"{}").as_str(),
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
}

#[test]
fn spec_examples_parse() {
    // image-spec descriptor.md: registered, and unregistered but grammatical.
    for (input, algorithm, registered) in [
        (
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
            "sha256",
            Some(Algorithm::Sha256),
        ),
        (SHA512_ABC, "sha512", Some(Algorithm::Sha512)),
        (
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
            "multihash+base58",
            None,
        ),
        (
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
            "sha256+b64u",
            None,
        ),
        ("a.b_c-d+e:A=_-z9", "a.b_c-d+e", None),
    ] {
        let d = Digest::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(d.as_str(), input);
        assert_eq!(d.to_string(), input);
        assert_eq!(d.algorithm_str(), algorithm);
        assert_eq!(d.algorithm(), registered);
        assert_eq!(d.encoded(), &input[algorithm.len() + 1..]);
        assert_eq!(input.parse::<Digest>().as_ref(), Ok(&d));
        assert_eq!(AsRef::<str>::as_ref(&d), input);
    }
}

#[test]
fn every_digest_error() {
    let hex64 = "a".repeat(64);
    let cases: Vec<(String, DigestError, &str)> = vec![
        ("".into(), DigestError::Empty, "empty digest"),
        (
            "sha256".into(),
            DigestError::MissingColon {
                input: "sha256".into(),
            },
            "missing `:`",
        ),
        (
            format!("SHA256:{hex64}"),
            DigestError::InvalidAlgorithm {
                algorithm: "SHA256".into(),
            },
            "\"SHA256\"",
        ),
        (
            format!("sha256+:{hex64}"),
            DigestError::InvalidAlgorithm {
                algorithm: "sha256+".into(),
            },
            "\"sha256+\"",
        ),
        (
            format!(":{hex64}"),
            DigestError::InvalidAlgorithm {
                algorithm: String::new(),
            },
            "algorithm before `:` is empty",
        ),
        (
            "sha256:".into(),
            DigestError::InvalidEncoded {
                encoded: String::new(),
            },
            "nothing after `:`",
        ),
        (
            "sha256:ab/cd".into(),
            DigestError::InvalidEncoded {
                encoded: "ab/cd".into(),
            },
            "\"ab/cd\"",
        ),
        (
            format!("sha256:{hex64}:x"),
            DigestError::InvalidEncoded {
                encoded: format!("{hex64}:x"),
            },
            "only letters, digits",
        ),
        (
            "sha256:abc".into(),
            DigestError::WrongLength {
                algorithm: Algorithm::Sha256,
                found: 3,
            },
            "64 hex characters expected, found 3",
        ),
        (
            format!("sha512:{hex64}"),
            DigestError::WrongLength {
                algorithm: Algorithm::Sha512,
                found: 64,
            },
            "128 hex characters expected, found 64",
        ),
        (
            format!("sha256:{}", "A".repeat(64)),
            DigestError::NotLowerHex {
                algorithm: Algorithm::Sha256,
                encoded: "A".repeat(64),
            },
            "lower-case hex",
        ),
        (
            format!("sha512:{}g", "0".repeat(127)),
            DigestError::NotLowerHex {
                algorithm: Algorithm::Sha512,
                encoded: format!("{}g", "0".repeat(127)),
            },
            "invalid sha512 digest",
        ),
    ];
    for (input, expected, in_message) in cases {
        let err = Digest::parse(&input).unwrap_err();
        assert_eq!(err, expected, "{input:?}");
        let message = err.to_string();
        assert!(message.contains(in_message), "{input:?}: {message}");
        // The error is a std error with no source.
        assert!(std::error::Error::source(&err).is_none());
    }
}

#[test]
fn serde_as_a_string() {
    let d = Digest::sha256_of(b"abc");
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, format!("\"{SHA256_ABC}\""));
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    // Escapes are decoded before validation.
    let escaped = json.replace("sha256:", "sha256\\u003a");
    assert_eq!(serde_json::from_str::<Digest>(&escaped).unwrap(), d);
    let err = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
    assert!(err.to_string().contains("found 3"), "{err}");
    assert!(serde_json::from_str::<Digest>("42").is_err());
}

#[test]
fn matches_and_digester_verify_content() {
    let d = Digest::sha256_of(b"abc");
    assert!(d.matches(b"abc"));
    assert!(!d.matches(b"abd"));
    let d512 = Digest::sha512_of(b"abc");
    assert!(d512.matches(b"abc"));
    let mut digester = d512.digester().unwrap();
    assert_eq!(digester.algorithm(), Algorithm::Sha512);
    digester.update(b"ab");
    digester.update(b"c");
    assert_eq!(digester.finalize(), d512);
}

#[test]
fn digester_is_an_io_writer() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let mut digester = Digester::new(algorithm);
        let copied = std::io::copy(&mut &data[..], &mut digester).unwrap();
        assert_eq!(copied, data.len() as u64);
        assert_eq!(digester.write(b"").unwrap(), 0);
        digester.flush().unwrap();
        assert_eq!(digester.bytes_hashed(), data.len() as u64);
        assert_eq!(digester.finalize(), Digest::compute(algorithm, &data));
    }
    let mut digester = Digester::default();
    assert_eq!(digester.algorithm(), Algorithm::Sha256);
    let middle = 'b';
    write!(digester, "a{middle}c").unwrap();
    assert_eq!(
        format!("{digester:?}"),
        "Digester { algorithm: Sha256, bytes_hashed: 3 }"
    );
    // A clone continues independently.
    let mut copy = digester.clone();
    copy.update(b"d");
    assert_eq!(digester.finalize().as_str(), SHA256_ABC);
    assert_eq!(copy.finalize(), Digest::sha256_of(b"abcd"));
}

#[test]
fn ordering_and_hashing_follow_the_text() {
    let a = Digest::parse("a:1").unwrap();
    let b = Digest::parse("b:0").unwrap();
    assert!(a < b);
    let set: std::collections::HashSet<Digest> = [a.clone(), a.clone(), b].into_iter().collect();
    assert_eq!(set.len(), 2);
}

/// A valid digest: registered with lower hex of the right length, or any grammatical one.
fn valid_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}")),
        "[0-9a-f]{128}".prop_map(|hex| format!("sha512:{hex}")),
        (
            "[a-z0-9]{1,8}([+._-][a-z0-9]{1,8}){0,3}",
            "[a-zA-Z0-9=_-]{1,80}"
        )
            .prop_map(|(alg, enc)| format!("{alg}:{enc}")),
    ]
}

/// A mutation of a valid sha256 digest, and the error kind it must produce.
#[derive(Debug, Clone)]
enum Mutation {
    UpperHex(usize, char),
    NonHexLetter(usize, char),
    OutsideGrammar(usize, char),
    Truncate(usize),
    Extend(String),
    DropColon,
    UpperAlgorithm(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..64usize, prop::char::range('A', 'F')).prop_map(|(i, c)| Mutation::UpperHex(i, c)),
        (
            0..64usize,
            prop::sample::select(('g'..='z').chain('G'..='Z').collect::<Vec<_>>())
        )
            .prop_map(|(i, c)| Mutation::NonHexLetter(i, c)),
        (
            0..64usize,
            prop::sample::select("!@#$%^&*()/\\ :;.,+~é\n\0".chars().collect::<Vec<_>>())
        )
            .prop_map(|(i, c)| Mutation::OutsideGrammar(i, c)),
        (1..64usize).prop_map(Mutation::Truncate),
        "[0-9a-f]{1,70}".prop_map(Mutation::Extend),
        Just(Mutation::DropColon),
        prop::sample::select(vec![0usize, 1, 2]).prop_map(Mutation::UpperAlgorithm),
    ]
}

fn replace_at(s: &str, i: usize, c: char) -> String {
    s.chars()
        .enumerate()
        .map(|(j, old)| if j == i { c } else { old })
        .collect()
}

proptest! {
    #![proptest_config(crate::proptest_config(512))]

    #[test]
    fn valid_digests_round_trip(input in valid_digest()) {
        let d = Digest::parse(&input).unwrap();
        prop_assert_eq!(d.to_string(), input.clone());
        prop_assert_eq!(Digest::parse(d.as_str()), Ok(d.clone()));
        let json = serde_json::to_string(&d).unwrap();
        prop_assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn any_string_parses_or_errs_without_panic(input in any::<String>()) {
        if let Ok(d) = Digest::parse(&input) {
            prop_assert_eq!(d.as_str(), input.as_str());
            prop_assert!(d.short().len() <= 12);
        }
    }

    #[test]
    fn digest_like_strings_never_panic(input in "[a-zA-Z0-9+._:=/-]{0,140}") {
        let _ = Digest::parse(&input);
    }

    #[test]
    fn mutated_digests_get_the_right_error(hex in "[0-9a-f]{64}", m in mutation()) {
        let valid = format!("sha256:{hex}");
        let (input, expected_kind) = match &m {
            Mutation::UpperHex(i, c) => (format!("sha256:{}", replace_at(&hex, *i, *c)), "NotLowerHex"),
            Mutation::NonHexLetter(i, c) => (format!("sha256:{}", replace_at(&hex, *i, *c)), "NotLowerHex"),
            Mutation::OutsideGrammar(i, c) => (format!("sha256:{}", replace_at(&hex, *i, *c)), "InvalidEncoded"),
            Mutation::Truncate(n) => (valid[..valid.len() - n].to_owned(), "WrongLength"),
            Mutation::Extend(more) => (format!("{valid}{more}"), "WrongLength"),
            Mutation::DropColon => (valid.replacen(':', "", 1), "MissingColon"),
            Mutation::UpperAlgorithm(i) => (replace_at(&valid, *i, valid.as_bytes()[*i].to_ascii_uppercase() as char), "InvalidAlgorithm"),
        };
        let err = Digest::parse(&input).unwrap_err();
        let kind = match &err {
            DigestError::Empty => "Empty",
            DigestError::MissingColon { .. } => "MissingColon",
            DigestError::InvalidAlgorithm { .. } => "InvalidAlgorithm",
            DigestError::InvalidEncoded { .. } => "InvalidEncoded",
            DigestError::WrongLength { found, .. } => {
                prop_assert_eq!(*found, input.len() - "sha256:".len());
                "WrongLength"
            }
            DigestError::NotLowerHex { .. } => "NotLowerHex",
            _ => "unknown",
        };
        prop_assert_eq!(kind, expected_kind, "{:?} -> {:?}: {}", m, input, err);
    }

    #[test]
    fn incremental_hashing_equals_one_shot(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        sha512 in any::<bool>(),
    ) {
        let algorithm = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut digester = Digester::new(algorithm);
        let mut start = 0;
        for point in points.into_iter().chain([data.len()]) {
            digester.update(&data[start..point]);
            start = point;
        }
        prop_assert_eq!(digester.bytes_hashed(), data.len() as u64);
        let expected = match algorithm {
            Algorithm::Sha512 => Digest::sha512_of(&data),
            _ => Digest::sha256_of(&data),
        };
        prop_assert_eq!(digester.finalize(), expected.clone());
        prop_assert!(expected.matches(&data));
    }
}
