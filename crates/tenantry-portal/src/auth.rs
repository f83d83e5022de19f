//! Signing in and out: the sign-in page, the authorization request, the
//! callback (state, nonce, PKCE, the ID token verified; the email matched
//! to the roster), and sign-out (a POST carrying the session's CSRF token).

use crate::pages::{MessagePage, SignInPage};
use crate::portal::{NoSession, Portal};
use crate::respond::{html, message, redirect, redirect_with_cookies};
use crate::session::{
    LOGIN_COOKIE, LOGIN_TTL, LoginState, Opened, SESSION_COOKIE, SessionData, random_hex, same_secret, unix,
};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    /// Why the person is here: `signed-out`, `expired`.
    m: Option<String>,
}

/// A local path to return to after signing in; anything else goes home
/// (no open redirect: not `//host`, not `/\host`, not a URL).
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control() || c == '\\') =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Where a request without a usable session is sent.
pub(crate) fn to_sign_in(portal: &Portal, path_and_query: &str, why: &NoSession) -> Response {
    let mut target =
        format!("/signin?next={}", url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect::<String>());
    if matches!(why, NoSession::Expired) {
        target.push_str("&m=expired");
    }
    match why {
        // A cookie that is no good any more is removed, so it is not sent again.
        NoSession::Refused | NoSession::Expired | NoSession::Gone => {
            redirect_with_cookies(&target, &[portal.sealer.clear(SESSION_COOKIE)])
        }
        NoSession::Absent => redirect(&target),
    }
}

pub(crate) async fn sign_in_page(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let next = local_path(query.next.as_deref());
    if portal.signed_in(&headers).is_ok() {
        return redirect(&next);
    }
    let notice = match query.m.as_deref() {
        Some("signed-out") => Some("You are signed out.".to_string()),
        Some("expired") => Some("Your session ended; sign in again.".to_string()),
        _ => None,
    };
    let model = portal.model();
    html(
        StatusCode::OK,
        &SignInPage {
            chrome: portal.anonymous_chrome("Sign in"),
            login_href: format!(
                "/auth/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ),
            notice,
            issuer: model.platform.oidc.as_ref().map(|o| o.issuer_url.clone()),
        },
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

pub(crate) async fn login(State(portal): State<Arc<Portal>>, Query(query): Query<LoginQuery>) -> Response {
    let unavailable = |detail: String| {
        message(
            &portal,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is not available",
            vec![detail, "Try again in a moment; if it persists, tell an admin.".to_string()],
            Some(("/signin".to_string(), "Back".to_string())),
        )
    };
    let oidc = match portal.oidc() {
        Ok(Some(oidc)) => oidc,
        Ok(None) => return unavailable("The roster names no identity provider (platform.oidc).".to_string()),
        Err(error) => return unavailable(error.to_string()),
    };
    let authorization = match oidc.authorize().await {
        Ok(authorization) => authorization,
        Err(error) => {
            tracing::warn!(%error, "sign-in cannot start");
            return unavailable(error.to_string());
        }
    };
    let login = LoginState {
        state: authorization.state,
        nonce: authorization.nonce,
        pkce_verifier: authorization.pkce_verifier,
        next: local_path(query.next.as_deref()),
        expires: unix((portal.clock)()) + LOGIN_TTL.as_secs(),
    };
    redirect_with_cookies(&authorization.url, &[portal.sealer.seal(LOGIN_COOKIE, &login, LOGIN_TTL)])
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(crate) async fn callback(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let clear_login = portal.sealer.clear(LOGIN_COOKIE);
    let refuse = |paragraph: String| {
        let mut response = message(
            &portal,
            StatusCode::BAD_REQUEST,
            "Sign-in did not complete",
            vec![paragraph],
            Some(("/signin".to_string(), "Sign in again".to_string())),
        );
        if let Ok(value) = clear_login.parse() {
            response.headers_mut().append(axum::http::header::SET_COOKIE, value);
        }
        response
    };
    let login = match portal.sealer.open::<LoginState>(&headers, LOGIN_COOKIE) {
        Opened::Valid(login) if unix((portal.clock)()) < login.expires => login,
        Opened::Valid(_) => return refuse("The sign-in took too long.".to_string()),
        Opened::Absent | Opened::Refused => {
            return refuse("This sign-in was not started here, or in another browser.".to_string());
        }
    };
    if !query.state.as_deref().is_some_and(|state| same_secret(state, &login.state)) {
        return refuse("The answer does not belong to this sign-in (state mismatch).".to_string());
    }
    if let Some(error) = query.error {
        let detail = query.error_description.map(|d| format!(": {d}")).unwrap_or_default();
        return refuse(format!("The identity provider refused the sign-in ({error}{detail})."));
    }
    let Some(code) = query.code else { return refuse("The identity provider sent no code.".to_string()) };
    let oidc = match portal.oidc() {
        Ok(Some(oidc)) => oidc,
        Ok(None) => return refuse("The roster names no identity provider (platform.oidc).".to_string()),
        Err(error) => return refuse(error.to_string()),
    };
    let identity = match oidc.finish(&code, &login.nonce, &login.pkce_verifier).await {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(%error, "sign-in refused");
            return refuse(error.to_string());
        }
    };
    if portal.settings.require_verified_email && identity.email_verified != Some(true) {
        return refuse(format!(
            "The identity provider has not verified the email {}; ask an admin to verify it.",
            identity.email
        ));
    }
    let model = portal.model();
    let Some(user) = model.user_by_email(&identity.email) else {
        tracing::info!(email = %identity.email, "signed in, but not in the roster");
        let mut response = message(
            &portal,
            StatusCode::FORBIDDEN,
            "You are not on this platform",
            vec![
                format!("You signed in as {}, but no user of this platform has that email.", identity.email),
                "Ask an admin to add you to the roster; then sign in again.".to_string(),
            ],
            None,
        );
        if let Ok(value) = clear_login.parse() {
            response.headers_mut().append(axum::http::header::SET_COOKIE, value);
        }
        return response;
    };
    let now = unix((portal.clock)());
    let session = SessionData {
        user: user.view.user.clone(),
        email: user.view.email.clone(),
        issued: now,
        expires: now + portal.settings.session_ttl.as_secs(),
        csrf: random_hex(16),
    };
    tracing::info!(user = %session.user, "signed in");
    let next = if login.next == "/" { format!("/users/{}", session.user) } else { login.next.clone() };
    redirect_with_cookies(
        &next,
        &[portal.sealer.seal(SESSION_COOKIE, &session, portal.settings.session_ttl), clear_login],
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignOutForm {
    csrf: Option<String>,
}

pub(crate) async fn sign_out(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let signed_in = match portal.signed_in(&headers) {
        Ok(signed_in) => signed_in,
        Err(_) => {
            return redirect_with_cookies("/signin?m=signed-out", &[portal.sealer.clear(SESSION_COOKIE)]);
        }
    };
    if !form.csrf.as_deref().is_some_and(|token| same_secret(token, &signed_in.session.csrf)) {
        return crate::respond::page(
            StatusCode::FORBIDDEN,
            &MessagePage {
                chrome: signed_in.chrome("Not signed out"),
                heading: "Not signed out".to_string(),
                paragraphs: vec!["The sign-out form did not come from this page (CSRF token mismatch).".to_string()],
                link: Some((format!("/users/{}", signed_in.session.user), "Back to your page".to_string())),
            },
        );
    }
    tracing::info!(user = %signed_in.session.user, "signed out");
    portal.revoke(&signed_in.session);
    redirect_with_cookies("/signin?m=signed-out", &[portal.sealer.clear(SESSION_COOKIE)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/users/alice?x=1")), "/users/alice?x=1");
        for hostile in ["//evil.example", "/\\evil.example", "https://evil.example/", "evil", "/a\r\nb", ""] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
