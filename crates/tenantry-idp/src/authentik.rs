//! Authentik's API v3 (`/api/v3/core/users/`, `/api/v3/core/groups/`):
//! paginated lists (`page`, `page_size`, `pagination.next`), groups by
//! name, members by `groups_by_name`, `add_user`/`remove_user` by user `pk`.

use crate::directory::{Account, Directory};
use crate::http::{Http, message};
use crate::{Error, Result};
use reqwest::Method;
use serde_json::{Value, json};

/// Users per page (`page_size`).
const PAGE_SIZE: &str = "100";

#[derive(Debug)]
pub(crate) struct Authentik {
    pub http: Http,
    pub url: String,
}

fn account(user: &Value) -> Account {
    let id = match &user["pk"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    Account {
        id,
        username: user["username"].as_str().unwrap_or_default().to_string(),
        email: user["email"].as_str().unwrap_or_default().to_string(),
        enabled: user["is_active"].as_bool().unwrap_or(false),
    }
}

/// A user `pk` as the JSON integer the API expects.
fn pk(id: &str) -> Result<Value> {
    id.parse::<u64>().map(Value::from).map_err(|_| Error::Invalid(format!("`{id}` is not an Authentik user pk")))
}

impl Authentik {
    /// Every result of a paginated list.
    async fn all(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut page = 1_u64;
        loop {
            let page_text = page.to_string();
            let mut full: Vec<(&str, &str)> = query.to_vec();
            full.push(("page", &page_text));
            full.push(("page_size", PAGE_SIZE));
            let (results, rest) = self.http.expect_list(path, &full, Some("results")).await?;
            out.extend(results);
            // `next` is the next page's number, 0 on the last page.
            match rest["pagination"]["next"].as_u64() {
                Some(next) if next > page => page = next,
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait::async_trait]
impl Directory for Authentik {
    fn describe(&self) -> String {
        format!("Authentik at {}", self.url)
    }

    async fn check(&self) -> Result<()> {
        let answer = self.http.send(Method::GET, "core/users/me/", &[], None).await?;
        match answer.status {
            200 => Ok(()),
            401 | 403 => Err(Error::Credentials(format!(
                "{} refused the API token (HTTP {}: {})",
                self.describe(),
                answer.status,
                message(&answer.body, "")
            ))),
            status => Err(Error::Http {
                method: "GET".into(),
                path: "core/users/me/".into(),
                status,
                message: message(&answer.body, ""),
            }),
        }
    }

    async fn find_group(&self, name: &str) -> Result<Option<String>> {
        let groups = self.all("core/groups/", &[("name", name), ("include_users", "false")]).await?;
        Ok(groups.iter().find(|g| g["name"] == name).and_then(|g| g["pk"].as_str()).map(str::to_string))
    }

    async fn members(&self, _group_id: &str, group_name: &str) -> Result<Vec<Account>> {
        Ok(self.all("core/users/", &[("groups_by_name", group_name)]).await?.iter().map(account).collect())
    }

    async fn find_account(&self, email: &str) -> Result<Option<Account>> {
        let users = self.all("core/users/", &[("email", email)]).await?;
        Ok(users.iter().map(account).find(|a| a.email.eq_ignore_ascii_case(email)))
    }

    async fn create_group(&self, name: &str) -> Result<String> {
        let answer = self.http.expect(Method::POST, "core/groups/", &[], Some(&json!({ "name": name }))).await?;
        answer.body["pk"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Invalid(format!("group `{name}`: no pk in the answer")))
    }

    async fn add_member(&self, group_id: &str, account_id: &str) -> Result<()> {
        let body = json!({ "pk": pk(account_id)? });
        self.http.expect(Method::POST, &format!("core/groups/{group_id}/add_user/"), &[], Some(&body)).await.map(drop)
    }

    async fn remove_member(&self, group_id: &str, account_id: &str) -> Result<()> {
        let body = json!({ "pk": pk(account_id)? });
        let path = format!("core/groups/{group_id}/remove_user/");
        let answer = self.http.send(Method::POST, &path, &[], Some(&body)).await?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            status => Err(Error::Http { method: "POST".into(), path, status, message: message(&answer.body, "") }),
        }
    }

    async fn create_account(&self, login: &str, email: &str) -> Result<Account> {
        // Created without a password: usable once the person sets one (recovery flow or first sign-in).
        let user = json!({ "username": login, "name": login, "email": email, "is_active": true, "path": "users" });
        Ok(account(&self.http.expect(Method::POST, "core/users/", &[], Some(&user)).await?.body))
    }

    async fn update_account(&self, account: &Account, enabled: bool, login: Option<&str>) -> Result<()> {
        let mut body = json!({ "is_active": enabled });
        if let (Some(login), Some(fields)) = (login, body.as_object_mut()) {
            fields.insert("username".to_string(), json!(login));
        }
        self.http.expect(Method::PATCH, &format!("core/users/{}/", account.id), &[], Some(&body)).await.map(drop)
    }

    async fn export_account(&self, account: &Account) -> Result<Value> {
        Ok(self.http.expect(Method::GET, &format!("core/users/{}/", account.id), &[], None).await?.body)
    }

    async fn delete_account(&self, account: &Account) -> Result<()> {
        let path = format!("core/users/{}/", account.id);
        let answer = self.http.send(Method::DELETE, &path, &[], None).await?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            status => Err(Error::Http { method: "DELETE".into(), path, status, message: message(&answer.body, "") }),
        }
    }
}
