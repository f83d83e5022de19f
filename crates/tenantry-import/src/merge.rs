//! Joining `k8s_users` and the workstation roster into one tenantry roster.
//!
//! # Merge rules
//!
//! Users are joined by the workstation row's `k8s_user` = the `k8s_users` key;
//! that key becomes the tenantry user key (the origin derives every cluster,
//! Vault and CI name from it, and so does tenantry).
//!
//! * **tier** — both sources must agree; a mismatch is an error naming the user,
//!   both tiers and both sources ([`ImportError::TierMismatch`]). The origin's
//!   provisioner aborts on the same conflict. (The origin skipped the check for
//!   workstation admins because their cluster-admin was granted by hand; in
//!   tenantry one tier drives both, so admins are checked too.)
//! * **email, domains, quota** — only `k8s_users` has them; it wins.
//! * **namespaces** — the union, `k8s_users` order first, then namespaces only
//!   the workstation roster lists. Nothing a user has is taken away (SPEC §6);
//!   each side-only namespace is reported. For tiers other than
//!   namespace-owner, namespaces are dropped and reported: the origin ignored
//!   them there and tenantry refuses them.
//! * **workstation** — only the workstation roster has it: `os_user` = the row
//!   key, `idp_user` = `authentik_user`, `code_layout`, `repos`, `parked` as
//!   written. `claude_auth` has no tenantry equivalent and is reported as not
//!   carried.
//! * **users in one source only** are imported and reported. A workstation-only
//!   user has no email in either source: it gets `<key>@example.invalid` (a
//!   reserved domain nobody can log in with, so nothing is granted to a real
//!   identity) and the report asks for the real one.
//! * **forge_user** is left to its default, the key: the origin required the
//!   Forgejo login to equal the `k8s_users` key.
//!
//! The result is validated with `tenantry_model`; any roster error is reported
//! at the origin line that produced it.

use crate::emit::{Doc, Origin, flow_list, scalar};
use crate::{ImportError, K8sUser, K8sUsers, Result, TierMismatch, WorkstationRoster, WorkstationUser, input_error};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tenantry_model::{CodeLayout, Diagnostics, Roster, Span, Tier, ValidationContext};

/// An existing roster (or fragment) whose top-level `platform:` block is copied verbatim.
#[derive(Debug, Clone, Copy)]
pub struct PlatformTemplate<'a> {
    pub source_name: &'a str,
    pub text: &'a str,
}

/// Settings of an import that are not data.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// When the import ran, written into the header (the caller reads the clock).
    pub generated_at: String,
    /// Name of the roster being written (e.g. the `-o` path), for positions of generated lines.
    pub output_name: String,
    /// What validation knows from tenantry.toml (DNS zones).
    pub context: ValidationContext,
}

impl ImportOptions {
    pub fn new(generated_at: impl Into<String>) -> Self {
        ImportOptions {
            generated_at: generated_at.into(),
            output_name: "roster.yaml".to_string(),
            context: ValidationContext::default(),
        }
    }
}

/// The imported roster and what happened on the way.
#[derive(Debug, Clone)]
pub struct Import {
    /// Roster YAML that parses and validates with `tenantry_model`.
    pub roster_yaml: String,
    pub report: ImportReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    K8sUsers,
    WorkstationRoster,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::K8sUsers => "k8s_users",
            SourceKind::WorkstationRoster => "workstation roster",
        })
    }
}

/// Which source gave a roster field, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldSource {
    /// Roster field, e.g. `email`, `quota.pods`, `workstation.idp_user`.
    pub field: String,
    pub from: SourceKind,
    /// `source:line:column` of the origin value.
    pub at: String,
}

/// A disagreement or loss, and the rule that resolved it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolution {
    pub field: String,
    pub detail: String,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserReport {
    /// The tenantry user key.
    pub user: String,
    pub sources: Vec<SourceKind>,
    pub os_user: Option<String>,
    pub fields: Vec<FieldSource>,
    pub resolutions: Vec<Resolution>,
    /// What the admin must do before applying (placeholders, grants that appear).
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub generated_at: String,
    /// `kind: source name` of each input.
    pub sources: Vec<String>,
    /// Where the `platform:` block came from.
    pub platform: String,
    /// Users sorted by key.
    pub users: Vec<UserReport>,
    /// Roster warnings (SPEC §2.2) and import-wide notes.
    pub notes: Vec<String>,
    /// What the admin should decide after the import (import-wide).
    pub actions: Vec<String>,
}

impl ImportReport {
    pub fn users_from(&self, kind: SourceKind) -> usize {
        self.users.iter().filter(|u| u.sources.contains(&kind)).count()
    }

    pub fn needs_attention(&self) -> bool {
        self.users.iter().any(|u| !u.actions.is_empty())
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Import at {}", self.generated_at)?;
        for source in &self.sources {
            writeln!(f, "  source: {source}")?;
        }
        writeln!(f, "  platform: {}", self.platform)?;
        let both = self.users.iter().filter(|u| u.sources.len() == 2).count();
        writeln!(
            f,
            "  {} users: {both} in both sources, {} in k8s_users only, {} in the workstation roster only",
            self.users.len(),
            self.users.iter().filter(|u| u.sources == [SourceKind::K8sUsers]).count(),
            self.users.iter().filter(|u| u.sources == [SourceKind::WorkstationRoster]).count(),
        )?;
        for user in &self.users {
            let sources: Vec<String> = user.sources.iter().map(ToString::to_string).collect();
            write!(f, "\n{} (from {})", user.user, sources.join(" + "))?;
            if let Some(os_user) = &user.os_user {
                write!(f, ", os_user {os_user}")?;
            }
            writeln!(f)?;
            for field in &user.fields {
                writeln!(f, "  {:<24} {} ({})", field.field, field.from, field.at)?;
            }
            for resolution in &user.resolutions {
                writeln!(f, "  resolved {}: {} — {}", resolution.field, resolution.detail, resolution.rule)?;
            }
            for action in &user.actions {
                writeln!(f, "  ACTION: {action}")?;
            }
        }
        for note in &self.notes {
            writeln!(f, "\nnote: {note}")?;
        }
        for action in &self.actions {
            writeln!(f, "\nACTION: {action}")?;
        }
        Ok(())
    }
}

/// The name the generated roster has while it is validated; positions quoting
/// it are rewritten to origin positions.
const GENERATED: &str = "<imported roster>";
const PLACEHOLDER_EMAIL_DOMAIN: &str = "example.invalid";
const PLACEHOLDER_REPO_BASE: &str = "https://forge.example.invalid/";
/// The origin isolates nothing; an imported roster keeps that until the admin decides.
const ISOLATION_LINE: &str = "  isolation: none   # the origin's behaviour; `standard` isolates tenants (Pod Security, network policy, admission policies)";
const ISOLATION_ACTION: &str = "the imported roster keeps the origin's behaviour (`platform.isolation: none`): tenants can run privileged pods, open NodePorts and reach each other's pods. Set `isolation: standard` once tenants' workloads comply (`tenantry plan` warns about pods the new rules would refuse)";

enum PlatformChoice<'a> {
    Template(PlatformTemplate<'a>),
    Placeholder,
    Absent,
}

/// Merge the origin's two rosters into one tenantry roster with a report.
///
/// Either source may be absent (import of one alone); `platform_template`
/// supplies the `platform:` block, otherwise a commented placeholder is
/// written. See the module docs for the merge rules.
pub fn merge(
    k8s: Option<&K8sUsers>,
    workstation: Option<&WorkstationRoster>,
    platform_template: Option<PlatformTemplate<'_>>,
    options: &ImportOptions,
) -> Result<Import> {
    if k8s.is_none() && workstation.is_none() {
        return Err(input_error(
            &options.output_name,
            Span::UNKNOWN,
            "nothing-to-import",
            "neither k8s_users nor a workstation roster was given".to_string(),
            "pass --k8s-users and/or --workstation",
        ));
    }
    let platform = match platform_template {
        Some(template) => PlatformChoice::Template(template),
        None => PlatformChoice::Placeholder,
    };
    let built = build(k8s, workstation, &platform, options)?;
    let (_, warnings) = validate(&built.doc, options)?;
    let mut report = built.report;
    report.notes.extend(warnings.items.iter().map(ToString::to_string));
    Ok(Import { roster_yaml: built.doc.text(), report })
}

/// The `vault://<mount>/<path>#<key>` roster source: `k8s_users` JSON → a validated roster.
///
/// The JSON becomes roster YAML by the same rules as [`merge`] (with no
/// workstation roster, and no placeholder platform: without `platform_template`
/// the roster has no `platform:` block, so short domain names need
/// `[dns] zones` or a template's `platform.domain`), which `tenantry_model`
/// then parses and validates. Diagnostics and the roster's value positions are
/// moved back into the JSON: a bad namespace points at the user's
/// `namespaces` key in the JSON, a duplicate email at the `email` key.
/// Platform values keep positions in the template.
pub fn k8s_users_to_roster(
    json: &str,
    source: &str,
    platform_template: Option<PlatformTemplate<'_>>,
    context: &ValidationContext,
) -> Result<Roster> {
    let k8s = crate::parse_k8s_users(json, source)?;
    // The roster is validated as generated text: tell validation where it really lives,
    // so user keys that would cover the roster's own Vault path are refused.
    let context = ValidationContext { roster_vault_source: Some(source.to_string()), ..context.clone() };
    let options = ImportOptions { generated_at: "load time".to_string(), output_name: source.to_string(), context };
    let platform = match platform_template {
        Some(template) => PlatformChoice::Template(template),
        None => PlatformChoice::Absent,
    };
    let built = build(Some(&k8s), None, &platform, &options)?;
    let (mut roster, _) = validate(&built.doc, &options)?;
    roster.source = source.to_string();
    remap_roster(&mut roster, &built.doc);
    Ok(roster)
}

struct Built {
    doc: Doc,
    report: ImportReport,
}

fn validate(doc: &Doc, options: &ImportOptions) -> Result<(Roster, Diagnostics)> {
    let text = doc.text();
    let remap = |d: Diagnostics| doc.remap(GENERATED, &options.output_name, d);
    let raw = tenantry_model::parse_raw(GENERATED, text.as_bytes()).map_err(|d| ImportError::Invalid(remap(d)))?;
    let (roster, warnings) = tenantry_model::validate_with_warnings(GENERATED, raw, &options.context)
        .map_err(|d| ImportError::Invalid(remap(d)))?;
    Ok((roster, remap(warnings)))
}

fn remap_roster(roster: &mut Roster, doc: &Doc) {
    for user in roster.users.values_mut() {
        user.span = doc.map_span(user.span);
        user.email.span = doc.map_span(user.email.span);
        user.tier.span = doc.map_span(user.tier.span);
        user.forge_user.span = doc.map_span(user.forge_user.span);
        for located in user.namespaces.iter_mut().chain(user.domains.iter_mut()) {
            located.span = doc.map_span(located.span);
        }
        for quantity in user.quota.values_mut() {
            quantity.span = doc.map_span(quantity.span);
        }
    }
    for quantity in roster.platform.default_quota.values_mut() {
        quantity.span = doc.map_span(quantity.span);
    }
}

fn at(source: &str, span: Span) -> String {
    if span.is_known() { format!("{source}:{}:{}", span.line, span.column) } else { source.to_string() }
}

fn build(
    k8s: Option<&K8sUsers>,
    workstation: Option<&WorkstationRoster>,
    platform: &PlatformChoice<'_>,
    options: &ImportOptions,
) -> Result<Built> {
    // Join: tenantry key → (k8s entry, workstation row).
    let mut rows: BTreeMap<String, &WorkstationUser> = BTreeMap::new();
    if let Some(ws) = workstation {
        for row in ws.users.values() {
            if let Some(earlier) = rows.insert(row.k8s_user.clone(), row) {
                return Err(input_error(
                    &ws.source_name,
                    row.k8s_user_span,
                    "k8s-user-twice",
                    format!(
                        "k8s_user `{}` is used by os_user `{}` and by os_user `{}` ({})",
                        row.k8s_user,
                        row.os_user,
                        earlier.os_user,
                        at(&ws.source_name, earlier.k8s_user_span)
                    ),
                    "a tenantry user has one workstation account; give each row its own k8s_user",
                ));
            }
        }
    }
    let mut keys: BTreeSet<String> = rows.keys().cloned().collect();
    if let Some(k8s) = k8s {
        keys.extend(k8s.users.keys().cloned());
    }

    let mismatches: Vec<TierMismatch> = keys
        .iter()
        .filter_map(|key| {
            let (k8s, ws) = (k8s?, workstation?);
            let (entry, row) = (k8s.users.get(key)?, rows.get(key)?);
            (entry.tier != row.tier).then(|| TierMismatch {
                user: key.clone(),
                k8s_users_tier: entry.tier,
                k8s_users_source: k8s.source_name.clone(),
                k8s_users_span: entry.tier_span,
                workstation_tier: row.tier,
                workstation_source: ws.source_name.clone(),
                workstation_span: row.tier_span,
                os_user: row.os_user.clone(),
            })
        })
        .collect();
    if !mismatches.is_empty() {
        return Err(ImportError::TierMismatch(mismatches));
    }

    let mut doc = Doc::default();
    let mut sources = Vec::new();
    if let Some(k8s) = k8s {
        sources.push(format!("k8s_users: {} ({} users)", k8s.source_name, k8s.users.len()));
    }
    if let Some(ws) = workstation {
        sources.push(format!("workstation roster: {} ({} users)", ws.source_name, ws.users.len()));
    }
    let needs_repo_base = workstation.is_some_and(|w| w.users.values().any(|r| !r.repos.is_empty()));
    let platform_note = write_header_and_platform(&mut doc, platform, &sources, needs_repo_base, options)?;

    let mut users = Vec::new();
    if keys.is_empty() {
        doc.line("users: {}", None);
    } else {
        doc.line("users:", None);
    }
    for key in &keys {
        let entry = k8s.and_then(|k| k.users.get(key).map(|e| (k.source_name.as_str(), e)));
        let row = workstation.and_then(|w| rows.get(key).map(|r| (w.source_name.as_str(), *r)));
        users.push(write_user(
            &mut doc,
            key,
            entry,
            row,
            k8s.is_some(),
            matches!(platform, PlatformChoice::Placeholder),
        ));
    }
    let report = ImportReport {
        generated_at: options.generated_at.clone(),
        sources,
        platform: platform_note,
        users,
        notes: Vec::new(),
        actions: vec![ISOLATION_ACTION.to_string()],
    };
    Ok(Built { doc, report })
}

fn write_header_and_platform(
    doc: &mut Doc,
    platform: &PlatformChoice<'_>,
    sources: &[String],
    needs_repo_base: bool,
    options: &ImportOptions,
) -> Result<String> {
    if !matches!(platform, PlatformChoice::Absent) {
        doc.line("# tenantry roster imported from the origin platform by `tenantry import`.", None);
        doc.line(format!("# Generated at {}. Sources:", options.generated_at), None);
        for source in sources {
            doc.line(format!("#   {source}"), None);
        }
        doc.line("# Users are sorted by key; each says which source gave it. Read the import report", None);
        doc.line("# for conflicts and placeholders, then run `tenantry validate` and `tenantry plan`.", None);
    }
    match platform {
        PlatformChoice::Absent => {
            doc.line("platform:", None);
            doc.line(ISOLATION_LINE, None);
            Ok("none (built from k8s_users alone)".to_string())
        }
        PlatformChoice::Placeholder => {
            doc.line("#", None);
            doc.line("# No platform block was given (`--platform-from`): the placeholder below only makes", None);
            doc.line("# this roster valid. Replace it before `tenantry apply` (see `tenantry schema`).", None);
            doc.line("platform:", None);
            doc.line(
                format!("  domain: {PLACEHOLDER_EMAIL_DOMAIN}   # TODO: the origin's base domain; short user domains are appended to it"),
                None,
            );
            doc.line(ISOLATION_LINE, None);
            if needs_repo_base {
                // Workspace repos need a clone base to validate; the origin's is not in its data.
                doc.line("  workstation:", None);
                doc.line(
                    format!("    repo_base: {PLACEHOLDER_REPO_BASE}   # TODO: workspace repos clone from <repo_base><repo>.git"),
                    None,
                );
            }
            Ok(format!("placeholder (domain: {PLACEHOLDER_EMAIL_DOMAIN}); replace it before applying"))
        }
        PlatformChoice::Template(template) => {
            let (first_line, block) = platform_block(template)?;
            let sets_isolation = check_template(template, first_line, &block)?;
            doc.line(format!("# platform: copied from {}", template.source_name), None);
            for (offset, line) in block.iter().enumerate() {
                let line_number = first_line.saturating_add(u32::try_from(offset).unwrap_or(u32::MAX));
                let origin = Origin {
                    source: template.source_name.to_string(),
                    span: Span::new(line_number, 1),
                    verbatim: true,
                };
                match (offset, sets_isolation) {
                    // A flow mapping on one line: `platform: { name: x }`.
                    (0, false) if line.contains('{') => {
                        doc.line(line.replacen('{', "{ isolation: none,", 1), Some(origin));
                    }
                    (0, false) => {
                        doc.line(line.clone(), Some(origin));
                        doc.line(ISOLATION_LINE, None);
                    }
                    _ => doc.line(line.clone(), Some(origin)),
                }
            }
            Ok(format!("copied from {}", template.source_name))
        }
    }
}

/// The lines of the template's top-level `platform:` key (first line number, lines).
fn platform_block(template: &PlatformTemplate<'_>) -> Result<(u32, Vec<String>)> {
    let lines: Vec<&str> = template.text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("platform:")) else {
        return Err(ImportError::Template(
            tenantry_model::Diagnostic::error(
                template.source_name,
                Span::UNKNOWN,
                "no-platform-block",
                "the template has no top-level `platform:` key",
            )
            .with_help("pass a roster whose `platform:` block starts at column 1")
            .into(),
        ));
    };
    let mut end = start + 1;
    while end < lines.len() {
        let line = lines[end];
        let continues = line.trim().is_empty() || line.starts_with([' ', '\t', '#']);
        if !continues {
            break;
        }
        end += 1;
    }
    // Trailing blank and comment-only lines belong to what follows.
    while end > start + 1 && (lines[end - 1].trim().is_empty() || lines[end - 1].starts_with('#')) {
        end -= 1;
    }
    let first_line = u32::try_from(start + 1).unwrap_or(u32::MAX);
    Ok((first_line, lines[start..end].iter().map(|l| l.to_string()).collect()))
}

/// Validate the platform block alone, at its own line numbers in the template.
/// Validate the template's block; whether it says `isolation:` itself.
fn check_template(template: &PlatformTemplate<'_>, first_line: u32, block: &[String]) -> Result<bool> {
    let padding = usize::try_from(first_line.saturating_sub(1)).unwrap_or(0);
    let mut text = "\n".repeat(padding);
    for line in block {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("users: {}\n");
    let raw = tenantry_model::parse_raw(template.source_name, text.as_bytes()).map_err(ImportError::Template)?;
    let sets_isolation = raw.platform.as_ref().is_some_and(|p| p.value.isolation.is_some());
    tenantry_model::validate(template.source_name, raw, &ValidationContext::default())
        .map_err(ImportError::Template)?;
    Ok(sets_isolation)
}

fn write_user(
    doc: &mut Doc,
    key: &str,
    entry: Option<(&str, &K8sUser)>,
    row: Option<(&str, &WorkstationUser)>,
    had_k8s_users: bool,
    placeholder_platform: bool,
) -> UserReport {
    let mut report = UserReport {
        user: key.to_string(),
        sources: Vec::new(),
        os_user: row.map(|(_, r)| r.os_user.clone()),
        fields: Vec::new(),
        resolutions: Vec::new(),
        actions: Vec::new(),
    };
    let mut from = |field: &str, kind: SourceKind, source: &str, span: Span| {
        report.fields.push(FieldSource { field: field.to_string(), from: kind, at: at(source, span) });
        Origin::at(source, span)
    };
    const K8S: SourceKind = SourceKind::K8sUsers;
    const WS: SourceKind = SourceKind::WorkstationRoster;

    let mut provenance = Vec::new();
    if let Some((source, e)) = entry {
        provenance.push(format!("k8s_users {}", at(source, e.span)));
    }
    if let Some((source, r)) = row {
        provenance.push(format!("workstation roster {} (os_user {})", at(source, r.span), r.os_user));
    }
    let key_origin = match (entry, row) {
        (Some((source, e)), _) => Origin::at(source, e.span),
        (None, Some((source, r))) => Origin::at(source, r.k8s_user_span),
        (None, None) => None,
    };
    doc.line(format!("  {}:", scalar(key)), key_origin);
    doc.line(format!("    # from {}", provenance.join(" and ")), None);

    // email
    let mut actions = Vec::new();
    let mut resolutions = Vec::new();
    match entry {
        Some((source, e)) => {
            let origin = from("email", K8S, source, e.email_span);
            doc.line(format!("    email: {}", scalar(&e.email)), origin);
        }
        None => {
            let placeholder = format!("{key}@{PLACEHOLDER_EMAIL_DOMAIN}");
            doc.line(
                format!("    email: {}   # TODO: not in either source; set the real OIDC email", scalar(&placeholder)),
                None,
            );
            actions.push(format!(
                "set the real email: neither source has one, `{placeholder}` is a placeholder no one can log in with"
            ));
        }
    }

    // tier (equal in both when both exist; mismatches were refused earlier)
    let (tier, tier_origin) = match (entry, row) {
        (Some((source, e)), _) => {
            let origin = from("tier", K8S, source, e.tier_span);
            if let Some((ws_source, r)) = row {
                from("tier", WS, ws_source, r.tier_span);
            }
            (e.tier, origin)
        }
        (None, Some((source, r))) => (r.tier, from("tier", WS, source, r.tier_span)),
        (None, None) => (Tier::NamespaceOwner, None),
    };
    doc.line(format!("    tier: {tier}"), tier_origin);

    // namespaces: the union
    let k8s_namespaces: &[String] = entry.map(|(_, e)| e.namespaces.as_slice()).unwrap_or_default();
    let ws_namespaces: &[String] = row.map(|(_, r)| r.namespaces.as_slice()).unwrap_or_default();
    if tier == Tier::NamespaceOwner {
        let mut listed: Vec<(String, Option<Origin>)> = Vec::new();
        if let Some((source, e)) = entry {
            for namespace in &e.namespaces {
                if !listed.iter().any(|(n, _)| n == namespace) {
                    listed.push((namespace.clone(), Origin::at(source, e.namespaces_span)));
                }
            }
            if !e.namespaces.is_empty() {
                from("namespaces", K8S, source, e.namespaces_span);
            }
        }
        if let Some((source, r)) = row {
            let mut extra = Vec::new();
            for namespace in &r.namespaces {
                if !listed.iter().any(|(n, _)| n == namespace) {
                    listed.push((namespace.clone(), Origin::at(source, r.namespaces_span)));
                    extra.push(namespace.clone());
                }
            }
            if !r.namespaces.is_empty() {
                from("namespaces", WS, source, r.namespaces_span);
            }
            if entry.is_some() && !extra.is_empty() {
                resolutions.push(Resolution {
                    field: "namespaces".to_string(),
                    detail: format!("{} only in the workstation roster", flow_list(&extra)),
                    rule: "kept: namespaces are the union of both sources".to_string(),
                });
            }
            let missing: Vec<String> = k8s_namespaces.iter().filter(|n| !r.namespaces.contains(n)).cloned().collect();
            if entry.is_some() && !missing.is_empty() {
                resolutions.push(Resolution {
                    field: "namespaces".to_string(),
                    detail: format!("{} only in k8s_users", flow_list(&missing)),
                    rule: "kept: namespaces are the union of both sources".to_string(),
                });
            }
        }
        let field_origin = entry
            .map(|(s, e)| Origin::at(s, e.namespaces_span))
            .or_else(|| row.map(|(s, r)| Origin::at(s, r.namespaces_span)))
            .flatten();
        if !listed.is_empty() {
            doc.line("    namespaces:", field_origin);
            for (namespace, origin) in listed {
                doc.line(format!("      - {}", scalar(&namespace)), origin);
            }
        }
    } else {
        for (kind, list) in [(K8S, k8s_namespaces), (WS, ws_namespaces)] {
            if !list.is_empty() {
                resolutions.push(Resolution {
                    field: "namespaces".to_string(),
                    detail: format!("{kind} lists {} for a {tier}", flow_list(list)),
                    rule: "dropped: only namespace-owners own namespaces (the origin ignored them too)".to_string(),
                });
            }
        }
    }

    if let Some((source, e)) = entry {
        if !e.domains.is_empty() {
            let origin = from("domains", K8S, source, e.domains_span);
            doc.line(format!("    domains: {}", flow_list(&e.domains)), origin);
            if placeholder_platform && e.domains.iter().any(|d| !d.contains('.')) {
                actions.push(format!(
                    "short domains {} are qualified with the placeholder platform.domain; set the real one",
                    flow_list(&e.domains)
                ));
            }
        }
        if !e.quota.is_empty() {
            doc.line("    quota:", None);
            // The origin's field order (requests, then limits, then pods) reads better than sorted names.
            let ordered =
                crate::k8s_users::QUOTA_FIELDS.iter().filter_map(|(_, name)| e.quota.get_key_value(*name)).chain(
                    e.quota.iter().filter(|(name, _)| !crate::k8s_users::QUOTA_FIELDS.iter().any(|(_, n)| n == name)),
                );
            for (name, (text, span)) in ordered {
                let origin = from(&format!("quota.{name}"), K8S, source, *span);
                doc.line(format!("      {name}: {}", serde_json::to_string(text).unwrap_or_default()), origin);
            }
        }
    }

    if let Some((source, r)) = row {
        let origin = from("workstation.os_user", WS, source, r.span);
        doc.line("    workstation:", origin.clone());
        doc.line(format!("      os_user: {}", scalar(&r.os_user)), origin);
        let origin = from("workstation.idp_user", WS, source, r.authentik_user_span);
        doc.line(format!("      idp_user: {}", scalar(&r.authentik_user)), origin);
        if let Some(layout) = r.code_layout {
            let origin = from("workstation.code_layout", WS, source, r.code_layout_span);
            doc.line(format!("      code_layout: {}", layout.as_str()), origin);
        }
        if !r.repos.is_empty() {
            let origin = from("workstation.repos", WS, source, r.repos_span);
            doc.line(format!("      repos: {}", flow_list(&r.repos)), origin);
            if placeholder_platform {
                actions.push(format!(
                    "workspace repos {} clone from the placeholder platform.workstation.repo_base; set the real one",
                    flow_list(&r.repos)
                ));
            }
            if r.code_layout != Some(CodeLayout::Workspace) {
                actions.push("`repos` needs `code_layout: workspace` (the origin refused this too)".to_string());
            }
        }
        if let Some(parked) = r.parked {
            let origin = from("workstation.parked", WS, source, r.parked_span);
            doc.line(format!("      parked: {parked}"), origin);
        }
        if let Some(claude_auth) = r.claude_auth {
            resolutions.push(Resolution {
                field: "claude_auth".to_string(),
                detail: format!("claude_auth: {claude_auth}"),
                rule: "not carried: tenantry has no per-user Claude credential timer".to_string(),
            });
        }
    }

    match (entry, row) {
        (Some(_), None) => report.sources.push(K8S),
        (None, Some(_)) => {
            report.sources.push(WS);
            if had_k8s_users {
                actions.push(if tier == Tier::Admin {
                    "not in k8s_users: the origin granted this admin's cluster-admin by hand; tenantry will bind \
                     cluster-admin from this roster"
                        .to_string()
                } else {
                    format!(
                        "not in k8s_users (the origin's \"kubectl grant pending\"): tenantry will grant {tier} from \
                         this roster"
                    )
                });
            }
        }
        (Some(_), Some(_)) => report.sources.extend([K8S, WS]),
        (None, None) => {}
    }
    report.actions = actions;
    report.resolutions = resolutions;
    report
}
