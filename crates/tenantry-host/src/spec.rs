//! The content fields of each host kind, as `tenantry_core::derive` writes them.

use crate::error::{Error, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use tenantry_core::{Content, ResourceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Account,
    Port,
    GeneratedFile,
    Checkout,
    Kubeconfig,
    ManagedFile,
    SystemFile,
    SkeletonLink,
    ContributeAccess,
}

impl Kind {
    pub fn of(id: &ResourceId) -> Option<Kind> {
        Some(match &*id.kind {
            "Account" => Kind::Account,
            "Port" => Kind::Port,
            "GeneratedFile" => Kind::GeneratedFile,
            "Checkout" => Kind::Checkout,
            "Kubeconfig" => Kind::Kubeconfig,
            "ManagedFile" => Kind::ManagedFile,
            "SystemFile" => Kind::SystemFile,
            "SkeletonLink" => Kind::SkeletonLink,
            "ContributeAccess" => Kind::ContributeAccess,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AccountSpec {
    pub user: String,
    pub os_user: String,
    pub comment: String,
    pub shell: String,
    pub home: String,
    pub groups: Vec<String>,
    pub locked: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PortSpec {
    /// The roster user holding the reservation (the records are by user).
    pub user: String,
    pub pool: String,
    pub port: u16,
    pub os_user: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FileSpec {
    pub path: String,
    pub mode: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckoutSpec {
    pub os_user: String,
    pub repo: String,
    pub url: String,
    pub path: String,
    pub layout: String,
    pub migrate_from: Option<String>,
    #[serde(default)]
    pub extra_remotes: BTreeMap<String, String>,
    /// `unlocked`: the admin tier's checkout, unlocked with git-crypt.
    #[serde(default)]
    pub git_crypt: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KubeconfigSpec {
    pub os_user: String,
    pub path: String,
    pub mode: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ManagedSpec {
    pub os_user: String,
    pub source: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SystemFileSpec {
    pub source: String,
    /// Absolute, taken inside the root.
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LinkSpec {
    pub os_user: String,
    pub path: String,
    pub target: String,
}

pub(crate) fn parse<T: DeserializeOwned>(id: &dyn std::fmt::Display, content: &Content) -> Result<T> {
    serde_json::from_str(content.as_str()).map_err(|e| Error::Content(format!("{id} has unexpected content: {e}")))
}

pub(crate) fn mode(text: &str) -> Result<u32> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::Content(format!("`{text}` is not an octal file mode")))
}

/// The account a per-user resource belongs to (every kind but the generated files has one).
pub(crate) fn os_user_of(content: &Content) -> Option<String> {
    content.to_value().get("os_user").and_then(serde_json::Value::as_str).map(str::to_string)
}
