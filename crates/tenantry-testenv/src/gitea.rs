//! The test Gitea (`testenv/up gitea`): a real Gitea on 127.0.0.1 with
//! SQLite, an administrator and an API token; and the few calls tests use to
//! set it up (users, organizations, repositories, teams).

use super::{Peer, Result, TestEnv};
use serde_json::{Value, json};
use std::time::Duration;

const GITEA: Peer = Peer { name: "Gitea", up: "gitea" };

/// The test Gitea.
#[derive(Debug, Clone)]
pub struct Gitea {
    /// `http://127.0.0.1:PORT` (the API is under `/api/v1`).
    pub url: String,
    /// The administrator's token (all scopes).
    pub token: String,
    /// The file holding it (mode 0600), for a `[forge] token_file`.
    pub token_file: String,
    /// The administrator's login.
    pub admin: String,
}

/// Finds the test Gitea and checks that it listens.
pub fn gitea() -> Result<Gitea> {
    gitea_from(&TestEnv::load())
}

/// [`gitea`] from an explicit environment.
pub fn gitea_from(env: &TestEnv) -> Result<Gitea> {
    let url = env.require(&GITEA, "GITEA_URL")?;
    let token_file = env.require(&GITEA, "GITEA_TOKEN_FILE")?;
    let admin = env.require(&GITEA, "GITEA_ADMIN_USER")?;
    GITEA.reachable(url.trim_start_matches("http://").trim_end_matches('/'))?;
    let token = std::fs::read_to_string(&token_file)
        .map_err(|e| GITEA.invalid(format!("cannot read GITEA_TOKEN_FILE {token_file}: {e}")))?
        .trim()
        .to_string();
    Ok(Gitea { url: url.trim_end_matches('/').to_owned(), token, token_file, admin })
}

impl Gitea {
    /// `url` + `/api/v1/` + `path`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1/{}", self.url, path.trim_start_matches('/'))
    }

    /// An HTTP client that sends the administrator's token.
    pub fn http(&self) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        let token = reqwest::header::HeaderValue::from_str(&format!("token {}", self.token))
            .map_err(|e| GITEA.invalid(format!("the token is not a valid header value: {e}")))?;
        headers.insert(reqwest::header::AUTHORIZATION, token);
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| GITEA.client(format!("building an HTTP client: {e}")))
    }

    /// One API call as the administrator; a non-2xx answer is an error quoting it.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self.http()?.request(method.clone(), self.api(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| GITEA.client(format!("{method} {path}: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(GITEA.client(format!("{method} {path}: HTTP {status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A user with a random password (returned).
    pub async fn create_user(&self, login: &str) -> Result<String> {
        let password = format!("Pw-{login}-{}", std::process::id());
        let body = json!({
            "username": login, "email": format!("{login}@lab.test"), "password": password,
            "must_change_password": false,
        });
        self.call(reqwest::Method::POST, "/admin/users", Some(body)).await?;
        Ok(password)
    }

    /// An organization owned by the administrator.
    pub async fn create_org(&self, org: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/orgs", Some(json!({ "username": org, "visibility": "public" })))
            .await
            .map(drop)
    }

    /// A repository of `org` with one commit on `branch`.
    pub async fn create_repo(&self, org: &str, name: &str, branch: &str) -> Result<()> {
        let body = json!({ "name": name, "auto_init": true, "default_branch": branch, "private": false });
        self.call(reqwest::Method::POST, &format!("/orgs/{org}/repos"), Some(body)).await.map(drop)
    }

    /// A team of `org` with write access to its repositories; returns its id.
    pub async fn create_team(&self, org: &str, name: &str) -> Result<i64> {
        let body = json!({
            "name": name, "permission": "write", "includes_all_repositories": false,
            "units": ["repo.code", "repo.issues", "repo.pulls"],
        });
        let team = self.call(reqwest::Method::POST, &format!("/orgs/{org}/teams"), Some(body)).await?;
        team.get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| GITEA.client(format!("team {org}/{name}: no id in {team}")))
    }
}
