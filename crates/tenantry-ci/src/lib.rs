//! The CI target (SPEC §11.3): Woodpecker admin rights.
//!
//! `ci/Admin/-/<login>` — the Woodpecker user `<login>` (a forge login:
//! Woodpecker users are forge accounts, created at their first sign-in) is
//! an admin. Observe lists the users once (`GET /api/users`, paginated) and
//! reports the admins it was asked about; a login the roster names that
//! Woodpecker does not know is a plan problem naming the login and its
//! roster line (SPEC §8.8). Apply reads the user and `PATCH`es it back
//! whole with `admin` set (Woodpecker's PATCH also writes the email and
//! avatar it is given); the cut sets `admin: false`. An existing admin is
//! adopted (Woodpecker users carry no marks: the inventory says what is
//! tenantry's). 429 and 5xx answers are retried with backoff, then fail
//! that change alone with the server's words. `tenantry doctor` checks
//! each admin's login against the Woodpecker user holding their roster
//! email (`ci-login`).

mod plugin;

pub use plugin::PLUGIN;
pub use tenantry_rest::{RequestCounts, Retry};

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;
use tenantry_core::kinds::kind;
use tenantry_core::target::Result;
use tenantry_core::{
    Action, Applied, Change, Content, Domain, ErrorKind, ObserveRequest, Observed, PlanProblem, Snapshot, Target,
    TargetError,
};
use tenantry_model::Span;
use tenantry_rest::{RestClient, RestError, Scheme, segment};

pub const CI_LOGIN: &str = "ci-login";

/// The checks of the CI target.
pub const CHECKS: &[tenantry_core::doctor::CheckInfo] = &[tenantry_core::doctor::CheckInfo {
    name: CI_LOGIN,
    about: "each CI admin's login is a Woodpecker user, and the one with the roster's email",
}];

/// Users asked for per listing page (Woodpecker's default).
const PER_PAGE: usize = 50;
const MAX_PAGES: usize = 2000;

/// Settings of `[ci]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiConfig {
    /// Woodpecker's base URL, e.g. `https://ci.example.org` (the API is under `/api`).
    pub url: String,
    /// A file holding an admin's personal access token (mode 0600); else `$WOODPECKER_TOKEN`.
    pub token_file: Option<PathBuf>,
    /// Seconds one request may take (default 30).
    pub timeout_secs: Option<u64>,
}

impl CiConfig {
    pub fn check(&self) -> std::result::Result<(), String> {
        let url = self.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains('@') {
            return Err(format!(
                "`url` = \"{url}\" must be an http(s) URL without credentials, e.g. \"https://ci.example.org\""
            ));
        }
        if self.timeout_secs == Some(0) {
            return Err("`timeout_secs` must be at least 1".to_string());
        }
        Ok(())
    }
}

/// Logins Woodpecker does not know, with the plan's message (for apply).
#[derive(Debug, Default)]
struct Missing(BTreeMap<String, String>);

/// The Woodpecker target.
#[derive(Debug)]
pub struct CiTarget {
    rest: RestClient,
}

fn rest_error(error: RestError) -> TargetError {
    error.into_target_error()
}

impl CiTarget {
    pub async fn connect(config: &CiConfig, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<CiTarget> {
        CiTarget::connect_with(config, env, Retry::default()).await
    }

    /// With another retry policy (tests shorten the backoff).
    pub async fn connect_with(
        config: &CiConfig,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
        retry: Retry,
    ) -> Result<CiTarget> {
        let token = tenantry_secret::secret(
            config.token_file.as_deref(),
            &["WOODPECKER_TOKEN"],
            "Woodpecker token",
            "token_file",
            env,
        )
        .map_err(|e| TargetError::new(ErrorKind::Forbidden, e.to_string()))?;
        let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(30));
        let base = format!("{}/api", config.url.trim_end_matches('/'));
        let rest =
            RestClient::new(&base, token, Scheme::Bearer, timeout).map_err(TargetError::unavailable)?.with_retry(retry);
        let me = rest.get("/user").await.map_err(rest_error)?.body;
        if me.get("admin").and_then(Value::as_bool) != Some(true) {
            let login = me.get("login").and_then(Value::as_str).unwrap_or("?");
            return Err(TargetError::new(
                ErrorKind::Forbidden,
                format!("the [ci] token belongs to `{login}`, who is not a Woodpecker admin: granting admin needs one"),
            ));
        }
        Ok(CiTarget { rest })
    }

    /// Requests sent so far.
    pub fn request_counts(&self) -> RequestCounts {
        self.rest.counts()
    }

    /// Every Woodpecker user, by lowercase login.
    async fn users(&self) -> Result<HashMap<String, Value>> {
        let mut users = HashMap::new();
        for page in 1..=MAX_PAGES {
            let request = format!("/users?page={page}&perPage={PER_PAGE}");
            let reply = self.rest.get(&request).await.map_err(rest_error)?;
            let batch = reply.into_items(&request).map_err(rest_error)?;
            // The server may cap `perPage` lower than asked: only an empty page ends the list.
            let done = batch.is_empty();
            for user in batch {
                if let Some(login) = user.get("login").and_then(Value::as_str) {
                    users.insert(login.to_ascii_lowercase(), user.clone());
                }
            }
            if done {
                break;
            }
        }
        Ok(users)
    }
}

#[async_trait::async_trait]
impl Target for CiTarget {
    fn name(&self) -> &str {
        "ci"
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Ci]
    }

    fn describe(&self, change: &Change) -> Vec<String> {
        let admin = !matches!(change.action, Action::Delete | Action::Cut);
        vec![format!("PATCH /api/users/{} (admin: {admin}; the rest of the user as read)", change.id.name)]
    }

    async fn observe(&self, request: &ObserveRequest) -> Result<Observed> {
        let mut observed = Observed::default();
        let wanted: Vec<_> = request.resources.iter().filter(|(id, _)| &*id.kind == kind::CI_ADMIN).collect();
        if wanted.is_empty() {
            return Ok(observed);
        }
        let users = self.users().await?;
        let origins: HashMap<_, Span> = request.origins.iter().map(|(id, span)| (id, *span)).collect();
        let desired: std::collections::HashSet<_> = request.desired.iter().map(|(id, _)| id).collect();
        let mut missing = Missing::default();
        for (id, owner) in wanted {
            let login = id.name.to_ascii_lowercase();
            match users.get(&login) {
                Some(user) if user.get("admin").and_then(Value::as_bool) == Some(true) => {
                    observed.insert(
                        id.clone(),
                        Content::from_value(&json!({ "login": &*id.name, "admin": true })),
                        None,
                    );
                }
                Some(_) => {}
                None if desired.contains(id) => {
                    let line = origins.get(id).map(|s| s.line).unwrap_or(0);
                    let whose = match owner.user() {
                        Some(user) => format!(" of user `{user}`"),
                        None => " in platform.ci.extra_admins".to_string(),
                    };
                    let message =
                        format!("forge login `{}`{whose} (roster line {line}) is not a Woodpecker user", id.name);
                    observed.problems.push(PlanProblem {
                        message: message.clone(),
                        help: "Woodpecker creates a user at their first sign-in through the forge: have them sign in \
                               once, or set `forge_user:` to their forge login; until then this grant fails at apply"
                            .to_string(),
                        blocking: false,
                    });
                    missing.0.insert(login, message);
                }
                None => {}
            }
        }
        observed.snapshot = Snapshot::new(missing);
        Ok(observed)
    }

    /// Each user's admin login against Woodpecker's users (one listing).
    async fn diagnose(
        &self,
        request: &tenantry_core::doctor::DiagnoseRequest,
    ) -> Result<tenantry_core::doctor::Diagnosis> {
        use tenantry_core::doctor::{Diagnosis, LoginSeen, login_finding};
        let mut diagnosis = Diagnosis::default();
        diagnosis.ran(CI_LOGIN);
        let admins: Vec<_> =
            request.desired.iter().filter(|r| &*r.id.kind == kind::CI_ADMIN && r.owner.user().is_some()).collect();
        if admins.is_empty() {
            return Ok(diagnosis);
        }
        let users = self.users().await?;
        let email_of = |user: &Value| user.get("email").and_then(Value::as_str).map(str::to_string);
        for resource in admins {
            let login = &*resource.id.name;
            let email = resource.owner.user().and_then(|u| request.emails.get(u)).map(String::as_str);
            let holder = email.and_then(|wanted| {
                users
                    .values()
                    .find(|u| email_of(u).is_some_and(|e| e.eq_ignore_ascii_case(wanted)))
                    .and_then(|u| u.get("login").and_then(Value::as_str))
            });
            let account = users.get(&login.to_ascii_lowercase());
            let account_email = account.map(email_of);
            let seen =
                LoginSeen { login, email, account: account_email.as_ref().map(Option::as_deref), email_holder: holder };
            let missing = "Woodpecker creates a user at their first sign-in through the forge: have them sign in once";
            if let Some(finding) = login_finding(CI_LOGIN, &resource.owner, "Woodpecker", &seen, missing) {
                diagnosis.found(finding.about(&resource.id));
            }
        }
        Ok(diagnosis)
    }

    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> Result<Applied> {
        let id = change.id.to_string();
        let login = &*change.id.name;
        let admin = !matches!(change.action, Action::Delete | Action::Cut);
        if admin && let Some(message) = snapshot.get::<Missing>().and_then(|m| m.0.get(&login.to_ascii_lowercase())) {
            return Err(TargetError::rejected(&id, message.clone()).with_kind(ErrorKind::NotFound));
        }
        let path = format!("/users/{}", segment(login));
        let about = |e: RestError| rest_error(e).about(&id);
        let mut user = match self.rest.get_optional(&path).await.map_err(about)? {
            Some(reply) => reply.body,
            // Gone already: nothing to take away.
            None if !admin => return Ok(Applied::done()),
            None => {
                return Err(TargetError::rejected(&id, format!("`{login}` is not a Woodpecker user"))
                    .with_kind(ErrorKind::NotFound));
            }
        };
        if user.get("admin").and_then(Value::as_bool) == Some(admin) {
            return Ok(Applied::done());
        }
        // Woodpecker's PATCH writes email, avatar and admin from the body: send them back as read.
        let Some(fields) = user.as_object_mut() else {
            return Err(TargetError::rejected(&id, "Woodpecker answered something other than a user"));
        };
        fields.insert("admin".to_string(), Value::Bool(admin));
        self.rest.send(Method::PATCH, &path, Some(&user), None).await.map_err(about)?;
        Ok(Applied::done())
    }
}
