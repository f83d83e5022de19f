//! The forge target against the real Gitea of `testenv/up gitea`: every
//! test makes its own organization, repositories, team and users
//! (`f<run>…`), so tests run concurrently and rerun cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use tenantry_core::{Action, Policy, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use tenantry_forge::{ForgeConfig, ForgeTarget, Provider};
use tenantry_testenv::Gitea;

use tenantry_testenv::run_id;

fn gitea() -> Gitea {
    tenantry_testenv::gitea().unwrap_or_else(|e| panic!("{e}"))
}

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap_or_else(|e| panic!("{e:?}"))
}

async fn target(gitea: &Gitea) -> Arc<ForgeTarget> {
    let config = ForgeConfig {
        url: gitea.url.clone(),
        token_file: Some(gitea.token_file.clone().into()),
        provider: Provider::Gitea,
        timeout_secs: None,
    };
    Arc::new(ForgeTarget::connect(&config, &|_| None).await.unwrap())
}

fn engine(target: &Arc<ForgeTarget>, state: State) -> Engine {
    Engine::new(
        vec![Arc::clone(target) as Arc<dyn Target>],
        state,
        Arc::new(FixedClock("2026-12-01T04:00:00Z".into())),
        Settings::default(),
    )
}

async fn apply(engine: &Engine, roster: &tenantry_model::Roster, policy: Policy) -> (Prepared, ApplyReport) {
    let prepared = engine.prepare(roster, policy).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
    let options = ApplyOptions { concurrency: 4, command: "test".into(), ..ApplyOptions::default() };
    let report = engine.apply(roster, &prepared, &options, &|_| {}).await.unwrap();
    (prepared, report)
}

fn action(prepared: &Prepared, id: &str) -> Option<Action> {
    prepared.plan.changes.iter().find(|c| c.id.to_string() == id).map(|c| c.action)
}

/// An organization with repositories `infra` and `apps` (branch `master`),
/// team `contributors`, and the given users.
async fn forge_setup(gitea: &Gitea, org: &str, users: &[&str]) {
    gitea.create_org(org).await.unwrap();
    for repo in ["infra", "apps"] {
        gitea.create_repo(org, repo, "master").await.unwrap();
    }
    gitea.create_team(org, "contributors").await.unwrap();
    for user in users {
        gitea.create_user(user).await.unwrap();
    }
}

async fn logins(gitea: &Gitea, path: &str) -> Vec<String> {
    let list = gitea.call(Method::GET, path, None).await.unwrap();
    let mut names: Vec<String> =
        list.as_array().unwrap().iter().map(|u| u["login"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

async fn team_members(gitea: &Gitea, org: &str) -> Vec<String> {
    let teams = gitea.call(Method::GET, &format!("/orgs/{org}/teams"), None).await.unwrap();
    let id = teams.as_array().unwrap().iter().find(|t| t["name"] == "contributors").unwrap()["id"].as_i64().unwrap();
    logins(gitea, &format!("/teams/{id}/members")).await
}

async fn protection(gitea: &Gitea, repo: &str) -> Value {
    gitea.call(Method::GET, &format!("/repos/{repo}/branch_protections/master"), None).await.unwrap()
}

fn platform(org: &str, push_users: &str) -> String {
    format!(
        "platform:\n  forge:\n    repos: [{org}/infra, {org}/apps]\n    protected_branch: master\n    push_users: [{push_users}]\n    team: {org}/contributors\n"
    )
}

#[tokio::test]
async fn two_users_two_repos_then_a_no_op_costs_only_list_requests_and_the_cut_takes_it_back() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}o");
    let (alice, bob, carol) = (format!("f{id}a"), format!("f{id}b"), format!("f{id}c"));
    forge_setup(&gitea, &org, &[&alice, &bob, &carol]).await;
    let users = |extra: &str| {
        format!(
            "users:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  bob{id}: {{ email: b{id}@example.org, tier: power-user, forge_user: {bob} }}\n{extra}"
        )
    };
    let two = roster(&format!("{}{}", platform(&org, &format!("alice{id}")), users("")));
    let forge = target(&gitea).await;
    let engine = engine(&forge, State::in_memory().unwrap());

    let (prepared, report) = apply(&engine, &two, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert!(prepared.plan.problems.is_empty(), "{:?}", prepared.plan.problems);
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{alice}/{org}/infra")), Some(Action::Create));
    for repo in ["infra", "apps"] {
        let repo = format!("{org}/{repo}");
        assert_eq!(logins(&gitea, &format!("/repos/{repo}/collaborators")).await, vec![alice.clone(), bob.clone()]);
        for user in [&alice, &bob] {
            let permission =
                gitea.call(Method::GET, &format!("/repos/{repo}/collaborators/{user}/permission"), None).await.unwrap();
            assert_eq!(permission["permission"], "write", "{user} on {repo}");
        }
        let protected = protection(&gitea, &repo).await;
        assert_eq!(protected["enable_push"], true);
        assert_eq!(protected["enable_push_whitelist"], true);
        assert_eq!(protected["enable_force_push"], false);
        assert_eq!(protected["push_whitelist_usernames"], json!([alice]));
        assert_eq!(protected["merge_whitelist_usernames"], json!([alice]));
    }
    assert_eq!(team_members(&gitea, &org).await, vec![alice.clone(), bob.clone()]);

    // A second plan is a no-op that only lists: per repository its
    // collaborators and protections, per team its lookup and members.
    let before = forge.request_counts();
    let again = engine.prepare(&two, Policy::default()).await.unwrap();
    assert!(!again.plan.has_changes(), "{:?}", again.plan.changes);
    let spent = forge.request_counts();
    assert_eq!(spent.writes - before.writes, 0);
    assert_eq!(
        spent.requests - before.requests,
        2 * 2 + 2,
        "2 repos × (collaborators + protections) + team lookup + members"
    );

    // A third user costs no request more.
    let three = roster(&format!(
        "{}{}",
        platform(&org, &format!("alice{id}")),
        users(&format!("  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n"))
    ));
    assert!(apply(&engine, &three, Policy::default()).await.1.is_success());
    let before = forge.request_counts();
    assert!(!engine.prepare(&three, Policy::default()).await.unwrap().plan.has_changes());
    assert_eq!(forge.request_counts().requests - before.requests, 6, "requests grow with repos and teams, not users");

    // Additive-only: bob leaving is shown, not done; the cut takes his grants.
    let (prepared, _) = apply(
        &engine,
        &roster(&format!(
            "{}{}",
            platform(&org, &format!("alice{id}")),
            users("").replace(
                &format!("  bob{id}: {{ email: b{id}@example.org, tier: power-user, forge_user: {bob} }}\n"),
                &format!("  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n")
            )
        )),
        Policy::default(),
    )
    .await;
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{bob}/{org}/infra")), Some(Action::Departing));
    assert!(logins(&gitea, &format!("/repos/{org}/infra/collaborators")).await.contains(&bob));
    let without_bob = roster(&format!(
        "{}users:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n",
        platform(&org, &format!("alice{id}"))
    ));
    let (prepared, report) = apply(&engine, &without_bob, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("forge/TeamMember/{bob}/{org}/contributors")), Some(Action::Delete));
    assert_eq!(logins(&gitea, &format!("/repos/{org}/apps/collaborators")).await, vec![alice.clone(), carol.clone()]);
    assert_eq!(team_members(&gitea, &org).await, vec![alice.clone(), carol.clone()]);

    // Alice leaves: her whitelist entries go with the cut, the protection stays.
    let only_carol = roster(&format!(
        "{}users:\n  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n",
        platform(&org, "")
    ));
    let (prepared, report) = apply(&engine, &only_carol, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(
        action(&prepared, &format!("forge/PushWhitelistEntry/{alice}/{org}/infra@master")),
        Some(Action::Delete)
    );
    let protected = protection(&gitea, &format!("{org}/infra")).await;
    assert_eq!(protected["push_whitelist_usernames"], json!([]));
    assert_eq!(protected["enable_force_push"], false);
    assert!(!engine.prepare(&only_carol, Policy::default()).await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn an_unknown_forge_login_fails_at_plan_with_its_roster_line_and_only_its_changes_fail() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}o");
    let alice = format!("f{id}a");
    forge_setup(&gitea, &org, &[&alice]).await;
    let text = format!(
        "{}users:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  ghost{id}:\n    email: g{id}@example.org\n    tier: power-user\n    forge_user: nobody{id}\n",
        platform(&org, &format!("alice{id}"))
    );
    let line = text.lines().position(|l| l.contains(&format!("forge_user: nobody{id}"))).unwrap() + 1;
    let forge = target(&gitea).await;
    let engine = engine(&forge, State::in_memory().unwrap());
    let (prepared, report) = apply(&engine, &roster(&text), Policy::default()).await;
    let problem = prepared.plan.problems.iter().find(|p| p.message.contains(&format!("nobody{id}"))).unwrap();
    assert!(problem.message.contains(&format!("roster line {line}")), "{}", problem.message);
    assert!(problem.message.contains(&format!("user `ghost{id}`")), "{}", problem.message);
    assert!(problem.help.contains("forge_user"), "{}", problem.help);
    // Only ghost's changes fail, each saying why; alice's are applied.
    assert!(!report.failures.is_empty());
    for failure in &report.failures {
        assert_eq!(failure.owner.user(), Some(format!("ghost{id}").as_str()), "{failure:?}");
        assert!(failure.error.contains("does not exist"), "{}", failure.error);
    }
    assert_eq!(logins(&gitea, &format!("/repos/{org}/infra/collaborators")).await, vec![alice.clone()]);
}

#[tokio::test]
async fn an_existing_collaborator_is_adopted_and_an_admin_keeps_admin() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}o");
    let (alice, bob) = (format!("f{id}a"), format!("f{id}b"));
    forge_setup(&gitea, &org, &[&alice, &bob]).await;
    for (user, permission) in [(&alice, "write"), (&bob, "admin")] {
        gitea
            .call(
                Method::PUT,
                &format!("/repos/{org}/infra/collaborators/{user}"),
                Some(json!({ "permission": permission })),
            )
            .await
            .unwrap();
    }
    let text = format!(
        "platform:\n  forge: {{ repos: [{org}/infra] }}\nusers:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  bob{id}: {{ email: b{id}@example.org, tier: power-user, forge_user: {bob} }}\n"
    );
    let forge = target(&gitea).await;
    let engine = engine(&forge, State::in_memory().unwrap());
    let (prepared, report) = apply(&engine, &roster(&text), Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{alice}/{org}/infra")), Some(Action::Adopt));
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{bob}/{org}/infra")), Some(Action::Adopt));
    let permission =
        gitea.call(Method::GET, &format!("/repos/{org}/infra/collaborators/{bob}/permission"), None).await.unwrap();
    assert_eq!(permission["permission"], "admin", "adoption never lowers a permission");
    assert!(!engine.prepare(&roster(&text), Policy::default()).await.unwrap().plan.has_changes());
}

// ---------------------------------------------------------------- contribute access

mod workstation {
    use super::*;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};
    use tenantry_host::{HostConfig, HostTarget};

    /// A sandbox root with etc/passwd, group, shadow and gshadow (useradd --root needs nothing else).
    fn sandbox() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nsudo:x:27:\n").unwrap();
        std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        std::fs::write(root.join("etc/gshadow"), "root:*::\nsudo:*::\n").unwrap();
        (dir, root)
    }

    fn ids(root: &Path, os_user: &str) -> (u32, u32) {
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        let line = passwd.lines().find(|l| l.starts_with(&format!("{os_user}:"))).unwrap();
        let fields: Vec<&str> = line.split(':').collect();
        (fields[2].parse().unwrap(), fields[3].parse().unwrap())
    }

    /// The real git as the workstation user: their uid and gid, no other
    /// groups, HOME set to their home, nothing else of root's environment.
    fn git_as(root: &Path, os_user: &str, checkout: &Path, args: &[&str]) -> Output {
        let (uid, gid) = ids(root, os_user);
        let home = root.join("home").join(os_user);
        Command::new("setpriv")
            .args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".to_string()])
            .arg("git")
            .arg("-C")
            .arg(checkout)
            .args(args)
            .env_clear()
            .env("HOME", &home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap()
    }

    fn ok(output: &Output) -> bool {
        output.status.success()
    }

    fn stderr(output: &Output) -> String {
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    #[tokio::test]
    async fn as_the_workstation_user_pushes_go_where_the_forge_allows_and_stop_after_the_cut() {
        let gitea = gitea();
        let id = run_id();
        let org = format!("f{id}o");
        let (alice, bob) = (format!("f{id}a"), format!("f{id}b"));
        forge_setup(&gitea, &org, &[&alice, &bob]).await;
        let (_dir, root) = sandbox();
        let repo_url = format!("{}/{org}/infra.git", gitea.url);
        let user = |key: &str, login: &str| {
            format!(
                "  {key}{id}: {{ email: {key}{id}@example.org, tier: power-user, forge_user: {login}, workstation: {{ os_user: w{key}{id} }} }}\n"
            )
        };
        let text = |users: &str| {
            format!(
                "platform:\n  name: lab\n  workstation:\n    main_repo: {{ name: infra, url: \"{repo_url}\" }}\n    extra_remote: {{ name: forge, url: \"{repo_url}\" }}\n  forge:\n    repos: [{org}/infra]\n    protected_branch: master\n    push_users: [bob{id}]\n    team: {org}/contributors\nusers:\n{users}"
            )
        };
        let both = roster(&text(&format!("{}{}", user("alice", &alice), user("bob", &bob))));
        let forge = target(&gitea).await;
        let host = HostTarget::new(HostConfig { backup_dir: Some(root.join("backups")), ..HostConfig::sandbox(&root) });
        let settings = Settings { forge_url: Some(gitea.url.clone()), host_applies: true, ..Settings::default() };
        let engine = Engine::new(
            vec![Arc::new(host) as Arc<dyn Target>, Arc::clone(&forge) as Arc<dyn Target>],
            State::open(&root.join("../state.db")).unwrap(),
            Arc::new(FixedClock("2026-12-01T04:00:00Z".into())),
            settings,
        );

        let (prepared, report) = apply(&engine, &both, Policy::default()).await;
        assert!(report.is_success(), "{:#?}", report.failures);
        let token_change = prepared.plan.changes.iter().find(|c| c.id.kind.as_ref() == "AccessToken").unwrap();
        assert!(token_change.sensitive, "the token resource is shown as (sensitive)");

        let credentials = root.join(format!("home/walice{id}/.git-credentials"));
        let meta = std::fs::metadata(&credentials).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), ids(&root, &format!("walice{id}")));
        let stored = std::fs::read_to_string(&credentials).unwrap();
        let prefix = format!("http://{alice}:");
        let line = stored.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{stored}"));
        let token = line.trim_start_matches(&prefix).split('@').next().unwrap().to_string();
        assert_eq!(token.len(), 40, "a Gitea token");
        // The secret is in no plan line, note or failure.
        let shown = format!("{:?} {:?} {:?}", prepared.plan.changes, report.notes, report.failures);
        assert!(!shown.contains(&token));

        let checkout = root.join(format!("home/walice{id}/code"));
        let config = |key: &str| {
            String::from_utf8_lossy(&git_as(&root, &format!("walice{id}"), &checkout, &["config", key]).stdout)
                .trim()
                .to_string()
        };
        assert_eq!(config("credential.helper"), "store");
        assert_eq!(config("user.email"), format!("alice{id}@example.org"));
        assert_eq!(config("branch.master.remote"), "forge");
        assert_eq!(config("branch.master.merge"), "refs/heads/master");
        // Nothing left to do.
        let again = engine.prepare(&both, Policy::default()).await.unwrap();
        let changes: Vec<String> =
            again.plan.changes.iter().filter(|c| c.action.is_change()).map(|c| c.id.to_string()).collect();
        assert!(changes.is_empty(), "{changes:?}");

        // Alice: a feature branch goes through; master is protected and she is not whitelisted.
        let alice_os = format!("walice{id}");
        assert!(ok(&git_as(&root, &alice_os, &checkout, &["checkout", "-q", "-b", "feature"])));
        std::fs::write(checkout.join("alice.txt"), "hello\n").unwrap();
        let (uid, gid) = ids(&root, &alice_os);
        std::os::unix::fs::chown(checkout.join("alice.txt"), Some(uid), Some(gid)).unwrap();
        assert!(ok(&git_as(&root, &alice_os, &checkout, &["add", "alice.txt"])));
        assert!(ok(&git_as(&root, &alice_os, &checkout, &["commit", "-q", "-m", "alice"])));
        let pushed = git_as(&root, &alice_os, &checkout, &["push", "forge", "feature"]);
        assert!(ok(&pushed), "{}", stderr(&pushed));
        let refused = git_as(&root, &alice_os, &checkout, &["push", "forge", "feature:master"]);
        assert!(!ok(&refused), "master is protected");
        assert!(stderr(&refused).contains("protected branch"), "{}", stderr(&refused));

        // Bob is on the whitelist: a push to master goes through, a force push does not.
        let bob_os = format!("wbob{id}");
        let bob_checkout = root.join(format!("home/{bob_os}/code"));
        std::fs::write(bob_checkout.join("bob.txt"), "bob\n").unwrap();
        let (uid, gid) = ids(&root, &bob_os);
        std::os::unix::fs::chown(bob_checkout.join("bob.txt"), Some(uid), Some(gid)).unwrap();
        assert!(ok(&git_as(&root, &bob_os, &bob_checkout, &["add", "bob.txt"])));
        assert!(ok(&git_as(&root, &bob_os, &bob_checkout, &["commit", "-q", "-m", "bob"])));
        let pushed = git_as(&root, &bob_os, &bob_checkout, &["push", "forge", "master"]);
        assert!(ok(&pushed), "{}", stderr(&pushed));
        assert!(ok(&git_as(&root, &bob_os, &bob_checkout, &["commit", "-q", "--amend", "-m", "rewritten"])));
        let forced = git_as(&root, &bob_os, &bob_checkout, &["push", "--force", "forge", "master"]);
        assert!(!ok(&forced), "force pushes are refused");
        assert!(
            stderr(&forced).contains("force push") || stderr(&forced).contains("protected branch"),
            "{}",
            stderr(&forced)
        );

        // Alice leaves: the cut revokes her token; the same push now fails to authenticate.
        let only_bob = roster(&text(&user("bob", &bob)));
        let (prepared, report) = apply(&engine, &only_bob, Policy { offboard: true, ..Policy::default() }).await;
        assert!(report.is_success(), "{:#?}", report.failures);
        let token_id = format!("forge/AccessToken/{alice}/tenantry-lab-workstation");
        assert_eq!(action(&prepared, &token_id), Some(Action::Delete));
        std::fs::write(checkout.join("later.txt"), "later\n").unwrap();
        let (uid, gid) = ids(&root, &alice_os);
        std::os::unix::fs::chown(checkout.join("later.txt"), Some(uid), Some(gid)).unwrap();
        assert!(ok(&git_as(&root, &alice_os, &checkout, &["add", "later.txt"])));
        assert!(ok(&git_as(&root, &alice_os, &checkout, &["commit", "-q", "-m", "later"])));
        let after_cut = git_as(&root, &alice_os, &checkout, &["push", "forge", "feature"]);
        assert!(!ok(&after_cut), "the revoked token no longer pushes");
        let said = stderr(&after_cut);
        assert!(said.contains("401") || said.contains("403") || said.contains("Authentication failed"), "{said}");
        let check = reqwest::Client::new()
            .get(format!("{}/api/v1/user", gitea.url))
            .header("Authorization", format!("token {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(check.status().as_u16(), 401, "the token itself is revoked");
    }
}

/// `tenantry doctor`'s forge check on the real Gitea: a login that is
/// someone else's account, one that does not exist (with and without an
/// account holding the user's email), and a healthy user who reports nothing.
#[tokio::test]
async fn doctor_names_a_forge_login_missing_or_not_the_users_own() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}d");
    let (ann, ben, other, dan) = (format!("f{id}ann"), format!("f{id}ben"), format!("f{id}oth"), format!("f{id}dan"));
    forge_setup(&gitea, &org, &[&ann, &ben, &other, &dan]).await;
    let text = format!(
        "{}users:\n  ann{id}: {{ email: {ann}@lab.test, tier: power-user, forge_user: {ann} }}\n  ben{id}: {{ email: {ben}@lab.test, tier: power-user, forge_user: {other} }}\n  cat{id}: {{ email: cat{id}@lab.test, tier: power-user, forge_user: f{id}nobody }}\n  dan{id}: {{ email: {dan}@lab.test, tier: power-user, forge_user: f{id}gone }}\n",
        platform(&org, &format!("ann{id}"))
    );
    let roster = roster(&text);
    let forge = target(&gitea).await;
    let prepared = engine(&forge, State::in_memory().unwrap()).prepare(&roster, Policy::default()).await.unwrap();
    let request = tenantry_core::doctor::DiagnoseRequest {
        platform: "default".to_string(),
        desired: prepared.desired.resources().to_vec(),
        now: std::time::SystemTime::now(),
        emails: roster.users.values().map(|u| (u.key.clone(), u.email.value.clone())).collect(),
    };
    let diagnosis = forge.diagnose(&request).await.unwrap();
    assert!(diagnosis.ran.contains("forge-login"));
    let of = |user: &str| -> Vec<&tenantry_core::doctor::Finding> {
        diagnosis.findings.iter().filter(|f| f.owner.user() == Some(user)).collect()
    };
    assert_eq!(of(&format!("ann{id}")), Vec::<&tenantry_core::doctor::Finding>::new(), "a healthy user");

    let ben_found = of(&format!("ben{id}"));
    assert_eq!(ben_found.len(), 1, "{:#?}", diagnosis.findings);
    assert_eq!(
        ben_found[0].cause,
        format!("forge login `{other}` of `ben{id}` is not their account on the Gitea: `{ben}` is")
    );
    assert_eq!(
        ben_found[0].evidence,
        [format!("`{ben}` has the roster's email {ben}@lab.test"), format!("`{other}` has {other}@lab.test")]
    );
    assert_eq!(
        ben_found[0].fix,
        format!("set `users.ben{id}.forge_user: {ben}` in the roster, then `tenantry apply --only ben{id}`")
    );

    let cat = of(&format!("cat{id}"));
    assert_eq!(cat.len(), 1, "{:#?}", diagnosis.findings);
    assert_eq!(cat[0].cause, format!("forge login `f{id}nobody` of `cat{id}` does not exist on the Gitea"));
    assert!(cat[0].fix.starts_with("create the account on the Gitea (or have them sign in once)"), "{}", cat[0].fix);

    let dan_found = of(&format!("dan{id}"));
    assert_eq!(dan_found.len(), 1, "{:#?}", diagnosis.findings);
    assert_eq!(
        dan_found[0].cause,
        format!("forge login `f{id}gone` of `dan{id}` does not exist on the Gitea; their account is `{dan}`")
    );
    assert_eq!(diagnosis.findings.len(), 3);
}
