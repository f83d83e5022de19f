//! End to end through the binary with [vault], [kubernetes], [forge] and
//! [ci] configured (SPEC §8.7): one apply converges everything in order,
//! and a user whose Vault entity fails loses only their CI and forge changes.

use super::*;

#[path = "../../../tenantry-ci/tests/support/woodpecker.rs"]
#[allow(dead_code)]
mod woodpecker;

#[test]
fn one_apply_runs_vault_then_the_cluster_then_ci_and_the_forge_and_a_failed_entity_skips_only_its_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let id = run_id();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let gitea = tenantry_testenv::gitea().unwrap_or_else(|e| panic!("{e}"));
    let vault = vault_env();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ci = runtime.block_on(woodpecker::Woodpecker::start());
    let (ann, ben) = (format!("ann{id}"), format!("ben{id}"));
    let (ann_login, ben_login, pat_login) = (format!("e{id}ann"), format!("e{id}ben"), format!("e{id}pat"));
    let org = format!("e{id}org");
    ci.add_user(&ann_login, false);
    ci.add_user(&ben_login, false);
    runtime.block_on(async {
        gitea.create_org(&org).await.unwrap();
        gitea.create_repo(&org, "infra", "master").await.unwrap();
        gitea.create_user(&ann_login).await.unwrap();
        gitea.create_user(&ben_login).await.unwrap();
        gitea.create_user(&pat_login).await.unwrap();
    });
    bao("POST", &format!("sys/auth/e2e-oidc-{id}"), serde_json::json!({ "type": "oidc" }));
    bao("POST", &format!("sys/mounts/e2e-k8s-{id}"), serde_json::json!({ "type": "kubernetes" }));
    // Ben's entity name is taken by another user's entity: his Vault entity is a conflict.
    bao(
        "POST",
        &format!("identity/entity/name/{ben}"),
        serde_json::json!({ "metadata": { "managed-by": "tenantry", "tenantry-user": "someone-else" } }),
    );

    // The cluster is shared with other tests: a power-user keeps the shared
    // ClusterRole `oidc-power-user-readonly` wanted (a roster without one
    // would delete it, as the platform's own object no user needs).
    let roster = format!(
        "platform:\n  name: lab\n  ci: {{ extra_admins: [] }}\n  forge: {{ repos: [{org}/infra] }}\nusers:\n  {ann}: {{ email: {ann}@lab.test, tier: namespace-owner, namespaces: [{ann}], forge_user: {ann_login} }}\n  {ben}: {{ email: {ben}@lab.test, tier: namespace-owner, namespaces: [{ben}], forge_user: {ben_login} }}\n  pat{id}: {{ email: pat{id}@lab.test, tier: power-user, forge_user: {pat_login} }}\n"
    );
    let dir = workdir(&roster);
    let ci_token = dir.path().join("woodpecker.token");
    fs::write(&ci_token, woodpecker::TOKEN).unwrap();
    fs::set_permissions(&ci_token, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\n[vault]\naddress = \"{}\"\noidc_mount = \"e2e-oidc-{id}\"\nkubernetes_secrets_mount = \"e2e-k8s-{id}\"\n\n[forge]\nurl = \"{}\"\ntoken_file = \"{}\"\n\n[ci]\nurl = \"{}\"\ntoken_file = \"{}\"\n",
            kube.kubeconfig.display(),
            vault.addr,
            gitea.url,
            gitea.token_file,
            ci.url(),
            ci_token.display()
        ),
    )
    .unwrap();

    let first = tenantry_with_vault(dir.path(), &["apply", "--yes"]);
    let shown = text(&first);
    assert_eq!(first.status.code(), Some(1), "ben's entity fails: {shown}");
    // Ann: everything, in one apply.
    assert_eq!(
        bao("GET", &format!("identity/entity/name/{ann}"), serde_json::Value::Null)["data"]["name"],
        ann.as_str()
    );
    assert_eq!(ci.user(&ann_login).unwrap()["admin"], true);
    let collaborators = |repo: &str| {
        runtime.block_on(gitea.call(reqwest::Method::GET, &format!("/repos/{repo}/collaborators"), None)).unwrap()
    };
    let logins = |list: serde_json::Value| {
        list.as_array().unwrap().iter().map(|u| u["login"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let mut first_collaborators = logins(collaborators(&format!("{org}/infra")));
    first_collaborators.sort();
    assert_eq!(first_collaborators, vec![ann_login.clone(), pat_login.clone()]);
    // Ben: the cluster is his (no Vault in the way), CI and the forge wait for his entity.
    let namespaces = Command::new(kube.kubectl.clone().unwrap_or_else(|| "kubectl".into()))
        .args(["--kubeconfig", kube.kubeconfig.to_str().unwrap(), "get", "namespace", &ben, "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&namespaces.stdout).trim(), format!("namespace/{ben}"));
    assert_eq!(ci.user(&ben_login).unwrap()["admin"], false, "{shown}");
    assert!(shown.contains(&format!("needs vault/Entity/-/{ben}, which failed")), "{shown}");

    // The other entity goes: one more apply converges, and then nothing is left to do.
    let taken = bao("GET", &format!("identity/entity/name/{ben}"), serde_json::Value::Null);
    bao("DELETE", &format!("identity/entity/id/{}", taken["data"]["id"].as_str().unwrap()), serde_json::Value::Null);
    let second = tenantry_with_vault(dir.path(), &["apply", "--yes"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(ci.user(&ben_login).unwrap()["admin"], true);
    let mut both = logins(collaborators(&format!("{org}/infra")));
    both.sort();
    assert_eq!(both, vec![ann_login.clone(), ben_login.clone(), pat_login.clone()]);
    let plan = tenantry_with_vault(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "a second plan has nothing to do: {}", text(&plan));
}
