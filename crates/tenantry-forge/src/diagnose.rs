//! `tenantry doctor` on the forge: each user's forge login (`forge_user`)
//! exists and is theirs — the account holding the roster's email, found
//! with the administrator's email search. Two requests per user asked about.

use crate::api::Api;
use crate::{Kind, Parsed, rest_error};
use serde_json::Value;
use std::collections::BTreeMap;
use tenantry_core::doctor::{CheckInfo, DiagnoseRequest, Diagnosis, LoginSeen, login_finding};
use tenantry_core::{Owner, ResourceId};

pub const FORGE_LOGIN: &str = "forge-login";

/// The checks of the forge target.
pub const CHECKS: &[CheckInfo] =
    &[CheckInfo { name: FORGE_LOGIN, about: "each user's forge login exists and is theirs (the roster's email)" }];

pub(crate) async fn diagnose(
    api: &Api,
    provider: &str,
    request: &DiagnoseRequest,
) -> tenantry_core::target::Result<Diagnosis> {
    let mut diagnosis = Diagnosis::default();
    diagnosis.ran(FORGE_LOGIN);
    // user → (login, the first resource naming it).
    let mut logins: BTreeMap<&str, (String, &ResourceId, &Owner)> = BTreeMap::new();
    for resource in &request.desired {
        let Some(parsed) = Parsed::of(&resource.id) else { continue };
        let Some(user) = resource.owner.user() else { continue };
        if matches!(parsed.kind, Kind::Protection { .. }) {
            continue;
        }
        logins.entry(user).or_insert((parsed.login, &resource.id, &resource.owner));
    }
    for (user, (login, id, owner)) in logins {
        let email = request.emails.get(user).map(String::as_str);
        let account = api.user(&login).await.map_err(rest_error)?;
        let holder = match email {
            Some(email) => api.login_by_email(email).await.map_err(rest_error)?,
            None => None,
        };
        let seen = LoginSeen {
            login: &login,
            email,
            account: account.as_ref().map(|a| a.get("email").and_then(Value::as_str)),
            email_holder: holder.as_deref(),
        };
        let missing = format!("create the account on the {provider} (or have them sign in once)");
        if let Some(finding) = login_finding(FORGE_LOGIN, owner, provider, &seen, &missing) {
            diagnosis.found(finding.about(id));
        }
    }
    Ok(diagnosis)
}
