//! The pages, as askama templates (`templates/`): values are escaped by the
//! template engine, and every value a page shows is prepared here as text,
//! so the templates hold markup and no decisions. Nothing here can reach a
//! secret: pages are built from the model (no resource contents) and the
//! session (its CSRF token is the one secret a page carries, in the
//! sign-out form, where it belongs).

use crate::live::UsageItem;
use crate::model::{DnsState, PortalUser};
use crate::reconcile::{LastReconcile, ResourceState};
use askama::Template;
use std::time::SystemTime;

/// What every page's frame shows.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub platform: String,
    pub me: Option<Me>,
}

/// The signed-in person, for the header and the sign-out form.
#[derive(Debug, Clone)]
pub struct Me {
    pub user: String,
    pub email: String,
    pub admin: bool,
    pub csrf: String,
}

#[derive(Debug, Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub login_href: String,
    pub notice: Option<String>,
    pub issuer: Option<String>,
}

/// A page that says one thing: not on the platform, not found, an error.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub paragraphs: Vec<String>,
    /// (href, text) of the way on.
    pub link: Option<(String, String)>,
}

#[derive(Debug, Template)]
#[template(path = "tenant.html")]
pub struct TenantPage {
    pub chrome: Chrome,
    pub user: String,
    pub email: String,
    pub tier: String,
    /// An admin looking at someone else's page.
    pub viewed_by_admin: bool,
    pub downloads: Result<Downloads, String>,
    pub namespaces: Vec<NamespaceBlock>,
    /// Why live usage is missing, if it is.
    pub live_error: Option<String>,
    pub dns: Vec<DnsLine>,
    pub vault: Option<VaultBlock>,
    pub workstation: Option<WorkstationBlock>,
    pub grants: Vec<GrantLine>,
    pub reconciled: String,
}

#[derive(Debug, Clone)]
pub struct Downloads {
    pub kubeconfig: String,
    pub kubeconfig_name: String,
    pub linux: String,
    pub mac: String,
}

#[derive(Debug, Clone)]
pub struct NamespaceBlock {
    pub name: String,
    /// (quota name, its items); empty when live usage is unavailable.
    pub quotas: Vec<(String, Vec<UsageLine>)>,
    /// tenantry's configured limits, shown when there is no live usage.
    pub configured: Vec<UsageLine>,
}

#[derive(Debug, Clone)]
pub struct UsageLine {
    pub resource: String,
    pub used: String,
    pub hard: String,
    /// 0..=1, for `<meter>`.
    pub meter: String,
    /// `25 %`, or empty.
    pub percent: String,
    /// `high` at 90 % and above.
    pub class: &'static str,
}

impl UsageLine {
    pub fn from_item(item: &UsageItem) -> UsageLine {
        let high = item.fraction.is_some_and(|f| f >= 0.9);
        UsageLine {
            resource: item.resource.clone(),
            used: item.used.clone(),
            hard: item.hard.clone(),
            meter: format!("{:.3}", item.meter()),
            percent: item.percent().map(|p| format!("{p} %")).unwrap_or_default(),
            class: if high { "high" } else { "" },
        }
    }
}

#[derive(Debug, Clone)]
pub struct DnsLine {
    pub domain: String,
    pub record: String,
    pub state: String,
    /// `ok`, `warn`, `bad`, `muted`.
    pub class: &'static str,
}

impl DnsLine {
    pub fn new(row: &crate::model::DnsRow) -> DnsLine {
        let (state, class) = match &row.state {
            DnsState::Points => ("points where it should".to_string(), "ok"),
            DnsState::Pending(action) => (format!("not yet: the next apply will {action} it"), "warn"),
            DnsState::Failed(error) => (format!("failed: {error}"), "bad"),
            DnsState::Conflict(why) => (format!("conflict: {why}"), "bad"),
            DnsState::RenderedOnly => ("not applied: no DNS provider is configured".to_string(), "muted"),
            DnsState::Unmanaged => ("outside the zones tenantry manages".to_string(), "muted"),
            DnsState::Unknown => ("unknown: no reconcile has run yet".to_string(), "muted"),
        };
        DnsLine { domain: row.domain.clone(), record: row.record.clone(), state, class }
    }
}

#[derive(Debug, Clone)]
pub struct VaultBlock {
    pub policy: String,
    /// (path, capabilities joined).
    pub paths: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct WorkstationBlock {
    pub os_user: String,
    pub idp_user: String,
    pub home: String,
    pub shell: String,
    pub groups: String,
    pub parked: bool,
    pub ports: Vec<PortLine>,
}

#[derive(Debug, Clone)]
pub struct PortLine {
    pub pool: String,
    pub port: u16,
    pub link: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GrantLine {
    pub id: String,
    pub domain: String,
    pub rule: String,
    pub origin: String,
    pub origin_line: String,
    pub target: String,
    pub state: String,
    pub class: &'static str,
}

impl GrantLine {
    pub fn for_user(user: &PortalUser) -> Vec<GrantLine> {
        user.view
            .grants
            .iter()
            .zip(&user.states)
            .map(|(grant, state)| {
                let (state, class) = state_words(state);
                GrantLine {
                    id: grant.id.to_string(),
                    domain: grant.id.domain.to_string(),
                    rule: grant.rule.to_string(),
                    origin: grant
                        .origin
                        .as_deref()
                        .map(roster_file_line)
                        .unwrap_or_else(|| "platform defaults".to_string()),
                    origin_line: grant.origin_line.as_deref().map(str::trim).unwrap_or_default().to_string(),
                    target: grant.target.clone().unwrap_or_else(|| "(no target)".to_string()),
                    state,
                    class,
                }
            })
            .collect()
    }
}

/// `roster.yaml:12:5` for `/etc/tenantry/roster.yaml:12:5`: a page names
/// the roster file, not where it lies on the server. (`vault://…` as is.)
fn roster_file_line(origin: &str) -> String {
    if origin.contains("://") {
        return origin.to_string();
    }
    origin.rsplit_once('/').map_or(origin, |(_, file)| file).to_string()
}

fn state_words(state: &ResourceState) -> (String, &'static str) {
    match state {
        ResourceState::Unknown => ("unknown".to_string(), "muted"),
        ResourceState::InPlace => ("in place".to_string(), "ok"),
        ResourceState::Pending(action) => (format!("pending: {action}"), "warn"),
        ResourceState::Failed(error) => (format!("failed: {error}"), "bad"),
        ResourceState::Conflict(why) => (format!("conflict: {why}"), "bad"),
    }
}

#[derive(Debug, Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub chrome: Chrome,
    pub query: String,
    pub rows: Vec<AdminRow>,
    pub total_users: usize,
    pub matching: usize,
    pub first: usize,
    pub last: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub page: usize,
    pub pages: usize,
    pub reconcile: Option<ReconcileSummary>,
}

#[derive(Debug, Clone)]
pub struct AdminRow {
    pub user: String,
    pub email: String,
    pub tier: String,
    pub namespaces: String,
    pub domains: usize,
    pub workstation: String,
    pub pending: usize,
}

impl AdminRow {
    pub fn new(user: &PortalUser) -> AdminRow {
        let view = &user.view;
        AdminRow {
            user: view.user.clone(),
            email: view.email.clone(),
            tier: view.tier.as_str().to_string(),
            namespaces: view.namespaces.join(", "),
            domains: view.domains.len(),
            workstation: view.workstation.as_ref().map(|w| w.os_user.clone()).unwrap_or_default(),
            pending: user.pending(),
        }
    }
}

/// The last reconcile, summarized for the admin pages.
#[derive(Debug, Clone)]
pub struct ReconcileSummary {
    pub at: String,
    pub what: String,
    pub result: String,
    pub class: &'static str,
    /// (name, state, detail, changes, failures).
    pub targets: Vec<(String, String, String, usize, usize)>,
    pub totals: String,
    pub drift: usize,
    pub withheld: usize,
    pub departing: usize,
    pub failures: usize,
    pub problems: Vec<(String, String, bool)>,
}

impl ReconcileSummary {
    pub fn new(last: &LastReconcile) -> ReconcileSummary {
        let (result, class) = match last.success {
            None => ("planned, not applied".to_string(), "muted"),
            Some(true) => ("applied without failures".to_string(), "ok"),
            Some(false) if last.failures.total > 0 => (format!("{} change(s) failed", last.failures.total), "bad"),
            Some(false) => ("blocked: nothing was applied".to_string(), "bad"),
        };
        ReconcileSummary {
            at: last.at.map(time_text).unwrap_or_else(|| "unknown".to_string()),
            what: last.what.clone(),
            result,
            class,
            targets: last
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.state.clone(), t.detail.clone(), t.changes, t.failures))
                .collect(),
            totals: last.totals.iter().map(|(action, n)| format!("{n} {action}")).collect::<Vec<_>>().join(", "),
            drift: last.drift.total,
            withheld: last.withheld.total,
            departing: last.departing.total,
            failures: last.failures.total,
            problems: last.problems.iter().map(|p| (p.message.clone(), p.help.clone(), p.blocking)).collect(),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "reconcile.html")]
pub struct ReconcilePage<'a> {
    pub chrome: Chrome,
    pub summary: ReconcileSummary,
    pub last: &'a LastReconcile,
}

#[derive(Debug, Template)]
#[template(path = "explain.html")]
pub struct ExplainPage {
    pub chrome: Chrome,
    pub user: String,
    pub email: String,
    pub tier: String,
    pub line: String,
    pub namespaces: String,
    pub domains: String,
    pub ports: String,
    pub grants: Vec<GrantLine>,
}

/// RFC 3339, UTC, seconds.
pub fn time_text(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::roster_file_line;

    #[test]
    fn a_page_names_the_roster_file_not_its_place_on_the_server() {
        assert_eq!(roster_file_line("/etc/tenantry/roster.yaml:12:5"), "roster.yaml:12:5");
        assert_eq!(roster_file_line("roster.yaml:3:1"), "roster.yaml:3:1");
        assert_eq!(roster_file_line("vault://secret/platform#users:4:2"), "vault://secret/platform#users:4:2");
    }
}
