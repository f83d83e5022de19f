//! The generated routing files (`ttyd-user-map`, `ttyd-admins`, the
//! dispatch map) send a web login to an account. Checked entry by entry
//! when applied: an entry naming an existing account that is not a
//! tenant's (root, a daemon, a service account) is dropped with a warning,
//! so no login ever lands in such an account, whatever the roster says.
//! Accounts that do not exist yet are kept: the same apply creates them
//! (with a regular uid).

use crate::etc::Etc;
use serde_json::Value;
use tenantry_core::Content;

/// The routing file `name`'s text with refused entries dropped, and a warning for each.
pub(crate) fn checked(name: &str, path: &str, text: &str, etc: &Etc) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let mut refuse = |entry: &str, os_user: &str| -> bool {
        let Some(system) = etc.system_account(os_user) else { return false };
        warnings.push(format!("{path}: the entry `{entry}` is left out: {}", etc.system_account_reason(system)));
        true
    };
    let text = match name {
        "ttyd-user-map" => {
            keep_lines(text, |line| line.split_once('=').is_none_or(|(_, os_user)| !refuse(line, os_user.trim())))
        }
        "ttyd-admins" => keep_lines(text, |line| !refuse(line, line.trim())),
        "dispatch.json" => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut routes)) => {
                let before = routes.len();
                routes.retain(|idp_user, route| {
                    let os_user = route.get("os_user").and_then(Value::as_str).unwrap_or_default();
                    !refuse(&format!("{idp_user} → {os_user}"), os_user)
                });
                if routes.len() == before {
                    text.to_string()
                } else {
                    // The same canonical form derivation writes.
                    format!("{}\n", Content::from_value(&Value::Object(routes)))
                }
            }
            _ => text.to_string(),
        },
        _ => text.to_string(),
    };
    (text, warnings)
}

/// `text` without the entry lines `keep` rejects (comments and blank lines always kept).
fn keep_lines(text: &str, mut keep: impl FnMut(&str) -> bool) -> String {
    text.split_inclusive('\n')
        .filter(|line| {
            let entry = line.trim();
            entry.is_empty() || entry.starts_with('#') || keep(entry)
        })
        .collect()
}
