//! Reading a checkout without running git: is it one, and where do its remotes point.
//!
//! Observe reads `.git/config` directly: it must not fetch, and spawning git
//! for each of thousands of checkouts would dominate a no-op run. The
//! checkout is the tenant's: it is read through the home's handles, only
//! files of the account's are read (size-capped), and a `.git` file's
//! `gitdir:` is followed only when it stays inside the checkout (a worktree
//! elsewhere, or root's repository, is never read as root).

use crate::error::{Error, Result};
use crate::home::Home;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Component, Path};
use tenantry_fs::{Dir, EntryKind};

/// The git directory of the checkout at `path` (`.git`, or where a `.git`
/// file inside the checkout points); `None` when it is not a checkout.
/// An error when it cannot be looked at safely (a link on the way, a
/// `gitdir:` pointing outside the checkout).
pub fn git_dir(home: &Home, path: &Path) -> Result<Option<Dir>> {
    let Some(work_tree) = home.open_dir(path)? else { return Ok(None) };
    let dot_git = OsStr::new(".git");
    match work_tree.entry(dot_git)?.map(|info| info.kind) {
        Some(EntryKind::Dir) => Ok(Some(work_tree.open_dir(dot_git)?)),
        Some(EntryKind::File) => {
            let Some(bytes) = home.read(&path.join(".git"))? else { return Ok(None) };
            let text = String::from_utf8_lossy(&bytes);
            let Some(target) = text.trim().strip_prefix("gitdir:").map(str::trim) else { return Ok(None) };
            let inside =
                !target.is_empty() && Path::new(target).components().all(|c| matches!(c, Component::Normal(_)));
            if !inside {
                return Err(Error::Refused(format!(
                    "{}/.git points outside the checkout (gitdir: {target}); tenantry does not follow it",
                    path.display()
                )));
            }
            Ok(work_tree.walk_if_exists(Path::new(target))?)
        }
        _ => Ok(None),
    }
}

/// Whether `path` is a checkout; anything that cannot be looked at safely is not.
pub fn is_checkout(home: &Home, path: &Path) -> bool {
    matches!(git_dir(home, path), Ok(Some(_)))
}

/// Whether git-crypt's key is in the checkout (`.git/git-crypt/keys/default`: unlocked).
pub fn is_unlocked(home: &Home, path: &Path) -> bool {
    let Ok(Some(dir)) = git_dir(home, path) else { return false };
    let Ok(Some(keys)) = dir.walk_if_exists(Path::new("git-crypt/keys")) else { return false };
    matches!(keys.entry(OsStr::new("default")), Ok(Some(_)))
}

/// Each remote's (first) URL, from the checkout's own config (a file of the account's).
pub fn remotes(home: &Home, path: &Path) -> Result<BTreeMap<String, String>> {
    let Some(dir) = git_dir(home, path)? else { return Ok(BTreeMap::new()) };
    let rules = tenantry_fs::ReadRules { owner: Some(home.uid()), max_bytes: crate::home::HOME_READ_LIMIT };
    let text = dir.read_file(OsStr::new("config"), rules)?.unwrap_or_default();
    Ok(parse_remotes(&String::from_utf8_lossy(&text)))
}

/// The `remote.<name>.url` entries of a git config file. Handles the forms
/// git itself writes (quoted subsections, comments, quoted values).
pub fn parse_remotes(config: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut remote: Option<String> = None;
    for raw in config.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.rsplit_once(']').map_or(header, |(inside, _)| inside).trim();
            remote = match header.split_once(char::is_whitespace) {
                Some((section, sub)) if section.eq_ignore_ascii_case("remote") => {
                    let sub = sub.trim();
                    let sub = sub.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(sub);
                    Some(sub.replace("\\\"", "\"").replace("\\\\", "\\"))
                }
                Some(_) => None,
                // The old `[remote.origin]` form.
                None => header
                    .get(..7)
                    .filter(|prefix| prefix.eq_ignore_ascii_case("remote."))
                    .and_then(|_| header.get(7..))
                    .map(str::to_string),
            };
            continue;
        }
        let Some(name) = &remote else { continue };
        let Some((key, value)) = line.split_once('=') else { continue };
        if !key.trim().eq_ignore_ascii_case("url") || out.contains_key(name) {
            continue;
        }
        out.insert(name.clone(), config_value(value));
    }
    out
}

fn config_value(raw: &str) -> String {
    let value = raw.trim();
    if let Some(quoted) = value.strip_prefix('"')
        && let Some(end) = quoted.find('"')
    {
        return quoted[..end].to_string();
    }
    // An unquoted value ends at a comment that follows whitespace.
    let cut = value.find(" #").or_else(|| value.find(" ;")).unwrap_or(value.len());
    value[..cut].trim().to_string()
}
