//! KV v2 access: one field for the `vault://mount/path#key` roster source,
//! and the walk over a user's subtree that the destroy stage backs up.

use crate::client::Client;
use crate::config::VaultConfig;
use crate::{Error, Result};
use futures::stream::{self, StreamExt as _};
use serde_json::Value;
use std::collections::BTreeMap;

/// Read one field of a KV v2 secret: `read_kv_field(config, "secret",
/// "platform", "k8s_users")` for the roster source `vault://secret/platform#k8s_users`.
/// A field that is not a string is returned as its JSON text.
pub async fn read_kv_field(config: &VaultConfig, mount: &str, path: &str, key: &str) -> Result<String> {
    let client = Client::new(config, config.token()?)?;
    let mount = mount.trim_matches('/');
    let path = path.trim_matches('/');
    let missing = || Error::MissingPath { mount: mount.to_string(), path: path.to_string() };
    let data = client.read(&format!("{mount}/data/{path}")).await?.ok_or_else(missing)?;
    // A secret whose latest version was deleted reads as `data: null`.
    let fields = data["data"].as_object().ok_or_else(missing)?;
    match fields.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(Error::MissingKey {
            mount: mount.to_string(),
            path: path.to_string(),
            key: key.to_string(),
            available: fields.keys().cloned().collect(),
        }),
    }
}

/// The current version of a KV v2 secret, from its metadata (the value is
/// not read): `serve` polls this to notice a changed `vault://` roster.
pub async fn kv_version(config: &VaultConfig, mount: &str, path: &str) -> Result<u64> {
    let client = Client::new(config, config.token()?)?;
    let mount = mount.trim_matches('/');
    let path = path.trim_matches('/');
    let missing = || Error::MissingPath { mount: mount.to_string(), path: path.to_string() };
    let metadata = client.read(&format!("{mount}/metadata/{path}")).await?.ok_or_else(missing)?;
    metadata["current_version"].as_u64().ok_or_else(missing)
}

/// Every secret under `root` (the secret `root` itself and everything below
/// it), with the data of its current version (`null` when deleted).
pub(crate) async fn subtree(client: &Client, mount: &str, root: &str) -> Result<BTreeMap<String, Value>> {
    let mut paths = vec![root.to_string()];
    let mut folders = vec![format!("{root}/")];
    while let Some(folder) = folders.pop() {
        let (keys, _) = client.list(&format!("{mount}/metadata/{folder}")).await?;
        for key in keys {
            if key.ends_with('/') {
                folders.push(format!("{folder}{key}"));
            } else {
                paths.push(format!("{folder}{key}"));
            }
        }
    }
    let reads: Vec<Result<Option<(String, Value)>>> = stream::iter(paths)
        .map(|path| async move {
            let metadata = client.read(&format!("{mount}/metadata/{path}")).await?;
            if metadata.is_none() {
                return Ok(None);
            }
            let data = client.read(&format!("{mount}/data/{path}")).await?;
            let current = data.map(|d| d["data"].clone()).unwrap_or(Value::Null);
            Ok(Some((path, current)))
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut secrets = BTreeMap::new();
    for read in reads {
        if let Some((path, data)) = read? {
            secrets.insert(path, data);
        }
    }
    Ok(secrets)
}
