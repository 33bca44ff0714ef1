//! Registry error responses: the distribution spec's `{"errors":[{"code","message","detail"}]}`
//! envelope, plain-text bodies (`404 page not found`), and `Retry-After`.
//!
//! [`RegistryError::from_response_parts`] never fails: whatever the body is, the status and a
//! readable excerpt are kept, so an error from a proxy or a throttling front end still says
//! what happened.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::scope::{Action, Scope, merge_scopes};

/// The most of a non-JSON body kept in [`RegistryError::body_excerpt`].
pub const MAX_BODY_EXCERPT: usize = 512;

/// An error code of the distribution spec (plus the ones registries commonly add).
///
/// Codes are compared exactly as the spec spells them; anything else is kept in
/// [`ErrorCode::Other`] (e.g. distribution's `PAGINATION_NUMBER_INVALID` and `UNKNOWN`, ACR's
/// `TAG_UNKNOWN`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`: the blob is not in the repository.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload session failed or its location is stale.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: the upload session was cancelled, completed or never started.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: the content does not match the digest given.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest references a blob the repository lacks.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest failed validation.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: no such manifest (or the `Accept` header excluded its type).
    ManifestUnknown,
    /// `NAME_INVALID`: invalid repository name.
    NameInvalid,
    /// `NAME_UNKNOWN`: no such repository.
    NameUnknown,
    /// `SIZE_INVALID`: the content length does not match.
    SizeInvalid,
    /// `UNAUTHORIZED`: authentication required.
    Unauthorized,
    /// `DENIED`: authenticated, but access is denied.
    Denied,
    /// `UNSUPPORTED`: the operation is not supported (e.g. deletes disabled).
    Unsupported,
    /// `TOOMANYREQUESTS`: rate limited.
    TooManyRequests,
    /// Any other code, as sent.
    Other(String),
}

impl ErrorCode {
    /// The code as the spec spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
            Self::Other(code) => code,
        }
    }
}

impl From<&str> for ErrorCode {
    fn from(s: &str) -> Self {
        match s {
            "BLOB_UNKNOWN" => Self::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => Self::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => Self::BlobUploadUnknown,
            "DIGEST_INVALID" => Self::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => Self::ManifestBlobUnknown,
            "MANIFEST_INVALID" => Self::ManifestInvalid,
            "MANIFEST_UNKNOWN" => Self::ManifestUnknown,
            "NAME_INVALID" => Self::NameInvalid,
            "NAME_UNKNOWN" => Self::NameUnknown,
            "SIZE_INVALID" => Self::SizeInvalid,
            "UNAUTHORIZED" => Self::Unauthorized,
            "DENIED" => Self::Denied,
            "UNSUPPORTED" => Self::Unsupported,
            "TOOMANYREQUESTS" => Self::TooManyRequests,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl FromStr for ErrorCode {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryErrorEntry {
    /// The code (`MANIFEST_UNKNOWN`, ...).
    pub code: ErrorCode,
    /// The human-readable message (empty when the registry sent none).
    pub message: String,
    /// Whatever the registry put in `detail`: an object (`{"Tag":"v1"}`), a string (a digest),
    /// an array (ACR lists the `{Type,Name,Action}` access it wanted), or nothing. `null` and
    /// absent are both `None`.
    pub detail: Option<Value>,
}

impl RegistryErrorEntry {
    /// Reads one entry leniently: a missing code becomes `UNKNOWN`, a missing message empty.
    fn from_value(value: &Value) -> Option<Self> {
        let object = value.as_object()?;
        let code = object
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN");
        let message = object
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let detail = object.get("detail").filter(|d| !d.is_null()).cloned();
        Some(Self {
            code: ErrorCode::from(code),
            message: message.to_owned(),
            detail,
        })
    }
}

impl fmt::Display for RegistryErrorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
        if !self.message.is_empty() {
            write!(f, ": {}", one_line(&self.message, 300))?;
        }
        if let Some(detail) = self.detail.as_ref().and_then(render_detail) {
            write!(f, " ({})", one_line(&detail, 300))?;
        }
        Ok(())
    }
}

/// A `Retry-After` value: a delay, or a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 120`.
    Delay(Duration),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`.
    At(SystemTime),
}

impl RetryAfter {
    /// Parses a `Retry-After` value: delay-seconds or an HTTP-date (IMF-fixdate, or the
    /// obsolete RFC 850 and asctime forms). Anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Absurdly long digit strings saturate rather than fail.
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(Self::Delay(Duration::from_secs(secs)));
        }
        parse_http_date(value).map(Self::At)
    }

    /// How long to wait from `now`; a date in the past means no wait.
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match *self {
            Self::Delay(d) => d,
            Self::At(t) => t.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// An error response from a registry: its status, the parsed `errors` (if the body had them),
/// an excerpt of any other body, and `Retry-After`.
///
/// ```
/// use oci_distribution_proto::{ErrorCode, RegistryError};
/// let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]}"#;
/// let e = RegistryError::from_response_parts(http::StatusCode::NOT_FOUND, &http::HeaderMap::new(), body);
/// assert!(e.has_code(ErrorCode::ManifestUnknown));
/// assert_eq!(e.to_string(), "registry answered 404 Not Found: MANIFEST_UNKNOWN: manifest unknown (tag v1)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    status: http::StatusCode,
    errors: Vec<RegistryErrorEntry>,
    body_excerpt: Option<String>,
    retry_after: Option<RetryAfter>,
}

impl RegistryError {
    /// Interprets an error response. Never fails: a body that is not the JSON error envelope
    /// (plain text, HTML, a JSON object without `errors`) is kept as a trimmed excerpt of at
    /// most [`MAX_BODY_EXCERPT`] bytes.
    pub fn from_response_parts(
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Self {
        let errors = parse_errors(body);
        let body_excerpt = if errors.is_empty() {
            excerpt(body)
        } else {
            None
        };
        let retry_after = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        Self {
            status,
            errors,
            body_excerpt,
            retry_after,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        self.status
    }

    /// The parsed `errors` entries (empty for non-JSON bodies).
    pub fn errors(&self) -> &[RegistryErrorEntry] {
        &self.errors
    }

    /// The first entry's code, if any.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.errors.first().map(|e| &e.code)
    }

    /// Whether any entry has this code.
    pub fn has_code(&self, code: ErrorCode) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    /// The start of a body that was not the JSON error envelope, e.g. `404 page not found`.
    pub fn body_excerpt(&self) -> Option<&str> {
        self.body_excerpt.as_deref()
    }

    /// The `Retry-After` header, parsed.
    pub fn retry_after_header(&self) -> Option<RetryAfter> {
        self.retry_after
    }

    /// The `Retry-After` delay when it was given in seconds. A date needs the current time:
    /// use [`RegistryError::retry_after_at`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry_after? {
            RetryAfter::Delay(d) => Some(d),
            RetryAfter::At(_) => None,
        }
    }

    /// The `Retry-After` delay counted from `now`, for either form (a past date gives zero).
    pub fn retry_after_at(&self, now: SystemTime) -> Option<Duration> {
        self.retry_after.map(|r| r.delay_from(now))
    }

    /// Whether repeating the same request later may succeed: rate limiting (429 or a
    /// `TOOMANYREQUESTS` code), 408, and server errors other than 501 and 505, which say the
    /// server will never support the request.
    pub fn is_retryable(&self) -> bool {
        use http::StatusCode;
        let status = self.status;
        status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || (status.is_server_error()
                && status != StatusCode::NOT_IMPLEMENTED
                && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
            || self.has_code(ErrorCode::TooManyRequests)
    }

    /// Whether the registry said the thing asked for does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.status == http::StatusCode::NOT_FOUND
    }
}

impl fmt::Display for RegistryError {
    /// `registry answered 404 Not Found: MANIFEST_UNKNOWN: manifest unknown (tag v1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry answered {}", self.status)?;
        // Keep messages readable when a registry returns dozens of entries.
        const SHOWN: usize = 5;
        for (i, entry) in self.errors.iter().take(SHOWN).enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            entry.fmt(f)?;
        }
        if self.errors.len() > SHOWN {
            write!(f, "; and {} more", self.errors.len() - SHOWN)?;
        }
        if let Some(text) = &self.body_excerpt {
            // The excerpt is already bounded (and may end in `…`); only flatten it.
            write!(f, ": {}", one_line(text, usize::MAX))?;
        }
        if let Some(RetryAfter::Delay(d)) = self.retry_after {
            write!(f, " (retry after {}s)", d.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for RegistryError {}

fn parse_errors(body: &[u8]) -> Vec<RegistryErrorEntry> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    value
        .get("errors")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(RegistryErrorEntry::from_value)
                .collect()
        })
        .unwrap_or_default()
}

fn excerpt(body: &[u8]) -> Option<String> {
    // Decode no more than needed; a cut multi-byte character becomes U+FFFD, never a panic.
    let head = body.get(..MAX_BODY_EXCERPT * 2).unwrap_or(body);
    let text = String::from_utf8_lossy(head);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let cut = truncate(text, MAX_BODY_EXCERPT);
    if cut.len() < text.len() || head.len() < body.len() {
        Some(format!("{}…", cut.trim_end()))
    } else {
        Some(cut.to_owned())
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Collapses whitespace and control characters so a message fits on one line.
fn one_line(s: &str, max: usize) -> String {
    let joined = s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let cut = truncate(&joined, max);
    if cut.len() < joined.len() {
        format!("{cut}…")
    } else {
        joined
    }
}

/// Renders `detail` for a message, or `None` when it says nothing (`{}`, `""`, `[]`).
fn render_detail(detail: &Value) -> Option<String> {
    match detail {
        Value::Null => None,
        Value::String(s) => (!s.trim().is_empty()).then(|| s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(detail.to_string()),
        Value::Array(items) => {
            if let Some(scopes) = items
                .iter()
                .map(access_scope)
                .collect::<Option<Vec<Scope>>>()
                && !scopes.is_empty()
            {
                let merged: Vec<String> = merge_scopes(scopes)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                return Some(format!("needs {}", merged.join(" ")));
            }
            let parts: Vec<String> = items.iter().filter_map(render_detail).collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter_map(|(k, v)| render_detail(v).map(|v| format!("{} {v}", k.to_lowercase())))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
    }
}

/// Reads a `{"Type","Class"?,"Name","Action"}` access entry (distribution and ACR list the
/// access an `UNAUTHORIZED` request needed this way) as a scope.
fn access_scope(value: &Value) -> Option<Scope> {
    let map = value.as_object()?;
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let known = ["type", "class", "name", "action"];
    if !map
        .keys()
        .all(|k| known.iter().any(|n| k.eq_ignore_ascii_case(n)))
    {
        return None;
    }
    let (kind, name, action) = (field("type")?, field("name")?, field("action")?);
    let action: Action = action.parse().ok()?;
    let kind = match field("class").filter(|c| !c.is_empty()) {
        Some(class) => format!("{kind}({class})"),
        None => kind.to_owned(),
    };
    Some(Scope::new(&kind, name, &[action]))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP-date (RFC 9110 §5.6.7) without reading the clock.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let (year, month, day, time) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [wkday, day, month, year, time, "GMT"] if wkday.ends_with(',') && year.len() == 4 => (
            year.parse::<i64>().ok()?,
            month_number(month)?,
            day.parse::<u32>().ok()?,
            *time,
        ),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut it = date.split('-');
            let (day, month, year) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() || year.len() != 2 {
                return None;
            }
            let yy = year.parse::<i64>().ok()?;
            // Two-digit years: pick the century that keeps the date near the present
            // without a clock (RFC 9110 says within 50 years; 1970 is a safe pivot here).
            let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (year, month_number(month)?, day.parse::<u32>().ok()?, *time)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_wkday, month, day, time, year] if year.len() == 4 => (
            year.parse::<i64>().ok()?,
            month_number(month)?,
            day.parse::<u32>().ok()?,
            *time,
        ),
        _ => return None,
    };
    let mut hms = time.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec) = (
        h.parse::<u64>().ok()?,
        m.parse::<u64>().ok()?,
        sec.parse::<u64>().ok()?,
    );
    if h > 23
        || m > 59
        || sec > 60
        || day == 0
        || day > days_in_month(year, month)
        || !(1..=9999).contains(&year)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days
        .checked_mul(86_400)?
        .checked_add(i64::try_from(h * 3600 + m * 60 + sec).ok()?)?;
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

fn month_number(name: &str) -> Option<u32> {
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    u32::try_from(index + 1).ok()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use proptest::prelude::*;

    fn from(status: u16, body: &[u8]) -> RegistryError {
        RegistryError::from_response_parts(
            StatusCode::from_u16(status).unwrap(),
            &http::HeaderMap::new(),
            body,
        )
    }

    fn with_retry_after(status: u16, value: &str) -> RegistryError {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(value).unwrap(),
        );
        RegistryError::from_response_parts(StatusCode::from_u16(status).unwrap(), &headers, b"")
    }

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../tests/fixtures/errors/", $name))
        };
    }

    #[test]
    fn error_codes_round_trip_and_keep_unknown_codes() {
        let all = [
            ErrorCode::BlobUnknown,
            ErrorCode::BlobUploadInvalid,
            ErrorCode::BlobUploadUnknown,
            ErrorCode::DigestInvalid,
            ErrorCode::ManifestBlobUnknown,
            ErrorCode::ManifestInvalid,
            ErrorCode::ManifestUnknown,
            ErrorCode::NameInvalid,
            ErrorCode::NameUnknown,
            ErrorCode::SizeInvalid,
            ErrorCode::Unauthorized,
            ErrorCode::Denied,
            ErrorCode::Unsupported,
            ErrorCode::TooManyRequests,
        ];
        for code in all {
            assert_eq!(code.to_string().parse::<ErrorCode>(), Ok(code.clone()));
            assert!(!matches!(
                ErrorCode::from(code.as_str()),
                ErrorCode::Other(_)
            ));
        }
        assert_eq!(
            ErrorCode::from("PAGINATION_NUMBER_INVALID"),
            ErrorCode::Other("PAGINATION_NUMBER_INVALID".into())
        );
        assert_eq!(ErrorCode::from("UNKNOWN").to_string(), "UNKNOWN");
        assert_eq!(
            ErrorCode::from("manifest_unknown"),
            ErrorCode::Other("manifest_unknown".into())
        );
    }

    #[test]
    fn distribution_manifest_unknown_reads_well() {
        let e = from(404, fixture!("distribution-404-manifest-unknown.json"));
        assert_eq!(
            e.to_string(),
            "registry answered 404 Not Found: MANIFEST_UNKNOWN: manifest unknown (tag v1)"
        );
        assert!(e.has_code(ErrorCode::ManifestUnknown));
        assert_eq!(e.code(), Some(&ErrorCode::ManifestUnknown));
        assert_eq!(e.errors()[0].detail, Some(serde_json::json!({"Tag": "v1"})));
        assert_eq!(e.body_excerpt(), None);
        assert!(e.is_not_found());
        assert!(!e.is_retryable());
    }

    #[test]
    fn detail_shapes_of_distribution() {
        let cases: [(&[u8], u16, &str); 8] = [
            (
                fixture!("distribution-404-accept.json"),
                404,
                "MANIFEST_UNKNOWN: OCI manifest found, but accept header does not support OCI manifests",
            ),
            (
                fixture!("distribution-400-manifest-blob-unknown.json"),
                400,
                "MANIFEST_BLOB_UNKNOWN: blob unknown to registry (sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855)",
            ),
            (
                fixture!("distribution-400-manifest-too-large.json"),
                400,
                "MANIFEST_INVALID: manifest invalid (http: request body too large)",
            ),
            (
                fixture!("distribution-400-manifest-invalid-json.json"),
                400,
                "MANIFEST_INVALID: manifest invalid (offset 19)",
            ),
            (
                fixture!("distribution-400-digest-invalid.json"),
                400,
                "DIGEST_INVALID: provided digest did not match uploaded content (digest sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae)",
            ),
            (
                fixture!("distribution-400-pagination-number-invalid.json"),
                400,
                "PAGINATION_NUMBER_INVALID: invalid number of results requested (n 1001)",
            ),
            (
                fixture!("distribution-401-unauthorized.json"),
                401,
                "UNAUTHORIZED: authentication required (needs repository:foo/bar:pull)",
            ),
            (
                fixture!("distribution-405-unsupported.json"),
                405,
                "UNSUPPORTED: The operation is unsupported.",
            ),
        ];
        for (body, status, expected) in cases {
            let e = from(status, body);
            let shown = e.to_string();
            let (_, rest) = shown.split_once(": ").unwrap();
            assert_eq!(rest, expected);
            assert_eq!(e.errors().len(), 1);
        }
    }

    #[test]
    fn distribution_unknown_500_is_retryable_and_empty_detail_is_hidden() {
        let e = from(500, fixture!("distribution-500-unknown.json"));
        assert_eq!(
            e.to_string(),
            "registry answered 500 Internal Server Error: UNKNOWN: unknown error"
        );
        assert_eq!(e.errors()[0].detail, Some(serde_json::json!({})));
        assert!(e.is_retryable());
    }

    #[test]
    fn acr_bodies() {
        let e = from(401, fixture!("acr-401-unauthorized-mount.json"));
        assert!(e.has_code(ErrorCode::Unauthorized));
        assert_eq!(
            e.to_string(),
            "registry answered 401 Unauthorized: UNAUTHORIZED: authentication required, visit https://aka.ms/acr/authorization for more information. (needs repository:alpine:pull repository:hello-world:pull,push)"
        );
        let e = from(401, fixture!("acr-401-unauthorized-v2.json"));
        assert_eq!(e.errors()[0].detail, None, "null detail is absent");
        let e = from(404, fixture!("acr-404-manifest-unknown.json"));
        assert_eq!(
            e.errors()[0].message,
            r#"manifest tagged by "wrong-tag" is not found"#
        );
        assert!(e.to_string().ends_with("(tag wrong-tag)"), "{e}");
        let e = from(404, fixture!("acr-404-tag-unknown.json"));
        assert_eq!(e.code(), Some(&ErrorCode::Other("TAG_UNKNOWN".into())));
        assert_eq!(e.errors()[0].detail, None);
        assert!(!e.has_code(ErrorCode::ManifestUnknown));
    }

    #[test]
    fn plain_text_bodies_are_kept_as_excerpts() {
        let e = from(404, fixture!("acr-404-page-not-found.txt"));
        assert!(e.errors().is_empty());
        assert_eq!(e.body_excerpt(), Some("404 page not found"));
        assert_eq!(
            e.to_string(),
            "registry answered 404 Not Found: 404 page not found"
        );
        let e = from(405, fixture!("distribution-405-method-not-allowed.txt"));
        assert_eq!(
            e.to_string(),
            "registry answered 405 Method Not Allowed: Method not allowed"
        );
        let e = from(429, fixture!("synthetic-429-throttled.txt"));
        assert!(e.is_retryable());
        assert!(
            e.to_string().starts_with(
                "registry answered 429 Too Many Requests: The request is being throttled. Ref A:"
            ),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn empty_and_odd_bodies() {
        assert_eq!(
            from(404, b"").to_string(),
            "registry answered 404 Not Found"
        );
        assert_eq!(from(404, b" \r\n ").body_excerpt(), None);
        // JSON without `errors` (e.g. an OAuth2 error from a token server) is kept as text.
        let e = from(401, br#"{"error":"invalid_grant"}"#);
        assert_eq!(e.body_excerpt(), Some(r#"{"error":"invalid_grant"}"#));
        // Lenient entries: non-objects skipped, missing code/message tolerated.
        let e = from(400, br#"{"errors":[1,{"message":"m"},{"code":"DENIED"}]}"#);
        assert_eq!(e.errors().len(), 2);
        assert_eq!(e.errors()[0].code, ErrorCode::Other("UNKNOWN".into()));
        assert_eq!(
            e.to_string(),
            "registry answered 400 Bad Request: UNKNOWN: m; DENIED"
        );
    }

    #[test]
    fn long_bodies_are_truncated_on_char_boundaries() {
        let body = "é".repeat(2000);
        let e = from(502, body.as_bytes());
        let excerpt = e.body_excerpt().unwrap();
        assert!(excerpt.len() <= MAX_BODY_EXCERPT + '…'.len_utf8());
        assert!(excerpt.ends_with('…'));
        assert!(excerpt.starts_with("éé"));
        // Invalid UTF-8 does not panic and keeps what can be read.
        let e = from(502, &[b'b', b'a', b'd', 0xff, 0xfe]);
        assert_eq!(e.body_excerpt(), Some("bad\u{fffd}\u{fffd}"));
    }

    #[test]
    fn many_errors_are_summarised() {
        let entries: Vec<String> = (0..8)
            .map(|i| format!(r#"{{"code":"BLOB_UNKNOWN","message":"m{i}"}}"#))
            .collect();
        let body = format!(r#"{{"errors":[{}]}}"#, entries.join(","));
        let shown = from(404, body.as_bytes()).to_string();
        assert!(shown.ends_with("BLOB_UNKNOWN: m4; and 3 more"), "{shown}");
    }

    #[test]
    fn retryable_statuses() {
        for (status, retryable) in [
            (429, true),
            (408, true),
            (500, true),
            (502, true),
            (503, true),
            (504, true),
            (501, false),
            (505, false),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
        ] {
            assert_eq!(from(status, b"").is_retryable(), retryable, "{status}");
        }
        let throttled = from(
            400,
            br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
        );
        assert!(throttled.is_retryable());
    }

    #[test]
    fn retry_after_seconds() {
        let e = with_retry_after(503, "120");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(
            e.retry_after_at(SystemTime::UNIX_EPOCH),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            e.to_string(),
            "registry answered 503 Service Unavailable (retry after 120s)"
        );
        assert_eq!(
            with_retry_after(429, "  7 ").retry_after(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            with_retry_after(429, "99999999999999999999999").retry_after(),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["-1", "1.5", "soon", ""] {
            assert_eq!(
                with_retry_after(429, bad).retry_after_header(),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(from(429, b"").retry_after(), None);
    }

    #[test]
    fn retry_after_dates_need_now() {
        // 1994-11-06T08:49:37Z = 784111777 s after the epoch.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let e = with_retry_after(503, value);
            assert_eq!(e.retry_after_header(), Some(RetryAfter::At(at)), "{value}");
            assert_eq!(
                e.retry_after(),
                None,
                "a date is not a delay without a clock"
            );
            let now = at - Duration::from_secs(30);
            assert_eq!(e.retry_after_at(now), Some(Duration::from_secs(30)));
            assert_eq!(
                e.retry_after_at(at + Duration::from_secs(5)),
                Some(Duration::ZERO)
            );
        }
    }

    #[test]
    fn http_date_edge_cases() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_199))
        );
        assert_eq!(
            parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT"),
            SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(1))
        );
        for bad in [
            "Thu, 29 Feb 2023 00:00:00 GMT",
            "Thu, 32 Jan 2024 00:00:00 GMT",
            "Thu, 01 Foo 2024 00:00:00 GMT",
            "Thu, 01 Jan 2024 24:00:00 GMT",
            "Thu, 01 Jan 2024 00:00 GMT",
            "Thu, 01 Jan 2024 00:00:00 UTC",
            "Thu 01 Jan 2024 00:00:00 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    proptest! {
        #[test]
        fn any_body_never_panics_and_display_is_one_line(body in proptest::collection::vec(any::<u8>(), 0..700), status in 400u16..600) {
            let e = from(status, &body);
            let shown = e.to_string();
            let prefix = format!("registry answered {status}");
            prop_assert!(shown.starts_with(&prefix), "{} does not start with {}", shown, prefix);
            prop_assert!(!shown.contains('\n'));
            prop_assert!(e.body_excerpt().is_none_or(|x| x.len() <= MAX_BODY_EXCERPT + 3));
        }

        #[test]
        fn any_json_entries_never_panic(code in "\\PC{0,12}", message in "\\PC{0,40}", detail in prop_oneof![
            Just(Value::Null), any::<i64>().prop_map(Value::from), "\\PC{0,20}".prop_map(Value::from),
            proptest::collection::btree_map("\\PC{0,5}", "\\PC{0,5}", 0..3).prop_map(|m| serde_json::json!(m)),
            proptest::collection::vec("\\PC{0,5}", 0..3).prop_map(|v| serde_json::json!(v)),
        ]) {
            let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": detail}]}).to_string();
            let e = from(400, body.as_bytes());
            prop_assert_eq!(e.errors().len(), 1);
            prop_assert_eq!(e.errors()[0].code.as_str(), code.as_str());
            prop_assert!(!e.to_string().contains('\n'));
        }

        #[test]
        fn imf_fixdate_round_trips(secs in 0u64..253_402_300_799) {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let days = i64::try_from(secs / 86_400).unwrap();
            // Inverse of days_from_civil, to format the date under test.
            let (y, m, d) = civil_from_days(days);
            let rem = secs % 86_400;
            let text = format!("Mon, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT", MONTHS[(m - 1) as usize], rem / 3600, rem / 60 % 60, rem % 60);
            prop_assert_eq!(RetryAfter::parse(&text), Some(RetryAfter::At(t)), "{}", text);
        }

        #[test]
        fn retry_after_never_panics(s in "\\PC{0,40}") {
            let _ = RetryAfter::parse(&s);
        }
    }

    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }
}
