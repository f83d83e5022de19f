//! `tenantry kubeconfig` and `tenantry setup-script`: what a user runs on
//! their own machine to reach the cluster as their own OIDC identity.
//!
//! The kubeconfig comes from the one generator in `tenantry_core::kubeconfig`
//! that also backs the host target, so a workstation account and a laptop
//! get the same file.

use crate::{CliError, Result};
use std::io::Write as _;
use std::path::Path;
use tenantry_model::Roster;

/// Operating systems the setup script supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SetupOs {
    Linux,
    Mac,
}

/// kubectl release the script installs when kubectl is missing.
const KUBECTL_VERSION: &str = "v1.37.1";
/// kubelogin (int128/kubelogin) release, installed as `kubectl-oidc_login`.
const KUBELOGIN_VERSION: &str = "v1.36.3";

/// The user's kubeconfig text, or an error saying what the roster lacks.
pub fn kubeconfig_for(roster: &Roster, user: &str) -> Result<String> {
    if !roster.users.contains_key(user) {
        let help = tenantry_model::did_you_mean(user, roster.users.keys().map(String::as_str))
            .map(|k| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| "users are the keys under `users:` in the roster".to_string());
        return Err(CliError::Usage { message: format!("`{user}` is not in the roster"), help });
    }
    platform_kubeconfig(roster)
}

fn platform_kubeconfig(roster: &Roster) -> Result<String> {
    tenantry_core::kubeconfig::oidc_kubeconfig(&roster.platform).ok_or_else(|| CliError::Usage {
        message: "the roster has no `platform.api_server` or no `platform.oidc`, so there is no kubeconfig to give"
            .to_string(),
        help: "add `api_server: https://…:6443` and `oidc: { issuer_url: …, client_id: … }` under `platform:`"
            .to_string(),
    })
}

/// Write a kubeconfig to `path` only when nothing is there (mode 0600,
/// atomically): an existing file may hold the user's other clusters.
pub fn write_new_kubeconfig(path: &Path, text: &str) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(CliError::Usage {
            message: format!("{} already exists; tenantry never overwrites a kubeconfig", path.display()),
            help: "print it with `tenantry kubeconfig USER` and merge it by hand, or choose another path".to_string(),
        });
    }
    write_file(path, text.as_bytes(), 0o600, false)
}

/// Write a file atomically (temp file, fsync, rename) with `mode`; an
/// existing file is replaced only when `replace` is set.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    if !replace && path.symlink_metadata().is_ok() {
        return Err(CliError::Usage {
            message: format!("{} already exists", path.display()),
            help: "choose another path, or pass --force to replace it".to_string(),
        });
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |source: std::io::Error| CliError::Read { path: path.display().to_string(), source };
    let mut file = tempfile::Builder::new().prefix(".tenantry-write").tempfile_in(dir).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    file.write_all(bytes).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    if replace {
        file.persist(path).map_err(|e| io(e.error))?;
    } else {
        // A file that appeared meanwhile is still not replaced.
        file.persist_noclobber(path).map_err(|e| io(e.error))?;
    }
    Ok(())
}

/// A POSIX shell script that installs kubectl and kubelogin when missing and
/// writes the kubeconfig to `~/.kube/config` only when that file is absent
/// (otherwise next to it as `~/.kube/<platform>.config`).
pub fn setup_script(roster: &Roster, os: SetupOs) -> Result<String> {
    let kubeconfig = platform_kubeconfig(roster)?;
    let name = &roster.platform.name;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(CliError::Usage {
            message: format!("platform.name `{name}` cannot be used as a file name in the setup script"),
            help: "use letters, digits, `-`, `_` and `.` in `platform.name`".to_string(),
        });
    }
    let install = match os {
        SetupOs::Linux => format!(
            r#"case "$(uname -m)" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "unsupported CPU $(uname -m): install kubectl and kubelogin by hand" >&2; exit 1 ;;
esac
bin="$HOME/.local/bin"
mkdir -p "$bin"
case ":$PATH:" in *":$bin:"*) ;; *) PATH="$bin:$PATH"; echo "note: add $bin to your PATH" ;; esac
if ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl {KUBECTL_VERSION} into $bin"
  curl -fsSLo "$bin/kubectl.tmp" "https://dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/$arch/kubectl"
  chmod 0755 "$bin/kubectl.tmp" && mv "$bin/kubectl.tmp" "$bin/kubectl"
fi
if ! command -v kubectl-oidc_login >/dev/null 2>&1; then
  echo "installing kubelogin {KUBELOGIN_VERSION} into $bin"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSLo "$tmp/kubelogin.zip" "https://github.com/int128/kubelogin/releases/download/{KUBELOGIN_VERSION}/kubelogin_linux_$arch.zip"
  (cd "$tmp" && unzip -q kubelogin.zip kubelogin)
  chmod 0755 "$tmp/kubelogin" && mv "$tmp/kubelogin" "$bin/kubectl-oidc_login"
fi
"#
        ),
        SetupOs::Mac => r#"if ! command -v brew >/dev/null 2>&1; then
  echo "Homebrew is required: https://brew.sh" >&2
  exit 1
fi
command -v kubectl >/dev/null 2>&1 || brew install kubectl
command -v kubectl-oidc_login >/dev/null 2>&1 || brew install int128/kubelogin/kubelogin
"#
        .to_string(),
    };
    Ok(format!(
        r#"#!/bin/sh
# Generated by tenantry for the platform `{name}` ({os}). It installs kubectl and
# kubelogin when they are missing and writes your kubeconfig, which logs in as
# your own identity. Run it as yourself, not as root. It never overwrites a file.
set -eu
{install}
mkdir -p "$HOME/.kube"
chmod 0700 "$HOME/.kube"
target="$HOME/.kube/config"
if [ -e "$target" ]; then
  target="$HOME/.kube/{name}.config"
fi
if [ -e "$target" ]; then
  echo "$target already exists; left unchanged"
else
  umask 077
  cat > "$target.tmp" <<'TENANTRY_KUBECONFIG'
{kubeconfig}TENANTRY_KUBECONFIG
  mv "$target.tmp" "$target"
  echo "wrote $target"
fi
if [ "$target" != "$HOME/.kube/config" ]; then
  echo "use it with: export KUBECONFIG=$target"
fi
echo "next: kubectl get namespaces   (a browser opens to log in)"
"#,
        os = match os {
            SetupOs::Linux => "Linux",
            SetupOs::Mac => "macOS",
        },
    ))
}
