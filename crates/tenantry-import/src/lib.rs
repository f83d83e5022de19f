//! Importing the origin platform's rosters into one tenantry roster (SPEC §2.3).
//!
//! The origin keeps its users in two places:
//!
//! * `k8s_users`, a JSON string in Vault KV (`secret/platform`), keyed by the
//!   user's cluster name: `{user: {role, email, namespaces, domains, quota:
//!   {cpu_requests, memory_requests, memory_limits, pods}}}` — read by
//!   [`parse_k8s_users`];
//! * the workstation `roster.yaml`, keyed by host account: `users: {os_user:
//!   {authentik_user, k8s_user, tier, namespaces, code_layout, repos,
//!   claude_auth, parked}}` — read by [`parse_workstation_roster`].
//!
//! [`merge`] joins them (workstation `k8s_user` = `k8s_users` key) into roster
//! YAML plus an [`ImportReport`]; [`k8s_users_to_roster`] turns `k8s_users`
//! alone into a validated [`tenantry_model::Roster`] for the `vault://` roster
//! source. Everything here is pure: callers read files and Vault and pass text.
//!
//! # Roles and tiers
//!
//! The origin's `role` (k8s_users) and `tier` (workstation roster) use the same
//! three names as tenantry's tiers, and the origin compares them verbatim
//! (`jq 'map_values(.role)'` against the roster's `tier`), so the mapping is the
//! identity: `admin` → `admin`, `power-user` → `power-user`, `namespace-owner` →
//! `namespace-owner`. Any other value is refused with its position.
//!
//! # Quotas
//!
//! `cpu_requests` → `requests.cpu`, `memory_requests` → `requests.memory`,
//! `memory_limits` → `limits.memory`, `pods` → `pods`, and `cpu_limits` →
//! `limits.cpu` (an older origin field, still accepted). Values keep their text
//! and are checked with [`tenantry_model::quantity::Quantity::parse`]. Only the
//! fields the entry sets are written: absent ones fall back to
//! `platform.defaults.quota`, whose built-in values equal the origin's defaults.
//!
//! # Positions
//!
//! Every error carries the source name and the line and column in the JSON or
//! YAML it came from. Rules that tenantry enforces on the merged roster (DNS
//! labels, unique emails, one owner per namespace…) are checked by
//! `tenantry_model` on the generated YAML, and each resulting diagnostic is
//! moved back to the origin line that produced the offending value.

mod emit;
mod json_positions;
mod k8s_users;
mod merge;
mod workstation;

pub use k8s_users::{K8sUser, K8sUsers, parse_k8s_users};
pub use merge::{
    FieldSource, Import, ImportOptions, ImportReport, PlatformTemplate, Resolution, SourceKind, UserReport,
    k8s_users_to_roster, merge,
};
pub use workstation::{WorkstationRoster, WorkstationUser, parse_workstation_roster};

use tenantry_model::{Diagnostic, Diagnostics, Span, Tier};

/// Inputs larger than this are refused before parsing (the roster's own limit).
pub const MAX_INPUT_BYTES: usize = tenantry_model::MAX_ROSTER_BYTES;

/// Why an import failed. Every variant can be shown as roster diagnostics
/// ([`ImportError::diagnostics`]) so the CLI renders it like any roster error.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An input is not valid JSON/YAML, or a value is not one the origin allows.
    #[error("{}", render(.0))]
    Input(Diagnostics),
    /// The two sources give a user different tiers; nothing is guessed.
    #[error("{}", render_mismatches(.0))]
    TierMismatch(Vec<TierMismatch>),
    /// The platform template is not a valid `platform:` block.
    #[error("{}", render(.0))]
    Template(Diagnostics),
    /// The merged roster breaks a roster rule (SPEC §2.2); each diagnostic
    /// points back at the origin line that produced the value.
    #[error("{}", render(.0))]
    Invalid(Diagnostics),
}

/// A user whose tier differs between `k8s_users` and the workstation roster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TierMismatch {
    /// The tenantry user key (the `k8s_users` key).
    pub user: String,
    pub k8s_users_tier: Tier,
    pub k8s_users_source: String,
    pub k8s_users_span: Span,
    pub workstation_tier: Tier,
    pub workstation_source: String,
    pub workstation_span: Span,
    /// The workstation roster key (host account) of the user.
    pub os_user: String,
}

impl TierMismatch {
    fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic::error(
            &self.workstation_source,
            self.workstation_span,
            "tier-mismatch",
            format!(
                "user `{}` (os_user `{}`) has tier `{}` in the workstation roster but role `{}` in k8s_users ({}:{}:{})",
                self.user,
                self.os_user,
                self.workstation_tier,
                self.k8s_users_tier,
                self.k8s_users_source,
                self.k8s_users_span.line,
                self.k8s_users_span.column,
            ),
        )
        .with_help(
            "tier is a privilege grant: decide which is right and make both sources agree, then import again \
             (the origin's provisioner aborts on the same conflict)",
        )
    }
}

impl ImportError {
    /// The error as roster diagnostics, in the shape `tenantry validate` prints.
    pub fn diagnostics(&self) -> Diagnostics {
        match self {
            ImportError::Input(d) | ImportError::Template(d) | ImportError::Invalid(d) => d.clone(),
            ImportError::TierMismatch(list) => {
                Diagnostics { items: list.iter().map(TierMismatch::to_diagnostic).collect() }
            }
        }
    }
}

pub type Result<T, E = ImportError> = std::result::Result<T, E>;

fn render(diagnostics: &Diagnostics) -> String {
    let lines: Vec<String> = diagnostics.items.iter().map(Diagnostic::to_string).collect();
    lines.join("\n")
}

fn render_mismatches(list: &[TierMismatch]) -> String {
    let lines: Vec<String> = list.iter().map(|m| m.to_diagnostic().to_string()).collect();
    lines.join("\n")
}

/// One input error as an [`ImportError::Input`].
fn input_error(source: &str, span: Span, code: &'static str, message: String, help: impl Into<String>) -> ImportError {
    ImportError::Input(Diagnostic::error(source, span, code, message).with_help(help).into())
}

fn check_size(text: &str, source: &str) -> Result<()> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(input_error(
            source,
            Span::UNKNOWN,
            "input-too-large",
            format!("the input is {} bytes; the limit is {MAX_INPUT_BYTES} bytes", text.len()),
            "check that the right file or Vault field is being read",
        ));
    }
    if text.trim().is_empty() {
        return Err(input_error(
            source,
            Span::UNKNOWN,
            "empty-input",
            "the input is empty".to_string(),
            "pass the origin's file or the Vault field's content",
        ));
    }
    Ok(())
}

/// Parse an origin tier/role name (the identity mapping described in the crate docs).
fn parse_tier(text: &str, source: &str, at: Span, what: &str) -> Result<Tier> {
    Tier::parse(text).ok_or_else(|| {
        let help = match tenantry_model::did_you_mean(text, Tier::ALL.iter().map(|t| t.as_str())) {
            Some(candidate) => format!("did you mean `{candidate}`?"),
            None => "the origin's values are admin, power-user and namespace-owner".to_string(),
        };
        input_error(source, at, "unknown-tier", format!("unknown {what} `{text}`"), help)
    })
}
