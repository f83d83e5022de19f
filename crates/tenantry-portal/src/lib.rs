//! The tenant portal (SPEC §11.2): every user signs in through the
//! platform's OIDC provider and sees their own platform; admins see
//! everyone, the last reconcile, drift, withheld and departing changes.
//!
//! - [`router`] is a plain axum `Router` over an `Arc<Portal>`, so `tenantry
//!   serve` merges it into its own routes (it owns `/`, `/signin`, `/auth/*`,
//!   `/signout`, `/users/*`, `/admin*`, `/static/*` and the fallback).
//!   [`Portal::from_session`] builds the portal from a `tenantry_app::Session`
//!   (its tenantry.toml's `[portal]` and its roster):
//!
//! ```no_run
//! # async fn serve(session: tenantry_app::Session, cluster: kube::Client) -> Result<(), tenantry_portal::PortalError> {
//! use tenantry_portal::{Portal, ReconcileSource, model_from_session, router};
//! let Some(portal) = Portal::from_session(&session, ReconcileSource::None, Some(cluster)).await? else {
//!     return Ok(()); // no [portal] in tenantry.toml: nothing to mount
//! };
//! let app: axum::Router = axum::Router::new().merge(router(std::sync::Arc::clone(&portal)));
//! // … serve `app`; after each reconcile pass, show what it did:
//! # let (report, at) = (serde_json::Value::Null, std::time::SystemTime::now());
//! let what = "serve pass".to_string();
//! let source = ReconcileSource::Report { json: report, at, what, targets: Vec::new() };
//! portal.publish(model_from_session(&session, source, std::time::SystemTime::now()).await?);
//! # Ok(()) }
//! ```
//! - [`Portal`] holds a [`PortalModel`] built once per roster or reconcile
//!   change ([`model_from_session`], or [`PortalModel::new`] from parts) and
//!   swapped atomically ([`Portal::publish`]); a page view only looks a user
//!   up and reads live quota usage through a [`QuotaSource`].
//! - Pages are askama templates with one stylesheet, no script, a strict
//!   Content-Security-Policy ([`respond`]); sessions are sealed cookies
//!   ([`session`]); sign-in is the authorization code flow with PKCE
//!   ([`oidc`]).

mod assemble;
mod auth;
pub mod config;
mod error;
pub mod live;
pub mod model;
pub mod oidc;
pub mod pages;
mod portal;
pub mod reconcile;
pub mod respond;
mod routes;
pub mod session;

pub use assemble::{ReconcileSource, model_from_session};
pub use config::PortalSettings;
pub use error::PortalError;
pub use live::{KubeQuotas, NoCluster, QuotaSource};
pub use model::{PortalModel, Unavailable};
pub use portal::Portal;
pub use reconcile::{LastReconcile, TargetRow};
pub use session::{Clock, system_clock};

use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The portal's routes over `portal` (every response with the security
/// headers of [`respond`]). Merge it into a router without a fallback.
pub fn router(portal: Arc<Portal>) -> Router {
    let hsts = portal.settings().secure_cookies();
    Router::new()
        .route("/", get(routes::home))
        .route("/signin", get(auth::sign_in_page))
        .route("/auth/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/signout", post(auth::sign_out))
        .route("/users/{user}", get(routes::tenant))
        .route("/users/{user}/kubeconfig", get(routes::kubeconfig))
        .route("/users/{user}/setup/{os}", get(routes::setup))
        .route("/admin", get(routes::admin))
        .route("/admin/reconcile", get(routes::reconcile))
        .route("/admin/users/{user}", get(routes::explain))
        .route("/static/portal.css", get(routes::stylesheet))
        .fallback(routes::fallback)
        .layer(axum::middleware::map_response(respond::security_headers))
        .layer(axum::middleware::map_response(move |mut response: axum::response::Response| async move {
            if hsts {
                response.headers_mut().insert(
                    axum::http::header::STRICT_TRANSPORT_SECURITY,
                    axum::http::HeaderValue::from_static("max-age=31536000"),
                );
            }
            response
        }))
        .with_state(portal)
}
