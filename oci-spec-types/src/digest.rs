//! Content digests (`algorithm:encoded`), validated per the OCI image spec.

use std::fmt;
use std::io;
use std::str::FromStr;

use sha2::Digest as _;

/// A validated content digest such as `sha256:2c26b46b…`.
///
/// The OCI grammar is `algorithm ":" encoded` where
/// `algorithm = component (separator component)*`, `component = [a-z0-9]+`,
/// `separator = [+._-]` and `encoded = [a-zA-Z0-9=_-]+`. The registered algorithms are checked
/// more strictly: `sha256` needs 64 and `sha512` 128 lower-case hex characters.
///
/// ```
/// use oci_spec_types::Digest;
/// let d = Digest::sha256_of(b"hello");
/// assert_eq!(d.to_string(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
/// let parsed: Digest = d.to_string().parse()?;
/// assert_eq!(parsed, d);
/// # Ok::<(), oci_spec_types::DigestError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The whole `algorithm:encoded` string; `colon` is the index of the separator.
    text: String,
    colon: usize,
}

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `sha256`, the default and the only one every registry supports.
    Sha256,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in a digest.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// The length of the hex encoding of this algorithm's output.
    pub fn encoded_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// What was wrong with a digest string.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    /// The string was empty.
    Empty,
    /// No `:` between algorithm and encoded part.
    MissingColon {
        /// The input.
        input: String,
    },
    /// The algorithm part (before the first `:`) is empty or does not match
    /// `[a-z0-9]+([+._-][a-z0-9]+)*`.
    InvalidAlgorithm {
        /// The algorithm part.
        algorithm: String,
    },
    /// The encoded part (after the first `:`) is empty or has characters outside
    /// `[a-zA-Z0-9=_-]` (a second `:` lands here too).
    InvalidEncoded {
        /// The encoded part.
        encoded: String,
    },
    /// A registered algorithm with an encoded part of the wrong length.
    WrongLength {
        /// The algorithm.
        algorithm: Algorithm,
        /// How many characters the encoded part had.
        found: usize,
    },
    /// A registered algorithm whose encoded part is not lower-case hex.
    NotLowerHex {
        /// The algorithm.
        algorithm: Algorithm,
        /// The encoded part.
        encoded: String,
    },
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty digest: expected `sha256:<64 hex characters>`"),
            Self::MissingColon { input } => write!(
                f,
                "invalid digest {input:?}: missing `:` between algorithm and hex, expected `sha256:<64 hex characters>`"
            ),
            Self::InvalidAlgorithm { algorithm } if algorithm.is_empty() => write!(
                f,
                "invalid digest: the algorithm before `:` is empty, expected `sha256:<64 hex characters>`"
            ),
            Self::InvalidAlgorithm { algorithm } => write!(
                f,
                "invalid digest algorithm {algorithm:?}: use lower-case letters and digits, optionally joined by single `+`, `.`, `_` or `-`, such as `sha256`"
            ),
            Self::InvalidEncoded { encoded } if encoded.is_empty() => write!(
                f,
                "invalid digest: nothing after `:`, expected `sha256:<64 hex characters>`"
            ),
            Self::InvalidEncoded { encoded } => write!(
                f,
                "invalid digest encoding {encoded:?}: only letters, digits, `=`, `_` and `-` are allowed"
            ),
            Self::WrongLength { algorithm, found } => write!(
                f,
                "invalid {} digest: {} hex characters expected, found {found}",
                algorithm.as_str(),
                algorithm.encoded_len()
            ),
            Self::NotLowerHex { algorithm, encoded } => write!(
                f,
                "invalid {} digest {encoded:?}: only lower-case hex (0-9, a-f) is allowed",
                algorithm.as_str()
            ),
        }
    }
}

impl std::error::Error for DigestError {}

impl Digest {
    /// Parses and validates a digest string.
    ///
    /// The checks run left to right, so the error names the first bad part: an empty input,
    /// a missing `:`, the algorithm, the encoded part's characters, then (for `sha256` and
    /// `sha512`) its length and its lower-case hex.
    ///
    /// ```
    /// use oci_spec_types::{Algorithm, Digest, DigestError};
    /// assert!(Digest::parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").is_ok());
    /// assert_eq!(
    ///     Digest::parse("sha256:abc"),
    ///     Err(DigestError::WrongLength { algorithm: Algorithm::Sha256, found: 3 })
    /// );
    /// ```
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        if input.is_empty() {
            return Err(DigestError::Empty);
        }
        let Some(colon) = input.find(':') else {
            return Err(DigestError::MissingColon {
                input: input.to_owned(),
            });
        };
        let (algorithm, encoded) = (&input[..colon], &input[colon + 1..]);
        if !valid_algorithm(algorithm) {
            return Err(DigestError::InvalidAlgorithm {
                algorithm: algorithm.to_owned(),
            });
        }
        if encoded.is_empty()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(DigestError::InvalidEncoded {
                encoded: encoded.to_owned(),
            });
        }
        if let Some(alg) = registered(algorithm) {
            if encoded.len() != alg.encoded_len() {
                return Err(DigestError::WrongLength {
                    algorithm: alg,
                    found: encoded.len(),
                });
            }
            if !encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(DigestError::NotLowerHex {
                    algorithm: alg,
                    encoded: encoded.to_owned(),
                });
            }
        }
        Ok(Self {
            text: input.to_owned(),
            colon,
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::from_hash(Algorithm::Sha256, &sha2::Sha256::digest(bytes))
    }

    /// The SHA-512 digest of `bytes`.
    pub fn sha512_of(bytes: &[u8]) -> Self {
        Self::from_hash(Algorithm::Sha512, &sha2::Sha512::digest(bytes))
    }

    /// The digest of `bytes` with the given algorithm.
    pub fn compute(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut digester = Digester::new(algorithm);
        digester.update(bytes);
        digester.finalize()
    }

    fn from_hash(algorithm: Algorithm, hash: &[u8]) -> Self {
        let name = algorithm.as_str();
        let mut text = String::with_capacity(name.len() + 1 + hash.len() * 2);
        text.push_str(name);
        text.push(':');
        for byte in hash {
            text.push(HEX[usize::from(byte >> 4)] as char);
            text.push(HEX[usize::from(byte & 0xf)] as char);
        }
        Self {
            text,
            colon: name.len(),
        }
    }

    /// The algorithm part, such as `sha256`.
    pub fn algorithm_str(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The algorithm, when it is one this crate can compute.
    pub fn algorithm(&self) -> Option<Algorithm> {
        registered(self.algorithm_str())
    }

    /// The encoded part (the hex for sha256 and sha512).
    pub fn encoded(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The whole digest as a string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A short form for humans: the first 12 characters of the encoded part.
    pub fn short(&self) -> &str {
        let encoded = self.encoded();
        &encoded[..encoded.len().min(12)]
    }

    /// A digester for this digest's algorithm, to verify content while it streams.
    /// `None` when the algorithm is not one this crate can compute.
    pub fn digester(&self) -> Option<Digester> {
        self.algorithm().map(Digester::new)
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.algorithm()
            .is_some_and(|alg| Self::compute(alg, bytes) == *self)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn registered(algorithm: &str) -> Option<Algorithm> {
    match algorithm {
        "sha256" => Some(Algorithm::Sha256),
        "sha512" => Some(Algorithm::Sha512),
        _ => None,
    }
}

fn valid_algorithm(algorithm: &str) -> bool {
    // component (separator component)*: non-empty components between single separators.
    !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher that produces a [`Digest`], for hashing content while it streams.
///
/// It implements [`std::io::Write`], so it can sit in a `std::io::copy` or a tee.
///
/// ```
/// use oci_spec_types::{Algorithm, Digest, Digester};
/// let mut digester = Digester::new(Algorithm::Sha256);
/// digester.update(b"hel");
/// std::io::Write::write_all(&mut digester, b"lo")?;
/// assert_eq!(digester.bytes_hashed(), 5);
/// assert_eq!(digester.finalize(), Digest::sha256_of(b"hello"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Digester {
    state: HashState,
    len: u64,
}

#[derive(Clone)]
enum HashState {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A fresh digester for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => HashState::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => HashState::Sha512(sha2::Sha512::new()),
        };
        Self { state, len: 0 }
    }

    /// The algorithm this digester computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            HashState::Sha256(_) => Algorithm::Sha256,
            HashState::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds more content.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len = self.len.saturating_add(bytes.len() as u64);
        match &mut self.state {
            HashState::Sha256(h) => h.update(bytes),
            HashState::Sha512(h) => h.update(bytes),
        }
    }

    /// How many bytes were fed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.len
    }

    /// The digest of everything fed.
    pub fn finalize(self) -> Digest {
        match self.state {
            HashState::Sha256(h) => Digest::from_hash(Algorithm::Sha256, &h.finalize()),
            HashState::Sha512(h) => Digest::from_hash(Algorithm::Sha512, &h.finalize()),
        }
    }
}

impl Default for Digester {
    fn default() -> Self {
        Self::new(Algorithm::Sha256)
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("algorithm", &self.algorithm())
            .field("bytes_hashed", &self.len)
            .finish()
    }
}

impl io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_grammar() {
        for ok in [
            "sha256",
            "a",
            "0",
            "sha256+b64u",
            "multihash+base58",
            "a.b_c-d+e",
        ] {
            assert!(valid_algorithm(ok), "{ok}");
        }
        for bad in [
            "", "SHA256", "sha256+", "+sha256", "a..b", "a+-b", "a b", "sha-", "é",
        ] {
            assert!(!valid_algorithm(bad), "{bad}");
        }
    }

    #[test]
    fn registered_names() {
        assert_eq!(registered("sha256"), Some(Algorithm::Sha256));
        assert_eq!(registered("sha512"), Some(Algorithm::Sha512));
        assert_eq!(registered("sha384"), None);
        assert_eq!(registered("SHA256"), None);
        assert_eq!(Algorithm::Sha256.as_str(), "sha256");
        assert_eq!(Algorithm::Sha512.encoded_len(), 128);
    }

    #[test]
    fn hex_encoding_is_lower_case() {
        let d = Digest::from_hash(Algorithm::Sha256, &[0x00, 0x0f, 0xa5, 0xff]);
        assert_eq!(d.as_str(), "sha256:000fa5ff");
        assert_eq!(d.colon, 6);
    }

    #[test]
    fn accessors() {
        let d = Digest::sha256_of(b"");
        assert_eq!(d.algorithm_str(), "sha256");
        assert_eq!(d.algorithm(), Some(Algorithm::Sha256));
        assert_eq!(
            d.encoded(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(format!("{d:?}"), format!("Digest({d})"));
        let other = Digest::parse("x:y").unwrap();
        assert_eq!(other.short(), "y");
        assert_eq!(other.algorithm(), None);
        assert!(other.digester().is_none());
        assert!(!other.matches(b""));
    }

    #[test]
    fn empty_part_messages_say_what_is_missing() {
        let e = Digest::parse(":abc").unwrap_err();
        assert!(
            e.to_string().contains("algorithm before `:` is empty"),
            "{e}"
        );
        let e = Digest::parse("sha256:").unwrap_err();
        assert!(e.to_string().contains("nothing after `:`"), "{e}");
    }

    #[test]
    fn byte_count_saturates() {
        let mut d = Digester::new(Algorithm::Sha256);
        d.len = u64::MAX - 1;
        d.update(b"abc");
        assert_eq!(d.bytes_hashed(), u64::MAX);
    }
}
