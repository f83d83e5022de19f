//! The test Keycloak (`testenv/up keycloak`) through
//! `tenantry_testenv::keycloak()`: realm `tenantry`, the confidential client
//! `tenantry-portal` the portal signs in with, and the admin client that
//! creates and deletes this run's people. A Keycloak that is not running is
//! an error saying how to start it.

use tenantry_testenv::Keycloak;

const HOW: &str = "start it with `testenv/up keycloak` (the apiserver trusts it: `testenv/up keycloak kube bind`)";

/// The running test Keycloak, its discovery document answered.
pub async fn find() -> Result<Keycloak, String> {
    let keycloak = tenantry_testenv::keycloak().map_err(|e| e.to_string())?;
    let discovery = format!("{}/.well-known/openid-configuration", keycloak.issuer);
    let http = keycloak.http().map_err(|e| e.to_string())?;
    match http.get(&discovery).send().await {
        Ok(response) if response.status().is_success() => Ok(keycloak),
        Ok(response) => Err(format!("Keycloak answers {} at {discovery}; {HOW}", response.status())),
        Err(e) => Err(format!("Keycloak is not running: nothing answers at {discovery} ({e}); {HOW}")),
    }
}

/// Remove a user this run created (by exact username).
pub async fn delete_user(keycloak: &Keycloak, username: &str) -> Result<(), String> {
    if let Some(id) = keycloak.user_id(username).await.map_err(|e| e.to_string())? {
        let (status, body) = keycloak.admin("DELETE", &format!("users/{id}"), None).await.map_err(|e| e.to_string())?;
        if status != 204 {
            return Err(format!("deleting Keycloak user {username}: HTTP {status} {body}"));
        }
    }
    Ok(())
}
