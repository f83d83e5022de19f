//! `platform.forge`: repositories, the team, protected branches and their
//! push whitelists (SPEC §11.3). Users named in whitelists are checked
//! against the roster in [`super::check_platform_references`].

use super::{Checker, located, span};
use crate::names::{is_forge_login, is_git_branch, is_path_safe_repo};
use crate::raw::RawForge;
use crate::roster::{Forge, Located, ProtectedBranch};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub(super) fn check(checker: &mut Checker<'_>, forge: &RawForge) -> Forge {
    let explicit = forge.protected_branches.iter().map(|b| &b.repo);
    for repo in forge.repos.iter().chain(explicit) {
        check_pair(checker, repo, "invalid-repo", "repository", "e.g. `ops/infra`");
    }
    if let Some(team) = &forge.team {
        check_pair(checker, team, "invalid-team", "team", "e.g. `ops/contributors` (organization, then team)");
    }
    let branches = forge.protected_branch.iter().chain(forge.protected_branches.iter().map(|b| &b.branch));
    for branch in branches {
        check_branch(checker, branch);
    }
    if forge.protected_branch.is_none()
        && let Some(first) = forge.push_users.first()
    {
        checker.error(
            span(first),
            "push-users-without-branch",
            "`push_users` is set but `protected_branch` is not",
            "add `protected_branch: master` (the branch they may push to), or remove `push_users`",
        );
    }
    if let Some(branch) = &forge.protected_branch
        && forge.repos.is_empty()
    {
        checker.error(
            span(branch),
            "protected-branch-without-repos",
            "`protected_branch` is set but `repos` is empty",
            "list the repositories it protects in `repos: [ops/infra]`",
        );
    }

    let mut protected: Vec<ProtectedBranch> = Vec::new();
    if let Some(branch) = &forge.protected_branch {
        for repo in &forge.repos {
            protected.push(ProtectedBranch {
                repo: located(repo),
                branch: located(branch),
                push_users: forge.push_users.iter().map(located).collect(),
            });
        }
    }
    for entry in &forge.protected_branches {
        protected.push(ProtectedBranch {
            repo: located(&entry.repo),
            branch: located(&entry.branch),
            push_users: entry.push_users.iter().map(located).collect(),
        });
    }
    // One protection per repository and branch: two whitelists for the same
    // branch would each undo the other.
    let mut seen: BTreeMap<(String, String), Located<String>> = BTreeMap::new();
    for entry in &protected {
        let key = (entry.repo.value.clone(), entry.branch.value.clone());
        if let Some(earlier) = seen.get(&key) {
            checker.error(
                entry.branch.span,
                "duplicate-protected-branch",
                format!(
                    "branch `{}` of `{}` is already protected ({})",
                    entry.branch.value,
                    entry.repo.value,
                    checker.at(earlier.span)
                ),
                "list each repository's branch once, with all the users who may push to it",
            );
        } else {
            seen.insert(key, entry.branch.clone());
        }
    }
    Forge {
        repos: forge.repos.iter().map(located).collect(),
        protected_branches: protected,
        team: forge.team.as_ref().map(located),
    }
}

/// `owner/name`: both parts forge names (a repository's name also path-safe).
fn check_pair(checker: &mut Checker<'_>, value: &Spanned<String>, code: &'static str, what: &str, example: &str) {
    let ok = value.value.split_once('/').is_some_and(|(owner, name)| {
        is_forge_login(owner) && is_forge_login(name) && (what != "repository" || is_path_safe_repo(name))
    });
    if !ok {
        let kind = if what == "repository" { "an `owner/name` repository" } else { "an `org/team` team" };
        checker.error(span(value), code, format!("`{}` is not {kind}", value.value), example);
    }
}

fn check_branch(checker: &mut Checker<'_>, branch: &Spanned<String>) {
    if checker.plain(branch, "the branch") && !is_git_branch(&branch.value) {
        checker.error(
            span(branch),
            "invalid-branch",
            format!("`{}` is not a git branch name", branch.value),
            "write the branch as git shows it, e.g. `main` or `release/1.2` (no spaces, `..`, `~^:?*[\\`, \
             no leading `-`)",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{Span, ValidationContext, load};

    fn codes(text: &str) -> Vec<(&'static str, Span)> {
        match load("roster.yaml", text.as_bytes(), &ValidationContext::default()) {
            Ok(_) => Vec::new(),
            Err(found) => found.items.iter().map(|d| (d.code, d.span)).collect(),
        }
    }

    #[test]
    fn the_spec_form_expands_to_one_protection_per_repository() {
        let text = "platform:\n  forge:\n    repos: [ops/infra, ops/apps]\n    protected_branch: master\n    push_users: [alice]\n    team: ops/contributors\nusers:\n  alice: { email: a@example.org, tier: power-user }\n";
        let roster = load("roster.yaml", text.as_bytes(), &ValidationContext::default()).unwrap();
        let forge = roster.platform.forge.unwrap();
        let protected: Vec<String> =
            forge.protected_branches.iter().map(|b| format!("{}@{}", b.repo.value, b.branch.value)).collect();
        assert_eq!(protected, ["ops/infra@master", "ops/apps@master"]);
        assert_eq!(forge.team.unwrap().value, "ops/contributors");
    }

    #[test]
    fn whitelists_need_a_branch_teams_are_org_slash_team_and_a_branch_is_protected_once() {
        let base = "users:\n  alice: { email: a@example.org, tier: power-user }\n";
        let no_branch = format!("platform:\n  forge:\n    repos: [ops/infra]\n    push_users: [alice]\n{base}");
        assert_eq!(codes(&no_branch), [("push-users-without-branch", Span::new(4, 18))]);
        let team = format!("platform:\n  forge:\n    team: contributors\n{base}");
        assert_eq!(codes(&team), [("invalid-team", Span::new(3, 11))]);
        let twice = format!(
            "platform:\n  forge:\n    repos: [ops/infra]\n    protected_branch: master\n    protected_branches: [{{ repo: ops/infra, branch: master }}]\n{base}"
        );
        assert_eq!(codes(&twice), [("duplicate-protected-branch", Span::new(5, 53))]);
        let unknown = format!(
            "platform:\n  forge:\n    repos: [ops/infra, ops/apps]\n    protected_branch: master\n    push_users: [bob]\n{base}"
        );
        assert_eq!(codes(&unknown), [("unknown-user", Span::new(5, 18))], "reported once, not per repository");
    }
}
