//! The Gitea/Forgejo API calls the target makes, one function each.
//! Lists are paginated (`page`, `limit`) until `X-Total-Count` items or a
//! short page; an answer of the wrong shape is an error, never "empty".

use reqwest::Method;
use serde_json::{Value, json};
use tenantry_rest::{Basic, RestClient, RestError, segment};

/// Items per page (Gitea's default `MAX_RESPONSE_ITEMS`).
const PAGE: usize = 50;
/// A list longer than this many pages is refused rather than followed forever.
const MAX_PAGES: usize = 2000;

/// `owner/name` as two path segments.
pub(crate) fn repo_path(repo: &str) -> String {
    match repo.split_once('/') {
        Some((owner, name)) => format!("/repos/{}/{}", segment(owner), segment(name)),
        None => format!("/repos/{}", segment(repo)),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) rest: RestClient,
    /// The administrator the token belongs to (basic authentication for token calls).
    pub(crate) admin: String,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
}

fn logins(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(|u| u.get("login").and_then(Value::as_str)).map(str::to_string).collect()
}

impl Api {
    /// Every item of a paginated list; `None` when the list itself is absent (404).
    async fn list_all(&self, path: &str) -> Result<Option<Vec<Value>>, RestError> {
        self.list_all_as(path, None).await
    }

    /// [`Api::list_all`], authenticated as `basic` when given (token lists).
    async fn list_all_as(&self, path: &str, basic: Option<Basic<'_>>) -> Result<Option<Vec<Value>>, RestError> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let request = format!("{path}{join}page={page}&limit={PAGE}");
            let reply = match self.rest.send(Method::GET, &request, None, basic).await {
                Ok(reply) => reply,
                Err(RestError::Status { status: 404, .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            let total_count = reply.total_count;
            let batch = reply.into_items(&request)?;
            let short = batch.len() < PAGE;
            let empty = batch.is_empty();
            items.extend(batch);
            // With `X-Total-Count` (Gitea sends it) the count decides, since
            // the server may cap `limit` below what was asked; without it a
            // short page ends the list.
            let done = match total_count {
                Some(total) => empty || items.len() as u64 >= total,
                None => short,
            };
            if done {
                return Ok(Some(items));
            }
        }
        Ok(Some(items))
    }

    pub(crate) async fn collaborators(&self, repo: &str) -> Result<Option<Vec<String>>, RestError> {
        Ok(self.list_all(&format!("{}/collaborators", repo_path(repo))).await?.map(|items| logins(&items)))
    }

    /// The id of team `org/name`, `None` when the organization or team does not exist.
    pub(crate) async fn team_id(&self, team: &str) -> Result<Option<i64>, RestError> {
        let (org, name) = team.split_once('/').unwrap_or((team, ""));
        let Some(teams) = self.list_all(&format!("/orgs/{}/teams", segment(org))).await? else { return Ok(None) };
        Ok(teams
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|t| t.get("id").and_then(Value::as_i64)))
    }

    pub(crate) async fn team_members(&self, id: i64) -> Result<Vec<String>, RestError> {
        Ok(self.list_all(&format!("/teams/{id}/members")).await?.map(|items| logins(&items)).unwrap_or_default())
    }

    /// The branch protections of a repository; `None` when the repository is absent.
    pub(crate) async fn protections(&self, repo: &str) -> Result<Option<Vec<Value>>, RestError> {
        let request = format!("{}/branch_protections", repo_path(repo));
        self.rest.get_optional(&request).await?.map(|reply| reply.into_items(&request)).transpose()
    }

    /// One branch protection; `None` when absent. An answer that is not a
    /// protection is refused: read as one with empty whitelists, the next
    /// PATCH would take everyone else's entries away.
    pub(crate) async fn protection(&self, repo: &str, branch: &str) -> Result<Option<Value>, RestError> {
        let path = format!("{}/branch_protections/{}", repo_path(repo), segment(branch));
        let Some(reply) = self.rest.get_optional(&path).await? else { return Ok(None) };
        let named = ["rule_name", "branch_name"].iter().any(|key| reply.body.get(key).is_some_and(Value::is_string));
        if !named {
            return Err(RestError::unexpected(&path, "a branch protection", &reply.body));
        }
        Ok(Some(reply.body))
    }

    pub(crate) async fn user_exists(&self, login: &str) -> Result<bool, RestError> {
        Ok(self.rest.get_optional(&format!("/users/{}", segment(login))).await?.is_some())
    }

    /// A user as the administrator sees it (with its email); `None` when absent.
    pub(crate) async fn user(&self, login: &str) -> Result<Option<Value>, RestError> {
        Ok(self.rest.get_optional(&format!("/users/{}", segment(login))).await?.map(|reply| reply.body))
    }

    /// The login of the account holding `email` (any of its addresses), if
    /// one does: the administrator's email search, matched exactly.
    pub(crate) async fn login_by_email(&self, email: &str) -> Result<Option<String>, RestError> {
        let found = self.list_all(&format!("/admin/emails/search?q={}", segment(email))).await?.unwrap_or_default();
        Ok(found
            .iter()
            .find(|e| e.get("email").and_then(Value::as_str).is_some_and(|e| e.eq_ignore_ascii_case(email)))
            .and_then(|e| e.get("username").and_then(Value::as_str))
            .map(str::to_string))
    }

    /// A user's tokens; `None` when the user does not exist.
    pub(crate) async fn tokens(&self, login: &str) -> Result<Option<Vec<TokenInfo>>, RestError> {
        let path = format!("/users/{}/tokens", segment(login));
        let Some(items) = self.list_all_as(&path, Some(Basic { user: &self.admin })).await? else { return Ok(None) };
        Ok(Some(
            items
                .iter()
                .filter_map(|t| {
                    Some(TokenInfo {
                        id: t.get("id")?.as_i64()?,
                        name: t.get("name")?.as_str()?.to_string(),
                        scopes: t
                            .get("scopes")
                            .and_then(Value::as_array)
                            .map(|s| s.iter().filter_map(Value::as_str).map(str::to_string).collect())
                            .unwrap_or_default(),
                    })
                })
                .collect(),
        ))
    }

    pub(crate) async fn permission(&self, repo: &str, login: &str) -> Result<Option<String>, RestError> {
        let path = format!("{}/collaborators/{}/permission", repo_path(repo), segment(login));
        let Some(reply) = self.rest.get_optional(&path).await? else { return Ok(None) };
        // Without its `permission` an admin collaborator would read as none
        // and be set to write.
        match reply.body.get("permission").and_then(Value::as_str) {
            Some(permission) => Ok(Some(permission.to_string())),
            None => Err(RestError::unexpected(&path, "a permission", &reply.body)),
        }
    }

    pub(crate) async fn add_collaborator(&self, repo: &str, login: &str) -> Result<(), RestError> {
        let path = format!("{}/collaborators/{}", repo_path(repo), segment(login));
        self.rest.send(Method::PUT, &path, Some(&json!({ "permission": "write" })), None).await.map(drop)
    }

    pub(crate) async fn remove_collaborator(&self, repo: &str, login: &str) -> Result<(), RestError> {
        let path = format!("{}/collaborators/{}", repo_path(repo), segment(login));
        ignore_absent(self.rest.send(Method::DELETE, &path, None, None).await)
    }

    pub(crate) async fn add_team_member(&self, team: i64, login: &str) -> Result<(), RestError> {
        self.rest.send(Method::PUT, &format!("/teams/{team}/members/{}", segment(login)), None, None).await.map(drop)
    }

    pub(crate) async fn remove_team_member(&self, team: i64, login: &str) -> Result<(), RestError> {
        ignore_absent(
            self.rest.send(Method::DELETE, &format!("/teams/{team}/members/{}", segment(login)), None, None).await,
        )
    }

    pub(crate) async fn create_protection(&self, repo: &str, settings: &Value) -> Result<(), RestError> {
        let path = format!("{}/branch_protections", repo_path(repo));
        self.rest.send(Method::POST, &path, Some(settings), None).await.map(drop)
    }

    pub(crate) async fn edit_protection(&self, repo: &str, branch: &str, settings: &Value) -> Result<(), RestError> {
        let path = format!("{}/branch_protections/{}", repo_path(repo), segment(branch));
        self.rest.send(Method::PATCH, &path, Some(settings), None).await.map(drop)
    }

    pub(crate) async fn delete_protection(&self, repo: &str, branch: &str) -> Result<(), RestError> {
        let path = format!("{}/branch_protections/{}", repo_path(repo), segment(branch));
        ignore_absent(self.rest.send(Method::DELETE, &path, None, None).await)
    }

    /// Mint a token for `login`; returns its secret.
    pub(crate) async fn create_token(&self, login: &str, name: &str, scopes: &[String]) -> Result<String, RestError> {
        let path = format!("/users/{}/tokens", segment(login));
        let body = json!({ "name": name, "scopes": scopes });
        let reply = self.rest.send(Method::POST, &path, Some(&body), Some(Basic { user: &self.admin })).await?;
        reply.body.get("sha1").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| {
            RestError::Decode {
                method: Method::POST,
                path,
                message: "the answer carries no token (`sha1`)".to_string(),
            }
        })
    }

    pub(crate) async fn delete_token(&self, login: &str, id: i64) -> Result<(), RestError> {
        let path = format!("/users/{}/tokens/{id}", segment(login));
        ignore_absent(self.rest.send(Method::DELETE, &path, None, Some(Basic { user: &self.admin })).await)
    }
}

/// Removing what is already gone is done.
fn ignore_absent(result: Result<tenantry_rest::Reply, RestError>) -> Result<(), RestError> {
    match result {
        Ok(_) | Err(RestError::Status { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tenantry_rest::Scheme;
    use tenantry_testenv::fixed_answer::json_ok;

    fn api(base: &str) -> Api {
        let token =
            tenantry_secret::secret(None, &["T"], "token", "token_file", &|_| Some("forge-token".into())).unwrap();
        let rest = RestClient::new(base, token, Scheme::Token, Duration::from_secs(5)).unwrap();
        Api { rest, admin: "admin".to_string() }
    }

    #[tokio::test]
    async fn a_protection_or_permission_of_the_wrong_shape_is_an_error_not_an_empty_one() {
        let odd = json_ok(r#"{"message":"maintenance"}"#).unwrap();
        let error = api(&odd).protection("ops/infra", "main").await.unwrap_err().to_string();
        assert!(error.contains("expected a branch protection") && error.contains("maintenance"), "{error}");
        let error = api(&odd).permission("ops/infra", "alice").await.unwrap_err().to_string();
        assert!(error.contains("expected a permission"), "{error}");

        let rule = json_ok(r#"{"rule_name":"main","push_whitelist_usernames":null}"#).unwrap();
        assert_eq!(api(&rule).protection("ops/infra", "main").await.unwrap().unwrap()["rule_name"], "main");
    }
}
