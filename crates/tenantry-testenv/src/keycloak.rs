//! The test Keycloak (`testenv/up keycloak`): its realm, clients and CA, and
//! the few admin and sign-in calls tests need (create a user, sign in with
//! the password grant to get a real ID token).

use crate::{Peer, Result, TestEnv};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const KEYCLOAK: Peer = Peer { name: "Keycloak", up: "keycloak" };

/// The test Keycloak: dev mode over HTTPS with the test CA, one realm.
#[derive(Debug, Clone)]
pub struct Keycloak {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The realm `testenv/up` created.
    pub realm: String,
    /// `<url>/realms/<realm>`: the OIDC issuer the apiserver trusts.
    pub issuer: String,
    /// PEM of the CA that signed Keycloak's certificate.
    pub ca_file: PathBuf,
    /// Confidential client with the realm-management roles to manage users and groups.
    pub admin_client_id: String,
    /// Its secret.
    pub admin_client_secret: String,
    /// The public client kubectl signs in with (password grant and device flow allowed).
    pub kubernetes_client_id: String,
    /// Confidential client for OpenBao's OIDC auth mounts.
    pub vault_client_id: String,
    /// Its secret.
    pub vault_client_secret: String,
    /// Confidential client for the portal.
    pub portal_client_id: String,
    /// Its secret.
    pub portal_client_secret: String,
}

/// The tokens of one sign-in.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The OIDC ID token (a JWT).
    pub id_token: String,
    /// The access token.
    pub access_token: String,
}

/// Finds the test Keycloak and checks that it listens.
pub fn keycloak() -> Result<Keycloak> {
    keycloak_from(&TestEnv::load())
}

/// [`keycloak`] from an explicit environment.
pub fn keycloak_from(env: &TestEnv) -> Result<Keycloak> {
    let url = env.require(&KEYCLOAK, "KEYCLOAK_URL")?.trim_end_matches('/').to_owned();
    let realm = env.require(&KEYCLOAK, "KEYCLOAK_REALM")?;
    let hostport = url.trim_start_matches("https://").trim_start_matches("http://");
    KEYCLOAK.reachable(hostport)?;
    Ok(Keycloak {
        issuer: format!("{url}/realms/{realm}"),
        url,
        realm,
        ca_file: PathBuf::from(env.require(&KEYCLOAK, "KEYCLOAK_CA_FILE")?),
        admin_client_id: env.require(&KEYCLOAK, "KEYCLOAK_ADMIN_CLIENT_ID")?,
        admin_client_secret: env.require(&KEYCLOAK, "KEYCLOAK_ADMIN_CLIENT_SECRET")?,
        kubernetes_client_id: env.require(&KEYCLOAK, "KEYCLOAK_KUBERNETES_CLIENT_ID")?,
        vault_client_id: env.require(&KEYCLOAK, "KEYCLOAK_VAULT_CLIENT_ID")?,
        vault_client_secret: env.require(&KEYCLOAK, "KEYCLOAK_VAULT_CLIENT_SECRET")?,
        portal_client_id: env.require(&KEYCLOAK, "KEYCLOAK_PORTAL_CLIENT_ID")?,
        portal_client_secret: env.require(&KEYCLOAK, "KEYCLOAK_PORTAL_CLIENT_SECRET")?,
    })
}

impl Keycloak {
    /// The CA's PEM text.
    pub fn ca_pem(&self) -> Result<String> {
        std::fs::read_to_string(&self.ca_file)
            .map_err(|e| KEYCLOAK.invalid(format!("KEYCLOAK_CA_FILE {}: {e}", self.ca_file.display())))
    }

    /// An HTTP client that trusts the test CA (and nothing else is needed).
    pub fn http(&self) -> Result<reqwest::Client> {
        let pem = self.ca_pem()?;
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| KEYCLOAK.invalid(format!("KEYCLOAK_CA_FILE is not PEM: {e}")))?;
        reqwest::Client::builder()
            .tls_certs_merge(certs)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| KEYCLOAK.client(format!("building an HTTP client: {e}")))
    }

    /// `<issuer>/protocol/openid-connect/token`.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    /// `<url>/admin/realms/<realm>/<path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}/admin/realms/{}/{}", self.url, self.realm, path.trim_start_matches('/'))
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Value> {
        let response = self
            .http()?
            .post(self.token_url())
            .form(form)
            .send()
            .await
            .map_err(|e| KEYCLOAK.client(format!("token request: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| KEYCLOAK.client(format!("token answer: {e}")))?;
        if !status.is_success() {
            return Err(KEYCLOAK.client(format!("token request refused (HTTP {status}): {body}")));
        }
        Ok(body)
    }

    /// An access token of the admin client (client credentials).
    pub async fn admin_token(&self) -> Result<String> {
        let body = self
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.admin_client_id),
                ("client_secret", &self.admin_client_secret),
            ])
            .await?;
        body["access_token"].as_str().map(str::to_owned).ok_or_else(|| KEYCLOAK.client(format!("no token: {body}")))
    }

    /// One admin REST call as the admin client; returns status and JSON body (Null when empty).
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let token = self.admin_token().await?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| KEYCLOAK.client(format!("method {method}: {e}")))?;
        let mut request = self.http()?.request(method, self.admin_url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| KEYCLOAK.client(format!("admin {path}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| KEYCLOAK.client(format!("admin {path}: {e}")))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Create an enabled user with a verified email and a password; returns its id.
    pub async fn create_user(&self, username: &str, email: &str, password: &str) -> Result<String> {
        let user = json!({
            "username": username,
            "email": email,
            "emailVerified": true,
            "enabled": true,
            "firstName": username,
            "lastName": "Test",
            "credentials": [{ "type": "password", "value": password, "temporary": false }],
        });
        let (status, body) = self.admin("POST", "users", Some(user)).await?;
        if status != 201 {
            return Err(KEYCLOAK.client(format!("creating user {username}: HTTP {status} {body}")));
        }
        self.user_id(username).await?.ok_or_else(|| KEYCLOAK.client(format!("user {username} vanished")))
    }

    /// The id of the user with exactly this username.
    pub async fn user_id(&self, username: &str) -> Result<Option<String>> {
        let (_, found) = self.admin("GET", &format!("users?username={username}&exact=true"), None).await?;
        Ok(found.as_array().and_then(|a| a.first()).and_then(|u| u["id"].as_str()).map(str::to_owned))
    }

    /// Put the user in a group (created when missing).
    pub async fn add_to_group(&self, user_id: &str, group: &str) -> Result<()> {
        let _ = self.admin("POST", "groups", Some(json!({ "name": group }))).await?;
        let (_, found) = self.admin("GET", &format!("groups?search={group}&exact=true"), None).await?;
        let group_id = found
            .as_array()
            .and_then(|a| a.iter().find(|g| g["name"] == group))
            .and_then(|g| g["id"].as_str())
            .ok_or_else(|| KEYCLOAK.client(format!("group {group} not found")))?
            .to_owned();
        let (status, body) = self.admin("PUT", &format!("users/{user_id}/groups/{group_id}"), None).await?;
        if status != 204 {
            return Err(KEYCLOAK.client(format!("adding to {group}: HTTP {status} {body}")));
        }
        Ok(())
    }

    /// Sign in with the password grant on the `kubernetes` client: a real ID token.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<Tokens> {
        self.sign_in_with(&self.kubernetes_client_id, None, username, password).await
    }

    /// Sign in with the password grant on any client (`secret` for confidential ones).
    pub async fn sign_in_with(
        &self,
        client_id: &str,
        secret: Option<&str>,
        username: &str,
        password: &str,
    ) -> Result<Tokens> {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", username),
            ("password", password),
            ("scope", "openid email profile"),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret));
        }
        let body = self.token(&form).await?;
        let field = |name: &str| {
            body[name].as_str().map(str::to_owned).ok_or_else(|| KEYCLOAK.client(format!("no {name} in {body}")))
        };
        Ok(Tokens { id_token: field("id_token")?, access_token: field("access_token")? })
    }

    /// What a browser does in the authorization code flow: open `auth_url`
    /// (Keycloak's login page), post the login form with `username` and
    /// `password`, and return the redirect Keycloak answers with (the client's
    /// `redirect_uri?code=…&state=…`). Cookies are carried by hand.
    pub async fn browser_sign_in(&self, auth_url: &str, username: &str, password: &str) -> Result<String> {
        let pem = self.ca_pem()?;
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| KEYCLOAK.invalid(format!("KEYCLOAK_CA_FILE is not PEM: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(certs)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| KEYCLOAK.client(format!("building an HTTP client: {e}")))?;
        let page = http.get(auth_url).send().await.map_err(|e| KEYCLOAK.client(format!("login page: {e}")))?;
        let cookies: Vec<String> = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_owned)
            .collect();
        let html = page.text().await.map_err(|e| KEYCLOAK.client(format!("login page: {e}")))?;
        let form = html
            .find("id=\"kc-form-login\"")
            .map(|at| &html[at..])
            .and_then(|rest| rest.split_once("action=\"").map(|(_, after)| after))
            .and_then(|rest| rest.split_once('"').map(|(action, _)| action.replace("&amp;", "&")))
            .ok_or_else(|| KEYCLOAK.client(format!("no login form in the page at {auth_url}")))?;
        let answer = http
            .post(&form)
            .header("Cookie", cookies.join("; "))
            .form(&[("username", username), ("password", password), ("credentialId", "")])
            .send()
            .await
            .map_err(|e| KEYCLOAK.client(format!("posting the login form: {e}")))?;
        let status = answer.status();
        answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| KEYCLOAK.client(format!("the login form answered HTTP {status} without a redirect")))
    }
}
