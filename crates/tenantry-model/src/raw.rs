//! The roster exactly as written (SPEC §2.1), with the position of each value.
//!
//! Field names here are a contract with users and with the origin platform:
//! renaming one breaks every roster in the field.

use crate::roster::{CodeLayout, RbacSubjects, Tier};
use crate::spanned_map::SpannedMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A tenantry roster: the platform settings and the users.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tenantry roster")]
#[schemars(rename = "Roster")]
pub struct RawRoster {
    /// Platform-wide settings; every part is optional and has defaults.
    #[serde(default)]
    #[schemars(with = "Option<RawPlatform>")]
    pub platform: Option<Spanned<RawPlatform>>,
    /// Users by key. The key is a DNS-1123 label used in every derived name.
    pub users: SpannedMap<RawUser>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Platform")]
pub struct RawPlatform {
    /// Cluster/context name written into kubeconfigs.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// Kubernetes API server URL written into kubeconfigs.
    #[schemars(with = "Option<String>")]
    pub api_server: Option<Spanned<String>>,
    /// PEM CA bundle of the API server, written into kubeconfigs.
    #[schemars(with = "Option<String>")]
    pub api_server_ca: Option<Spanned<String>>,
    pub oidc: Option<RawOidc>,
    /// Base domain appended to short domain names.
    #[schemars(with = "Option<String>")]
    pub domain: Option<Spanned<String>>,
    /// Namespaces no user may own, besides tenantry's built-in list of platform
    /// namespaces (`default`, `kube-*`, `*-system`, `cert-manager`, `vault`,
    /// `flux-system`, `argocd`, `ingress-nginx`, `monitoring`, `tenantry`, …).
    /// A name, or a prefix ending in `*` (`team-infra-*`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reserved_namespaces: Vec<Spanned<String>>,
    pub defaults: Option<RawDefaults>,
    /// How tenants are kept apart: `standard` (the default: Pod Security,
    /// admission policies, a default-deny network policy, complete quotas)
    /// or `none` (the origin platform's behaviour: admin in one's namespaces
    /// and a quota, nothing else).
    #[schemars(with = "Option<String>")]
    pub isolation: Option<Spanned<String>>,
    /// Finer switches of `isolation: standard`.
    #[schemars(with = "Option<RawIsolationOptions>")]
    pub isolation_options: Option<Spanned<RawIsolationOptions>>,
    #[schemars(with = "Option<RawDns>")]
    pub dns: Option<Spanned<RawDns>>,
    #[schemars(with = "Option<RawTls>")]
    pub tls: Option<Spanned<RawTls>>,
    pub ci: Option<RawCi>,
    pub forge: Option<RawForge>,
    #[schemars(with = "Option<RawPlatformWorkstation>")]
    pub workstation: Option<Spanned<RawPlatformWorkstation>>,
    /// Identity-provider groups (applied by the `[idp]` target).
    #[schemars(with = "Option<RawIdp>")]
    pub idp: Option<Spanned<RawIdp>>,
    /// Subjects of the tier ClusterRoleBindings: `users` (default, one binding
    /// per user) or `groups` (one binding per tier to its `platform.idp.tier_groups`).
    #[schemars(with = "Option<RbacSubjects>")]
    pub rbac_subjects: Option<Spanned<RbacSubjects>>,
    /// Apps a user may have an instance of (SPEC §11.5), by name: each user
    /// listing one in `apps` gets the template's manifests rendered for them.
    pub apps: Option<SpannedMap<RawApp>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "App")]
pub struct RawApp {
    /// Directory of Kubernetes manifests (`*.yaml`, `*.yml`), relative to the
    /// roster file's directory, rendered per user with minijinja:
    /// `{{ user }}`, `{{ namespace }}`, `{{ host }}`, `{{ email }}`, `{{ values.* }}`.
    #[schemars(with = "String")]
    pub template: Spanned<String>,
    /// The instance's host name; `{user}` is the user key (e.g. `budget.{user}`);
    /// short names get `platform.domain` appended. It gets a DNS record and is
    /// covered by the namespace's TLS secret like a user domain.
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    /// The namespace of the instance (default `{user}`); the user must own it.
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// Values every instance sees as `values`; a user's own `values` are merged over them.
    #[serde(default)]
    pub values: BTreeMap<String, serde_json::Value>,
}

/// One entry of a user's `apps`: an app name, or `{ name, values }`.
#[derive(Debug)]
pub struct RawAppEntry {
    pub name: String,
    pub values: BTreeMap<String, serde_json::Value>,
}

impl<'de> Deserialize<'de> for RawAppEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            name: String,
            #[serde(default)]
            values: BTreeMap<String, serde_json::Value>,
        }

        struct EntryVisitor;

        impl<'de> serde::de::Visitor<'de> for EntryVisitor {
            type Value = RawAppEntry;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an app name, or `{ name: <app>, values: {...} }`")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawAppEntry, E> {
                Ok(RawAppEntry { name: value.to_string(), values: BTreeMap::new() })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawAppEntry, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawAppEntry { name: full.name, values: full.values })
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

impl JsonSchema for RawAppEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AppEntry".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An app of `platform.apps`, by name, or `{ name, values }` with this user's values merged over the app's.",
            "oneOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": { "name": { "type": "string" }, "values": { "type": "object" } },
                    "required": ["name"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Idp")]
pub struct RawIdp {
    /// Identity-provider groups per tier, e.g. `{admin: [platform-admins]}`.
    #[schemars(with = "Option<std::collections::BTreeMap<String, Vec<String>>>")]
    pub tier_groups: Option<SpannedMap<Vec<Spanned<String>>>>,
    /// The group every user with a `workstation` joins (e.g. `T3 Users`).
    #[schemars(with = "Option<String>")]
    pub workstation_group: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Oidc")]
pub struct RawOidc {
    #[schemars(with = "String")]
    pub issuer_url: Spanned<String>,
    #[schemars(with = "String")]
    pub client_id: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IsolationOptions")]
pub struct RawIsolationOptions {
    /// Let tenants create NodePort Services (default false).
    #[serde(default)]
    pub allow_node_ports: bool,
    /// Let tenants create LoadBalancer Services (default false).
    #[serde(default)]
    pub allow_load_balancers: bool,
    /// The namespace of the ingress controller, whose pods may reach tenants' pods (default `ingress-nginx`).
    #[schemars(with = "Option<String>")]
    pub ingress_namespace: Option<Spanned<String>>,
    /// Address ranges tenants' pods may reach besides their own namespace and cluster DNS (e.g. `0.0.0.0/0` for the internet).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub egress_cidrs: Vec<Spanned<String>>,
    /// Cluster-scoped objects namespace-owners may still read: `namespaces`, `nodes` (default none).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub cluster_reads: Vec<Spanned<String>>,
    /// Who may change or delete the objects tenantry places in tenant namespaces, besides
    /// cluster admins (`system:masters`, the roster's admins), the control plane and tenantry's
    /// own service account (`system:serviceaccount:tenantry:tenantry`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub trusted_users: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub trusted_groups: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// ResourceQuota `hard` values every namespace gets unless a user overrides them.
    pub quota: Option<SpannedMap<QuantityText>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Dns")]
pub struct RawDns {
    /// Every user domain becomes a CNAME to this name.
    #[schemars(with = "Option<String>")]
    pub cname_target: Option<Spanned<String>>,
    /// Alternatively, every user domain becomes an A record to this IPv4 address.
    #[schemars(with = "Option<String>")]
    pub a_target: Option<Spanned<String>>,
    /// Proxy through the provider where supported (Cloudflare).
    pub proxied: Option<bool>,
    /// Record TTL in seconds (default 300).
    pub ttl: Option<u32>,
    /// Most records a managed zone may hold after apply; plan fails beyond it.
    #[schemars(with = "Option<u32>")]
    pub record_budget: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tls")]
pub struct RawTls {
    /// Name of the TLS Secret in each namespace (default `tls-secret`).
    #[schemars(with = "Option<String>")]
    pub secret_name: Option<Spanned<String>>,
    /// The Secret copied into every namespace-owner namespace.
    pub source: Option<RawObjectRef>,
    /// A cert-manager issuer; when set, a Certificate is created per namespace instead of a copy.
    pub issuer: Option<RawIssuerRef>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ObjectRef")]
pub struct RawObjectRef {
    #[schemars(with = "String")]
    pub namespace: Spanned<String>,
    #[schemars(with = "String")]
    pub name: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IssuerRef")]
pub struct RawIssuerRef {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `ClusterIssuer` (default) or `Issuer`.
    #[schemars(with = "Option<String>")]
    pub kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ci")]
pub struct RawCi {
    /// Forge logins that are CI admins besides the namespace owners.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub extra_admins: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Forge")]
pub struct RawForge {
    /// Repositories (`owner/name`) on which every non-admin user is a write collaborator.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub repos: Vec<Spanned<String>>,
    /// A branch protected on every repository of `repos`: pushes only by the
    /// users of `push_users`, force pushes refused.
    #[schemars(with = "Option<String>")]
    pub protected_branch: Option<Spanned<String>>,
    /// Roster user keys allowed to push (and merge) to `protected_branch`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub push_users: Vec<Spanned<String>>,
    /// A team (`org/team`) every non-admin user is a member of.
    #[schemars(with = "Option<String>")]
    pub team: Option<Spanned<String>>,
    /// Protected branches one by one, each with its own push whitelist.
    #[serde(default)]
    pub protected_branches: Vec<RawProtectedBranch>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProtectedBranch")]
pub struct RawProtectedBranch {
    #[schemars(with = "String")]
    pub repo: Spanned<String>,
    #[schemars(with = "String")]
    pub branch: Spanned<String>,
    /// Roster user keys allowed to push and merge.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub push_users: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PlatformWorkstation")]
pub struct RawPlatformWorkstation {
    /// Login shell of new accounts (default `/bin/bash`): a program in `/bin`,
    /// `/usr/bin`, `/usr/local/bin`, `/sbin` or `/usr/sbin`.
    #[schemars(with = "Option<String>")]
    pub shell: Option<Spanned<String>>,
    /// Host groups per tier (default `{admin: [sudo]}`); groups missing on the host are skipped.
    pub tier_groups: Option<SpannedMap<Vec<String>>>,
    /// First port of each pool (default `{terminal: 3773, browser: 8931}`).
    pub port_pools: Option<SpannedMap<u16>>,
    pub main_repo: Option<RawRepo>,
    /// Workspace repositories are cloned from `<repo_base><repo>.git`.
    #[schemars(with = "Option<String>")]
    pub repo_base: Option<Spanned<String>>,
    pub extra_remote: Option<RawRepo>,
    /// Where the web-terminal dispatch map is written (default `/etc/t3-serve/dispatch.json`).
    /// Only a `.json` file directly in `/etc/t3-serve/`; any other place is set by
    /// `[host] dispatch_path` in tenantry.toml, which also wins over this field.
    #[schemars(with = "Option<String>")]
    pub dispatch_path: Option<Spanned<String>>,
    /// Files copied into every home; a copy without tenantry's header is left alone.
    /// `source` is relative to the host's source directory (no `..`, not absolute).
    #[serde(default)]
    pub managed_files: Vec<RawManagedFile>,
    /// Symlinks created in every home when absent (`link` relative to the home).
    #[serde(default)]
    pub skeleton_links: Vec<RawSkeletonLink>,
    /// The command a restored terminal session runs (`tenantry session restore`),
    /// e.g. `claude --resume {conversation}`: words split on spaces and passed as
    /// arguments (never to a shell, quotes are not interpreted); placeholders
    /// `{conversation}`, `{session}`, `{dir}`. Also turns on the host's
    /// session timer and boot service.
    #[schemars(with = "Option<String>")]
    pub session_command: Option<Spanned<String>>,
    /// Files installed on the host itself (e.g. `/etc/claude-code/managed-settings.json`):
    /// `source` relative to the host's source directory, `dest` absolute, outside homes.
    /// Rewritten when the source changes, unless someone else changed the copy.
    #[serde(default)]
    pub system_files: Vec<RawManagedFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Repo")]
pub struct RawRepo {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "String")]
    pub url: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ManagedFile")]
pub struct RawManagedFile {
    #[schemars(with = "String")]
    pub source: Spanned<String>,
    #[schemars(with = "String")]
    pub dest: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SkeletonLink")]
pub struct RawSkeletonLink {
    #[schemars(with = "String")]
    pub link: Spanned<String>,
    #[schemars(with = "String")]
    pub target: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "User")]
pub struct RawUser {
    /// OIDC identity: the RBAC subject and the Vault alias.
    #[schemars(with = "String")]
    pub email: Spanned<String>,
    #[schemars(with = "Tier")]
    pub tier: Spanned<Tier>,
    /// Namespaces this user owns (namespace-owner only).
    #[schemars(with = "Option<Vec<String>>")]
    pub namespaces: Option<Spanned<Vec<Spanned<String>>>>,
    /// Domains routed to the platform; short names get `platform.domain` appended.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub domains: Vec<Spanned<String>>,
    /// Merged over `platform.defaults.quota`.
    pub quota: Option<SpannedMap<QuantityText>>,
    /// Forge (and CI) login; defaults to the key.
    #[schemars(with = "Option<String>")]
    pub forge_user: Option<Spanned<String>>,
    /// An account on the shared development host.
    #[schemars(with = "Option<RawUserWorkstation>")]
    pub workstation: Option<Spanned<RawUserWorkstation>>,
    /// Extra identity-provider groups of this user (besides the tier's and the workstation group).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub groups: Vec<Spanned<String>>,
    /// Instances of `platform.apps` this user gets.
    #[serde(default)]
    #[schemars(with = "Vec<RawAppEntry>")]
    pub apps: Vec<Spanned<RawAppEntry>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UserWorkstation")]
pub struct RawUserWorkstation {
    /// Default: the key, sanitised (lowercase, `[a-z0-9_-]`, at most 32 characters).
    #[schemars(with = "Option<String>")]
    pub os_user: Option<Spanned<String>>,
    /// Identity-provider login; default: the local part of the email.
    #[schemars(with = "Option<String>")]
    pub idp_user: Option<Spanned<String>>,
    #[schemars(with = "Option<CodeLayout>")]
    pub code_layout: Option<Spanned<CodeLayout>>,
    /// Extra repositories under `~/code` (workspace layout only).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub repos: Vec<Spanned<String>>,
    /// A parked user keeps home and port but cannot log in.
    #[serde(default)]
    pub parked: bool,
}

/// A Kubernetes quantity as written: a string (`"4Gi"`) or a plain number (`20`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityText(pub String);

impl<'de> Deserialize<'de> for QuantityText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl serde::de::Visitor<'_> for QuantityVisitor {
            type Value = QuantityText;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a Kubernetes quantity such as \"2\", \"500m\" or \"4Gi\"")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<QuantityText, E> {
                Ok(QuantityText(value.to_string()))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<QuantityText, E> {
                Ok(QuantityText(value.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<QuantityText, E> {
                Ok(QuantityText(value.to_string()))
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<QuantityText, E> {
                Ok(QuantityText(value.to_string()))
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

impl JsonSchema for QuantityText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Kubernetes quantity, e.g. \"2\", \"500m\", \"4Gi\".",
            "type": ["string", "number"],
        })
    }
}
