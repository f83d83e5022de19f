//! The test Keycloak (`testenv/up keycloak`): realm `tenantry`, the
//! confidential client `tenantry-portal`, the admin client `tenantry-admin`
//! (manage-users). Found through the `KEYCLOAK_*` variables of the test
//! environment when they are there, else through the files testenv/up
//! leaves in its run directory.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tenantry_testenv::TestEnv;

#[derive(Debug, Clone)]
pub struct Keycloak {
    pub url: String,
    pub realm: String,
    pub ca_file: PathBuf,
    pub portal_client_id: String,
    pub portal_secret: String,
    admin_client_id: String,
    admin_secret: String,
    http: reqwest::Client,
}

const HOW: &str = "start it with `testenv/up keycloak` (it needs the kube PKI: `testenv/up kube keycloak`)";

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("Keycloak is not set up: cannot read {}: {e}; {HOW}", path.display()))
}

impl Keycloak {
    pub async fn find() -> Result<Keycloak, String> {
        let env = TestEnv::load();
        let run = env
            .get("TENANTRY_TESTENV_RUN")
            .map(PathBuf::from)
            .ok_or_else(|| format!("the test environment is not set up ({}); {HOW}", env.source()))?;
        let url = env.get("KEYCLOAK_URL").unwrap_or("https://127.0.0.1:28443").trim_end_matches('/').to_string();
        let realm = env.get("KEYCLOAK_REALM").unwrap_or("tenantry").to_string();
        let ca_file = env.get("KEYCLOAK_CA_FILE").map(PathBuf::from).unwrap_or_else(|| run.join("kube/pki/ca.crt"));
        let secret = |var: &str, file: &str| match env.get(var) {
            Some(value) => Ok(value.to_string()),
            None => read(&run.join("keycloak").join(file)),
        };
        let ca = std::fs::read(&ca_file).map_err(|e| format!("Keycloak's CA {}: {e}; {HOW}", ca_file.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| format!("Keycloak's CA is not PEM: {e}"))?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(certs)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let keycloak = Keycloak {
            portal_client_id: env.get("KEYCLOAK_PORTAL_CLIENT_ID").unwrap_or("tenantry-portal").to_string(),
            portal_secret: secret("KEYCLOAK_PORTAL_CLIENT_SECRET", "tenantry-portal.secret")?,
            admin_client_id: env.get("KEYCLOAK_ADMIN_CLIENT_ID").unwrap_or("tenantry-admin").to_string(),
            admin_secret: secret("KEYCLOAK_ADMIN_CLIENT_SECRET", "tenantry-admin.secret")?,
            url,
            realm,
            ca_file,
            http,
        };
        let discovery = format!("{}/.well-known/openid-configuration", keycloak.issuer());
        match keycloak.http.get(&discovery).timeout(Duration::from_secs(5)).send().await {
            Ok(response) if response.status().is_success() => Ok(keycloak),
            Ok(response) => Err(format!("Keycloak answers {} at {discovery}; {HOW}", response.status())),
            Err(e) => Err(format!("Keycloak is not running: nothing answers at {discovery} ({e}); {HOW}")),
        }
    }

    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.url, self.realm)
    }

    async fn admin_token(&self) -> Result<String, String> {
        let response = self
            .http
            .post(format!("{}/protocol/openid-connect/token", self.issuer()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.admin_client_id),
                ("client_secret", &self.admin_secret),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        body["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("no admin token: {body}"))
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let token = self.admin_token().await?;
        let mut request =
            self.http.request(method, format!("{}/admin/realms/{}/{path}", self.url, self.realm)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// A user who can sign in with `password` (email verified, profile complete).
    pub async fn create_user(&self, username: &str, email: &str, password: &str) -> Result<(), String> {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "users",
                Some(json!({
                    "username": username, "email": email, "emailVerified": true, "enabled": true,
                    "firstName": username, "lastName": "Portal-Test",
                    "credentials": [ { "type": "password", "value": password, "temporary": false } ],
                })),
            )
            .await?;
        if status == 201 { Ok(()) } else { Err(format!("creating Keycloak user {username}: HTTP {status}: {body}")) }
    }

    /// Remove the users this run created (by exact username).
    pub async fn delete_user(&self, username: &str) -> Result<(), String> {
        let (_, found) =
            self.admin(reqwest::Method::GET, &format!("users?username={username}&exact=true"), None).await?;
        for user in found.as_array().into_iter().flatten() {
            if let Some(id) = user["id"].as_str() {
                self.admin(reqwest::Method::DELETE, &format!("users/{id}"), None).await?;
            }
        }
        Ok(())
    }
}
