//! Reading the response headers the distribution protocol uses. Every parser returns a typed
//! error naming the header and the operation; none panics on any input.

use http::HeaderMap;
use oci_spec_types::Digest;
use url::Url;

use crate::{Error, Operation};

pub(crate) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
pub(crate) const DOCKER_UPLOAD_UUID: &str = "docker-upload-uuid";
pub(crate) const OCI_CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";
pub(crate) const OCI_SUBJECT: &str = "oci-subject";
pub(crate) const CONTENT_LENGTH: &str = "content-length";
pub(crate) const CONTENT_TYPE: &str = "content-type";
pub(crate) const CONTENT_RANGE: &str = "content-range";
pub(crate) const LOCATION: &str = "location";
pub(crate) const RANGE: &str = "range";

/// A header as text; `None` when absent. Differing values of a header the protocol expects
/// once are refused rather than one being picked silently (a proxy repeating the same value
/// is harmless).
pub(crate) fn text<'a>(
    operation: Operation,
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, Error> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.any(|other| other != value) {
        return Err(invalid(
            operation,
            name,
            value.as_bytes(),
            "it is sent more than once with different values",
        ));
    }
    value
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| invalid(operation, name, value.as_bytes(), "it is not visible ASCII"))
}

pub(crate) fn invalid(
    operation: Operation,
    header: &'static str,
    value: &[u8],
    reason: &str,
) -> Error {
    Error::InvalidHeader {
        operation,
        header,
        value: String::from_utf8_lossy(value).into_owned(),
        reason: reason.to_owned(),
    }
}

/// `Docker-Content-Digest`; an empty value counts as absent (some proxies send one).
pub(crate) fn digest(operation: Operation, headers: &HeaderMap) -> Result<Option<Digest>, Error> {
    match text(operation, headers, DOCKER_CONTENT_DIGEST)? {
        None | Some("") => Ok(None),
        Some(value) => Digest::parse(value).map(Some).map_err(|e| {
            invalid(
                operation,
                "Docker-Content-Digest",
                value.as_bytes(),
                &e.to_string(),
            )
        }),
    }
}

/// A header holding a decimal count, such as `Content-Length`.
pub(crate) fn number(
    operation: Operation,
    headers: &HeaderMap,
    name: &'static str,
) -> Result<Option<u64>, Error> {
    match text(operation, headers, name)? {
        None => Ok(None),
        Some(value) => parse_u64(value).map(Some).ok_or_else(|| {
            invalid(
                operation,
                name,
                value.as_bytes(),
                "expected a decimal number",
            )
        }),
    }
}

/// `Location`, absolute or relative, resolved against `base` with its query kept.
pub(crate) fn location(
    operation: Operation,
    headers: &HeaderMap,
    base: &Url,
) -> Result<Option<Url>, Error> {
    match text(operation, headers, LOCATION)? {
        None | Some("") => Ok(None),
        Some(value) => base.join(value).map(Some).map_err(|e| {
            invalid(
                operation,
                "Location",
                value.as_bytes(),
                &format!("not a URL: {e}"),
            )
        }),
    }
}

/// The `Range` of an upload response, `0-<last byte>`, as the number of bytes the registry
/// holds. `0-0` is ambiguous (docker-registry sends it for an empty session and after one
/// byte), so it is returned as [`UploadRange::ZeroOrOne`] for the caller to settle.
pub(crate) fn upload_range(
    operation: Operation,
    headers: &HeaderMap,
) -> Result<Option<UploadRange>, Error> {
    let Some(value) = text(operation, headers, RANGE)? else {
        return Ok(None);
    };
    let bad = |reason: &str| invalid(operation, "Range", value.as_bytes(), reason);
    let spec = value.strip_prefix("bytes=").unwrap_or(value);
    let (start, end) = spec
        .split_once('-')
        .ok_or_else(|| bad("expected `0-<last byte offset>`"))?;
    if start.trim() != "0" {
        return Err(bad("an upload range must start at 0"));
    }
    match end.trim() {
        // Some registries write an empty session as `0--1`.
        "-1" => Ok(Some(UploadRange::Exact(0))),
        "0" => Ok(Some(UploadRange::ZeroOrOne)),
        end => {
            let end = parse_u64(end).ok_or_else(|| bad("expected `0-<last byte offset>`"))?;
            end.checked_add(1)
                .map(|len| Some(UploadRange::Exact(len)))
                .ok_or_else(|| bad("the offset is out of range"))
        }
    }
}

/// How many bytes an upload holds, per its `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UploadRange {
    /// Exactly this many.
    Exact(u64),
    /// `0-0`: none or one.
    ZeroOrOne,
}

/// A `Content-Range: bytes <start>-<end>/<total or *>` of a `206` response.
pub(crate) fn content_range(
    operation: Operation,
    headers: &HeaderMap,
) -> Result<Option<crate::ContentRange>, Error> {
    let Some(value) = text(operation, headers, CONTENT_RANGE)? else {
        return Ok(None);
    };
    let bad = || {
        invalid(
            operation,
            "Content-Range",
            value.as_bytes(),
            "expected `bytes <first>-<last>/<total>`",
        )
    };
    let spec = value.strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let start = parse_u64(start).ok_or_else(bad)?;
    let end = parse_u64(end).ok_or_else(bad)?;
    let total = match total {
        "*" => None,
        total => Some(parse_u64(total).ok_or_else(bad)?),
    };
    if end < start || total.is_some_and(|total| end >= total) {
        return Err(bad());
    }
    Ok(Some(crate::ContentRange { start, end, total }))
}

/// A plain decimal: digits only (no sign, no spaces), no overflow.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn map(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    const OP: Operation = Operation::UploadChunk;

    #[test]
    fn upload_range_forms() {
        let range = |v| upload_range(OP, &map(RANGE, v));
        assert_eq!(range("0-0").unwrap(), Some(UploadRange::ZeroOrOne));
        assert_eq!(range("0-735").unwrap(), Some(UploadRange::Exact(736)));
        assert_eq!(
            range("bytes=0-1471").unwrap(),
            Some(UploadRange::Exact(1472))
        );
        assert_eq!(range("0--1").unwrap(), Some(UploadRange::Exact(0)));
        assert_eq!(upload_range(OP, &HeaderMap::new()).unwrap(), None);
        for bad in [
            "5-10",
            "0-",
            "0-x",
            "0-+1",
            "nonsense",
            "0-18446744073709551615",
        ] {
            assert!(
                matches!(
                    range(bad),
                    Err(Error::InvalidHeader {
                        header: "Range",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_range_forms() {
        let range = |v| content_range(OP, &map(CONTENT_RANGE, v));
        let r = range("bytes 1000-1471/1472").unwrap().unwrap();
        assert_eq!((r.start, r.end, r.total), (1000, 1471, Some(1472)));
        assert_eq!(range("bytes 0-9/*").unwrap().unwrap().total, None);
        for bad in [
            "0-9/10",
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes a-b/c",
            "bytes 0-9",
        ] {
            assert!(range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_header_empty_is_absent_and_garbage_is_an_error() {
        assert_eq!(digest(OP, &map(DOCKER_CONTENT_DIGEST, "")).unwrap(), None);
        assert!(digest(OP, &map(DOCKER_CONTENT_DIGEST, "sha256:xyz")).is_err());
    }

    #[test]
    fn repeated_header_is_refused_unless_identical() {
        let base = Url::parse("http://r/").unwrap();
        let mut headers = map(LOCATION, "/a");
        headers.append(LOCATION, HeaderValue::from_static("/a"));
        assert_eq!(
            location(OP, &headers, &base).unwrap().unwrap().as_str(),
            "http://r/a"
        );
        headers.append(LOCATION, HeaderValue::from_static("/b"));
        assert!(location(OP, &headers, &base).is_err());
    }

    proptest::proptest! {
        #[test]
        fn header_parsers_never_panic(value in "\\PC{0,40}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let base = Url::parse("https://r.example/v2/x/blobs/uploads/").unwrap();
            for raw in [value.as_bytes(), bytes.as_slice()] {
                let Ok(v) = HeaderValue::from_bytes(raw) else { continue };
                for name in [RANGE, CONTENT_RANGE, LOCATION, DOCKER_CONTENT_DIGEST, CONTENT_LENGTH] {
                    let mut headers = HeaderMap::new();
                    headers.insert(name, v.clone());
                    let _ = upload_range(OP, &headers);
                    let _ = content_range(OP, &headers);
                    let _ = location(OP, &headers, &base);
                    let _ = digest(OP, &headers);
                    let _ = number(OP, &headers, CONTENT_LENGTH);
                }
            }
        }

        #[test]
        fn upload_range_round_trips(len in 2u64..u64::MAX) {
            let headers = map(RANGE, &format!("0-{}", len - 1));
            proptest::prop_assert_eq!(upload_range(OP, &headers).unwrap(), Some(UploadRange::Exact(len)));
        }
    }

    #[test]
    fn location_keeps_query_and_resolves_relative() {
        let base = Url::parse("https://r.example/v2/x/blobs/uploads/").unwrap();
        let url = location(
            OP,
            &map(LOCATION, "/v2/x/blobs/uploads/u?_state=a%3D&n=1"),
            &base,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://r.example/v2/x/blobs/uploads/u?_state=a%3D&n=1"
        );
    }
}
