//! Contribute access on the workstation (SPEC §11.3, with a forge target):
//! `host/ContributeAccess/<os_user>/git` puts the user's forge token into
//! `~/.git-credentials` (0600, theirs; their other lines kept), sets
//! `credential.helper store`, `user.name` and `user.email` in `~/.gitconfig`,
//! and makes the main checkout's branch track the extra remote.
//!
//! The token is minted by the forge target in the same apply and handed to
//! this change by the engine (`Target::apply_with`); root writes the file
//! through the home's verified handle (`tenantry-fs`), so the secret reaches
//! no command line, no environment and no output. git itself only edits
//! config files, run as the user with the hardened runner.

use crate::error::{Error, Result};
use crate::etc::Etc;
use crate::git;
use crate::home::{Home, under_root};
use crate::inner::Inner;
use crate::ops::Op;
use serde::Deserialize;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::Path;

pub(crate) const CREDENTIALS: &str = ".git-credentials";
pub(crate) const GITCONFIG: &str = ".gitconfig";

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ContributeSpec {
    pub os_user: String,
    pub forge_url: String,
    pub login: String,
    pub git_name: String,
    pub git_email: String,
    pub tracking: Option<Tracking>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Tracking {
    pub checkout: String,
    pub remote: String,
    pub branch: String,
}

/// `scheme://host[:port]` of the forge URL, split.
fn scheme_host(url: &str) -> Result<(&str, &str)> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| Error::Content(format!("forge URL `{url}` has no scheme")))?;
    Ok((scheme, rest.split('/').next().unwrap_or(rest)))
}

/// Whether a `.git-credentials` line is the user's entry for this forge.
fn is_entry_for(line: &str, scheme: &str, host: &str, login: &str) -> bool {
    let Some((line_scheme, rest)) = line.trim().split_once("://") else { return false };
    let Some((userinfo, host_path)) = rest.rsplit_once('@') else { return false };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    line_scheme.eq_ignore_ascii_case(scheme)
        && host_path.trim_end_matches('/').eq_ignore_ascii_case(host)
        && user.eq_ignore_ascii_case(login)
}

/// The file with the user's entry for this forge replaced by `secret`'s.
pub(crate) fn merge_credentials(existing: &str, url: &str, login: &str, secret: &str) -> Result<String> {
    let (scheme, host) = scheme_host(url)?;
    let mut out: String = existing
        .lines()
        .filter(|line| !line.trim().is_empty() && !is_entry_for(line, scheme, host, login))
        .map(|line| format!("{line}\n"))
        .collect();
    // Logins are [A-Za-z0-9._-] (validated) and tokens hex: nothing to escape.
    out.push_str(&format!("{scheme}://{login}:{secret}@{host}\n"));
    Ok(out)
}

/// Whether the file holds a non-empty token for the user on this forge.
fn has_entry(text: &str, url: &str, login: &str) -> bool {
    let Ok((scheme, host)) = scheme_host(url) else { return false };
    text.lines().any(|line| {
        is_entry_for(line, scheme, host, login)
            && line
                .trim()
                .split_once("://")
                .and_then(|(_, r)| r.rsplit_once('@'))
                .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, token)| !token.is_empty()))
    })
}

/// `section.subsection.key` (lowercase section and key) = value, in file order, for the few keys tenantry sets.
pub(crate) fn config_entries(config: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for raw in config.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.rsplit_once(']').map_or(header, |(inside, _)| inside).trim();
            section = match header.split_once(char::is_whitespace) {
                Some((name, sub)) => {
                    let sub = sub.trim();
                    let sub = sub.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(sub);
                    format!("{}.{sub}", name.to_ascii_lowercase())
                }
                None => header.to_ascii_lowercase(),
            };
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, "true"));
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        out.push((format!("{section}.{}", key.trim().to_ascii_lowercase()), value.to_string()));
    }
    out
}

/// The last value of `key` (git's rule for single-valued keys).
fn last<'a>(entries: &'a [(String, String)], key: &str) -> Option<&'a str> {
    entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl Inner {
    pub(crate) fn contribute_ops(&self, spec: &ContributeSpec, etc: &Etc) -> Result<Vec<Op>> {
        let home = self.home(etc, &spec.os_user)?;
        let home_path = home.path().to_path_buf();
        let gitconfig = home_path.join(GITCONFIG).to_string_lossy().into_owned();
        let config = |key: &str, value: &str| {
            let args = ["config", "--file", &gitconfig, key, value].map(str::to_string).to_vec();
            Op::Run(self.git(&home_path, &spec.os_user, args))
        };
        let mut ops = vec![
            Op::WriteCredential {
                path: home_path.join(CREDENTIALS),
                owner: spec.os_user.clone(),
                url: spec.forge_url.clone(),
                login: spec.login.clone(),
            },
            config("credential.helper", "store"),
            config("user.name", &spec.git_name),
            config("user.email", &spec.git_email),
        ];
        if let Some(tracking) = &spec.tracking {
            let checkout = under_root(self.root(), &tracking.checkout)?.to_string_lossy().into_owned();
            for (key, value) in [
                (format!("branch.{}.remote", tracking.branch), tracking.remote.clone()),
                (format!("branch.{}.merge", tracking.branch), format!("refs/heads/{}", tracking.branch)),
            ] {
                let args = ["-C", &checkout, "config", &key, &value].map(str::to_string).to_vec();
                ops.push(Op::Run(self.git(&home_path, &spec.os_user, args)));
            }
        }
        Ok(ops)
    }

    /// Write the credential file with the minted secret (execute's step).
    pub(crate) fn write_credential(
        &self,
        home: &Home,
        path: &Path,
        url: &str,
        login: &str,
        secret: Option<&str>,
    ) -> Result<()> {
        let secret = secret.ok_or_else(|| {
            Error::Refused(format!(
                "no forge token was minted for {login} in this apply; {} is written only with a fresh one",
                path.display()
            ))
        })?;
        // The tenant's own lines are kept; a file that cannot be read safely (a link, a FIFO, another owner's) is refused.
        let existing = home.read(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        home.write(path, merge_credentials(&existing, url, login, secret)?.as_bytes(), 0o600, true)?;
        Ok(())
    }

    /// The recorded contribute access checked against the home: the record
    /// when it holds, the fields found instead when something drifted.
    pub(crate) fn observe_contribute(&self, recorded: &Value, home: &Home) -> Option<Value> {
        let spec: ContributeSpec = serde_json::from_value(recorded.clone()).ok()?;
        let credentials = home.read(&home.path().join(CREDENTIALS)).ok()??;
        if !has_entry(&String::from_utf8_lossy(&credentials), &spec.forge_url, &spec.login) {
            return None;
        }
        let gitconfig = home.read(&home.path().join(GITCONFIG)).ok().flatten().unwrap_or_default();
        let entries = config_entries(&String::from_utf8_lossy(&gitconfig));
        let mut value = recorded.clone();
        if last(&entries, "credential.helper") != Some("store") {
            value["credential_helper"] = json!(last(&entries, "credential.helper"));
        }
        value["git_name"] = json!(last(&entries, "user.name"));
        value["git_email"] = json!(last(&entries, "user.email"));
        if let Some(tracking) = &spec.tracking {
            let checkout = under_root(self.root(), &tracking.checkout).ok()?;
            let config = git_config(home, &checkout).unwrap_or_default();
            let entries = config_entries(&config);
            let section = format!("branch.{}", tracking.branch);
            value["tracking"]["remote"] = json!(last(&entries, &format!("{section}.remote")));
            value["tracking"]["branch"] = match last(&entries, &format!("{section}.merge")) {
                Some(merge) if merge == format!("refs/heads/{}", tracking.branch) => json!(tracking.branch),
                other => json!(other),
            };
        }
        Some(value)
    }
}

/// A checkout's own `.git/config` (a file of the account's).
fn git_config(home: &Home, checkout: &Path) -> Option<String> {
    let dir = git::git_dir(home, checkout).ok()??;
    let rules = tenantry_fs::ReadRules { owner: Some(home.uid()), max_bytes: crate::home::HOME_READ_LIMIT };
    let bytes = dir.read_file(OsStr::new("config"), rules).ok()??;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_other_credentials_are_kept_and_only_their_entry_replaced() {
        let existing =
            "https://alice:old@github.example\nhttp://Alice:stale@127.0.0.1:23000\n\nhttp://bob:x@127.0.0.1:23000\n";
        let merged = merge_credentials(existing, "http://127.0.0.1:23000/", "alice", "fresh").unwrap();
        assert_eq!(
            merged,
            "https://alice:old@github.example\nhttp://bob:x@127.0.0.1:23000\nhttp://alice:fresh@127.0.0.1:23000\n"
        );
        assert!(has_entry(&merged, "http://127.0.0.1:23000", "alice"));
        assert!(!has_entry("http://alice:@127.0.0.1:23000\n", "http://127.0.0.1:23000", "alice"));
        let entries =
            config_entries("[user]\n\tname = A\n[credential]\nhelper = store\n[branch \"master\"]\n remote = forge\n");
        assert_eq!(last(&entries, "user.name"), Some("A"));
        assert_eq!(last(&entries, "credential.helper"), Some("store"));
        assert_eq!(last(&entries, "branch.master.remote"), Some("forge"));
    }
}
