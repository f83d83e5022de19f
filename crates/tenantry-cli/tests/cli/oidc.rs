//! A real OIDC sign-in end to end (issue #17): people sign in to the test
//! Keycloak (password grant of the `kubernetes` client), and the apiserver —
//! which trusts that realm (`testenv/up keycloak kube`) — authorizes their
//! ID tokens through what `tenantry apply` created: given to `kubectl
//! --token`, and through the kubeconfig `tenantry kubeconfig` writes, its
//! exec plugin pointed at a helper that returns the token.

use super::*;
use tenantry_testenv::Keycloak;

fn keycloak() -> Keycloak {
    tenantry_testenv::keycloak().unwrap_or_else(|e| panic!("{e}"))
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tenantry_testenv::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// kubectl against the test apiserver with nothing but an ID token.
fn kubectl_token(token: &str, args: &[&str]) -> Output {
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let env = tenantry_testenv::TestEnv::load();
    Command::new(kube.kubectl.unwrap())
        .args(["--kubeconfig", "/dev/null", "--server", &kube.url, "--token", token])
        .arg(format!("--certificate-authority={}", env.get("KUBE_CA_FILE").unwrap()))
        .args(args)
        .env_clear()
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn can_i(token: &str, args: &[&str]) -> String {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    String::from_utf8(kubectl_token(token, &full).stdout).unwrap().trim().to_string()
}

/// A roster of three people who exist in Keycloak, applied to the test cluster by the CLI.
struct Team {
    dir: tempfile::TempDir,
    id: String,
    alice: String,
    bob: String,
}

fn team(rbac_subjects: &str, readers: &str) -> Team {
    let kc = keycloak();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let env = tenantry_testenv::TestEnv::load();
    let ca = fs::read_to_string(env.get("KUBE_CA_FILE").unwrap()).unwrap();
    let id = run_id();
    let (alice, bob, carol) = (format!("oa{id}"), format!("ob{id}"), format!("oc{id}"));
    block_on(async {
        for name in [&alice, &bob, &carol] {
            let user = kc.create_user(name, &format!("{name}@example.org"), &format!("pw-{name}")).await.unwrap();
            if name == &bob {
                kc.add_to_group(&user, readers).await.unwrap();
            }
        }
    });
    let ca_block: String = ca.lines().map(|l| format!("    {l}\n")).collect();
    let roster = format!(
        "platform:\n  name: lab\n  api_server: {}\n  api_server_ca: |\n{ca_block}  oidc: {{ issuer_url: {}, client_id: {} }}\n  rbac_subjects: {rbac_subjects}\n  idp: {{ tier_groups: {{ power-user: [\"{readers}\"], namespace-owner: [owners-{id}] }} }}\nusers:\n  {alice}: {{ email: {alice}@example.org, tier: namespace-owner, namespaces: [{alice}] }}\n  {bob}: {{ email: {bob}@example.org, tier: power-user }}\n  {carol}: {{ email: {carol}@example.org, tier: namespace-owner, namespaces: [{carol}] }}\n",
        kube.url, kc.issuer, kc.kubernetes_client_id
    );
    let dir = workdir(&roster);
    fs::write(
        dir.path().join("tenantry.toml"),
        format!("[kubernetes]\nkubeconfig = \"{}\"\n", kube.kubeconfig.display()),
    )
    .unwrap();
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    kubectl_admin(&["create", "secret", "generic", "private", "-n", &carol, "--from-literal=k=v"]);
    kubectl_admin(&["create", "secret", "generic", "private", "-n", &alice, "--from-literal=k=v"]);
    Team { dir, id, alice, bob }
}

fn sign_in(name: &str) -> String {
    block_on(keycloak().sign_in(name, &format!("pw-{name}"))).unwrap().id_token
}

#[test]
fn a_real_keycloak_id_token_gets_exactly_the_tiers_rights_through_kubectl_and_the_generated_kubeconfig() {
    let Team { dir, id, alice, bob } = team("users", &format!("readers-{}", run_id()));
    let carol = format!("oc{id}");
    let alice_token = sign_in(&alice);

    // The namespace-owner manages their own namespace, and only that.
    let whoami = kubectl_token(&alice_token, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(String::from_utf8_lossy(&whoami.stdout), format!("{alice}@example.org"), "{}", text(&whoami));
    let create = kubectl_token(&alice_token, &["create", "configmap", "mine", "-n", &alice, "--from-literal=a=b"]);
    assert!(create.status.success(), "{}", text(&create));
    let own_secrets = kubectl_token(&alice_token, &["get", "secrets", "-n", &alice, "-o", "name"]);
    assert!(String::from_utf8_lossy(&own_secrets.stdout).contains("secret/private"), "{}", text(&own_secrets));
    let elsewhere = kubectl_token(&alice_token, &["get", "secrets", "-n", &carol]);
    assert!(!elsewhere.status.success() && text(&elsewhere).contains("forbidden"), "{}", text(&elsewhere));
    let other_ns = kubectl_token(&alice_token, &["create", "configmap", "x", "-n", &carol]);
    assert!(text(&other_ns).contains("forbidden"), "{}", text(&other_ns));

    // The power-user reads the cluster, but no secrets and no exec.
    let bob_token = sign_in(&bob);
    let pods = kubectl_token(&bob_token, &["get", "pods", "-n", &alice]);
    assert!(pods.status.success(), "{}", text(&pods));
    let secrets = kubectl_token(&bob_token, &["get", "secrets", "-n", &alice]);
    assert!(text(&secrets).contains("forbidden"), "{}", text(&secrets));
    assert_eq!(can_i(&bob_token, &["create", "pods/exec", "-n", &alice]), "no");
    assert_eq!(can_i(&bob_token, &["get", "secrets", "--all-namespaces"]), "no");
    assert_eq!(can_i(&alice_token, &["create", "pods/exec", "-n", &alice]), "yes");

    // The same through the kubeconfig tenantry generates: its exec plugin
    // (kubelogin's `kubectl oidc-login`) is a helper returning alice's token.
    use std::os::unix::fs::PermissionsExt as _;
    let config = dir.path().join("alice.kubeconfig");
    let write = tenantry(dir.path(), &["kubeconfig", &alice, "--write", config.to_str().unwrap()]);
    assert_eq!(write.status.code(), Some(0), "{}", text(&write));
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let token_file = dir.path().join("id-token");
    fs::write(&token_file, &alice_token).unwrap();
    let helper = format!(
        "#!/bin/sh\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\"}}}}' \"$(cat '{}')\"\n",
        token_file.display()
    );
    fs::write(bin.join("kubectl-oidc_login"), helper).unwrap();
    fs::set_permissions(bin.join("kubectl-oidc_login"), fs::Permissions::from_mode(0o700)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let home = dir.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let cfg = config.to_str().unwrap();
    let whoami = kubectl_in(
        &path,
        &home,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", "--kubeconfig", cfg],
    );
    assert_eq!(String::from_utf8_lossy(&whoami.stdout), format!("{alice}@example.org"), "{}", text(&whoami));
    let list = kubectl_in(&path, &home, &["get", "configmap", "mine", "-n", &alice, "-o", "name", "--kubeconfig", cfg]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "configmap/mine", "{}", text(&list));
    let denied = kubectl_in(&path, &home, &["get", "secrets", "-n", &carol, "--kubeconfig", cfg]);
    assert!(text(&denied).contains("forbidden"), "{}", text(&denied));

    for ns in [&alice, &carol] {
        kubectl_admin(&["delete", "namespace", ns, "--wait=false"]);
    }
}

#[test]
fn with_rbac_subjects_groups_the_idp_group_in_the_token_carries_the_tier() {
    let readers = format!("readers-{}", run_id());
    let Team { id, alice, bob, .. } = team("groups", &readers);
    // One binding for the tier, to the group; none per user.
    let binding =
        kubectl_admin(&["get", "clusterrolebinding", "oidc-power-user-readonly", "-o", "jsonpath={.subjects}"]);
    assert!(
        binding.contains(&format!("\"name\":\"{readers}\"")) && binding.contains("\"kind\":\"Group\""),
        "{binding}"
    );
    let per_user =
        kubectl_token(&sign_in(&bob), &["get", "clusterrolebinding", &format!("oidc-power-user-readonly-{bob}")]);
    assert!(!per_user.status.success(), "{}", text(&per_user));

    let bob_token = sign_in(&bob);
    let whoami = kubectl_token(&bob_token, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"]);
    assert!(
        String::from_utf8_lossy(&whoami.stdout).contains(&readers),
        "the token carries the group: {}",
        text(&whoami)
    );
    let pods = kubectl_token(&bob_token, &["get", "pods", "-n", &alice]);
    assert!(pods.status.success(), "bob reads through his group: {}", text(&pods));
    assert_eq!(can_i(&bob_token, &["get", "secrets", "-n", &alice]), "no");
    // A namespace-owner outside her tier's group has no cluster-wide read.
    let alice_token = sign_in(&alice);
    assert_eq!(can_i(&alice_token, &["list", "pods", "--all-namespaces"]), "no");
    // The tier bindings are cluster-wide names on a shared test cluster: leave none behind.
    kubectl_admin(&[
        "delete",
        "clusterrolebinding",
        "oidc-power-user-readonly",
        "oidc-ns-owner-readonly",
        "--ignore-not-found",
    ]);
    for ns in [alice, format!("oc{id}")] {
        kubectl_admin(&["delete", "namespace", &ns, "--wait=false"]);
    }
}
