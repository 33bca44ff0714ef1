//! Standard base64 (RFC 4648 with padding), for the `data` field of descriptors.
//! Small enough to write here rather than add a dependency to the lowest crate.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` as padded standard base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why a string is not padded standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The length is not a multiple of 4.
    Length(usize),
    /// A byte outside the alphabet (and not trailing padding), at this offset.
    Character(usize),
    /// `=` other than one or two at the very end.
    Padding,
    /// Bits set that the padding drops: a second spelling of the same bytes.
    NonCanonical,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length(n) => write!(
                f,
                "its length {n} is not a multiple of 4 (is the `=` padding missing?)"
            ),
            Self::Character(at) => write!(
                f,
                "byte {at} is not in the standard alphabet `A-Z a-z 0-9 + /` (URL-safe `-` `_`, spaces and line breaks are not allowed)"
            ),
            Self::Padding => write!(
                f,
                "`=` padding may appear only as the last one or two characters"
            ),
            Self::NonCanonical => write!(
                f,
                "the character before the `=` padding has bits set that the padding drops (not the canonical encoding)"
            ),
        }
    }
}

/// Decodes padded standard base64, strictly: no whitespace, no URL-safe alphabet, canonical
/// padding bits.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(DecodeError::Length(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, quad) in bytes.chunks_exact(4).enumerate() {
        let padding = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || (padding > 0 && q + 1 != quads) {
            return Err(DecodeError::Padding);
        }
        let mut n = 0u32;
        for (i, &b) in quad[..4 - padding].iter().enumerate() {
            let Some(v) = sextet(b) else {
                return Err(if b == b'=' {
                    DecodeError::Padding
                } else {
                    DecodeError::Character(q * 4 + i)
                });
            };
            n = (n << 6) | u32::from(v);
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Non-zero bits hidden in the padding would make two encodings of one value.
        if decoded[3 - padding..].iter().any(|&b| b != 0) {
            return Err(DecodeError::NonCanonical);
        }
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Ok(out)
}

/// The 6-bit value of one base64 character.
fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

pub(crate) mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        data: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match data {
            Some(bytes) => s.serialize_str(&super::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            super::decode(&t).map_err(|e| {
                serde::de::Error::custom(format_args!(
                    "descriptor `data` is not padded standard base64 (RFC 4648): {e}"
                ))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("{}", "e30="),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).as_deref(), Ok(plain.as_bytes()));
        }
    }

    #[test]
    fn every_byte_value_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            assert_eq!(decode(&encode(&all[..len])).as_deref(), Ok(&all[..len]));
        }
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn rejects_malformed_with_the_reason() {
        for (bad, why) in [
            ("Zg=", DecodeError::Length(3)),
            ("e30", DecodeError::Length(3)),
            ("Z===", DecodeError::Padding),
            ("====", DecodeError::Padding),
            ("Zg==Zg==", DecodeError::Padding),
            ("Z=g=", DecodeError::Padding),
            ("Zm9v!A==", DecodeError::Character(4)),
            ("e30-", DecodeError::Character(3)),
            ("e3_=", DecodeError::Character(2)),
            ("e3 =", DecodeError::Character(2)),
            ("Zh==", DecodeError::NonCanonical),
            ("e31=", DecodeError::NonCanonical),
            ("é==", DecodeError::Character(0)),
        ] {
            assert_eq!(decode(bad), Err(why), "{bad}");
            assert!(!why.to_string().is_empty());
        }
    }
}
