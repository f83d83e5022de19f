//! Workstations on the shared host: `platform.workstation` (shell, groups,
//! repositories, host files) and each user's `workstation` (account name,
//! identity-provider login, repositories). Everything here ends up in
//! `/etc` files, `useradd` and `git` command lines, run as root.

use super::platform::check_url_field;
use super::users::AllClaims;
use super::{Checker, Claims, ValidationContext, located, span};
use crate::Span;
use crate::diagnostic::did_you_mean;
use crate::names::*;
use crate::raw::*;
use crate::reserved::{ROOT_EQUIVALENT_GROUPS, ROOT_GROUPS, os_user_reason};
use crate::roster::*;
use crate::spanned_map::SpannedMap;
use crate::urls::UrlUse;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};

fn check_tier_groups(checker: &mut Checker<'_>, groups: &SpannedMap<Vec<String>>) -> BTreeMap<Tier, Vec<String>> {
    let mut tier_groups = BTreeMap::new();
    for (tier, list) in &groups.entries {
        let Some(parsed) = Tier::parse(&tier.value) else {
            let help = match did_you_mean(&tier.value, Tier::ALL.iter().map(|t| t.as_str())) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None => "use admin, power-user or namespace-owner".to_string(),
            };
            checker.error(span(tier), "unknown-tier", format!("unknown tier `{}`", tier.value), help);
            continue;
        };
        // List items carry no position of their own: point at the list.
        let at = span(list);
        for group in &list.value {
            if !checker.plain_at(group, at, "a tier group") {
                continue;
            }
            if !is_valid_os_user(group) {
                checker.error(
                    at,
                    "invalid-group",
                    format!("`{group}` is not a host group name"),
                    "use `[a-z_][a-z0-9_-]*`, at most 32 characters",
                );
            } else if parsed != Tier::Admin && ROOT_GROUPS.contains(&group.as_str()) {
                checker.error(
                    at,
                    "privileged-group",
                    format!("`{group}` gives root on the host, but `{}` users are not admins", tier.value),
                    format!("remove `{group}` from `tier_groups.{}`; only `admin` may have root groups", tier.value),
                );
            } else if parsed != Tier::Admin && ROOT_EQUIVALENT_GROUPS.contains(&group.as_str()) {
                checker.warning(
                    at,
                    "root-equivalent-group",
                    format!("members of `{group}` can become root on the host; every `{}` user joins it", tier.value),
                    format!("make sure that is intended, or remove `{group}` from `tier_groups.{}`", tier.value),
                );
            }
        }
        tier_groups.insert(parsed, list.value.clone());
    }
    tier_groups
}

pub(super) fn check_platform(
    checker: &mut Checker<'_>,
    raw: Option<&Spanned<RawPlatformWorkstation>>,
    context: &ValidationContext,
) -> PlatformWorkstation {
    let at = raw.map(span).unwrap_or_default();
    let raw = raw.map(|w| &w.value);
    let tier_groups = match raw.and_then(|w| w.tier_groups.as_ref()) {
        Some(groups) => check_tier_groups(checker, groups),
        None => BTreeMap::from([(Tier::Admin, vec!["sudo".to_string()])]),
    };
    let mut port_pools: BTreeMap<String, u16> =
        DEFAULT_PORT_POOLS.iter().map(|(name, port)| (name.to_string(), *port)).collect();
    if let Some(pools) = raw.and_then(|w| w.port_pools.as_ref()) {
        port_pools.clear();
        for (name, first) in &pools.entries {
            if !is_dns1123_label(&name.value) {
                checker.error(
                    span(name),
                    "invalid-name",
                    format!("pool name `{}`", name.value),
                    "use a DNS label such as `terminal`",
                );
            }
            if first.value < 1024 {
                checker.error(
                    span(first),
                    "privileged-port",
                    format!("pool `{}` starts at port {}", name.value, first.value),
                    "start pools at 1024 or above",
                );
            }
            port_pools.insert(name.value.clone(), first.value);
        }
    }
    let dispatch_path = check_dispatch_path(checker, raw.and_then(|w| w.dispatch_path.as_ref()), context);
    let shell = raw.and_then(|w| w.shell.as_ref());
    if let Some(shell) = shell {
        check_shell(checker, shell);
    }
    let main_repo = raw.and_then(|w| w.main_repo.as_ref()).map(|repo| check_repo(checker, repo, "main_repo"));
    let extra_remote = raw.and_then(|w| w.extra_remote.as_ref()).map(|repo| check_repo(checker, repo, "extra_remote"));
    let repo_base = raw.and_then(|w| w.repo_base.as_ref());
    if let Some(base) = repo_base {
        check_url_field(checker, base, "repo_base", UrlUse::GitBase);
    }
    let mut managed_files = Vec::new();
    for file in raw.map(|w| w.managed_files.as_slice()).unwrap_or_default() {
        if checker.plain(&file.source, "the managed file source") && !is_safe_relative_path(&file.source.value) {
            checker.error(
                span(&file.source),
                "unsafe-path",
                format!("`{}` must be a path inside the host's source directory", file.source.value),
                "use a relative path without `..`, e.g. `files/AGENTS.md` (relative to `[host] source_dir`)",
            );
        }
        if checker.plain(&file.dest, "the managed file destination") && !is_safe_relative_path(&file.dest.value) {
            checker.error(
                span(&file.dest),
                "unsafe-path",
                format!("`{}` must be a path inside the home directory", file.dest.value),
                "use a relative path without `..`, e.g. `.codex/AGENTS.md`",
            );
        }
        managed_files.push(ManagedFile {
            source: file.source.value.clone(),
            dest: file.dest.value.clone(),
            span: span(&file.dest),
        });
    }
    let mut skeleton_links = Vec::new();
    for link in raw.map(|w| w.skeleton_links.as_slice()).unwrap_or_default() {
        if checker.plain(&link.link, "the skeleton link") && !is_safe_relative_path(&link.link.value) {
            checker.error(
                span(&link.link),
                "unsafe-path",
                format!("`{}` must be a path inside the home directory", link.link.value),
                "use a relative path without `..`, e.g. `.claude/skills`",
            );
        }
        if checker.plain(&link.target, "the skeleton link target") && link.target.value.is_empty() {
            checker.error(
                span(&link.target),
                "missing-field",
                "the skeleton link target is empty",
                "write the path the link points to, e.g. `/opt/base/skills`",
            );
        }
        skeleton_links.push(SkeletonLink {
            link: link.link.value.clone(),
            target: link.target.value.clone(),
            span: span(&link.link),
        });
    }
    let system_files = check_system_files(checker, raw.map(|w| w.system_files.as_slice()).unwrap_or_default());
    let session_command = raw.and_then(|w| w.session_command.as_ref()).and_then(|c| check_session_command(checker, c));
    PlatformWorkstation {
        shell: shell.map(|s| s.value.clone()).unwrap_or_else(|| DEFAULT_SHELL.to_string()),
        tier_groups,
        port_pools,
        main_repo,
        repo_base: repo_base.map(|s| s.value.clone()),
        extra_remote,
        dispatch_path,
        managed_files,
        skeleton_links,
        session_command,
        system_files,
        span: at,
    }
}

/// Where a system file may not go: homes and scratch space (another
/// user's), kernel and device trees, and the account and sudo databases.
const SYSTEM_FILE_REFUSED: &[&str] =
    &["/home", "/root", "/tmp", "/var/tmp", "/dev", "/proc", "/sys", "/run", "/etc/sudoers", "/etc/sudoers.d"];
const ACCOUNT_FILES: &[&str] = &["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/login.defs"];

fn check_system_files(checker: &mut Checker<'_>, raw: &[RawManagedFile]) -> Vec<ManagedFile> {
    let mut files: Vec<ManagedFile> = Vec::new();
    for file in raw {
        if checker.plain(&file.source, "the system file source") && !is_safe_relative_path(&file.source.value) {
            checker.error(
                span(&file.source),
                "unsafe-path",
                format!("`{}` must be a path inside the host's source directory", file.source.value),
                "use a relative path without `..`, e.g. `files/managed-settings.json` (relative to `[host] source_dir`)",
            );
        }
        let dest = &file.dest.value;
        if !checker.plain(&file.dest, "the system file destination") {
            continue;
        }
        let inside = |prefix: &&str| dest == prefix || dest.starts_with(&format!("{prefix}/"));
        if !dest.starts_with('/') || !is_safe_relative_path(&dest[1..]) {
            checker.error(
                span(&file.dest),
                "unsafe-path",
                format!("`{dest}` must be an absolute path without `..` or `.`"),
                "write the file's place on the host, e.g. `/etc/claude-code/managed-settings.json`",
            );
        } else if SYSTEM_FILE_REFUSED.iter().any(inside) || ACCOUNT_FILES.contains(&dest.as_str()) {
            checker.error(
                span(&file.dest),
                "unsafe-path",
                format!("`{dest}` is in a home, a scratch or kernel directory, or an account or sudo database"),
                "system files go to directories only root writes, e.g. under `/etc` or `/opt`; files for every \
                 home are `managed_files`",
            );
        } else if files.iter().any(|f| &f.dest == dest) {
            checker.error(span(&file.dest), "duplicate", format!("`{dest}` is installed twice"), "keep one entry");
        }
        files.push(ManagedFile { source: file.source.value.clone(), dest: dest.clone(), span: span(&file.dest) });
    }
    files
}

/// Words split on spaces; each `{placeholder}` known; no quotes or
/// backslashes (nothing interprets them: the words are argv, never a shell line).
fn check_session_command(checker: &mut Checker<'_>, command: &Spanned<String>) -> Option<SessionCommand> {
    if !checker.plain(command, "the session command") {
        return None;
    }
    let at = span(command);
    let words: Vec<String> = command.value.split_whitespace().map(str::to_string).collect();
    let Some(first) = words.first() else {
        checker.error(
            at,
            "missing-field",
            "the session command is empty",
            "write a command, e.g. `claude --resume {conversation}`",
        );
        return None;
    };
    if first.contains('{') || first.starts_with('-') {
        checker.error(
            at,
            "invalid-session-command",
            format!("the session command starts with a placeholder or an option (`{first}`)"),
            "start with the program to run, e.g. `claude --resume {conversation}`",
        );
        return None;
    }
    for word in &words {
        if let Some(quote) = word.chars().find(|c| matches!(c, '\'' | '"' | '\\')) {
            checker.error(
                at,
                "invalid-session-command",
                format!("the session command holds `{quote}` in `{word}`"),
                "the words are split on spaces and passed as arguments, never to a shell: quotes and backslashes are \
                 not interpreted; remove them",
            );
            return None;
        }
        if let Err(problem) = check_placeholders(word) {
            checker.error(
                at,
                "invalid-session-command",
                format!("the session command word `{word}` {problem}"),
                format!(
                    "the placeholders are {}",
                    SESSION_PLACEHOLDERS.iter().map(|p| format!("`{{{p}}}`")).collect::<Vec<_>>().join(", ")
                ),
            );
            return None;
        }
    }
    Some(SessionCommand { words, span: at })
}

fn check_placeholders(word: &str) -> Result<(), String> {
    let mut rest = word;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a `}` without `{`".to_string());
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { return Err("has a `{` without `}`".to_string()) };
        let name = &after[..close];
        if !SESSION_PLACEHOLDERS.contains(&name) {
            let hint = did_you_mean(name, SESSION_PLACEHOLDERS.iter().copied())
                .map(|c| format!(" (did you mean `{{{c}}}`?)"))
                .unwrap_or_default();
            return Err(format!("names an unknown placeholder `{{{name}}}`{hint}"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn check_repo(checker: &mut Checker<'_>, repo: &RawRepo, field: &str) -> Repo {
    // The name is a directory under ~/code (main_repo) or a git remote name (extra_remote).
    if checker.plain(&repo.name, &format!("`{field}.name`")) && !is_path_safe_repo(&repo.name.value) {
        checker.error(
            span(&repo.name),
            "unsafe-repo-name",
            format!("repository name `{}` is not safe as a directory name", repo.name.value),
            "use letters, digits, `.`, `_` and `-`, not starting with `.` or `-`",
        );
    }
    check_url_field(checker, &repo.url, &format!("{field}.url"), UrlUse::GitRemote);
    Repo { name: repo.name.value.clone(), url: repo.url.value.clone() }
}

fn check_shell(checker: &mut Checker<'_>, shell: &Spanned<String>) {
    if !checker.plain(shell, "`shell`") {
        return;
    }
    if !shell.value.starts_with('/') {
        checker.error(span(shell), "relative-path", "`shell` must be an absolute path", "e.g. `/bin/bash`");
        return;
    }
    let in_system_dir = SHELL_DIRS
        .iter()
        .any(|dir| shell.value.strip_prefix(dir).is_some_and(|name| !name.is_empty() && !name.contains('/')));
    if !is_safe_absolute_path(&shell.value) || !in_system_dir {
        checker.error(
            span(shell),
            "unsafe-path",
            format!("`shell` `{}` is not a program in a system directory", shell.value),
            format!(
                "every tenant logs in through it, so it must be root's: use a shell in {} (e.g. `/bin/zsh`)",
                SHELL_DIRS.join(", ")
            ),
        );
    }
}

/// The dispatch map's path: tenantry.toml's when set; otherwise the roster's,
/// which may only name a `.json` file in [`ROSTER_DISPATCH_DIR`] (tenantry
/// writes it as root: roster text must not pick where).
fn check_dispatch_path(
    checker: &mut Checker<'_>,
    written: Option<&Spanned<String>>,
    context: &ValidationContext,
) -> String {
    if let Some(configured) = &context.host_dispatch_path {
        if let Some(written) = written
            && written.value != *configured
        {
            checker.warning(
                span(written),
                "dispatch-path-overridden",
                format!(
                    "`dispatch_path` `{}` is ignored: tenantry.toml sets `[host] dispatch_path = \"{}\"`",
                    written.value,
                    configured.escape_debug()
                ),
                "remove `dispatch_path` from the roster; tenantry.toml decides where host files go",
            );
        }
        return configured.clone();
    }
    let Some(written) = written else { return DEFAULT_DISPATCH_PATH.to_string() };
    if !checker.plain(written, "`dispatch_path`") {
        return DEFAULT_DISPATCH_PATH.to_string();
    }
    let file = written.value.strip_prefix(ROSTER_DISPATCH_DIR).filter(|f| !f.contains('/'));
    let allowed = file.is_some_and(|f| f.len() > ".json".len() && f.ends_with(".json") && is_path_safe_repo(f));
    if !allowed {
        checker.error(
            span(written),
            "host-path-not-allowed",
            format!(
                "`dispatch_path` `{}` is outside {ROSTER_DISPATCH_DIR}: tenantry writes this file as root, so the \
                 roster may only name a `.json` file in that directory",
                written.value
            ),
            format!(
                "use `{DEFAULT_DISPATCH_PATH}` (or remove the line), or set `[host] dispatch_path` in tenantry.toml \
                 to write it elsewhere"
            ),
        );
        return DEFAULT_DISPATCH_PATH.to_string();
    }
    written.value.clone()
}

fn check_os_user(
    checker: &mut Checker<'_>,
    user_key: &str,
    raw: &RawUserWorkstation,
    at: Span,
    platform: &Platform,
) -> Option<Located<String>> {
    let os_user = match &raw.os_user {
        Some(name) => {
            if !checker.plain(name, "`os_user`") {
                return None;
            }
            if !is_valid_os_user(&name.value) {
                checker.error(
                    span(name),
                    "invalid-os-user",
                    format!("`{}` is not a valid host account name", name.value),
                    "use `[a-z_][a-z0-9_-]*`, at most 32 characters",
                );
                return None;
            }
            located(name)
        }
        None => {
            let sanitised = sanitize_os_user(user_key);
            if !is_valid_os_user(&sanitised) {
                checker.error(
                    at,
                    "invalid-os-user",
                    format!("user key `{user_key}` does not give a valid host account name (`{sanitised}`)"),
                    "set `workstation.os_user:` explicitly, starting with a letter",
                );
                return None;
            }
            Located::new(sanitised, at)
        }
    };
    let tier_group = platform.workstation.tier_groups.values().flatten().any(|g| *g == os_user.value);
    let reason = os_user_reason(&os_user.value).or_else(|| {
        tier_group.then(|| format!("`{}` is a group in `tier_groups`; the account would share its name", os_user.value))
    });
    if let Some(reason) = reason {
        let fix = if raw.os_user.is_some() {
            "choose another `workstation.os_user:` for this user".to_string()
        } else {
            format!("the account name comes from the key `{user_key}`: set `workstation.os_user:` to another name")
        };
        checker.error(
            os_user.span,
            "reserved-os-user",
            format!("host account `{}` is reserved: {reason}", os_user.value),
            fix,
        );
        return None;
    }
    Some(os_user)
}

fn check_idp_user(
    checker: &mut Checker<'_>,
    user_key: &str,
    email: &str,
    raw: &RawUserWorkstation,
    at: Span,
    claims: &mut Claims,
) -> Option<Located<String>> {
    let idp_user = match &raw.idp_user {
        Some(name) => {
            if !checker.plain(name, "`idp_user`") {
                return None;
            }
            located(name)
        }
        None => Located::new(email.split('@').next().unwrap_or(user_key).to_string(), at),
    };
    if !is_idp_login(&idp_user.value) {
        let (message, help) = if raw.idp_user.is_some() {
            (
                format!("`{}` cannot be used as an identity-provider login", idp_user.value),
                "set `workstation.idp_user:` to the login: letters, digits and `@ . + _ -`, no spaces, `=` or quotes",
            )
        } else {
            (
                format!("the email's local part `{}` cannot be used as an identity-provider login", idp_user.value),
                "set `workstation.idp_user:` to the login: letters, digits and `@ . + _ -`",
            )
        };
        checker.error(idp_user.span, "invalid-idp-user", message, help);
        return None;
    }
    if let Some((other, earlier)) = claims.claim(&idp_user.value.to_ascii_lowercase(), user_key, idp_user.span) {
        checker.error(
            idp_user.span,
            "duplicate-idp-user",
            format!(
                "identity-provider login `{}` is also used by user `{other}` ({}); logins compare without case",
                idp_user.value,
                checker.at(earlier)
            ),
            "the web terminal routes by this login; set a distinct `workstation.idp_user:`",
        );
        return None;
    }
    Some(idp_user)
}

pub(super) fn check_user(
    checker: &mut Checker<'_>,
    user_key: &str,
    email: &str,
    raw: &Spanned<RawUserWorkstation>,
    platform: &Platform,
    claims: &mut AllClaims,
) -> Option<Workstation> {
    let at = span(raw);
    let raw = &raw.value;
    let os_user = check_os_user(checker, user_key, raw, at, platform)?;
    if let Some((other, earlier)) = claims.os_users.claim(&os_user.value, user_key, os_user.span) {
        checker.error(
            os_user.span,
            "os-user-collision",
            format!("host account `{}` is also the account of user `{other}` ({})", os_user.value, checker.at(earlier)),
            "set a distinct `workstation.os_user:` for one of them",
        );
    }
    let idp_user = check_idp_user(checker, user_key, email, raw, at, &mut claims.idp_users);
    let code_layout = raw.code_layout.as_ref().map(|l| l.value).unwrap_or_default();
    let repos = check_repos(checker, user_key, raw, code_layout, platform);
    if code_layout == CodeLayout::Workspace && !repos.is_empty() && platform.workstation.repo_base.is_none() {
        checker.error(
            at,
            "missing-repo-base",
            "workspace repositories need `platform.workstation.repo_base` to know where to clone from",
            "add `repo_base: https://forge.example.org/ops/` under `platform.workstation`",
        );
    }
    Some(Workstation { os_user, idp_user: idp_user?, code_layout, repos, parked: raw.parked, span: at })
}

fn check_repos(
    checker: &mut Checker<'_>,
    user_key: &str,
    raw: &RawUserWorkstation,
    code_layout: CodeLayout,
    platform: &Platform,
) -> Vec<Located<String>> {
    let mut seen = BTreeSet::new();
    let main_name = platform.workstation.main_repo.as_ref().map(|r| r.name.as_str());
    let mut repos = Vec::new();
    for repo in &raw.repos {
        let at = span(repo);
        if code_layout != CodeLayout::Workspace {
            checker.error(
                at,
                "repos-need-workspace",
                format!("`repos` is only used with `code_layout: workspace`; `{user_key}` uses `single`"),
                "add `code_layout: workspace`, or remove `repos`",
            );
            break;
        }
        if !is_path_safe_repo(&repo.value) {
            checker.error(
                at,
                "unsafe-repo-name",
                format!("repository name `{}` is not safe as a directory name", repo.value),
                "use letters, digits, `.`, `_` and `-`, not starting with `.` or `-`, no `/`",
            );
            continue;
        }
        if Some(repo.value.as_str()) == main_name {
            checker.error(
                at,
                "duplicate-repo",
                format!("`{}` is the platform's main repository, already at ~/code/{}", repo.value, repo.value),
                "remove it from `repos`",
            );
            continue;
        }
        if !seen.insert(repo.value.clone()) {
            checker.error(at, "duplicate-repo", format!("repository `{}` is listed twice", repo.value), "remove one");
            continue;
        }
        repos.push(located(repo));
    }
    repos
}
