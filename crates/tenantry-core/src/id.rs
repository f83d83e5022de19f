//! Stable resource identities: `domain/Kind/scope/name`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The kind of system a resource lives in. Each is applied by one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    Kubernetes,
    Vault,
    Dns,
    Ci,
    Forge,
    Host,
    Portal,
    Idp,
}

impl Domain {
    pub const ALL: [Domain; 8] = [
        Domain::Kubernetes,
        Domain::Vault,
        Domain::Dns,
        Domain::Ci,
        Domain::Forge,
        Domain::Host,
        Domain::Portal,
        Domain::Idp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Kubernetes => "kubernetes",
            Domain::Vault => "vault",
            Domain::Dns => "dns",
            Domain::Ci => "ci",
            Domain::Forge => "forge",
            Domain::Host => "host",
            Domain::Portal => "portal",
            Domain::Idp => "idp",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Domain {
    type Err = ParseIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Domain::ALL.into_iter().find(|d| d.as_str() == text).ok_or_else(|| {
            ParseIdError(format!(
                "unknown domain `{text}`; use one of kubernetes, vault, dns, ci, forge, host, portal, idp"
            ))
        })
    }
}

/// Identity of one managed resource. Sorts by domain, kind, scope, name.
///
/// `scope` is a namespace, zone, mount, pool or account, or `-` when global.
/// It never contains `/`; `name` may (paths, repositories).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceId {
    pub domain: Domain,
    pub kind: Arc<str>,
    pub scope: Arc<str>,
    pub name: Arc<str>,
}

pub const GLOBAL_SCOPE: &str = "-";

impl Ord for ResourceId {
    /// By domain, kind, scope, name — as the derived order would, but a part
    /// both ids share one allocation of (a kind name, a namespace's dozen
    /// objects) is equal without comparing its text: sorting 250,000 ids
    /// compares mostly neighbours of one kind and one scope.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        fn text(a: &Arc<str>, b: &Arc<str>) -> std::cmp::Ordering {
            if Arc::ptr_eq(a, b) { std::cmp::Ordering::Equal } else { a.cmp(b) }
        }
        self.domain
            .cmp(&other.domain)
            .then_with(|| text(&self.kind, &other.kind))
            .then_with(|| text(&self.scope, &other.scope))
            .then_with(|| text(&self.name, &other.name))
    }
}

impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Kind names and the global scope, allocated once: a derivation makes
/// hundreds of thousands of ids from a few dozen such names.
static SHARED_NAMES: std::sync::LazyLock<Vec<Arc<str>>> = std::sync::LazyLock::new(|| {
    let mut names: Vec<Arc<str>> =
        crate::kinds::kind::ALL.iter().chain([&GLOBAL_SCOPE]).map(|name| Arc::from(*name)).collect();
    names.sort();
    names.dedup();
    names
});

/// `name` as a shared allocation when it is a kind name or the global scope.
fn shared_name(name: &str) -> Arc<str> {
    match SHARED_NAMES.binary_search_by(|shared| (**shared).cmp(name)) {
        Ok(found) => SHARED_NAMES.get(found).cloned().unwrap_or_else(|| Arc::from(name)),
        Err(_) => Arc::from(name),
    }
}

impl ResourceId {
    pub fn new(domain: Domain, kind: &str, scope: &str, name: &str) -> Self {
        let scope = if scope == GLOBAL_SCOPE { shared_name(GLOBAL_SCOPE) } else { Arc::from(scope) };
        ResourceId::in_scope(domain, kind, scope, name)
    }

    /// An id in a scope the caller already holds (the dozen objects of one
    /// namespace share its name instead of allocating it each).
    pub fn in_scope(domain: Domain, kind: &str, scope: Arc<str>, name: &str) -> Self {
        ResourceId { domain, kind: shared_name(kind), scope, name: Arc::from(name) }
    }

    pub fn global(domain: Domain, kind: &str, name: &str) -> Self {
        ResourceId::new(domain, kind, GLOBAL_SCOPE, name)
    }

    pub fn is_global(&self) -> bool {
        &*self.scope == GLOBAL_SCOPE
    }
}

impl ResourceId {
    /// Append `domain/Kind/scope/name` (the `Display` form) to `out`: the
    /// human plan writes one per change, a quarter of a million at 10,000
    /// users, and the formatting machinery was a tenth of its cost.
    pub fn push_to(&self, out: &mut String) {
        out.reserve(self.domain.as_str().len() + self.kind.len() + self.scope.len() + self.name.len() + 3);
        // Writing to a String cannot fail.
        let _ = self.write_parts(out);
    }

    fn write_parts(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for (index, part) in [self.domain.as_str(), &self.kind, &self.scope, &self.name].into_iter().enumerate() {
            if index > 0 {
                out.write_char('/')?;
            }
            out.write_str(part)?;
        }
        Ok(())
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_parts(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseIdError(pub String);

impl FromStr for ResourceId {
    type Err = ParseIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.splitn(4, '/');
        let (Some(domain), Some(kind), Some(scope), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseIdError(format!(
                "`{text}` is not a resource id; write `domain/Kind/scope/name`, e.g. `kubernetes/RoleBinding/alice/namespace-owner-alice` (scope `-` when global)"
            )));
        };
        if kind.is_empty() || scope.is_empty() || name.is_empty() {
            return Err(ParseIdError(format!("`{text}` has an empty part; write `domain/Kind/scope/name`")));
        }
        Ok(ResourceId::new(domain.parse()?, kind, scope, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_and_the_global_scope_are_shared_not_copied() {
        let a = ResourceId::new(Domain::Kubernetes, "RoleBinding", "-", "a");
        let b = ResourceId::new(Domain::Kubernetes, &String::from("RoleBinding"), "-", "b");
        assert!(Arc::ptr_eq(&a.kind, &b.kind) && Arc::ptr_eq(&a.scope, &b.scope));
        // Any other text is its own allocation, equal by value.
        let c = ResourceId::new(Domain::Host, "SomethingNew", "ns", "c");
        assert_eq!((&*c.kind, &*c.scope), ("SomethingNew", "ns"));
        for rule in crate::kinds::KINDS {
            if let Some(kind) = rule.kind {
                assert!(crate::kinds::kind::ALL.contains(&kind), "kind::ALL lacks {kind}");
            }
        }
    }

    #[test]
    fn ids_sort_by_domain_kind_scope_and_name_whether_or_not_they_share_text() {
        let scope: Arc<str> = Arc::from("alice");
        let mut ids = vec![
            ResourceId::in_scope(Domain::Vault, "Policy", Arc::from("-"), "a"),
            ResourceId::in_scope(Domain::Kubernetes, "RoleBinding", Arc::clone(&scope), "b"),
            ResourceId::new(Domain::Kubernetes, "RoleBinding", "alice", "a"),
            ResourceId::in_scope(Domain::Kubernetes, "RoleBinding", Arc::clone(&scope), "a"),
            ResourceId::new(Domain::Kubernetes, "Role", "bob", "z"),
            ResourceId::new(Domain::Kubernetes, "RoleBinding", "alic", "z"),
        ];
        ids.sort();
        let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut by_parts = ids.clone();
        by_parts
            .sort_by(|a, b| (a.domain, &*a.kind, &*a.scope, &*a.name).cmp(&(b.domain, &*b.kind, &*b.scope, &*b.name)));
        assert_eq!(ids, by_parts, "{text:?}");
        assert_eq!(ids[2].cmp(&ids[3]), std::cmp::Ordering::Equal, "shared and copied text compare equal");
    }

    #[test]
    fn ids_round_trip_through_text() {
        for text in [
            "kubernetes/RoleBinding/alice/namespace-owner-alice",
            "host/ManagedFile/alice/.codex/AGENTS.md",
            "vault/Policy/-/namespace-owner-alice",
        ] {
            let id: ResourceId = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        assert!("kubernetes/Namespace".parse::<ResourceId>().is_err());
        assert!("cloud/Namespace/-/x".parse::<ResourceId>().unwrap_err().0.contains("unknown domain"));
    }
}
