//! Reading a checkout without running git: is it one, and where do its remotes point.
//!
//! Observe reads `.git/config` directly: it must not fetch, and spawning git
//! for each of thousands of checkouts would dominate a no-op run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The git directory of a work tree (`.git`, or where a `.git` file points).
pub fn git_dir(work_tree: &Path) -> Option<PathBuf> {
    let dot_git = work_tree.join(".git");
    let meta = std::fs::symlink_metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dot_git);
    }
    if meta.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        return Some(work_tree.join(target));
    }
    None
}

pub fn is_checkout(path: &Path) -> bool {
    git_dir(path).is_some()
}

/// Each remote's (first) URL, from the checkout's own config.
pub fn remotes(work_tree: &Path) -> BTreeMap<String, String> {
    git_dir(work_tree)
        .and_then(|dir| std::fs::read_to_string(dir.join("config")).ok())
        .map(|text| parse_remotes(&text))
        .unwrap_or_default()
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
