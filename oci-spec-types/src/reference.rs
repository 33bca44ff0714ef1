//! References to content in a registry: `registry[:port]/repository[:tag][@digest]`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::{Digest, DigestError};

/// The longest tag the distribution spec allows.
pub const MAX_TAG_LEN: usize = 128;
/// The longest repository name (registry host included) the distribution reference grammar allows.
pub const MAX_NAME_LEN: usize = 255;

/// A reference to a repository, optionally to a tag and/or a digest in it.
///
/// As in ORAS, the registry is always explicit: the part before the first `/` is the registry
/// host (with optional port), so there is no hidden default registry.
///
/// ```
/// use oci_spec_types::Reference;
/// let r: Reference = "localhost:5000/hello/world:v1".parse()?;
/// assert_eq!(r.registry(), "localhost:5000");
/// assert_eq!(r.repository(), "hello/world");
/// assert_eq!(r.tag(), Some("v1"));
/// assert_eq!(r.to_string(), "localhost:5000/hello/world:v1");
/// # Ok::<(), oci_spec_types::ReferenceError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What was wrong with a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The string was empty.
    Empty,
    /// No `/` separates a registry from the repository, and the input looks like a
    /// repository (such as `alpine:3.20`): there is no default registry.
    MissingRegistry {
        /// The input.
        input: String,
    },
    /// No `/` separates a registry from the repository, and the input looks like a registry
    /// (such as `localhost:5000` or `myregistry.azurecr.io`): the repository is missing.
    MissingRepository {
        /// The input.
        input: String,
    },
    /// The registry host or port is malformed.
    InvalidRegistry {
        /// The registry part.
        registry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The repository is malformed.
    InvalidRepository {
        /// The repository part.
        repository: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tag is malformed.
    InvalidTag {
        /// The tag.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The digest after `@` is malformed.
    InvalidDigest(DigestError),
    /// Registry and repository together are longer than 255 characters.
    NameTooLong {
        /// The length found.
        length: usize,
    },
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(
                f,
                "empty reference: expected registry/repository[:tag][@digest]"
            ),
            Self::MissingRegistry { input } => write!(
                f,
                "invalid reference {input:?}: missing registry (there is no default registry); write it as registry/repository[:tag], such as localhost:5000/{input}"
            ),
            Self::MissingRepository { input } => write!(
                f,
                "invalid reference {input:?}: it names a registry but no repository; write it as {input}/repository[:tag]"
            ),
            Self::InvalidRegistry { registry, reason } => {
                write!(f, "invalid registry {registry:?} in reference: {reason}")
            }
            Self::InvalidRepository { repository, reason } => {
                write!(
                    f,
                    "invalid repository {repository:?} in reference: {reason}"
                )
            }
            Self::InvalidTag { tag, reason } => {
                write!(f, "invalid tag {tag:?} in reference: {reason}")
            }
            Self::InvalidDigest(e @ DigestError::MissingColon { .. }) => write!(
                f,
                "invalid digest in reference: {e}; to name a tag, write `:tag` instead of `@`"
            ),
            Self::InvalidDigest(e) => write!(f, "invalid digest in reference: {e}"),
            Self::NameTooLong { length } => write!(
                f,
                "reference name is {length} characters long; registry and repository together may have at most {MAX_NAME_LEN}"
            ),
        }
    }
}

impl std::error::Error for ReferenceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidDigest(e) => Some(e),
            _ => None,
        }
    }
}

impl Reference {
    /// Parses `registry[:port]/repository[:tag][@digest]`.
    ///
    /// As in ORAS, the registry is everything before the first `/`; in the rest, the first `@`
    /// starts the digest and, before it, the first `:` starts the tag. A reference may have
    /// both a tag and a digest; both are kept (the digest is what [`Reference::target`]
    /// fetches). The parts are checked left to right, so the error names the first bad one.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let Some((registry, path)) = input.split_once('/') else {
            return Err(missing_slash(input));
        };
        let (name, digest) = match path.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (path, None),
        };
        let (repository, tag) = match name.split_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (name, None),
        };
        validate_registry(registry)?;
        validate_repository(repository)?;
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let digest = digest
            .map(Digest::parse)
            .transpose()
            .map_err(ReferenceError::InvalidDigest)?;
        let length = registry.len() + 1 + repository.len();
        if length > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong { length });
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// A reference to a repository, with no tag or digest.
    pub fn new(registry: &str, repository: &str) -> Result<Self, ReferenceError> {
        validate_registry(registry)?;
        validate_repository(repository)?;
        let length = registry.len() + 1 + repository.len();
        if length > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong { length });
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: None,
            digest: None,
        })
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        validate_tag(tag)?;
        Ok(Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.repository_only()
        })
    }

    /// The same repository with `digest` (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.repository_only()
        }
    }

    /// The same repository with neither tag nor digest.
    pub fn repository_only(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The registry host, with its port if one was given.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, such as `hello/world`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when there is one (it pins the content),
    /// else the tag; `None` for a bare repository.
    pub fn target(&self) -> Option<&str> {
        self.digest
            .as_ref()
            .map(Digest::as_str)
            .or(self.tag.as_deref())
    }

    /// Whether the registry is the local machine (`localhost`, an IPv4 address in
    /// `127.0.0.0/8`, `[::1]`), where clients default to plain HTTP as ORAS does.
    pub fn is_loopback_registry(&self) -> bool {
        let host = host_of(&self.registry);
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
        }
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The error for an input with no `/`: a missing repository when the input is clearly a
/// registry host (an IPv6 address, `localhost`, or a dotted host name, each with an optional
/// port), else a missing registry.
fn missing_slash(input: &str) -> ReferenceError {
    let looks_like_registry = validate_registry(input).is_ok() && {
        let host = host_of(input);
        host.starts_with('[') || host.eq_ignore_ascii_case("localhost") || host.contains('.')
    };
    let input = input.to_owned();
    if looks_like_registry {
        ReferenceError::MissingRepository { input }
    } else {
        ReferenceError::MissingRegistry { input }
    }
}

/// The host part of a (syntactically valid) registry: without the port, brackets kept.
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        registry.find(']').map_or(registry, |end| &registry[..=end])
    } else {
        registry.split_once(':').map_or(registry, |(host, _)| host)
    }
}

fn validate_registry(registry: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::InvalidRegistry {
        registry: registry.to_owned(),
        reason,
    };
    if registry.is_empty() {
        return Err(invalid("the registry host is empty"));
    }
    let port = if let Some(rest) = registry.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(invalid("an IPv6 address needs a closing `]`"));
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(
                "the text inside `[]` is not an IPv6 address, such as `[::1]`",
            ));
        }
        if after.is_empty() {
            None
        } else if let Some(port) = after.strip_prefix(':') {
            Some(port)
        } else {
            return Err(invalid("only `:port` may follow `]` of an IPv6 address"));
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        validate_host_name(host).map_err(invalid)?;
        port
    };
    if let Some(port) = port {
        validate_port(port).map_err(invalid)?;
    }
    Ok(())
}

/// `domain-component ('.' domain-component)*`, `domain-component = [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
/// IPv4 addresses are domain names by this grammar.
fn validate_host_name(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the registry host before `:` is empty");
    }
    if host.contains('[') || host.contains(']') {
        return Err("an IPv6 address must be the whole host, in brackets, such as `[::1]:5000`");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(
                "a host name has an empty part between dots (or a leading or trailing dot)",
            );
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("a host name has only letters, digits, `-` and `.`");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a host name part cannot start or end with `-`");
        }
    }
    Ok(())
}

fn validate_port(port: &str) -> Result<(), &'static str> {
    if port.is_empty() {
        return Err("the port after `:` is empty");
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port must be digits only (a second `:` or a letter is not allowed)");
    }
    if port.parse::<u16>().is_err() {
        return Err("the port must be a number from 0 to 65535");
    }
    Ok(())
}

fn validate_repository(repository: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::InvalidRepository {
        repository: repository.to_owned(),
        reason,
    };
    if repository.is_empty() {
        return Err(invalid("the repository is empty"));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(invalid(
                "a path component is empty (two `/` in a row, or a trailing `/`)",
            ));
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lower case"));
        }
        validate_path_component(component).map_err(invalid)?;
    }
    Ok(())
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn validate_path_component(component: &str) -> Result<(), &'static str> {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes
        .iter()
        .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(
            "only lower-case letters, digits and the separators `.`, `_`, `__`, `-` are allowed",
        );
    }
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err("a path component is empty");
    };
    if !alnum(first) || !alnum(last) {
        return Err("a path component must start and end with a letter or digit");
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err("separators are a single `.`, `_` or `__`, or a run of `-`");
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::InvalidTag {
        tag: tag.to_owned(),
        reason,
    };
    if tag.is_empty() {
        return Err(invalid("the tag is empty"));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(invalid("a tag has at most 128 characters"));
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !tag.bytes().next().is_some_and(word) {
        return Err(invalid("a tag must start with a letter, digit or `_`"));
    }
    if !tag.bytes().all(|b| word(b) || b == b'.' || b == b'-') {
        return Err(invalid("a tag has only letters, digits, `_`, `.` and `-`"));
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_drops_the_port() {
        assert_eq!(host_of("localhost:5000"), "localhost");
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("[::1]:5000"), "[::1]");
        assert_eq!(host_of("[::1]"), "[::1]");
    }

    #[test]
    fn path_components() {
        for ok in [
            "a",
            "a0",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a.b_c__d-e",
        ] {
            assert_eq!(validate_path_component(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", ".a", "a.", "-a", "a-", "_a", "a..b", "a___b", "a-.b", "a._b", "a b",
        ] {
            assert!(validate_path_component(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(validate_port("0"), Ok(()));
        assert_eq!(validate_port("65535"), Ok(()));
        assert_eq!(validate_port(""), Err("the port after `:` is empty"));
        assert!(validate_port("65536").unwrap_err().contains("0 to 65535"));
        assert!(validate_port("50a").unwrap_err().contains("digits only"));
        assert!(validate_port("5000:1").unwrap_err().contains("digits only"));
    }

    #[test]
    fn no_slash_tells_registry_from_repository() {
        for registry in [
            "localhost",
            "localhost:5000",
            "[::1]:5000",
            "example.azurecr.io",
            "10.0.0.1:5000",
        ] {
            assert!(
                matches!(
                    missing_slash(registry),
                    ReferenceError::MissingRepository { .. }
                ),
                "{registry}"
            );
        }
        for repository in [
            "alpine",
            "alpine:3",
            "alpine:3.20",
            "alpine@sha256:abc",
            "a_b",
        ] {
            assert!(
                matches!(
                    missing_slash(repository),
                    ReferenceError::MissingRegistry { .. }
                ),
                "{repository}"
            );
        }
    }

    #[test]
    fn loopback() {
        for (input, loopback) in [
            ("localhost/a", true),
            ("LOCALHOST:5000/a", true),
            ("127.0.0.1:5000/a", true),
            ("127.255.0.9/a", true),
            ("[::1]:5000/a", true),
            ("[0:0:0:0:0:0:0:1]/a", true),
            ("127.example.com/a", false),
            ("localhost.example.com/a", false),
            ("[::2]/a", false),
            ("10.0.0.1/a", false),
        ] {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.is_loopback_registry(), loopback, "{input}");
        }
    }
}
