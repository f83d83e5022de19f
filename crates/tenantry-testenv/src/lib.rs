//! Endpoints of the real test peers that `testenv/up` starts on 127.0.0.1.
//!
//! Each peer has a function ([`kube`], [`vault`], [`bind`], [`powerdns`], [`keycloak`]) that
//! finds its endpoint and checks that something listens there. When the peer
//! is not running, the error says how to start it, e.g.
//! "kube-apiserver is not running: ... start it with `testenv/up kube`".
//!
//! Where the endpoints come from:
//! - the process environment, when `TENANTRY_TESTENV=1` is set there (as after
//!   `. target/testenv/env.sh`, which `scripts/test.sh` does);
//! - otherwise `target/testenv/env.sh` itself, found by walking up from this
//!   crate's directory (or `$TENANTRY_TESTENV_DIR/env.sh`). A `KUBECONFIG` or
//!   `VAULT_ADDR` of your own shell is never used unless `TENANTRY_TESTENV=1`,
//!   so tests cannot touch a real cluster by accident.
//!
//! Integration tests call [`install_crypto_provider`] first.

pub mod fixed_answer;
#[cfg(feature = "proxy")]
pub mod kube_proxy;
pub mod private_vault;
pub mod tcp_proxy;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_client::client::Client as DnsClient;
use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::rr::Name;
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::udp::UdpClientStream;

mod keycloak;
pub use keycloak::{Keycloak, Tokens, keycloak, keycloak_from};
mod gitea;
pub use gitea::{Gitea, gitea, gitea_from};

/// What went wrong finding or reaching a peer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer's endpoint is not configured: it was never started.
    #[error("{peer} is not running: {detail}; start it with `testenv/up {up}`")]
    NotConfigured {
        /// Human name of the peer.
        peer: &'static str,
        /// The `testenv/up` argument that starts it.
        up: &'static str,
        /// Which variable was missing and where it was looked for.
        detail: String,
    },
    /// The endpoint is configured but nothing answers there.
    #[error("{peer} is not running: nothing answers at {addr} ({source}); start it with `testenv/up {up}`")]
    Unreachable {
        /// Human name of the peer.
        peer: &'static str,
        /// The `testenv/up` argument that starts it.
        up: &'static str,
        /// The address that was tried.
        addr: String,
        /// The connection error.
        source: std::io::Error,
    },
    /// The endpoint configuration is malformed.
    #[error("{peer}: bad test environment: {detail} (restart it with `testenv/down {up} && testenv/up {up}`)")]
    Invalid {
        /// Human name of the peer.
        peer: &'static str,
        /// The `testenv/up` argument that starts it.
        up: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A client for a running peer could not be built.
    #[error("{peer}: {detail}")]
    Client {
        /// Human name of the peer.
        peer: &'static str,
        /// What failed.
        detail: String,
    },
}

/// Result of this crate's functions.
pub type Result<T> = std::result::Result<T, Error>;

/// A name part unique to this call, for objects a test makes on a shared
/// peer: unique within the test process (a counter: tests run on parallel
/// threads and once took the same clock reading) and between processes and
/// runs (the process id and the start time). Lowercase hex, 9+ characters,
/// fit for Kubernetes, DNS, Vault, Gitea and Keycloak names.
pub fn run_id() -> String {
    static BASE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        // The low bits of the clock vary most; the process id tells apart
        // test binaries started in the same instant.
        let mixed = nanos ^ (u128::from(std::process::id()) << 17) ^ (nanos >> 32);
        (mixed % u128::from(u32::MAX)) as u32
    });
    let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{base:08x}{next:x}")
}

/// Installs rustls' aws-lc-rs crypto provider as the process default (kube
/// and reqwest need one). Safe to call more than once.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already.
    let _already_installed = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

struct Peer {
    name: &'static str,
    up: &'static str,
}

const KUBE: Peer = Peer { name: "kube-apiserver", up: "kube" };
const VAULT: Peer = Peer { name: "OpenBao (Vault API)", up: "vault" };
const BIND: Peer = Peer { name: "BIND", up: "bind" };
const PDNS: Peer = Peer { name: "PowerDNS", up: "pdns" };

impl Peer {
    fn not_configured(&self, detail: String) -> Error {
        Error::NotConfigured { peer: self.name, up: self.up, detail }
    }
    fn invalid(&self, detail: String) -> Error {
        Error::Invalid { peer: self.name, up: self.up, detail }
    }
    fn client(&self, detail: String) -> Error {
        Error::Client { peer: self.name, detail }
    }
    fn reachable(&self, addr: &str) -> Result<SocketAddr> {
        let sock = addr
            .to_socket_addrs()
            .map_err(|e| self.invalid(format!("address {addr}: {e}")))?
            .next()
            .ok_or_else(|| self.invalid(format!("address {addr} resolves to nothing")))?;
        TcpStream::connect_timeout(&sock, Duration::from_secs(2)).map(drop).map_err(|source| Error::Unreachable {
            peer: self.name,
            up: self.up,
            addr: addr.to_owned(),
            source,
        })?;
        Ok(sock)
    }
}

/// The variables `testenv/up` exported, from the process or from env.sh.
#[derive(Debug, Clone)]
pub struct TestEnv {
    vars: HashMap<String, String>,
    source: String,
}

impl TestEnv {
    /// Reads the test environment (see the crate documentation for where from).
    pub fn load() -> Self {
        if std::env::var("TENANTRY_TESTENV").is_ok_and(|v| v == "1") {
            return Self { vars: std::env::vars().collect(), source: "the environment".to_owned() };
        }
        match env_file() {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => Self { vars: parse_env_sh(&text), source: path.display().to_string() },
                Err(e) => Self { vars: HashMap::new(), source: format!("{} (unreadable: {e})", path.display()) },
            },
            None => Self {
                vars: HashMap::new(),
                source: "the environment (TENANTRY_TESTENV is not 1) nor target/testenv/env.sh (absent)".to_owned(),
            },
        }
    }

    /// Where the variables were read from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// One variable, if set and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn require(&self, peer: &Peer, name: &str) -> Result<String> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| peer.not_configured(format!("{name} is not set in {}", self.source)))
    }
}

/// `$TENANTRY_TESTENV_DIR/env.sh`, else the first `target/testenv/env.sh`
/// walking up from this crate's directory.
fn env_file() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("TENANTRY_TESTENV_DIR") {
        return Some(Path::new(&dir).join("env.sh"));
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start.ancestors().map(|d| d.join("target/testenv/env.sh")).find(|p| p.is_file())
}

/// Parses the `export NAME=VALUE` lines that testenv/up writes (values
/// quoted by bash's `printf %q`).
fn parse_env_sh(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), unquote(v.trim())))
        .collect()
}

fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ------------------------------------------------------------------ kube

/// The test kube-apiserver (with etcd and a controller manager running the
/// resourcequota, namespace, serviceaccount and clusterrole-aggregation
/// controllers). The kubeconfig's user is in group `system:masters`, so it
/// may impersonate any user or group.
#[derive(Debug, Clone)]
pub struct Kube {
    /// Admin kubeconfig (client certificate in group system:masters).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Path of a kubectl matching the server's minor version, if known.
    pub kubectl: Option<PathBuf>,
}

/// Finds the test kube-apiserver and checks that it listens.
pub fn kube() -> Result<Kube> {
    kube_from(&TestEnv::load())
}

/// [`kube`] from an explicit environment.
pub fn kube_from(env: &TestEnv) -> Result<Kube> {
    let kubeconfig = PathBuf::from(env.require(&KUBE, "KUBECONFIG")?);
    if !kubeconfig.is_file() {
        return Err(KUBE.not_configured(format!("kubeconfig {} does not exist", kubeconfig.display())));
    }
    let url = env.require(&KUBE, "KUBE_APISERVER_URL")?;
    let hostport = url.trim_start_matches("https://").trim_end_matches('/');
    KUBE.reachable(hostport)?;
    Ok(Kube { kubeconfig, url, kubectl: env.get("KUBECTL").map(PathBuf::from) })
}

impl Kube {
    /// The client configuration of the admin kubeconfig.
    pub async fn config(&self) -> Result<kube::Config> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| KUBE.invalid(format!("kubeconfig {}: {e}", self.kubeconfig.display())))?;
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| KUBE.invalid(format!("kubeconfig {}: {e}", self.kubeconfig.display())))
    }

    /// A client acting as the admin.
    pub async fn client(&self) -> Result<kube::Client> {
        let config = self.config().await?;
        kube::Client::try_from(config).map_err(|e| KUBE.client(format!("building a client: {e}")))
    }

    /// A client that impersonates `user` (and `groups`), as
    /// `kubectl --as USER --as-group GROUP` does.
    pub async fn impersonating(&self, user: &str, groups: &[&str]) -> Result<kube::Client> {
        let mut config = self.config().await?;
        config.auth_info.impersonate = Some(user.to_owned());
        if !groups.is_empty() {
            config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
        }
        kube::Client::try_from(config).map_err(|e| KUBE.client(format!("building a client: {e}")))
    }
}

// ------------------------------------------------------------------ vault

/// The test OpenBao server (`bao server -dev`, in memory, root token known).
#[derive(Debug, Clone)]
pub struct Vault {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The root token.
    pub token: String,
}

/// Finds the test OpenBao server and checks that it listens.
pub fn vault() -> Result<Vault> {
    vault_from(&TestEnv::load())
}

/// [`vault`] from an explicit environment.
pub fn vault_from(env: &TestEnv) -> Result<Vault> {
    let addr = env.require(&VAULT, "VAULT_ADDR")?;
    let token = env.require(&VAULT, "VAULT_TOKEN")?;
    let hostport = addr.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
    VAULT.reachable(hostport)?;
    Ok(Vault { addr: addr.trim_end_matches('/').to_owned(), token })
}

impl Vault {
    /// `addr` + `/v1/` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr, path.trim_start_matches('/'))
    }

    /// An HTTP client that sends the root token with every request.
    pub fn http(&self) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        let token = reqwest::header::HeaderValue::from_str(&self.token)
            .map_err(|e| VAULT.invalid(format!("VAULT_TOKEN is not a valid header value: {e}")))?;
        headers.insert("X-Vault-Token", token);
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| VAULT.client(format!("building an HTTP client: {e}")))
    }
}

// ------------------------------------------------------------------ bind

/// The test BIND 9 server: zone [`Bind::zone`] accepts RFC 2136 updates
/// signed with the TSIG key.
#[derive(Debug, Clone)]
pub struct Bind {
    /// DNS address (UDP and TCP).
    pub addr: SocketAddr,
    /// The zone, e.g. `lab.test`.
    pub zone: String,
    /// The key file in BIND's `key "..." { ... };` syntax.
    pub tsig_key_file: PathBuf,
    /// The TSIG key name.
    pub tsig_key_name: String,
    /// The TSIG algorithm, e.g. `hmac-sha256`.
    pub tsig_algorithm: String,
    /// The TSIG secret (decoded).
    pub tsig_secret: Vec<u8>,
}

/// Finds the test BIND server and checks that it listens.
pub fn bind() -> Result<Bind> {
    bind_from(&TestEnv::load())
}

/// [`bind`] from an explicit environment.
pub fn bind_from(env: &TestEnv) -> Result<Bind> {
    let addr_s = env.require(&BIND, "BIND_ADDR")?;
    let zone = env.require(&BIND, "BIND_ZONE")?;
    let tsig_key_file = PathBuf::from(env.require(&BIND, "BIND_TSIG_KEY_FILE")?);
    let tsig_key_name = env.require(&BIND, "BIND_TSIG_KEY_NAME")?;
    let tsig_algorithm = env.require(&BIND, "BIND_TSIG_ALGORITHM")?;
    let secret_b64 = match env.get("BIND_TSIG_SECRET") {
        Some(s) => s.to_owned(),
        None => secret_from_key_file(&tsig_key_file)?,
    };
    let tsig_secret = data_encoding::BASE64
        .decode(secret_b64.as_bytes())
        .map_err(|e| BIND.invalid(format!("TSIG secret is not base64: {e}")))?;
    let addr = BIND.reachable(&addr_s)?;
    Ok(Bind { addr, zone, tsig_key_file, tsig_key_name, tsig_algorithm, tsig_secret })
}

fn secret_from_key_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BIND.not_configured(format!("TSIG key file {}: {e}", path.display())))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("secret"))
        .filter_map(|rest| rest.trim().strip_prefix('"'))
        .filter_map(|rest| rest.split_once('"').map(|(s, _)| s.to_owned()))
        .next()
        .ok_or_else(|| BIND.invalid(format!("no secret in TSIG key file {}", path.display())))
}

impl Bind {
    /// The zone as a fully qualified DNS name.
    pub fn zone_name(&self) -> Result<Name> {
        fqdn(&BIND, &self.zone)
    }

    /// A TSIG signer for RFC 2136 updates.
    pub fn signer(&self) -> Result<TSigner> {
        let algorithm = TsigAlgorithm::from_name(
            Name::from_ascii(&self.tsig_algorithm)
                .map_err(|e| BIND.invalid(format!("TSIG algorithm {}: {e}", self.tsig_algorithm)))?,
        );
        let name = fqdn(&BIND, &self.tsig_key_name)?;
        TSigner::new(self.tsig_secret.clone(), algorithm, name, 300)
            .map_err(|e| BIND.invalid(format!("TSIG key {}: {e}", self.tsig_key_name)))
    }

    /// A DNS client over TCP whose every message is TSIG-signed.
    pub async fn update_client(&self) -> Result<DnsClient> {
        let signer: Arc<TSigner> = Arc::new(self.signer()?);
        tcp_client(&BIND, self.addr, Some(signer)).await
    }

    /// An unsigned DNS client over UDP, for queries.
    pub async fn query_client(&self) -> Result<DnsClient> {
        udp_client(&BIND, self.addr).await
    }
}

// ------------------------------------------------------------------ powerdns

/// The test PowerDNS authoritative server (sqlite backend, HTTP API).
#[derive(Debug, Clone)]
pub struct PowerDns {
    /// `http://127.0.0.1:PORT` (the API is under `/api/v1`).
    pub api_url: String,
    /// The `X-API-Key`.
    pub api_key: String,
    /// DNS address (UDP and TCP).
    pub dns_addr: SocketAddr,
    /// The zone created at start, e.g. `lab.test`.
    pub zone: String,
}

/// Finds the test PowerDNS server and checks that its API and DNS listen.
pub fn powerdns() -> Result<PowerDns> {
    powerdns_from(&TestEnv::load())
}

/// [`powerdns`] from an explicit environment.
pub fn powerdns_from(env: &TestEnv) -> Result<PowerDns> {
    let api_url = env.require(&PDNS, "PDNS_API_URL")?;
    let api_key = env.require(&PDNS, "PDNS_API_KEY")?;
    let dns = env.require(&PDNS, "PDNS_DNS_ADDR")?;
    let zone = env.require(&PDNS, "PDNS_ZONE")?;
    PDNS.reachable(api_url.trim_start_matches("http://").trim_end_matches('/'))?;
    let dns_addr = PDNS.reachable(&dns)?;
    Ok(PowerDns { api_url: api_url.trim_end_matches('/').to_owned(), api_key, dns_addr, zone })
}

impl PowerDns {
    /// `api_url` + `/api/v1/` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{}", self.api_url, path.trim_start_matches('/'))
    }

    /// An HTTP client that sends the API key with every request.
    pub fn http(&self) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        let key = reqwest::header::HeaderValue::from_str(&self.api_key)
            .map_err(|e| PDNS.invalid(format!("PDNS_API_KEY is not a valid header value: {e}")))?;
        headers.insert("X-API-Key", key);
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| PDNS.client(format!("building an HTTP client: {e}")))
    }

    /// An unsigned DNS client over UDP, for queries.
    pub async fn query_client(&self) -> Result<DnsClient> {
        udp_client(&PDNS, self.dns_addr).await
    }
}

// ------------------------------------------------------------------ dns helpers

fn fqdn(peer: &Peer, name: &str) -> Result<Name> {
    let mut n = Name::from_ascii(name).map_err(|e| peer.invalid(format!("DNS name {name}: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

async fn udp_client(peer: &Peer, addr: SocketAddr) -> Result<DnsClient> {
    let conn = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(5)))
        .build();
    let (client, bg) =
        DnsClient::connect(conn).await.map_err(|e| peer.client(format!("DNS over UDP to {addr}: {e}")))?;
    tokio::spawn(bg);
    Ok(client)
}

async fn tcp_client(peer: &Peer, addr: SocketAddr, signer: Option<Arc<TSigner>>) -> Result<DnsClient> {
    let (stream, handle) =
        TcpClientStream::new(addr, None, Some(Duration::from_secs(5)), TokioRuntimeProvider::default());
    let signer = signer.map(|s| s as Arc<dyn hickory_proto::op::MessageFinalizer>);
    let (client, bg) = DnsClient::with_timeout(stream, handle, Duration::from_secs(5), signer)
        .await
        .map_err(|e| peer.client(format!("DNS over TCP to {addr}: {e}")))?;
    tokio::spawn(bg);
    Ok(client)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_env_sh() {
        let vars = parse_env_sh(
            "# comment\nexport A=plain\nexport B=with\\ space\nexport C='quoted value'\nexport D=abc+/def==\n",
        );
        assert_eq!(vars["A"], "plain");
        assert_eq!(vars["B"], "with space");
        assert_eq!(vars["C"], "quoted value");
        assert_eq!(vars["D"], "abc+/def==");
    }

    #[test]
    fn missing_peer_says_how_to_start_it() {
        let env = TestEnv { vars: HashMap::new(), source: "nowhere".to_owned() };
        let err = kube_from(&env).unwrap_err().to_string();
        assert!(err.contains("kube-apiserver is not running"), "{err}");
        assert!(err.contains("`testenv/up kube`"), "{err}");
        let err = vault_from(&env).unwrap_err().to_string();
        assert!(err.contains("`testenv/up vault`"), "{err}");
        let err = bind_from(&env).unwrap_err().to_string();
        assert!(err.contains("`testenv/up bind`"), "{err}");
        let err = powerdns_from(&env).unwrap_err().to_string();
        assert!(err.contains("`testenv/up pdns`"), "{err}");
        let err = keycloak_from(&env).unwrap_err().to_string();
        assert!(err.contains("Keycloak is not running") && err.contains("`testenv/up keycloak`"), "{err}");
    }

    #[test]
    fn unreachable_peer_says_how_to_start_it() {
        // A port nobody listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env = TestEnv {
            vars: HashMap::from([
                ("VAULT_ADDR".to_owned(), format!("http://127.0.0.1:{port}")),
                ("VAULT_TOKEN".to_owned(), "root".to_owned()),
            ]),
            source: "test".to_owned(),
        };
        let err = vault_from(&env).unwrap_err().to_string();
        assert!(err.contains("nothing answers at 127.0.0.1"), "{err}");
        assert!(err.contains("`testenv/up vault`"), "{err}");
    }
}
