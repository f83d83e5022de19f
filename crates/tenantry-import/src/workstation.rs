//! The origin's workstation `roster.yaml` (`users: {os_user: {authentik_user, k8s_user, tier, …}}`).

use crate::{ImportError, Result, check_size, input_error, parse_tier};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use tenantry_model::{CodeLayout, Diagnostic, Span, Tier};

/// The workstation roster, users sorted by host account (the map key).
#[derive(Debug, Clone)]
pub struct WorkstationRoster {
    pub source_name: String,
    pub users: BTreeMap<String, WorkstationUser>,
}

/// One workstation row, with positions of its fields.
#[derive(Debug, Clone)]
pub struct WorkstationUser {
    /// The map key: the pinned host account name.
    pub os_user: String,
    pub span: Span,
    pub authentik_user: String,
    pub authentik_user_span: Span,
    /// The join key into `k8s_users`.
    pub k8s_user: String,
    pub k8s_user_span: Span,
    pub tier: Tier,
    pub tier_span: Span,
    pub namespaces: Vec<String>,
    pub namespaces_span: Span,
    /// `None` when the row does not set it (the origin's default is `single`).
    pub code_layout: Option<CodeLayout>,
    pub code_layout_span: Span,
    pub repos: Vec<String>,
    pub repos_span: Span,
    /// `None` when unset (the origin's default is `true`). tenantry has no equivalent.
    pub claude_auth: Option<bool>,
    pub parked: Option<bool>,
    pub parked_span: Span,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    #[serde(default)]
    users: Option<UserMap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    authentik_user: Spanned<String>,
    k8s_user: Spanned<String>,
    tier: Spanned<String>,
    #[serde(default)]
    namespaces: Option<Spanned<Option<Vec<String>>>>,
    #[serde(default)]
    code_layout: Option<Spanned<String>>,
    #[serde(default)]
    repos: Option<Spanned<Option<Vec<String>>>>,
    #[serde(default)]
    claude_auth: Option<bool>,
    #[serde(default)]
    parked: Option<Spanned<bool>>,
}

/// `users:` as written, keeping each key's position (serde maps drop them).
struct UserMap(Vec<(Spanned<String>, RawUser)>);

impl<'de> Deserialize<'de> for UserMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = UserMap;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a mapping of os_user to its row")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<UserMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = access.next_key::<Spanned<String>>()? {
                    entries.push((key, access.next_value::<RawUser>()?));
                }
                Ok(UserMap(entries))
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<UserMap, E> {
                Ok(UserMap(Vec::new()))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

fn span<T>(spanned: &Spanned<T>) -> Span {
    let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    Span::new(clamp(spanned.referenced.line()), clamp(spanned.referenced.column()))
}

const FIELDS: &[&str] =
    &["authentik_user", "k8s_user", "tier", "namespaces", "code_layout", "repos", "claude_auth", "parked"];

/// Parse the origin's workstation `roster.yaml`. `source_name` names it in errors.
///
/// Checks what the origin's `roster_engine.py` checks (required fields, tier
/// and layout values) and refuses unknown fields with a hint; the tenantry
/// rules (namespaces only for namespace-owners, repos need `workspace`…) are
/// applied to the merged roster.
pub fn parse_workstation_roster(yaml: &str, source_name: &str) -> Result<WorkstationRoster> {
    check_size(yaml, source_name)?;
    let raw: RawRoster = serde_saphyr::from_str(yaml).map_err(|error| translate(source_name, &error))?;
    let mut users = BTreeMap::new();
    for (key, row) in raw.users.map(|m| m.0).unwrap_or_default() {
        let at = span(&key);
        if users.contains_key(&key.value) {
            return Err(input_error(
                source_name,
                at,
                "duplicate-key",
                format!("os_user `{}` is listed twice", key.value),
                "each host account has one row; merge the two",
            ));
        }
        let tier = parse_tier(&row.tier.value, source_name, span(&row.tier), "tier")?;
        let code_layout = match &row.code_layout {
            None => None,
            Some(layout) => Some(match layout.value.as_str() {
                "single" => CodeLayout::Single,
                "workspace" => CodeLayout::Workspace,
                other => {
                    return Err(input_error(
                        source_name,
                        span(layout),
                        "unknown-value",
                        format!("unknown code_layout `{other}`"),
                        "use `single` or `workspace`",
                    ));
                }
            }),
        };
        let list = |field: &Option<Spanned<Option<Vec<String>>>>| match field {
            Some(spanned) => (spanned.value.clone().unwrap_or_default(), span(spanned)),
            None => (Vec::new(), Span::UNKNOWN),
        };
        let (namespaces, namespaces_span) = list(&row.namespaces);
        let (repos, repos_span) = list(&row.repos);
        users.insert(
            key.value.clone(),
            WorkstationUser {
                os_user: key.value.clone(),
                span: at,
                authentik_user: row.authentik_user.value.clone(),
                authentik_user_span: span(&row.authentik_user),
                k8s_user: row.k8s_user.value.clone(),
                k8s_user_span: span(&row.k8s_user),
                tier,
                tier_span: span(&row.tier),
                namespaces,
                namespaces_span,
                code_layout,
                code_layout_span: row.code_layout.as_ref().map(span).unwrap_or_default(),
                repos,
                repos_span,
                claude_auth: row.claude_auth,
                parked: row.parked.as_ref().map(|p| p.value),
                parked_span: row.parked.as_ref().map(span).unwrap_or_default(),
            },
        );
    }
    Ok(WorkstationRoster { source_name: source_name.to_string(), users })
}

fn translate(source: &str, error: &serde_saphyr::Error) -> ImportError {
    let at = error
        .location()
        .map(|l| {
            let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
            Span::new(clamp(l.line()), clamp(l.column()))
        })
        .unwrap_or_default();
    let message = error.without_snippet().to_string();
    let message = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message,
    };
    let help = if let Some(field) = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()) {
        match tenantry_model::did_you_mean(field, FIELDS.iter().copied()) {
            Some(candidate) => format!("did you mean `{candidate}`?"),
            None => format!("a workstation row has only: {}", FIELDS.join(", ")),
        }
    } else if message.contains("missing field") {
        "every row needs authentik_user, k8s_user and tier, as in the origin".to_string()
    } else {
        "fix the YAML at this position; the file is `users: {os_user: {authentik_user, k8s_user, tier, …}}`".to_string()
    };
    ImportError::Input(Diagnostic::error(source, at, "workstation-roster", message).with_help(help).into())
}
