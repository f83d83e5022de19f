//! The setup script's installs, run by `sh` and `bash` against a download
//! server on 127.0.0.1 (no internet): kubectl, kubelogin, the OpenBao CLI
//! and OpenTofu are fetched and checked against their release's SHA-256
//! sums, nothing is installed twice, no existing file is overwritten, the
//! Vault sign-in file signs in with the OIDC mount, and a download whose
//! sum does not match is refused and not installed.

use super::*;
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::sync::{Arc, Mutex};
use tenantry_core::setup::{
    Downloads, KUBECTL_VERSION, KUBELOGIN_VERSION, OPENBAO_VERSION, OPENTOFU_VERSION, SetupOptions, VaultLogin,
    setup_script_with,
};

/// A plain HTTP server on 127.0.0.1 serving fixed files, counting requests.
struct Server {
    url: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (served, log) = (Arc::clone(&files), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(path.clone());
                let body = served.lock().unwrap().get(&path).cloned();
                let (status, body) = match body {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!("HTTP/1.0 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
            }
        });
        Server { url, files, requests }
    }

    fn serve(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.files.lock().unwrap().insert(path.to_string(), body.into());
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split(' ').next().unwrap().to_string()
}

/// A stand-in program that prints its name and arguments.
fn program(name: &str) -> String {
    format!("#!/bin/sh\necho {name} \"$@\"\n")
}

/// Release assets for amd64, as the projects publish them, on `server`.
fn publish(server: &Server, work: &Path) {
    let run = |cmd: &mut Command| assert!(cmd.current_dir(work).status().unwrap().success(), "{cmd:?}");
    use std::os::unix::fs::PermissionsExt as _;
    for tool in ["kubectl", "kubelogin", "bao", "tofu"] {
        std::fs::write(work.join(tool), program(tool)).unwrap();
        std::fs::set_permissions(work.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    run(Command::new("zip").args(["-q", "kubelogin_linux_amd64.zip", "kubelogin"]));
    run(Command::new("tar").args(["-czf", &format!("openbao_{OPENBAO_VERSION}_linux_amd64.tar.gz"), "bao"]));
    run(Command::new("zip").args(["-q", &format!("tofu_{OPENTOFU_VERSION}_linux_amd64.zip"), "tofu"]));

    // kubectl: a .sha256 holding only the hash.
    let kubectl = format!("/k8s/{KUBECTL_VERSION}/bin/linux/amd64/kubectl");
    server.serve(&kubectl, std::fs::read(work.join("kubectl")).unwrap());
    server.serve(&format!("{kubectl}.sha256"), sha256(&work.join("kubectl")));
    // kubelogin: `<hash>  <file>`.
    let kubelogin = format!("/gh/int128/kubelogin/releases/download/{KUBELOGIN_VERSION}/kubelogin_linux_amd64.zip");
    let zip = work.join("kubelogin_linux_amd64.zip");
    server.serve(&kubelogin, std::fs::read(&zip).unwrap());
    server.serve(&format!("{kubelogin}.sha256"), format!("{}  kubelogin_linux_amd64.zip\n", sha256(&zip)));
    // OpenBao and OpenTofu: one sums file for every asset of the release.
    let bao = format!("openbao_{OPENBAO_VERSION}_linux_amd64.tar.gz");
    let release = format!("/gh/openbao/openbao/releases/download/v{OPENBAO_VERSION}");
    server.serve(&format!("{release}/{bao}"), std::fs::read(work.join(&bao)).unwrap());
    server.serve(
        &format!("{release}/checksums.txt"),
        format!(
            "{}  openbao_{OPENBAO_VERSION}_linux_arm64.tar.gz\n{}  {bao}\n",
            "0".repeat(64),
            sha256(&work.join(&bao))
        ),
    );
    let tofu = format!("tofu_{OPENTOFU_VERSION}_linux_amd64.zip");
    let release = format!("/gh/opentofu/opentofu/releases/download/v{OPENTOFU_VERSION}");
    server.serve(&format!("{release}/{tofu}"), std::fs::read(work.join(&tofu)).unwrap());
    server.serve(
        &format!("{release}/tofu_{OPENTOFU_VERSION}_SHA256SUMS"),
        format!("{}  {tofu}\n", sha256(&work.join(&tofu))),
    );
}

/// A PATH with the tools the script uses, and none of the ones it installs.
fn base_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("base-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "curl",
        "awk",
        "sha256sum",
        "cut",
        "tar",
        "gzip",
        "unzip",
        "mkdir",
        "mktemp",
        "chmod",
        "mv",
        "rm",
        "uname",
        "cat",
    ] {
        let found = ["/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(tool)).find(|p| p.exists()).unwrap();
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    bin
}

fn options(server: &Server) -> SetupOptions {
    SetupOptions {
        vault: Some(VaultLogin { address: "https://vault.lab.test:8200".into(), oidc_mount: "oidc-lab".into() }),
        terraform: true,
        downloads: Downloads { kubernetes: format!("{}/k8s", server.url), github: format!("{}/gh", server.url) },
    }
}

fn run(shell: &str, script: &str, home: &Path, path: &str) -> std::process::Output {
    // By absolute path: the child's PATH holds only the tools the script may use.
    Command::new(format!("/bin/{shell}"))
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("HOME", home)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn shown(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn the_setup_script_installs_each_tool_once_verified_and_writes_the_vault_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let work = dir.path().join("release");
    std::fs::create_dir_all(&work).unwrap();
    publish(&server, &work);
    let base = base_tools(dir.path());
    let script = setup_script_with(&platform(), SetupOs::Linux, "nonce12345", &options(&server)).unwrap();
    for shell in ["sh", "bash"] {
        let home = dir.path().join(format!("home-{shell}"));
        std::fs::create_dir_all(&home).unwrap();
        let path = format!("{}/.local/bin:{}", home.display(), base.display());
        let first = run(shell, &script, &home, &path);
        assert!(first.status.success(), "{shell}: {}", shown(&first));
        for tool in ["kubectl", "kubectl-oidc_login", "bao", "tofu"] {
            let installed = home.join(".local/bin").join(tool);
            let plain = if tool == "kubectl-oidc_login" { "kubelogin" } else { tool };
            assert_eq!(std::fs::read_to_string(&installed).unwrap(), program(plain), "{shell}: {tool}");
        }
        let kubeconfig = std::fs::read_to_string(home.join(".kube/config")).unwrap();
        assert_eq!(kubeconfig, oidc_kubeconfig(&platform()).unwrap().unwrap());

        // The Vault file: sourced by the shell, it points both CLIs at the
        // address, and `vault_login` signs in with OIDC on the mount.
        let vault_file = home.join(".config/tenantry/lab-vault.sh");
        let login = run(
            shell,
            &format!(". '{}' && echo \"$VAULT_ADDR $BAO_ADDR\" && vault_login", vault_file.display()),
            &home,
            &path,
        );
        assert!(login.status.success(), "{shell}: {}", shown(&login));
        assert_eq!(
            String::from_utf8_lossy(&login.stdout),
            "https://vault.lab.test:8200 https://vault.lab.test:8200\nbao login -method=oidc -path=oidc-lab\n",
            "{shell}"
        );

        // Again: nothing downloaded, nothing rewritten.
        let before = server.requests().len();
        std::fs::write(&vault_file, "# the user's own edits\n").unwrap();
        let second = run(shell, &script, &home, &path);
        assert!(second.status.success(), "{shell}: {}", shown(&second));
        assert_eq!(server.requests().len(), before, "{shell}: nothing is installed twice");
        assert_eq!(std::fs::read_to_string(&vault_file).unwrap(), "# the user's own edits\n");
        assert!(shown(&second).contains("lab-vault.sh already exists; left unchanged"), "{}", shown(&second));
        // A config in place: `~/.kube/config` kept, the platform's own file written beside it.
        assert_eq!(std::fs::read_to_string(home.join(".kube/config")).unwrap(), kubeconfig);
    }
}

#[test]
fn a_download_whose_checksum_does_not_match_is_refused_and_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let work = dir.path().join("release");
    std::fs::create_dir_all(&work).unwrap();
    publish(&server, &work);
    let base = base_tools(dir.path());
    // Someone swapped the OpenBao archive; the sums file is the release's.
    let release = format!("/gh/openbao/openbao/releases/download/v{OPENBAO_VERSION}");
    server.serve(&format!("{release}/openbao_{OPENBAO_VERSION}_linux_amd64.tar.gz"), b"tampered".to_vec());
    let script = setup_script_with(&platform(), SetupOs::Linux, "nonce12345", &options(&server)).unwrap();
    for shell in ["sh", "bash"] {
        let home = dir.path().join(format!("home-{shell}"));
        std::fs::create_dir_all(&home).unwrap();
        let path = format!("{}/.local/bin:{}", home.display(), base.display());
        let refused = run(shell, &script, &home, &path);
        assert!(!refused.status.success(), "{shell}: {}", shown(&refused));
        assert!(shown(&refused).contains("checksum mismatch for"), "{shell}: {}", shown(&refused));
        assert!(!home.join(".local/bin/bao").exists(), "{shell}: the tampered download is not installed");
        assert!(!home.join(".kube/config").exists(), "{shell}: the script stopped there");
        assert!(home.join(".local/bin/kubectl").exists(), "{shell}: verified tools before it are kept");
    }
    // A sums file without the asset's name is a refusal too, not a pass.
    server.serve(&format!("{release}/checksums.txt"), format!("{}  some-other-file.tar.gz\n", "a".repeat(64)));
    let home = dir.path().join("home-no-sum");
    std::fs::create_dir_all(&home).unwrap();
    let path = format!("{}/.local/bin:{}", home.display(), base.display());
    let refused = run("sh", &script, &home, &path);
    assert!(shown(&refused).contains("expected no sum for openbao_"), "{}", shown(&refused));
    assert!(!home.join(".local/bin/bao").exists());
}

#[test]
fn the_vault_settings_reach_the_script_only_as_data() {
    let hostile = SetupOptions {
        vault: Some(VaultLogin { address: "https://v.example.org/$(id)'".into(), oidc_mount: "oidc".into() }),
        ..SetupOptions::default()
    };
    let script = setup_script_with(&platform(), SetupOs::Linux, "nonce12345", &hostile).unwrap();
    assert!(script.contains(r"export VAULT_ADDR='https://v.example.org/$(id)'\'''"), "quoted as one word");
    for (address, mount) in [("vault.example.org", "oidc"), ("https://v\n.example.org", "oidc"), ("https://v", "a b")] {
        let bad = SetupOptions {
            vault: Some(VaultLogin { address: address.into(), oidc_mount: mount.into() }),
            ..SetupOptions::default()
        };
        let refused = setup_script_with(&platform(), SetupOs::Linux, "nonce12345", &bad);
        assert!(matches!(refused, Err(SetupError::UnsafeSetting(_))), "{address:?} {mount:?}");
    }
    let mac = setup_script_with(&platform(), SetupOs::Mac, "nonce12345", &SetupOptions { terraform: true, ..hostile })
        .unwrap();
    assert!(mac.contains("brew install openbao") && mac.contains("brew install opentofu"));
    let syntax = Command::new("sh").arg("-n").arg("-c").arg(&mac).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
}
