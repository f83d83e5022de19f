//! [`RawRoster`] → [`Roster`]: every rule of SPEC §2.2, all errors at once.
//!
//! Roster text is untrusted: entries arrive in pull requests from careless
//! or hostile authors, and reach kubeconfigs, shell scripts, `/etc` files,
//! Vault policies and command lines. So every string is checked against the
//! grammar of the place it goes (and for control, line-separator and
//! text-direction characters anywhere), and names that belong to the
//! platform, the cluster or the host are refused ([`crate::reserved`]).
//! `platform` checks live in [`platform`], per-user checks in [`users`],
//! both kinds of workstation settings in [`workstation`], and the
//! identity-provider groups in [`idp`].

mod apps;
mod forge;
mod idp;
mod isolation;
mod platform;
mod users;
mod workstation;

use crate::Span;
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::names::{describe_char, forbidden_char};
use crate::raw::RawRoster;
use crate::roster::{Located, Platform, Roster, User};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap};

/// Facts from outside the roster that validation needs.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// Zones the configured DNS target manages; user domains may fall inside them.
    pub dns_zones: Vec<String>,
    /// The `vault://<mount>/<path>#<key>` URL the roster was read from, when
    /// validation sees the roster under another name (an import validates
    /// generated text). User keys equal to a segment of it are refused: a
    /// namespace-owner's Vault policy covers `<kv>/data/<key>/*`, which
    /// would include the roster. A `vault://` source name given to
    /// [`validate`] counts the same way without this.
    pub roster_vault_source: Option<String>,
    /// `[host] dispatch_path` from tenantry.toml. When set it is where the
    /// dispatch map goes, whatever the roster says.
    pub host_dispatch_path: Option<String>,
}

fn span<T>(spanned: &Spanned<T>) -> Span {
    Span::from_location(&spanned.referenced)
}

fn located<T: Clone>(spanned: &Spanned<T>) -> Located<T> {
    Located::new(spanned.value.clone(), span(spanned))
}

struct Checker<'a> {
    source: &'a str,
    found: Diagnostics,
}

impl Checker<'_> {
    fn error(&mut self, span: Span, code: &'static str, message: impl Into<String>, help: impl Into<String>) {
        self.found.push(Diagnostic::error(self.source, span, code, message).with_help(help));
    }

    fn warning(&mut self, span: Span, code: &'static str, message: impl Into<String>, help: impl Into<String>) {
        self.found.push(Diagnostic::warning(self.source, span, code, message).with_help(help));
    }

    fn at(&self, span: Span) -> String {
        format!("{}:{}:{}", self.source, span.line, span.column)
    }

    /// Refuse a value holding a character no roster text may hold; true when clean.
    fn plain(&mut self, value: &Spanned<String>, what: &str) -> bool {
        self.plain_at(&value.value, span(value), what)
    }

    fn plain_at(&mut self, text: &str, at: Span, what: &str) -> bool {
        let Some((index, found)) = forbidden_char(text) else { return true };
        self.error(
            at,
            "control-character",
            format!("{what} `{}` contains {} at character {}", text.escape_debug(), describe_char(found), index + 1),
            "roster values are single-line text: remove the character (it is often pasted in, or written as a \
             `\\n`/`\\t`/`\\u` escape in double quotes)",
        );
        false
    }
}

/// Validate a parsed roster. Returns the roster (with warnings dropped) or every diagnostic.
pub fn validate(source: &str, raw: RawRoster, context: &ValidationContext) -> Result<Roster, Diagnostics> {
    validate_with_warnings(source, raw, context).map(|(roster, _)| roster)
}

/// Validate and also return the warnings of a roster that has no errors.
pub fn validate_with_warnings(
    source: &str,
    raw: RawRoster,
    context: &ValidationContext,
) -> Result<(Roster, Diagnostics), Diagnostics> {
    let mut checker = Checker { source, found: Diagnostics::default() };
    let platform = platform::check(&mut checker, raw.platform.as_ref(), context);
    let users = users::check(&mut checker, &raw.users, &platform, &vault_sources(source, context), &context.dns_zones);
    check_platform_references(&mut checker, &platform, &users);
    let rbac_at = raw.platform.as_ref().and_then(|p| p.value.rbac_subjects.as_ref()).map(span).unwrap_or_default();
    idp::check_references(&mut checker, &platform, rbac_at, &users);
    checker.found.sort();
    if checker.found.has_errors() {
        return Err(checker.found);
    }
    Ok((Roster { source: source.to_string(), platform, users }, checker.found))
}

/// The `vault://` sources the roster came from: its own name and the context's.
fn vault_sources<'a>(source: &'a str, context: &'a ValidationContext) -> Vec<&'a str> {
    std::iter::once(source)
        .chain(context.roster_vault_source.as_deref())
        .filter(|s| s.starts_with("vault://"))
        .collect()
}

/// Claims on names that must be unique across users: who holds each, and where.
#[derive(Default)]
struct Claims {
    by_name: HashMap<String, (String, Span)>,
}

impl Claims {
    /// Record a claim; on a clash, return the earlier holder and position.
    fn claim(&mut self, name: &str, user: &str, at: Span) -> Option<(String, Span)> {
        match self.by_name.get(name) {
            Some(earlier) => Some(earlier.clone()),
            None => {
                self.by_name.insert(name.to_string(), (user.to_string(), at));
                None
            }
        }
    }
}

fn check_platform_references(checker: &mut Checker<'_>, platform: &Platform, users: &BTreeMap<String, User>) {
    let branches = platform.forge.as_ref().map(|forge| forge.protected_branches.as_slice()).unwrap_or_default();
    // `push_users` of `protected_branch` is shared by every repository: one error each.
    let mut reported = std::collections::BTreeSet::new();
    for branch in branches {
        for user in &branch.push_users {
            if !users.contains_key(&user.value) && reported.insert((user.span.line, user.span.column)) {
                let help = match did_you_mean(&user.value, users.keys().map(String::as_str)) {
                    Some(candidate) => format!("did you mean `{candidate}`?"),
                    None => "list roster user keys here".to_string(),
                };
                checker.error(
                    user.span,
                    "unknown-user",
                    format!("`{}` is not a user in this roster", user.value),
                    help,
                );
            }
        }
    }
    let first_workstation = users.values().filter_map(|u| u.workstation.as_ref()).map(|w| w.span).min();
    if platform.workstation.main_repo.is_none()
        && let Some(first) = first_workstation
    {
        // Without a `platform.workstation` block, point at the first user who has a workstation.
        let at = if platform.workstation.span.is_known() { platform.workstation.span } else { first };
        checker.warning(
            at,
            "no-main-repo",
            "workstation users are listed but `platform.workstation.main_repo` is not set; no code is checked out",
            "add `main_repo: { name: infra, url: https://forge.example.org/ops/infra.git }`",
        );
    }
}
