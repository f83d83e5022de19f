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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceId {
    pub domain: Domain,
    pub kind: Arc<str>,
    pub scope: Arc<str>,
    pub name: Arc<str>,
}

pub const GLOBAL_SCOPE: &str = "-";

impl ResourceId {
    pub fn new(domain: Domain, kind: &str, scope: &str, name: &str) -> Self {
        ResourceId { domain, kind: Arc::from(kind), scope: Arc::from(scope), name: Arc::from(name) }
    }

    pub fn global(domain: Domain, kind: &str, name: &str) -> Self {
        ResourceId::new(domain, kind, GLOBAL_SCOPE, name)
    }

    pub fn is_global(&self) -> bool {
        &*self.scope == GLOBAL_SCOPE
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.domain, self.kind, self.scope, self.name)
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
