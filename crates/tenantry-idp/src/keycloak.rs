//! Keycloak's admin REST API (`/admin/realms/<realm>/…`): groups by exact
//! name, members paged with `first`/`max`, users by exact email.

use crate::directory::{Account, Directory};
use crate::http::{Http, message};
use crate::{Error, Result};
use reqwest::Method;
use serde_json::{Value, json};

/// Members per page (Keycloak's `max`).
const PAGE: usize = 100;

#[derive(Debug)]
pub(crate) struct Keycloak {
    pub http: Http,
    pub url: String,
    pub realm: String,
}

fn account(user: &Value) -> Account {
    Account {
        id: user["id"].as_str().unwrap_or_default().to_string(),
        username: user["username"].as_str().unwrap_or_default().to_string(),
        email: user["email"].as_str().unwrap_or_default().to_string(),
        enabled: user["enabled"].as_bool().unwrap_or(false),
    }
}

#[async_trait::async_trait]
impl Directory for Keycloak {
    fn describe(&self) -> String {
        format!("Keycloak realm `{}` at {}", self.realm, self.url)
    }

    async fn check(&self) -> Result<()> {
        let answer = self.http.send(Method::GET, "users/count", &[], None).await?;
        match answer.status {
            200 => Ok(()),
            401 | 403 => Err(Error::Credentials(format!(
                "{} refused the credentials (HTTP {}: {}); the client needs manage-users, view-users and query-groups of realm-management",
                self.describe(),
                answer.status,
                message(&answer.body, "")
            ))),
            404 => Err(Error::Invalid(format!("{} does not exist (HTTP 404 for its users)", self.describe()))),
            status => Err(Error::Http {
                method: "GET".into(),
                path: "users/count".into(),
                status,
                message: message(&answer.body, ""),
            }),
        }
    }

    async fn find_group(&self, name: &str) -> Result<Option<String>> {
        let (groups, _) = self
            .http
            .expect_list("groups", &[("search", name), ("exact", "true"), ("briefRepresentation", "true")], None)
            .await?;
        // `search` also returns parents of matching subgroups: only a top-level group of that name counts.
        Ok(groups
            .iter()
            .find(|g| g["name"] == name && g["path"].as_str().is_none_or(|p| p == format!("/{name}")))
            .and_then(|g| g["id"].as_str())
            .map(str::to_string))
    }

    async fn members(&self, group_id: &str, _group_name: &str) -> Result<Vec<Account>> {
        let mut out = Vec::new();
        loop {
            let first = out.len().to_string();
            let max = PAGE.to_string();
            let (members, _) = self
                .http
                .expect_list(
                    &format!("groups/{group_id}/members"),
                    &[("first", &first), ("max", &max), ("briefRepresentation", "true")],
                    None,
                )
                .await?;
            let page: Vec<Account> = members.iter().map(account).collect();
            let done = page.len() < PAGE;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    async fn find_account(&self, email: &str) -> Result<Option<Account>> {
        let (users, _) = self
            .http
            .expect_list("users", &[("email", email), ("exact", "true"), ("briefRepresentation", "true")], None)
            .await?;
        Ok(users.iter().map(account).find(|a| a.email.eq_ignore_ascii_case(email)))
    }

    async fn create_group(&self, name: &str) -> Result<String> {
        let answer = self.http.send(Method::POST, "groups", &[], Some(&json!({ "name": name }))).await?;
        match answer.status {
            201 => {}
            // Created meanwhile by someone else: take it.
            409 => {}
            status => {
                return Err(Error::Http {
                    method: "POST".into(),
                    path: "groups".into(),
                    status,
                    message: message(&answer.body, ""),
                });
            }
        }
        self.find_group(name)
            .await?
            .ok_or_else(|| Error::Invalid(format!("group `{name}` was created but is not found")))
    }

    async fn add_member(&self, group_id: &str, account_id: &str) -> Result<()> {
        self.http.expect(Method::PUT, &format!("users/{account_id}/groups/{group_id}"), &[], None).await.map(drop)
    }

    async fn remove_member(&self, group_id: &str, account_id: &str) -> Result<()> {
        let answer =
            self.http.send(Method::DELETE, &format!("users/{account_id}/groups/{group_id}"), &[], None).await?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            status => Err(Error::Http {
                method: "DELETE".into(),
                path: format!("users/{account_id}/groups/{group_id}"),
                status,
                message: message(&answer.body, ""),
            }),
        }
    }

    async fn create_account(&self, login: &str, email: &str) -> Result<Account> {
        let user = json!({
            "username": login,
            "email": email,
            "enabled": true,
            "emailVerified": false,
            // No credential: the person verifies the address and sets a password first.
            "requiredActions": ["VERIFY_EMAIL", "UPDATE_PASSWORD"],
        });
        self.http.expect(Method::POST, "users", &[], Some(&user)).await?;
        self.find_account(email)
            .await?
            .ok_or_else(|| Error::Invalid(format!("account `{email}` was created but is not found")))
    }

    async fn update_account(&self, account: &Account, enabled: bool, login: Option<&str>) -> Result<()> {
        let mut body = json!({ "enabled": enabled });
        if let (Some(login), Some(fields)) = (login, body.as_object_mut()) {
            fields.insert("username".to_string(), json!(login));
        }
        self.http.expect(Method::PUT, &format!("users/{}", account.id), &[], Some(&body)).await.map(drop)
    }

    async fn export_account(&self, account: &Account) -> Result<Value> {
        let user = self.http.expect(Method::GET, &format!("users/{}", account.id), &[], None).await?.body;
        let groups = self.http.expect(Method::GET, &format!("users/{}/groups", account.id), &[], None).await?.body;
        Ok(json!({ "user": user, "groups": groups }))
    }

    async fn delete_account(&self, account: &Account) -> Result<()> {
        let answer = self.http.send(Method::DELETE, &format!("users/{}", account.id), &[], None).await?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            status => Err(Error::Http {
                method: "DELETE".into(),
                path: format!("users/{}", account.id),
                status,
                message: message(&answer.body, ""),
            }),
        }
    }
}
