//! Sign-in: the OpenID Connect authorization code flow with PKCE, through
//! the `openidconnect` crate (discovery, the authorization request, the
//! code exchange, and the ID token's verification — signature against the
//! issuer's JWKS, issuer, audience, expiry and nonce).
//!
//! The provider's metadata and keys are discovered on first use and again
//! after an hour, or at once when a token is signed with a key not seen
//! yet (the issuer rotated its keys). HTTP goes through one reqwest client
//! that follows no redirects (the library's advice against SSRF), trusts
//! `[portal] issuer_ca_file` besides the system roots, and times out.

use crate::config::PortalSettings;
use crate::error::PortalError;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantry_core::target::error_chain;
use tokio::sync::Mutex;

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// How long discovered metadata and keys are used before asking again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Every call to the issuer gives up after this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An authorization request: send the browser to `url`, keep the rest sealed in a cookie.
#[derive(Debug)]
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the issuer says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub email_verified: Option<bool>,
    pub subject: String,
}

/// The portal's OIDC client for one issuer.
pub struct Oidc {
    issuer: String,
    settings: PortalSettings,
    http: Http,
    discovered: Mutex<Option<(Instant, Arc<Client>)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// The HTTP client `openidconnect` calls (its futures are `Send`, as axum needs).
#[derive(Clone)]
struct Http(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
            let response = client.execute(request).await.map_err(|e| HttpError(e.to_string()))?;
            let mut built = http::Response::builder().status(response.status());
            if let Some(headers) = built.headers_mut() {
                headers.extend(response.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let body = response.bytes().await.map_err(|e| HttpError(e.to_string()))?;
            built.body(body.to_vec()).map_err(|e| HttpError(e.to_string()))
        })
    }
}

impl Oidc {
    pub fn new(issuer: &str, settings: &PortalSettings) -> Result<Oidc, PortalError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT);
        if let Some(pem) = &settings.issuer_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| PortalError::Config {
                message: format!("[portal]: issuer_ca_file is not PEM: {e}"),
                help: "a PEM file with the issuer's CA certificate".to_string(),
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| issuer_error(issuer, format!("building an HTTP client: {e}")))?;
        Ok(Oidc {
            issuer: issuer.to_string(),
            settings: settings.clone(),
            http: Http(http),
            discovered: Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn client(&self, fresh: bool) -> Result<Arc<Client>, PortalError> {
        let mut cached = self.discovered.lock().await;
        if !fresh
            && let Some((at, client)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(Arc::clone(client));
        }
        let issuer_url =
            IssuerUrl::new(self.issuer.clone()).map_err(|e| issuer_error(&self.issuer, format!("issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &self.http)
            .await
            .map_err(|e| issuer_error(&self.issuer, format!("discovery: {}", error_chain(&e))))?;
        let redirect = RedirectUrl::new(self.settings.redirect_uri())
            .map_err(|e| issuer_error(&self.issuer, format!("redirect URI: {e}")))?;
        let client = Arc::new(
            CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(self.settings.client_id.clone()),
                Some(ClientSecret::new(self.settings.client_secret.expose().to_string())),
            )
            .set_redirect_uri(redirect),
        );
        *cached = Some((Instant::now(), Arc::clone(&client)));
        Ok(client)
    }

    /// A new authorization request (state, nonce and PKCE verifier from the OS's randomness).
    pub async fn authorize(&self) -> Result<Authorization, PortalError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".to_string()))
            .add_scope(Scope::new("profile".to_string()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchange the code and verify the ID token (signature, issuer,
    /// audience, expiry, nonce). A token signed by a key the cached JWKS
    /// lacks makes the keys be fetched again once.
    pub async fn finish(&self, code: &str, nonce: &str, pkce_verifier: &str) -> Result<Identity, PortalError> {
        let client = self.client(false).await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| PortalError::SignIn(format!("the issuer has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| PortalError::SignIn(format!("the code exchange failed: {}", error_chain(&e))))?;
        let id_token =
            response.id_token().ok_or_else(|| PortalError::SignIn("the issuer returned no ID token".to_string()))?;
        let nonce = Nonce::new(nonce.to_string());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let client = self.client(true).await?;
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| PortalError::SignIn(format!("the ID token is not valid: {e}")))?
                    .clone()
            }
            Err(e) => return Err(PortalError::SignIn(format!("the ID token is not valid: {e}"))),
        };
        let email = claims.email().map(|e| e.as_str().to_string()).ok_or_else(|| {
            PortalError::SignIn("the ID token carries no email; the `email` scope is needed".to_string())
        })?;
        Ok(Identity { email, email_verified: claims.email_verified(), subject: claims.subject().as_str().to_string() })
    }
}

fn issuer_error(issuer: &str, detail: String) -> PortalError {
    PortalError::Issuer { issuer: issuer.to_string(), detail }
}
