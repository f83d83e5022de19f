//! SPEC §8.2 the real way: OpenBao's OIDC auth mount trusts the test
//! Keycloak; a person signs in through it (the authorization code flow a
//! browser runs for `bao login -method=oidc`) before tenantry ever ran, so
//! OpenBao auto-creates an entity and the alias; tenantry then applies, and
//! there is exactly one alias for the email, on the managed entity, and the
//! next sign-in carries the managed policy.

use super::*;

/// An `oidc` auth mount at `mount` trusting the realm, with role `default` (email as the alias name).
async fn oidc_mount(mount: &str, keycloak: &tenantry_testenv::Keycloak) {
    enable_auth(mount, "oidc").await;
    ok(
        "POST",
        &format!("auth/{mount}/config"),
        json!({
            "oidc_discovery_url": keycloak.issuer,
            "oidc_discovery_ca_pem": keycloak.ca_pem().unwrap(),
            "oidc_client_id": keycloak.vault_client_id,
            "oidc_client_secret": keycloak.vault_client_secret,
            "default_role": "default",
        }),
    )
    .await;
    ok(
        "POST",
        &format!("auth/{mount}/role/default"),
        json!({
            "role_type": "oidc",
            "user_claim": "email",
            "bound_audiences": [keycloak.vault_client_id],
            "allowed_redirect_uris": [REDIRECT],
            "oidc_scopes": ["email"],
            "token_ttl": "10m",
        }),
    )
    .await;
}

const REDIRECT: &str = "http://localhost:8250/oidc/callback";

/// `bao login -method=oidc` without the browser: ask OpenBao for the
/// authorization URL, sign in at Keycloak's login form, hand the code back
/// to OpenBao's callback. Returns the login's `auth` block.
async fn sign_in(mount: &str, keycloak: &tenantry_testenv::Keycloak, username: &str, password: &str) -> Value {
    let (status, start) = bao_as(
        "",
        "POST",
        &format!("auth/{mount}/oidc/auth_url"),
        Some(json!({ "role": "default", "redirect_uri": REDIRECT })),
    )
    .await;
    assert_eq!(status, 200, "{start}");
    let auth_url = start["data"]["auth_url"].as_str().unwrap();
    assert!(auth_url.starts_with(&keycloak.issuer), "OpenBao sends the browser to Keycloak: {auth_url}");
    let redirect = keycloak.browser_sign_in(auth_url, username, password).await.unwrap();
    let query = redirect.strip_prefix(&format!("{REDIRECT}?")).unwrap_or_else(|| panic!("redirect {redirect}"));
    let (status, answer) = bao_as("", "GET", &format!("auth/{mount}/oidc/callback?{query}"), None).await;
    assert_eq!(status, 200, "{answer}");
    answer["auth"].clone()
}

#[tokio::test]
async fn a_keycloak_sign_in_before_the_first_apply_is_adopted_and_then_carries_the_managed_policy() {
    tenantry_testenv::install_crypto_provider();
    let keycloak = tenantry_testenv::keycloak().unwrap_or_else(|e| panic!("{e}"));
    let id = run_id();
    let config = VaultConfig { oidc_mount: format!("vt-kc-{id}"), ..config(&id) };
    oidc_mount(&config.oidc_mount, &keycloak).await;
    enable_secrets(&config.kubernetes_secrets_mount, "kubernetes").await;
    let alice = format!("vt-alice-{id}");
    let email = format!("{alice}@example.org");
    keycloak.create_user(&alice, &email, "pw-alice-1").await.unwrap();

    // The first sign-in, before tenantry: OpenBao creates an entity and the alias by itself.
    let first = sign_in(&config.oidc_mount, &keycloak, &alice, "pw-alice-1").await;
    let accessor = accessor(&config.oidc_mount).await;
    let auto = aliases_named(&email, &accessor).await;
    assert_eq!(auto.len(), 1, "{auto:#?}");
    assert_eq!(first["entity_id"], auto[0]["canonical_id"]);
    assert!(first["identity_policies"].as_array().is_none_or(|p| p.is_empty()), "{first}");

    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault)], &config);
    let roster =
        roster(&format!("users:\n  {alice}: {{ email: {email}, tier: namespace-owner, namespaces: [{alice}] }}\n"));
    let (prepared, _) = apply(&engine, &roster, Policy::default()).await;
    let alias_id = format!("vault/EntityAlias/{}/{email}", config.oidc_mount);
    assert_eq!(action(&prepared, &alias_id), Some(Action::Adopt), "{:#?}", changes(&prepared));
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());

    let (_, managed) = bao("GET", &format!("identity/entity/name/{alice}"), None).await;
    let aliases = aliases_named(&email, &accessor).await;
    assert_eq!(aliases.len(), 1, "exactly one alias for the email: {aliases:#?}");
    assert_eq!(aliases[0]["canonical_id"], managed["data"]["id"], "on the managed entity");
    let on_entity: Vec<&Value> = managed["data"]["aliases"].as_array().unwrap().iter().collect();
    assert_eq!(on_entity.len(), 1, "{on_entity:#?}");

    // Signing in again lands on the managed entity with the managed policy.
    let again = sign_in(&config.oidc_mount, &keycloak, &alice, "pw-alice-1").await;
    assert_eq!(again["entity_id"], managed["data"]["id"]);
    assert_eq!(again["identity_policies"], json!([format!("namespace-owner-{alice}")]));
    let token = again["client_token"].as_str().unwrap();
    let (status, answer) =
        bao_as(token, "POST", &format!("secret/data/{alice}/x"), Some(json!({ "data": { "v": "1" } }))).await;
    assert_eq!(status, 200, "the policy works for the signed-in person: {answer}");
    assert_eq!(aliases_named(&email, &accessor).await.len(), 1, "still one alias after the second sign-in");
}
