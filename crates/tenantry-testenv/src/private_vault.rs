//! An OpenBao dev server of a test's own (the binary `testenv/up` installed,
//! `BAO_BIN` in env.sh), for faults that must not reach the shared one:
//! sealing it mid-apply, stopping it. Dropping it kills the server.

use crate::{Error, Result, TestEnv, VAULT};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running private OpenBao in dev mode (in-memory storage: sealing keeps
/// its data, a kill loses it).
#[derive(Debug)]
pub struct PrivateVault {
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    /// Its root token.
    pub token: String,
    unseal_key: String,
    child: tokio::process::Child,
    _home: TempHome,
}

/// A private HOME so the dev server leaves no token file in the real one.
#[derive(Debug)]
struct TempHome(std::path::PathBuf);

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn failed(detail: impl std::fmt::Display) -> Error {
    VAULT.client(format!("private OpenBao: {detail}"))
}

impl PrivateVault {
    /// Start one on a free port and wait until it answers (≤ 30 s).
    pub async fn start() -> Result<PrivateVault> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| failed(format!("no free port: {e}")))?
            .port();
        PrivateVault::start_on(port).await
    }

    /// Start one on `port` (a restart after [`PrivateVault::stop`] uses the
    /// same port; it comes back empty) and wait until it answers (≤ 30 s).
    pub async fn start_on(port: u16) -> Result<PrivateVault> {
        let env = TestEnv::load();
        let binary = env.require(&VAULT, "BAO_BIN")?;
        let home = std::env::temp_dir().join(format!("tenantry-private-bao-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&home).map_err(failed)?;
        let token = format!("private-root-{port}");
        let mut child = tokio::process::Command::new(&binary)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env_clear()
            .env("HOME", &home)
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("{binary}: {e}")))?;
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let unseal_key = loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .map_err(|_| failed("printed no unseal key within 30 s"))?
                .map_err(failed)?
                .ok_or_else(|| failed("exited before printing its unseal key"))?;
            if let Some(key) = line.trim().strip_prefix("Unseal Key: ") {
                break key.trim().to_string();
            }
        };
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let vault =
            PrivateVault { addr: format!("http://127.0.0.1:{port}"), token, unseal_key, child, _home: TempHome(home) };
        while vault.request("GET", "sys/health", None).await.is_err() {
            if Instant::now() > deadline {
                return Err(failed("did not answer within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(vault)
    }

    /// One request as root; an error unless it answers 2xx.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(failed)?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(failed)?;
        let mut request =
            client.request(method, format!("{}/v1/{path}", self.addr)).header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let text = response.text().await.map_err(failed)?;
        if !status.is_success() {
            return Err(failed(format!("{path}: {status} {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Seal it: every request answers 503 until [`PrivateVault::unseal`].
    pub async fn seal(&self) -> Result<()> {
        self.request("PUT", "sys/seal", None).await.map(drop)
    }

    pub async fn unseal(&self) -> Result<()> {
        let answer = self.request("PUT", "sys/unseal", Some(serde_json::json!({ "key": self.unseal_key }))).await?;
        if answer["sealed"] == serde_json::Value::Bool(false) {
            Ok(())
        } else {
            Err(failed(format!("still sealed after unseal: {answer}")))
        }
    }

    /// Stop it (its data goes with it).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Create the auth and secrets mounts tenantry's `[vault]` defaults name:
    /// `oidc` and `kubernetes`.
    pub async fn mount_defaults(&self) -> Result<()> {
        self.request("POST", "sys/auth/oidc", Some(serde_json::json!({ "type": "oidc" }))).await?;
        self.request("POST", "sys/mounts/kubernetes", Some(serde_json::json!({ "type": "kubernetes" }))).await?;
        Ok(())
    }
}
