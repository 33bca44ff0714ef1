//! Who may do what: users, grants, scope parsing and the requested ∩ allowed intersection.

use std::fmt;

/// Actions allowed on resources matching a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Resource type (`repository`, `registry`, …); `*` matches every type.
    pub resource_type: String,
    /// Resource name: exact, `*` for all, or a prefix ending in `*` (`team/*`).
    pub name: String,
    /// Allowed actions (`pull`, `push`, `delete`, …); `*` allows every action.
    pub actions: Vec<String>,
}

impl Grant {
    /// `actions` on repositories matching `pattern` (`*`, `prefix/*` or an exact name).
    pub fn repository(pattern: &str, actions: &[&str]) -> Self {
        Self {
            resource_type: "repository".into(),
            name: pattern.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// `registry:catalog:*`, what `GET /v2/_catalog` needs.
    pub fn catalog() -> Self {
        Self {
            resource_type: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        }
    }

    /// Every action on every resource.
    pub fn everything() -> Self {
        Self {
            resource_type: "*".into(),
            name: "*".into(),
            actions: vec!["*".into()],
        }
    }

    fn matches(&self, resource_type: &str, name: &str) -> bool {
        (self.resource_type == "*" || self.resource_type == resource_type)
            && match self.name.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => self.name == name,
            }
    }

    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == "*" || a == action)
    }
}

/// A user of the token server or an ACR admin user / repository-scoped token.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Password (compared as is).
    pub password: String,
    /// What the user may do.
    pub access: Vec<Grant>,
}

impl User {
    /// A user with these grants.
    pub fn new(name: &str, password: &str, access: Vec<Grant>) -> Self {
        Self {
            name: name.into(),
            password: password.into(),
            access,
        }
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of logs and assertion messages.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// One requested or granted resource scope, `type:name:action,action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) resource_type: String,
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type,
            self.name,
            self.actions.join(",")
        )
    }
}

/// Parses `scope` values; each may hold several space-separated scopes (ACR's mount challenge).
/// The name may contain `:` (`repository:host:5000/x:pull`), so type is before the first
/// colon and actions after the last. Malformed entries are skipped: they cannot be granted.
pub(crate) fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Scope> {
    values
        .into_iter()
        .flat_map(str::split_whitespace)
        .filter_map(|scope| {
            let (resource_type, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            (!resource_type.is_empty() && !name.is_empty()).then(|| Scope {
                resource_type: resource_type.into(),
                name: name.into(),
                actions: actions
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// The requested actions that `allowed` permits, merged per resource; resources left with no
/// action are dropped (an empty result is a valid token that the registry then refuses).
pub(crate) fn intersect(requested: &[Scope], allowed: &[Grant]) -> Vec<Scope> {
    let mut granted: Vec<Scope> = Vec::new();
    for scope in requested {
        let actions = scope.actions.iter().filter(|action| {
            allowed
                .iter()
                .any(|g| g.matches(&scope.resource_type, &scope.name) && g.allows(action))
        });
        for action in actions {
            let entry = match granted
                .iter_mut()
                .position(|s| s.resource_type == scope.resource_type && s.name == scope.name)
            {
                Some(i) => &mut granted[i],
                None => {
                    granted.push(Scope {
                        resource_type: scope.resource_type.clone(),
                        name: scope.name.clone(),
                        actions: Vec::new(),
                    });
                    let last = granted.len() - 1;
                    &mut granted[last]
                }
            };
            if !entry.actions.contains(action) {
                entry.actions.push(action.clone());
            }
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_spaces_and_keep_colons_in_names() {
        let scopes = parse_scopes([
            "repository:a/b:pull,push repository:localhost:5000/c:pull",
            "registry:catalog:*",
            "garbage",
        ]);
        assert_eq!(scopes.len(), 3);
        assert_eq!(scopes[1].name, "localhost:5000/c");
        assert_eq!(scopes[2].to_string(), "registry:catalog:*");
    }

    #[test]
    fn intersection_keeps_only_allowed_actions() {
        let requested = parse_scopes([
            "repository:team/x:pull,push",
            "repository:other:pull",
            "repository:team/x:delete",
        ]);
        let allowed = [Grant::repository("team/*", &["pull", "delete"])];
        let granted = intersect(&requested, &allowed);
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].actions, ["pull", "delete"]);
        assert!(intersect(&requested, &[]).is_empty());
        let all = intersect(&requested, &[Grant::everything()]);
        assert_eq!(all.len(), 2);
    }
}
