//! The validated roster: defaults applied, names normalised, every value
//! still carrying the position it came from.

use crate::Span;
use crate::quantity::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a user may do on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// cluster-admin.
    Admin,
    /// Cluster-wide read-only, no secrets, no exec.
    PowerUser,
    /// Admin inside their own namespaces only.
    NamespaceOwner,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Admin, Tier::PowerUser, Tier::NamespaceOwner];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Admin => "admin",
            Tier::PowerUser => "power-user",
            Tier::NamespaceOwner => "namespace-owner",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|tier| tier.as_str() == text)
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the tier ClusterRoleBindings name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RbacSubjects {
    /// One binding per user, to the user's email (the default).
    #[default]
    Users,
    /// One binding per tier, to the tier's identity-provider groups
    /// (`platform.idp.tier_groups`): a 10,000-user platform keeps three.
    Groups,
}

/// Where a workstation user's code lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CodeLayout {
    /// The main repository checked out at `~/code`.
    #[default]
    Single,
    /// `~/code` is a directory of checkouts: the main repository and `repos`.
    Workspace,
}

impl CodeLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeLayout::Single => "single",
            CodeLayout::Workspace => "workspace",
        }
    }
}

/// A value and the roster position that produced it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Located<T> {
    pub fn new(value: T, span: Span) -> Self {
        Located { value, span }
    }

    pub fn unlocated(value: T) -> Self {
        Located { value, span: Span::UNKNOWN }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[derive(Debug, Clone)]
pub struct Roster {
    /// The roster's source name (path or URL), for provenance.
    pub source: String,
    pub platform: Platform,
    /// Users by key, sorted.
    pub users: BTreeMap<String, User>,
}

#[derive(Debug, Clone)]
pub struct Platform {
    pub name: String,
    pub api_server: Option<String>,
    pub api_server_ca: Option<String>,
    pub oidc: Option<Oidc>,
    pub domain: Option<String>,
    /// `platform.reserved_namespaces` as written (names, or prefixes ending in `*`),
    /// in addition to the built-in list in [`crate::reserved`].
    pub reserved_namespaces: Vec<Located<String>>,
    pub default_quota: BTreeMap<String, Located<Quantity>>,
    pub isolation: Isolation,
    pub dns: Option<Dns>,
    pub tls: Tls,
    pub ci: Option<Ci>,
    pub forge: Option<Forge>,
    pub workstation: PlatformWorkstation,
    pub idp: Option<Idp>,
    pub rbac_subjects: RbacSubjects,
    /// `platform.apps`, by name.
    pub apps: BTreeMap<String, App>,
}

/// `platform.apps.<name>`: a template every listing user gets an instance of.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// The template directory as written (relative to the roster's directory).
    pub template: Located<String>,
    /// The host pattern as written (`budget.{user}`), if any.
    pub host: Option<Located<String>>,
    /// The namespace pattern (`{user}` by default).
    pub namespace: Located<String>,
    pub values: BTreeMap<String, serde_json::Value>,
    /// The position of the app's key.
    pub span: Span,
    /// The template's files, loaded by the roster's source (validation does
    /// no I/O): empty until then.
    pub files: Vec<TemplateFile>,
}

/// One manifest file of an app template, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    /// The path as shown in provenance: `<template dir>/<file name>`.
    pub path: String,
    pub text: String,
}

/// The placeholder app patterns replace with the user key.
pub const APP_USER_PLACEHOLDER: &str = "{user}";

/// `platform.idp`: the identity-provider groups tenantry keeps users in.
#[derive(Debug, Clone, Default)]
pub struct Idp {
    pub tier_groups: BTreeMap<Tier, Vec<Located<String>>>,
    pub workstation_group: Option<Located<String>>,
    pub span: Span,
}

/// How tenants are kept apart (SPEC §11.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Pod Security, admission policies, default-deny network policy, complete quotas.
    Standard,
    /// The origin's behaviour: admin in one's namespaces and a quota.
    None,
}

impl IsolationLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::Standard => "standard",
            IsolationLevel::None => "none",
        }
    }
}

/// `platform.isolation` and its options.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub level: IsolationLevel,
    pub allow_node_ports: bool,
    pub allow_load_balancers: bool,
    pub ingress_namespace: String,
    pub egress_cidrs: Vec<String>,
    /// `namespaces`, `nodes`: what namespace-owners may still read cluster-wide.
    pub cluster_reads: Vec<String>,
    pub trusted_users: Vec<String>,
    pub trusted_groups: Vec<String>,
    /// The roster position of `platform.isolation` (unknown when defaulted).
    pub span: Span,
}

impl Isolation {
    pub fn is_standard(&self) -> bool {
        self.level == IsolationLevel::Standard
    }
}

#[derive(Debug, Clone)]
pub struct Oidc {
    pub issuer_url: String,
    pub client_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsTarget {
    Cname(String),
    A(std::net::Ipv4Addr),
}

#[derive(Debug, Clone)]
pub struct Dns {
    pub target: DnsTarget,
    pub proxied: bool,
    pub ttl: u32,
    pub record_budget: Option<Located<u32>>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct IssuerRef {
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub secret_name: String,
    pub source: Option<ObjectRef>,
    pub issuer: Option<IssuerRef>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Ci {
    pub extra_admins: Vec<Located<String>>,
}

#[derive(Debug, Clone)]
pub struct Forge {
    pub repos: Vec<Located<String>>,
    /// Every protected branch with its whitelist: `protected_branch` on each
    /// of `repos` (with `push_users`), then the `protected_branches` entries.
    pub protected_branches: Vec<ProtectedBranch>,
    /// `org/team` whose members are the non-admin users.
    pub team: Option<Located<String>>,
}

#[derive(Debug, Clone)]
pub struct ProtectedBranch {
    pub repo: Located<String>,
    pub branch: Located<String>,
    /// Roster user keys on the push (and merge) whitelist.
    pub push_users: Vec<Located<String>>,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct ManagedFile {
    pub source: String,
    pub dest: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct SkeletonLink {
    pub link: String,
    pub target: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct PlatformWorkstation {
    pub shell: String,
    pub tier_groups: BTreeMap<Tier, Vec<String>>,
    /// First port of each pool, by pool name.
    pub port_pools: BTreeMap<String, u16>,
    pub main_repo: Option<Repo>,
    pub repo_base: Option<String>,
    pub extra_remote: Option<Repo>,
    /// Where the dispatch map is written: `[host] dispatch_path` from
    /// tenantry.toml when set, else the roster's (checked) value, else the default.
    pub dispatch_path: String,
    pub managed_files: Vec<ManagedFile>,
    pub skeleton_links: Vec<SkeletonLink>,
    /// `session_command`: what a restored terminal session runs.
    pub session_command: Option<SessionCommand>,
    /// Files installed on the host (`dest` absolute, outside homes).
    pub system_files: Vec<ManagedFile>,
    pub span: Span,
}

/// The placeholders of [`SessionCommand`] words.
pub const SESSION_PLACEHOLDERS: [&str; 3] = ["conversation", "session", "dir"];

/// `platform.workstation.session_command`, validated: argv words, each
/// holding only known `{placeholders}`. It reaches a process only as argv
/// (never a shell), one word per argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCommand {
    pub words: Vec<String>,
    pub span: Span,
}

impl SessionCommand {
    /// The argv for one session. `None` when a word needs the conversation
    /// and the session has none recorded (it then gets the login shell).
    pub fn argv(&self, session: &str, dir: &str, conversation: Option<&str>) -> Option<Vec<String>> {
        let mut argv = Vec::with_capacity(self.words.len());
        for word in &self.words {
            if word.contains("{conversation}") && conversation.is_none() {
                return None;
            }
            let word = word
                .replace("{session}", session)
                .replace("{dir}", dir)
                .replace("{conversation}", conversation.unwrap_or_default());
            argv.push(word);
        }
        Some(argv)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub key: String,
    /// Position of the user's key.
    pub span: Span,
    pub email: Located<String>,
    pub tier: Located<Tier>,
    pub namespaces: Vec<Located<String>>,
    /// Fully qualified domain names.
    pub domains: Vec<Located<String>>,
    /// Platform defaults merged with the user's own values.
    pub quota: BTreeMap<String, Located<Quantity>>,
    pub forge_user: Located<String>,
    pub workstation: Option<Workstation>,
    /// Extra identity-provider groups (validated names, no duplicates).
    pub groups: Vec<Located<String>>,
    /// App instances, in roster order (names unique).
    pub apps: Vec<AppInstance>,
}

/// One user's instance of a `platform.apps` entry, its patterns resolved.
#[derive(Debug, Clone)]
pub struct AppInstance {
    pub app: String,
    /// A namespace the user owns.
    pub namespace: String,
    /// The fully qualified host (also in the user's `domains`), if the app has one.
    pub host: Option<String>,
    /// The app's values with the user's merged over them (top-level keys).
    pub values: BTreeMap<String, serde_json::Value>,
    /// The entry in the user's `apps` list.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Workstation {
    pub os_user: Located<String>,
    pub idp_user: Located<String>,
    pub code_layout: CodeLayout,
    pub repos: Vec<Located<String>>,
    pub parked: bool,
    pub span: Span,
}

/// The quota every namespace gets when the roster sets none (SPEC §2.1).
pub const DEFAULT_QUOTA: &[(&str, &str)] =
    &[("limits.memory", "8Gi"), ("pods", "20"), ("requests.cpu", "2"), ("requests.memory", "4Gi")];
/// Quota bounds `isolation: standard` adds for keys the platform defaults do
/// not set: ephemeral storage and object counts (NodePort and LoadBalancer
/// counts are 0 unless allowed).
pub const ISOLATION_QUOTA: &[(&str, &str)] = &[
    ("configmaps", "50"),
    ("limits.ephemeral-storage", "8Gi"),
    ("persistentvolumeclaims", "10"),
    ("replicationcontrollers", "0"),
    ("requests.ephemeral-storage", "4Gi"),
    ("resourcequotas", "1"),
    ("secrets", "50"),
    ("services", "20"),
    ("services.loadbalancers", "0"),
    ("services.nodeports", "0"),
];
/// The ingress controller's namespace when `isolation_options` does not name one.
pub const DEFAULT_INGRESS_NAMESPACE: &str = "ingress-nginx";
/// Cluster-scoped objects namespace-owners may be allowed to read under `isolation: standard`.
pub const CLUSTER_READS: &[&str] = &["namespaces", "nodes"];
pub const DEFAULT_SHELL: &str = "/bin/bash";
pub const DEFAULT_TLS_SECRET_NAME: &str = "tls-secret";
pub const DEFAULT_DISPATCH_PATH: &str = "/etc/t3-serve/dispatch.json";
/// The one directory the roster may name a dispatch file in (`<dir><name>.json`).
pub const ROSTER_DISPATCH_DIR: &str = "/etc/t3-serve/";
/// Directories a login shell may be taken from.
pub const SHELL_DIRS: &[&str] = &["/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/"];
pub const DEFAULT_PORT_POOLS: &[(&str, u16)] = &[("browser", 8931), ("terminal", 3773)];
pub const DEFAULT_DNS_TTL: u32 = 300;
