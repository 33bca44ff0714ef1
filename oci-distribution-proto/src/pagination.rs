//! Paginated listings (`/v2/_catalog`, `/v2/<name>/tags/list`, the referrers API, ACR's
//! `/acr/v1/...` lists): the `n`/`last` query parameters and the RFC 8288 `Link` header that
//! points at the next page.
//!
//! Registries send the next-page link relative (docker-registry and ACR:
//! `Link: </v2/_catalog?last=cat-2&n=2>; rel="next"`) or absolute; it is resolved against the
//! URL of the request that returned it. No `Link` means the listing is complete.

use url::Url;

/// A `Link` header could not be parsed, or its target is not a usable URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The header does not follow the `<uri-reference>; param=value, ...` grammar.
    #[error("malformed Link header {header:?} at byte {position}: expected {expected}")]
    Syntax {
        /// The header value (lossily decoded).
        header: String,
        /// Byte offset of the problem.
        position: usize,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// The `rel="next"` target does not resolve to a URL.
    #[error(
        "the Link header's next-page target {target:?} is not a valid URL relative to {base}: {source}"
    )]
    InvalidUrl {
        /// The target between `<` and `>`.
        target: String,
        /// The URL it was resolved against.
        base: String,
        /// Why it failed.
        source: url::ParseError,
    },
    /// The next-page target is not `http` or `https` (e.g. `javascript:` or `file:`), so it
    /// must not be followed.
    #[error(
        "the Link header's next-page target {target} uses scheme `{scheme}`; only http and https pages can be followed"
    )]
    UnsupportedScheme {
        /// The resolved target.
        target: String,
        /// Its scheme.
        scheme: String,
    },
}

/// One link-value of a `Link` header: its target and relation types.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkValue {
    target: String,
    rels: Vec<String>,
}

/// Finds the `rel="next"` link among a response's `Link` headers and resolves it against
/// `base` (the URL of the request that got the response).
///
/// Several links may share a header or come in several headers; links with other relations
/// (`prev`, `last`, ...) are ignored, `rel` may be quoted or not, may list several relations
/// (`rel="next last"`) and is compared case-insensitively. Returns `Ok(None)` when there is no
/// next page. A malformed header is an error rather than "no next page", because silently
/// stopping would truncate the listing.
///
/// The result may point at another host; callers should not send credentials to a host they
/// did not authenticate against.
///
/// ```
/// use oci_distribution_proto::next_link;
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::LINK, r#"</v2/_catalog?last=cat-2&n=2>; rel="next""#.parse()?);
/// let base = url::Url::parse("http://127.0.0.1:5000/v2/_catalog?n=2")?;
/// let next = next_link(&headers, &base)?.unwrap();
/// assert_eq!(next.as_str(), "http://127.0.0.1:5000/v2/_catalog?last=cat-2&n=2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn next_link(headers: &http::HeaderMap, base: &Url) -> Result<Option<Url>, LinkError> {
    for value in headers.get_all(http::header::LINK) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let links = parse_link_header(&text)?;
        let next = links
            .into_iter()
            .find(|l| l.rels.iter().any(|r| r.eq_ignore_ascii_case("next")));
        if let Some(link) = next {
            return resolve(base, &link.target).map(Some);
        }
    }
    Ok(None)
}

fn resolve(base: &Url, target: &str) -> Result<Url, LinkError> {
    let url = base.join(target).map_err(|source| LinkError::InvalidUrl {
        target: target.to_owned(),
        base: base.to_string(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LinkError::UnsupportedScheme {
            target: url.to_string(),
            scheme: url.scheme().to_owned(),
        });
    }
    Ok(url)
}

/// Parses `Link = #link-value`, `link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )`.
fn parse_link_header(header: &str) -> Result<Vec<LinkValue>, LinkError> {
    let bytes = header.as_bytes();
    let mut pos = 0;
    let mut links = Vec::new();
    let err = |position: usize, expected: &'static str| LinkError::Syntax {
        header: header.to_owned(),
        position,
        expected,
    };
    let skip_ws = |pos: &mut usize| {
        while matches!(bytes.get(*pos), Some(b' ' | b'\t')) {
            *pos += 1;
        }
    };
    loop {
        // Empty list elements are allowed by the `#` rule.
        while matches!(bytes.get(pos), Some(b' ' | b'\t' | b',')) {
            pos += 1;
        }
        if pos >= bytes.len() {
            break;
        }
        if bytes.get(pos) != Some(&b'<') {
            return Err(err(pos, "`<` opening a link target"));
        }
        let Some(close) = bytes.iter().skip(pos + 1).position(|&b| b == b'>') else {
            return Err(err(pos, "`>` closing the link target"));
        };
        let close = pos + 1 + close;
        let target = header
            .get(pos + 1..close)
            .unwrap_or_default()
            .trim()
            .to_owned();
        pos = close + 1;
        let mut rels = Vec::new();
        loop {
            skip_ws(&mut pos);
            match bytes.get(pos) {
                None | Some(b',') => break,
                Some(b';') => pos += 1,
                Some(_) => {
                    return Err(err(pos, "`;` before a link parameter or `,` between links"));
                }
            }
            skip_ws(&mut pos);
            let name_start = pos;
            while bytes.get(pos).is_some_and(|&b| is_tchar(b) && b != b'*') {
                pos += 1;
            }
            // RFC 8187 extended parameters (`title*=`) are allowed; the `*` is part of the name.
            if bytes.get(pos) == Some(&b'*') {
                pos += 1;
            }
            if pos == name_start {
                // An empty parameter (`;;` or a trailing `;`) is harmless.
                if matches!(bytes.get(pos), None | Some(b',' | b';')) {
                    continue;
                }
                return Err(err(pos, "a link parameter name such as `rel`"));
            }
            let name = header.get(name_start..pos).unwrap_or_default();
            skip_ws(&mut pos);
            let value = if bytes.get(pos) == Some(&b'=') {
                pos += 1;
                skip_ws(&mut pos);
                if bytes.get(pos) == Some(&b'"') {
                    let open = pos;
                    let mut value = String::new();
                    let rest = header.get(pos + 1..).unwrap_or_default();
                    let mut chars = rest.char_indices();
                    let mut closed = false;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '"' => {
                                pos = open + 1 + i + 1;
                                closed = true;
                                break;
                            }
                            '\\' => {
                                if let Some((_, e)) = chars.next() {
                                    value.push(e);
                                }
                            }
                            c => value.push(c),
                        }
                    }
                    if !closed {
                        return Err(err(open, "`\"` closing the quoted parameter value"));
                    }
                    value
                } else {
                    let start = pos;
                    while bytes
                        .get(pos)
                        .is_some_and(|&b| !matches!(b, b';' | b',' | b' ' | b'\t'))
                    {
                        pos += 1;
                    }
                    header.get(start..pos).unwrap_or_default().to_owned()
                }
            } else {
                String::new()
            };
            // Only the first `rel` counts (RFC 8288 §3.3).
            if name.eq_ignore_ascii_case("rel") && rels.is_empty() {
                rels = value.split_ascii_whitespace().map(str::to_owned).collect();
            }
        }
        links.push(LinkValue { target, rels });
    }
    Ok(links)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The paging parameters of a listing request: at most `n` entries, starting after `last`.
///
/// ```
/// use oci_distribution_proto::PageRequest;
/// let mut url = url::Url::parse("https://r.example/v2/_catalog")?;
/// PageRequest::new().with_n(100).with_last("library/alpine").apply_to(&mut url);
/// assert_eq!(url.query(), Some("n=100&last=library%2Falpine"));
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// The page size; registries may return fewer (or, for docker-registry's tag list, ignore it).
    pub n: Option<u32>,
    /// The last entry of the previous page; the listing resumes after it.
    pub last: Option<String>,
}

impl PageRequest {
    /// No paging parameters: the registry's default page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the page size.
    pub fn with_n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Sets where to resume.
    pub fn with_last(mut self, last: impl Into<String>) -> Self {
        self.last = Some(last.into());
        self
    }

    /// The query string (`n=10&last=x`, form-encoded), or `None` when there is nothing to send.
    pub fn query_string(&self) -> Option<String> {
        if self.n.is_none() && self.last.is_none() {
            return None;
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(n) = self.n {
            query.append_pair("n", &n.to_string());
        }
        if let Some(last) = &self.last {
            query.append_pair("last", last);
        }
        Some(query.finish())
    }

    /// Sets `n` and `last` on `url`, replacing any already there and keeping other parameters
    /// (such as ACR's `orderby`).
    pub fn apply_to(&self, url: &mut Url) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "n" && k != "last")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() && self.query_string().is_none() {
            url.set_query(None);
            return;
        }
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        pairs.extend_pairs(kept);
        if let Some(n) = self.n {
            pairs.append_pair("n", &n.to_string());
        }
        if let Some(last) = &self.last {
            pairs.append_pair("last", last);
        }
    }

    /// Reads `n` and `last` from a URL (e.g. a next-page link). An `n` that is not a `u32`
    /// (docker-registry ignores `n=-1`, for one) is treated as absent.
    pub fn from_url(url: &Url) -> Self {
        let mut page = Self::default();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "n" if page.n.is_none() => page.n = v.parse().ok(),
                "last" if page.last.is_none() => page.last = Some(v.into_owned()),
                _ => {}
            }
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(http::header::LINK, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn base() -> Url {
        Url::parse("http://127.0.0.1:5000/v2/_catalog?n=2").unwrap()
    }

    fn next(values: &[&str]) -> Result<Option<String>, LinkError> {
        next_link(&headers(values), &base()).map(|u| u.map(String::from))
    }

    #[test]
    fn recorded_links_resolve() {
        // One recorded Link value per line: docker-registry 2.8 and ACR, all relative.
        let fixture = include_str!("../tests/fixtures/links/recorded.txt");
        let acr = Url::parse(
            "https://azacrlivetest.azurecr.io/acr/v1/_catalog?api-version=2021-07-01&n=1",
        )
        .unwrap();
        let mut checked = 0;
        for line in fixture
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (value, expected) = line.split_once(" => ").expect("fixture line has ` => `");
            let url = next_link(&headers(&[value]), &acr).unwrap().unwrap();
            assert_eq!(url.as_str(), expected, "{value}");
            checked += 1;
        }
        assert!(checked >= 3);
    }

    #[test]
    fn docker_registry_catalog_link_is_relative() {
        assert_eq!(
            next(&[r#"</v2/_catalog?last=cat-2&n=2>; rel="next""#])
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:5000/v2/_catalog?last=cat-2&n=2")
        );
    }

    #[test]
    fn absolute_links_and_unquoted_rel() {
        assert_eq!(
            next(&["<https://other.example/v2/x/tags/list?n=20&last=b>;rel=next"])
                .unwrap()
                .as_deref(),
            Some("https://other.example/v2/x/tags/list?n=20&last=b")
        );
    }

    #[test]
    fn picks_next_among_several_links_and_headers() {
        assert_eq!(
            next(&[r#"</a>; rel="prev", </b>; title="x, y"; rel="NEXT", </c>; rel="next""#])
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:5000/b")
        );
        assert_eq!(
            next(&[r#"</first>; rel="first""#, r#"</n>; rel="last next""#])
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:5000/n")
        );
        assert_eq!(
            next(&[r#"</a>; rel="prev""#, r#"</z>; rel=last"#]),
            Ok(None)
        );
        assert_eq!(next(&[]), Ok(None));
    }

    #[test]
    fn only_first_rel_counts_and_empty_params_are_tolerated() {
        assert_eq!(next(&[r#"</a>; rel="prev"; rel="next""#]), Ok(None));
        assert_eq!(
            next(&[r#"</a>;; rel="next";, , </b>"#]).unwrap().as_deref(),
            Some("http://127.0.0.1:5000/a")
        );
        assert_eq!(
            next(&[r#"</a>; anchor; title*=UTF-8'de'n%c3%a4chstes; rel=next"#])
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:5000/a")
        );
    }

    #[test]
    fn malformed_headers_are_errors_naming_the_problem() {
        for (value, needle) in [
            (r#"/v2/_catalog; rel="next""#, "`<`"),
            (r#"</v2/_catalog; rel="next""#, "`>`"),
            (r#"</a> rel="next""#, "`;`"),
            (r#"</a>; rel="next"#, "closing the quoted"),
            (r#"</a>; ="next""#, "parameter name"),
        ] {
            let err = next(&[value]).expect_err(value);
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn dangerous_or_broken_targets_are_rejected() {
        let err = next(&[r#"<javascript:alert(1)>; rel="next""#]).unwrap_err();
        assert!(
            matches!(err, LinkError::UnsupportedScheme { ref scheme, .. } if scheme == "javascript"),
            "{err}"
        );
        let err = next(&[r#"<http://[::1>; rel="next""#]).unwrap_err();
        assert!(matches!(err, LinkError::InvalidUrl { .. }), "{err}");
    }

    #[test]
    fn page_request_query_string() {
        assert_eq!(PageRequest::new().query_string(), None);
        assert_eq!(
            PageRequest::new().with_n(2).query_string().as_deref(),
            Some("n=2")
        );
        assert_eq!(
            PageRequest::new()
                .with_n(5)
                .with_last("a b&c/d")
                .query_string()
                .as_deref(),
            Some("n=5&last=a+b%26c%2Fd")
        );
    }

    #[test]
    fn apply_to_replaces_paging_and_keeps_other_params() {
        let mut url =
            Url::parse("https://r/acr/v1/_catalog?last=old&orderby=timedesc&n=1").unwrap();
        PageRequest::new().with_n(50).apply_to(&mut url);
        assert_eq!(url.query(), Some("orderby=timedesc&n=50"));
        PageRequest::new().apply_to(&mut url);
        assert_eq!(url.query(), Some("orderby=timedesc"));
        let mut bare = Url::parse("https://r/v2/_catalog?n=3").unwrap();
        PageRequest::new().apply_to(&mut bare);
        assert_eq!(bare.as_str(), "https://r/v2/_catalog");
    }

    #[test]
    fn from_url_reads_link_targets() {
        let url = Url::parse("http://h/v2/_catalog?last=cat-2&n=2").unwrap();
        assert_eq!(
            PageRequest::from_url(&url),
            PageRequest::new().with_n(2).with_last("cat-2")
        );
        let url = Url::parse("http://h/v2/_catalog?n=-1&orderby=").unwrap();
        assert_eq!(PageRequest::from_url(&url), PageRequest::new());
    }

    fn arb_page() -> impl Strategy<Value = PageRequest> {
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of("\\PC{0,20}"),
        )
            .prop_map(|(n, last)| PageRequest { n, last })
    }

    proptest! {
        #[test]
        fn page_request_round_trips_through_a_url(page in arb_page(), keep in "[a-z]{1,5}") {
            let mut url = Url::parse(&format!("https://r.example/v2/x/tags/list?{keep}=1")).unwrap();
            page.apply_to(&mut url);
            prop_assert_eq!(PageRequest::from_url(&url), page.clone());
            prop_assert!(url.query_pairs().any(|(k, _)| k == keep.as_str()) || keep == "n" || keep == "last");
            if let Some(q) = page.query_string() {
                let parsed = Url::parse(&format!("https://r/?{q}")).unwrap();
                prop_assert_eq!(PageRequest::from_url(&parsed), page);
            }
        }

        #[test]
        fn generated_link_headers_yield_the_next_target(
            before in proptest::collection::vec(("[a-z0-9/]{1,10}", "prev|first|last|self"), 0..3),
            next_path in "[a-z0-9/]{1,10}",
            after in proptest::collection::vec(("[a-z0-9/]{1,10}", "prev|first|last|next"), 0..3),
            page in arb_page(),
            quote in any::<bool>(),
        ) {
            let q = page.query_string().map(|q| format!("?{q}")).unwrap_or_default();
            let link = |path: &str, rel: &str| if quote { format!("</{path}>; rel=\"{rel}\"") } else { format!("</{path}>;rel={rel}") };
            let mut parts: Vec<String> = before.iter().map(|(p, r)| link(p, r)).collect();
            parts.push(link(&format!("v2/{next_path}{q}"), "next"));
            parts.extend(after.iter().map(|(p, r)| link(p, r)));
            let header = parts.join(", ");
            let url = next_link(&headers(&[&header]), &base()).map_err(|e| TestCaseError::fail(format!("{header}: {e}")))?;
            let url = url.ok_or_else(|| TestCaseError::fail(format!("no next in {header}")))?;
            prop_assert_eq!(url.host_str(), Some("127.0.0.1"));
            prop_assert!(url.path().starts_with("/v2/"));
            prop_assert_eq!(PageRequest::from_url(&url), page);
        }

        #[test]
        fn arbitrary_link_headers_never_panic(s in "\\PC{0,60}") {
            if let Ok(v) = http::HeaderValue::from_str(&s) {
                let mut h = http::HeaderMap::new();
                h.insert(http::header::LINK, v);
                let _ = next_link(&h, &base());
            }
        }
    }
}
