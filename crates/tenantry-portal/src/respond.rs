//! Responses: rendered pages, redirects, downloads, and the headers every
//! response carries (a strict Content-Security-Policy: no script at all,
//! styles only from the portal's own stylesheet; no framing; no referrer;
//! nothing cached but the stylesheet).

use crate::pages::MessagePage;
use crate::portal::Portal;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The policy: nothing may load but the portal's stylesheet, forms post
/// only to the portal, and no page may be framed.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A rendered page.
pub(crate) fn page(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "internal error\n",
            )
                .into_response()
        }
    }
}

pub(crate) fn html(status: StatusCode, template: &impl Template) -> Response {
    page(status, template)
}

/// A page that says one thing, for someone not signed in (or not yet).
pub(crate) fn message(
    portal: &Portal,
    status: StatusCode,
    heading: &str,
    paragraphs: Vec<String>,
    link: Option<(String, String)>,
) -> Response {
    page(
        status,
        &MessagePage { chrome: portal.anonymous_chrome(heading), heading: heading.to_string(), paragraphs, link },
    )
}

/// 303 See Other to `location`.
pub(crate) fn redirect(location: &str) -> Response {
    redirect_with_cookies(location, &[])
}

pub(crate) fn redirect_with_cookies(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        Err(_) => {
            headers.insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A file to save: `name` is made of safe characters by the caller.
pub(crate) fn download(content_type: &'static str, name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Adds the security headers to every response (axum `map_response`).
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
