//! The pages behind sign-in. Each handler first finds the signed-in person
//! (else: to the sign-in page), then checks them against the resource: a
//! user's pages are theirs and admins'; for anyone else they do not exist
//! (404, the same answer as for a user who does not exist).

use crate::auth::to_sign_in;
use crate::live::configured;
use crate::model::PortalUser;
use crate::pages::{
    AdminPage, AdminRow, DnsLine, Downloads, ExplainPage, GrantLine, MessagePage, NamespaceBlock, PortLine,
    ReconcilePage, ReconcileSummary, TenantPage, UsageLine, VaultBlock, WorkstationBlock, time_text,
};
use crate::portal::{Portal, SignedIn};
use crate::respond::{download, page, redirect};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use tenantry_core::setup::{SetupOs, setup_script};

/// The one stylesheet.
pub const STYLESHEET: &str = include_str!("../static/portal.css");

/// The signed-in person, or the response that sends them to sign in.
#[allow(clippy::result_large_err)]
fn signed_in(portal: &Portal, headers: &HeaderMap, uri: &Uri) -> Result<SignedIn, Response> {
    portal.signed_in(headers).map_err(|why| {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        to_sign_in(portal, path, &why)
    })
}

fn not_found(signed_in: &SignedIn) -> Response {
    page(
        StatusCode::NOT_FOUND,
        &MessagePage {
            chrome: signed_in.chrome("Not found"),
            heading: "Not found".to_string(),
            paragraphs: vec!["There is no such page.".to_string()],
            link: Some((format!("/users/{}", signed_in.session.user), "Back to your page".to_string())),
        },
    )
}

pub(crate) async fn home(State(portal): State<Arc<Portal>>, headers: HeaderMap, uri: Uri) -> Response {
    match signed_in(&portal, &headers, &uri) {
        Ok(me) => redirect(&format!("/users/{}", url_segment(&me.session.user))),
        Err(response) => response,
    }
}

pub(crate) async fn fallback(State(portal): State<Arc<Portal>>, headers: HeaderMap, uri: Uri) -> Response {
    match signed_in(&portal, &headers, &uri) {
        Ok(me) => not_found(&me),
        Err(response) => response,
    }
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A path segment, percent-encoded (roster keys are DNS labels; this is belt and braces).
fn url_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(crate) async fn tenant(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
    Path(user): Path<String>,
) -> Response {
    let me = match signed_in(&portal, &headers, &uri) {
        Ok(me) => me,
        Err(response) => return response,
    };
    let Some(person) = me.model.user(&user).filter(|_| me.may_see(&user)) else { return not_found(&me) };
    let live = if person.view.namespaces.is_empty() {
        Ok(Vec::new())
    } else {
        portal.quotas.usage(&person.view.namespaces).await
    };
    let (namespaces, live_error) = namespace_blocks(person, live);
    let segment = url_segment(&person.view.user);
    let platform = &me.model.platform;
    let downloads = match &me.model.kubeconfig {
        Ok(_) => Ok(Downloads {
            kubeconfig: format!("/users/{segment}/kubeconfig"),
            kubeconfig_name: kubeconfig_name(&platform.name),
            linux: format!("/users/{segment}/setup/linux"),
            mac: format!("/users/{segment}/setup/mac"),
        }),
        Err(why) => Err(format!("{} ({})", why.message, why.help)),
    };
    let view = &person.view;
    let workstation = view.workstation.as_ref().map(|w| WorkstationBlock {
        os_user: w.os_user.clone(),
        idp_user: w.idp_user.clone(),
        home: w.home.clone(),
        shell: w.shell.clone(),
        groups: w.groups.join(", "),
        parked: w.parked,
        ports: view
            .ports
            .iter()
            .map(|(pool, port)| PortLine {
                pool: pool.clone(),
                port: *port,
                link: portal.settings.links.get(pool).map(|template| {
                    let fill = |text: &str| url_segment(text);
                    template
                        .replace("{port}", &port.to_string())
                        .replace("{os_user}", &fill(&w.os_user))
                        .replace("{idp_user}", &fill(&w.idp_user))
                }),
            })
            .collect(),
    });
    let reconciled =
        me.model.reconcile.as_ref().and_then(|r| r.at).map(time_text).unwrap_or_else(|| "none yet".to_string());
    page(
        StatusCode::OK,
        &TenantPage {
            chrome: me.chrome(view.user.clone()),
            user: view.user.clone(),
            email: view.email.clone(),
            tier: view.tier.as_str().to_string(),
            viewed_by_admin: me.session.user != view.user,
            downloads,
            namespaces,
            live_error,
            dns: person.dns.iter().map(DnsLine::new).collect(),
            vault: view.vault.as_ref().map(|v| VaultBlock {
                policy: v.policy.clone(),
                paths: v.paths.iter().map(|p| (p.path.clone(), p.capabilities.join(", "))).collect(),
            }),
            workstation,
            grants: GrantLine::for_user(person),
            reconciled,
        },
    )
}

fn namespace_blocks(
    person: &PortalUser,
    live: Result<Vec<crate::live::NamespaceUsage>, String>,
) -> (Vec<NamespaceBlock>, Option<String>) {
    let configured_lines: Vec<UsageLine> = configured(&person.view.quota).iter().map(UsageLine::from_item).collect();
    match live {
        Ok(usage) => {
            let blocks = person
                .view
                .namespaces
                .iter()
                .map(|name| {
                    // Only the user's own namespaces, whatever a source returns.
                    let quotas: Vec<(String, Vec<UsageLine>)> = usage
                        .iter()
                        .filter(|u| &u.namespace == name)
                        .flat_map(|u| &u.quotas)
                        .map(|q| (q.name.clone(), q.items.iter().map(UsageLine::from_item).collect()))
                        .collect();
                    NamespaceBlock { name: name.clone(), quotas, configured: configured_lines.clone() }
                })
                .collect();
            (blocks, None)
        }
        Err(error) => {
            let blocks = person
                .view
                .namespaces
                .iter()
                .map(|name| NamespaceBlock {
                    name: name.clone(),
                    quotas: Vec::new(),
                    configured: configured_lines.clone(),
                })
                .collect();
            (blocks, Some(error))
        }
    }
}

/// `<platform>.kubeconfig` (platform names are validated; anything else is dropped).
fn kubeconfig_name(platform: &str) -> String {
    let safe: String = platform.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    format!("{}.kubeconfig", if safe.is_empty() { "tenantry" } else { safe.trim_start_matches('.') })
}

pub(crate) async fn kubeconfig(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
    Path(user): Path<String>,
) -> Response {
    let me = match signed_in(&portal, &headers, &uri) {
        Ok(me) => me,
        Err(response) => return response,
    };
    if me.model.user(&user).is_none() || !me.may_see(&user) {
        return not_found(&me);
    }
    match &me.model.kubeconfig {
        Ok(text) => download("application/yaml", &kubeconfig_name(&me.model.platform.name), text.to_string()),
        Err(_) => not_found(&me),
    }
}

pub(crate) async fn setup(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
    Path((user, os)): Path<(String, String)>,
) -> Response {
    let me = match signed_in(&portal, &headers, &uri) {
        Ok(me) => me,
        Err(response) => return response,
    };
    let os = match os.as_str() {
        "linux" => SetupOs::Linux,
        "mac" => SetupOs::Mac,
        _ => return not_found(&me),
    };
    if me.model.user(&user).is_none() || !me.may_see(&user) {
        return not_found(&me);
    }
    // The heredoc delimiter's random part, from the OS (the generator checks it against the content).
    let nonce = crate::session::random_hex(12);
    match setup_script(&me.model.platform, os, &nonce) {
        Ok(script) => {
            let name = if os == SetupOs::Linux { "tenantry-setup-linux.sh" } else { "tenantry-setup-mac.sh" };
            download("text/x-shellscript; charset=utf-8", name, script)
        }
        Err(error) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            &MessagePage {
                chrome: me.chrome("No setup script"),
                heading: "No setup script".to_string(),
                paragraphs: vec![error.to_string(), format!("An admin can fix it: {}", error.help())],
                link: Some((format!("/users/{}", url_segment(&me.session.user)), "Back".to_string())),
            },
        ),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AdminQuery {
    q: Option<String>,
    page: Option<usize>,
}

pub(crate) async fn admin(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<AdminQuery>,
) -> Response {
    let me = match signed_in(&portal, &headers, &uri) {
        Ok(me) => me,
        Err(response) => return response,
    };
    if !me.admin() {
        return not_found(&me);
    }
    let per_page = portal.settings.page_size;
    let text = query.q.unwrap_or_default();
    let text = text.trim();
    let requested = query.page.unwrap_or(1).max(1);
    let (mut rows, matching) = me.model.search(text, requested, per_page);
    let pages = matching.div_ceil(per_page).max(1);
    let page_number = requested.min(pages);
    if page_number != requested {
        // Past the last page: show the last one.
        rows = me.model.search(text, page_number, per_page).0;
    }
    let link = |n: usize| {
        let q: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        if q.is_empty() { format!("/admin?page={n}") } else { format!("/admin?q={q}&page={n}") }
    };
    let first = if matching == 0 { 0 } else { (page_number - 1) * per_page + 1 };
    page(
        StatusCode::OK,
        &AdminPage {
            chrome: me.chrome("Users"),
            query: text.to_string(),
            first,
            last: first + rows.len().saturating_sub(1),
            rows: rows.into_iter().map(AdminRow::new).collect(),
            total_users: me.model.len(),
            matching,
            previous: (page_number > 1).then(|| link(page_number - 1)),
            next: (page_number < pages).then(|| link(page_number + 1)),
            page: page_number,
            pages,
            reconcile: me.model.reconcile.as_ref().map(ReconcileSummary::new),
        },
    )
}

pub(crate) async fn reconcile(State(portal): State<Arc<Portal>>, headers: HeaderMap, uri: Uri) -> Response {
    let me = match signed_in(&portal, &headers, &uri) {
        Ok(me) => me,
        Err(response) => return response,
    };
    if !me.admin() {
        return not_found(&me);
    }
    let Some(last) = me.model.reconcile.as_ref() else {
        return page(
            StatusCode::OK,
            &MessagePage {
                chrome: me.chrome("Last reconcile"),
                heading: "No reconcile yet".to_string(),
                paragraphs: vec!["Nothing has been planned or applied since the portal started.".to_string()],
                link: Some(("/admin".to_string(), "Users".to_string())),
            },
        );
    };
    page(
        StatusCode::OK,
        &ReconcilePage { chrome: me.chrome("Last reconcile"), summary: ReconcileSummary::new(last), last },
    )
}

pub(crate) async fn explain(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    uri: Uri,
    Path(user): Path<String>,
) -> Response {
    let me = match signed_in(&portal, &headers, &uri) {
        Ok(me) => me,
        Err(response) => return response,
    };
    let Some(person) = me.model.user(&user).filter(|_| me.admin()) else { return not_found(&me) };
    let view = &person.view;
    page(
        StatusCode::OK,
        &ExplainPage {
            chrome: me.chrome(format!("Explain {}", view.user)),
            user: view.user.clone(),
            email: view.email.clone(),
            tier: view.tier.as_str().to_string(),
            line: format!("{}:{}", me.model.source, view.line),
            namespaces: or_none(view.namespaces.join(", ")),
            domains: or_none(view.domains.join(", ")),
            ports: or_none(
                view.ports.iter().map(|(pool, port)| format!("{pool} {port}")).collect::<Vec<_>>().join(", "),
            ),
            grants: GrantLine::for_user(person),
        },
    )
}

fn or_none(text: String) -> String {
    if text.is_empty() { "none".to_string() } else { text }
}
