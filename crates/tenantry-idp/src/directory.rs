//! What the target needs from an identity provider, in its own terms:
//! groups by name, their members, accounts by email. Each provider
//! (Keycloak, Authentik) implements it against its admin API.

use crate::Result;

/// An account as the identity provider shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// The provider's id (a UUID in Keycloak, an integer `pk` in Authentik).
    pub id: String,
    pub username: String,
    pub email: String,
    pub enabled: bool,
}

#[async_trait::async_trait]
pub(crate) trait Directory: Send + Sync + std::fmt::Debug {
    /// `Keycloak realm `x` at https://…`, for messages.
    fn describe(&self) -> String;
    /// Check the credentials with one cheap read.
    async fn check(&self) -> Result<()>;
    /// The id of the top-level group with exactly this name.
    async fn find_group(&self, name: &str) -> Result<Option<String>>;
    /// Every member of a group (all pages).
    async fn members(&self, group_id: &str, group_name: &str) -> Result<Vec<Account>>;
    /// The account with this email (compared case-insensitively).
    async fn find_account(&self, email: &str) -> Result<Option<Account>>;
    async fn create_group(&self, name: &str) -> Result<String>;
    async fn add_member(&self, group_id: &str, account_id: &str) -> Result<()>;
    async fn remove_member(&self, group_id: &str, account_id: &str) -> Result<()>;
    /// A new account with no password: the person sets one at the first sign-in.
    async fn create_account(&self, login: &str, email: &str) -> Result<Account>;
    /// Set whether the account may sign in, and its login where given.
    async fn update_account(&self, account: &Account, enabled: bool, login: Option<&str>) -> Result<()>;
    /// The account as raw JSON, for the destroy stage's backup.
    async fn export_account(&self, account: &Account) -> Result<serde_json::Value>;
    async fn delete_account(&self, account: &Account) -> Result<()>;
}
