//! Token scopes of the distribution token spec: `type:name:action,action`.
//!
//! A scope names what a bearer token may do, e.g. `repository:library/alpine:pull,push` or
//! `registry:catalog:*`. Registries ask for one in a `WWW-Authenticate` challenge and token
//! servers receive it as the `scope` query parameter.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// An action a token may grant on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// `pull`: read manifests and blobs.
    Pull,
    /// `push`: write manifests and blobs.
    Push,
    /// `delete`: delete manifests, blobs and tags.
    Delete,
    /// `*`: every action (used by `registry:catalog:*` and ACR's admin scopes).
    All,
    /// Any other action string (e.g. ACR's `metadata_read`), kept verbatim.
    Other(String),
}

impl Action {
    /// The action as it appears in a scope string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
            Self::All => "*",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pull" => Self::Pull,
            "push" => Self::Push,
            "delete" => Self::Delete,
            "*" => Self::All,
            other => {
                if other.is_empty() {
                    return Err(ScopeError::new(
                        s,
                        "an action is empty (check for a doubled or trailing comma)",
                    ));
                }
                if let Some(c) = other.chars().find(|c| !is_action_char(*c)) {
                    return Err(ScopeError::new(
                        s,
                        format!(
                            "action {other:?} contains {c:?}; actions are letters, digits and `_`, `-`, `.`"
                        ),
                    ));
                }
                Self::Other(other.to_owned())
            }
        })
    }
}

fn is_action_char(c: char) -> bool {
    // The token spec's action grammar is `[a-z]*`; real servers also use `_` (ACR's
    // `metadata_read`), so accept a slightly wider, still delimiter-free set.
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// A scope was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {input:?}: {reason}")]
pub struct ScopeError {
    input: String,
    reason: String,
}

impl ScopeError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        Self {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }

    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What was wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// One token scope: a resource type, a resource name and a set of actions.
///
/// The resource type may carry a resource class, as in `repository(plugin):name:pull`; it is
/// kept as part of [`Scope::resource_type`].
///
/// ```
/// use oci_distribution_proto::{Action, Scope};
///
/// let s: Scope = "repository:localhost:5000/app:push,pull".parse()?;
/// assert_eq!(s.name(), "localhost:5000/app");
/// assert_eq!(s.to_string(), "repository:localhost:5000/app:pull,push");
/// assert!(s.covers(&Scope::repository("localhost:5000/app", &[Action::Pull])));
/// # Ok::<(), oci_distribution_proto::ScopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    resource_type: String,
    name: String,
    actions: BTreeSet<Action>,
}

impl Scope {
    /// The `repository` resource type.
    pub const REPOSITORY: &'static str = "repository";
    /// The `registry` resource type (used by `registry:catalog:*`).
    pub const REGISTRY: &'static str = "registry";

    /// A scope on a repository, e.g. `repository:library/alpine:pull`.
    pub fn repository(name: &str, actions: &[Action]) -> Self {
        Self::new(Self::REPOSITORY, name, actions)
    }

    /// `registry:catalog:*`, the scope the `/v2/_catalog` endpoint asks for.
    pub fn catalog() -> Self {
        Self::new(Self::REGISTRY, "catalog", &[Action::All])
    }

    /// A scope of any resource type.
    ///
    /// The parts are not checked: a type or name holding whitespace or control characters
    /// prints as text that does not parse back. Parse untrusted text with [`str::parse`].
    pub fn new(resource_type: &str, name: &str, actions: &[Action]) -> Self {
        Self {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions: actions.iter().cloned().collect(),
        }
    }

    /// The resource type, including any resource class (`repository(plugin)`).
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The resource type without its resource class: `repository` for `repository(plugin)`.
    pub fn base_resource_type(&self) -> &str {
        match self.resource_type.split_once('(') {
            Some((base, _)) => base,
            None => &self.resource_type,
        }
    }

    /// The resource class, `plugin` in `repository(plugin)`, if any.
    pub fn resource_class(&self) -> Option<&str> {
        let (_, rest) = self.resource_type.split_once('(')?;
        rest.strip_suffix(')')
    }

    /// The resource name, e.g. a repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions, sorted and without duplicates.
    pub fn actions(&self) -> &BTreeSet<Action> {
        &self.actions
    }

    /// Whether this scope is about the same resource (type, class and name) as `other`.
    pub fn same_resource(&self, other: &Self) -> bool {
        self.resource_type == other.resource_type && self.name == other.name
    }

    /// Adds `other`'s actions when it is about the same resource; returns whether it was.
    ///
    /// A scope about another resource is left alone and `false` is returned, so callers can
    /// keep it separately (see [`merge_scopes`]).
    pub fn merge(&mut self, other: &Self) -> bool {
        if !self.same_resource(other) {
            return false;
        }
        self.actions.extend(other.actions.iter().cloned());
        true
    }

    /// Whether a token granted this scope also grants everything in `other`.
    ///
    /// `*` covers every action; otherwise each of `other`'s actions must be present.
    pub fn covers(&self, other: &Self) -> bool {
        self.same_resource(other)
            && (self.actions.contains(&Action::All)
                || other.actions.iter().all(|a| self.actions.contains(a)))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.resource_type, self.name)?;
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    /// Parses `type:name:actions`. The name lies between the first `:` and the last `:`, so
    /// names with a registry port (`repository:host:5000/x:pull`) parse; the resource type
    /// may carry a class in parentheses (`repository(plugin)`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(ScopeError::new(
                s,
                format!("it contains {c:?}; separate several scopes with spaces and parse each"),
            ));
        }
        let Some((resource_type, rest)) = s.split_once(':') else {
            return Err(ScopeError::new(
                s,
                "expected `type:name:actions`, found no `:`",
            ));
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            return Err(ScopeError::new(
                s,
                "expected `type:name:actions`, found only one `:` (is the action list missing?)",
            ));
        };
        validate_resource_type(s, resource_type)?;
        if name.is_empty() {
            return Err(ScopeError::new(s, "the resource name is empty"));
        }
        let actions = if actions.is_empty() {
            // An empty action list is legal in the grammar; it grants nothing.
            BTreeSet::new()
        } else {
            actions
                .split(',')
                .map(|a| {
                    a.parse::<Action>()
                        .map_err(|e| ScopeError::new(s, e.reason))
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }
}

fn validate_resource_type(input: &str, resource_type: &str) -> Result<(), ScopeError> {
    let (base, class) = match resource_type.split_once('(') {
        Some((base, rest)) => match rest.strip_suffix(')') {
            Some(class) => (base, Some(class)),
            None => {
                return Err(ScopeError::new(
                    input,
                    format!("resource type {resource_type:?} opens `(` without a closing `)`"),
                ));
            }
        },
        None => (resource_type, None),
    };
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
    };
    if !word(base) {
        return Err(ScopeError::new(
            input,
            format!("resource type {base:?} must be a non-empty word such as `repository`"),
        ));
    }
    if let Some(class) = class
        && !word(class)
    {
        return Err(ScopeError::new(
            input,
            format!("resource class {class:?} must be a non-empty word such as `plugin`"),
        ));
    }
    Ok(())
}

/// Merges scopes about the same resource into one each (union of actions) and sorts them.
///
/// The result is canonical: the same set of grants always yields the same list, so it can
/// serve as a token-cache key.
pub fn merge_scopes<I>(scopes: I) -> Vec<Scope>
where
    I: IntoIterator<Item = Scope>,
{
    let mut merged: Vec<Scope> = Vec::new();
    for scope in scopes {
        match merged.iter_mut().find(|m| m.same_resource(&scope)) {
            Some(existing) => {
                existing.actions.extend(scope.actions);
            }
            None => merged.push(scope),
        }
    }
    merged.sort();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope(s: &str) -> Scope {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_simple_repository_scope() {
        let s = scope("repository:library/alpine:pull");
        assert_eq!(s.resource_type(), "repository");
        assert_eq!(s.name(), "library/alpine");
        assert_eq!(s.actions().iter().collect::<Vec<_>>(), vec![&Action::Pull]);
    }

    #[test]
    fn name_spans_first_to_last_colon() {
        let s = scope("repository:localhost:5000/team/app:pull,push");
        assert_eq!(s.name(), "localhost:5000/team/app");
        assert_eq!(s.actions().len(), 2);
    }

    #[test]
    fn resource_class_is_kept_and_exposed() {
        let s = scope("repository(plugin):vieux/sshfs:pull");
        assert_eq!(s.resource_type(), "repository(plugin)");
        assert_eq!(s.base_resource_type(), "repository");
        assert_eq!(s.resource_class(), Some("plugin"));
        assert_eq!(s.to_string(), "repository(plugin):vieux/sshfs:pull");
        assert!(!s.same_resource(&Scope::repository("vieux/sshfs", &[Action::Pull])));
    }

    #[test]
    fn catalog_scope_displays_per_spec() {
        assert_eq!(Scope::catalog().to_string(), "registry:catalog:*");
        assert_eq!(scope("registry:catalog:*"), Scope::catalog());
    }

    #[test]
    fn actions_are_sorted_and_deduplicated_on_display() {
        assert_eq!(
            scope("repository:a:push,pull,push").to_string(),
            "repository:a:pull,push"
        );
    }

    #[test]
    fn other_actions_are_kept() {
        let s = scope("repository:a:metadata_read,pull");
        assert!(s.actions().contains(&Action::Other("metadata_read".into())));
        assert_eq!(s.to_string(), "repository:a:pull,metadata_read");
    }

    #[test]
    fn empty_action_list_is_allowed() {
        let s = scope("repository:a:");
        assert!(s.actions().is_empty());
        assert_eq!(s.to_string(), "repository:a:");
    }

    #[test]
    fn rejects_malformed_scopes_with_reasons() {
        for (input, needle) in [
            ("repository", "no `:`"),
            ("repository:alpine", "only one `:`"),
            (":alpine:pull", "resource type"),
            ("repository::pull", "name is empty"),
            ("repository:a:pull,,push", "empty"),
            ("repository:a:pu ll", "' '"),
            ("repository(plugin:a:pull", "closing"),
            ("repository():a:pull", "resource class"),
            ("repository:a:pull;push", "';'"),
        ] {
            let err = input.parse::<Scope>().expect_err(input);
            assert!(err.to_string().contains(needle), "{input}: {err}");
            assert_eq!(err.input(), input);
        }
    }

    #[test]
    fn merge_unions_actions_of_same_resource_only() {
        let mut a = Scope::repository("x", &[Action::Pull]);
        assert!(a.merge(&Scope::repository("x", &[Action::Push])));
        assert_eq!(a.to_string(), "repository:x:pull,push");
        assert!(!a.merge(&Scope::repository("y", &[Action::Delete])));
        assert_eq!(a.to_string(), "repository:x:pull,push");
    }

    #[test]
    fn covers_respects_wildcard_and_resource() {
        let all = Scope::repository("x", &[Action::All]);
        let pull_push = Scope::repository("x", &[Action::Pull, Action::Push]);
        let pull = Scope::repository("x", &[Action::Pull]);
        let delete = Scope::repository("x", &[Action::Delete]);
        assert!(all.covers(&delete));
        assert!(pull_push.covers(&pull));
        assert!(!pull.covers(&pull_push));
        assert!(!pull_push.covers(&delete));
        assert!(!all.covers(&Scope::repository("y", &[Action::Pull])));
        assert!(!Scope::catalog().covers(&pull));
    }

    #[test]
    fn merge_scopes_is_canonical() {
        let merged = merge_scopes([
            scope("repository:b:push"),
            Scope::catalog(),
            scope("repository:a:pull"),
            scope("repository:b:pull"),
        ]);
        let shown: Vec<String> = merged.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "registry:catalog:*",
                "repository:a:pull",
                "repository:b:pull,push"
            ]
        );
    }

    fn arb_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Pull),
            Just(Action::Push),
            Just(Action::Delete),
            Just(Action::All),
            "[a-z_]{1,12}".prop_map(|s| s.parse::<Action>().unwrap_or(Action::Other(s))),
        ]
    }

    fn arb_scope() -> impl Strategy<Value = Scope> {
        (
            prop_oneof![
                Just("repository".to_owned()),
                Just("registry".to_owned()),
                "[a-z]{1,8}(\\([a-z]{1,6}\\))?",
            ],
            "[a-z0-9]{1,6}(:[0-9]{1,5})?(/[a-z0-9._-]{1,8}){0,3}",
            proptest::collection::vec(arb_action(), 0..5),
        )
            .prop_map(|(t, n, a)| Scope::new(&t, &n, &a))
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(s in arb_scope()) {
            let shown = s.to_string();
            let back: Scope = shown.parse().map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
            prop_assert_eq!(back, s);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Scope>();
        }

        #[test]
        fn merged_scope_covers_both_inputs(a in arb_scope(), actions in proptest::collection::vec(arb_action(), 0..5)) {
            let b = Scope::new(a.resource_type(), a.name(), &actions);
            let mut m = a.clone();
            prop_assert!(m.merge(&b));
            prop_assert!(m.covers(&a));
            prop_assert!(m.covers(&b));
        }

        #[test]
        fn merge_scopes_is_order_independent_and_idempotent(
            mut scopes in proptest::collection::vec(arb_scope(), 0..6)
        ) {
            let once = merge_scopes(scopes.clone());
            scopes.reverse();
            prop_assert_eq!(&merge_scopes(scopes.clone()), &once);
            prop_assert_eq!(&merge_scopes(once.clone()), &once);
            // Every input is covered by exactly one merged scope (one per resource).
            for s in &scopes {
                prop_assert_eq!(once.iter().filter(|m| m.same_resource(s)).count(), 1);
                prop_assert!(once.iter().any(|m| m.covers(s)));
            }
        }
    }
}
