//! The setup script a user runs on their own machine: install kubectl and
//! kubelogin when missing — and the OpenBao CLI when Vault is configured,
//! OpenTofu on request — each download checked against its release's
//! SHA-256 sums, and write the OIDC kubeconfig and the Vault sign-in file
//! once (an existing file is never overwritten).
//!
//! One generator for the CLI (`tenantry setup-script`) and the portal. It is
//! pure: the heredoc delimiter's random part is a parameter. Roster and
//! configuration values never become shell text: each one the script uses is
//! a single-quoted assignment, and each file it writes is a quoted heredoc
//! (no expansion) whose delimiter is checked not to occur as a line of it.

use crate::kubeconfig::{Kubeconfig, KubeconfigError};
use tenantry_model::Platform;

/// Operating systems the setup script supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupOs {
    Linux,
    Mac,
}

impl SetupOs {
    fn label(self) -> &'static str {
        match self {
            SetupOs::Linux => "Linux",
            SetupOs::Mac => "macOS",
        }
    }
}

/// kubectl release the script installs when kubectl is missing.
pub const KUBECTL_VERSION: &str = "v1.37.1";
/// kubelogin (int128/kubelogin) release, installed as `kubectl-oidc_login`.
pub const KUBELOGIN_VERSION: &str = "v1.36.3";
/// OpenBao release whose `bao` CLI the script installs when neither `bao` nor `vault` is there.
pub const OPENBAO_VERSION: &str = "2.7.2";
/// OpenTofu release installed with `--with terraform` when neither `tofu` nor `terraform` is there.
pub const OPENTOFU_VERSION: &str = "1.10.7";

/// Where the script downloads from: the projects' own release servers.
/// (Tests point both at a server on 127.0.0.1.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloads {
    /// Kubernetes release binaries (`<base>/<version>/bin/<os>/<arch>/kubectl`).
    pub kubernetes: String,
    /// GitHub release assets (`<base>/<owner>/<repo>/releases/download/…`).
    pub github: String,
}

impl Default for Downloads {
    fn default() -> Self {
        Downloads { kubernetes: "https://dl.k8s.io/release".to_string(), github: "https://github.com".to_string() }
    }
}

/// How the user signs in to Vault/OpenBao: the address and the OIDC auth mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultLogin {
    pub address: String,
    pub oidc_mount: String,
}

/// What the script sets up besides kubectl, kubelogin and the kubeconfig.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupOptions {
    /// Install the OpenBao CLI and write the Vault address and sign-in method.
    pub vault: Option<VaultLogin>,
    /// Install OpenTofu (`--with terraform`).
    pub terraform: bool,
    pub downloads: Downloads,
}

/// Why no script could be generated.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the roster has no `platform.api_server` or no `platform.oidc`, so there is no kubeconfig to give")]
    NoKubeconfig,
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("platform.name `{0}` cannot be used as a file name in the setup script")]
    UnsafePlatformName(String),
    #[error("the heredoc nonce must be 8–64 ASCII letters and digits")]
    BadNonce,
    #[error("the kubeconfig contains the heredoc delimiter `{0}` as a line; generate again with another nonce")]
    DelimiterInContent(String),
    #[error("{0}")]
    UnsafeSetting(String),
}

impl SetupError {
    /// How to fix it, for the CLI's and the portal's messages.
    pub fn help(&self) -> &'static str {
        match self {
            SetupError::NoKubeconfig => {
                "add `api_server: https://…:6443` and `oidc: { issuer_url: …, client_id: … }` under `platform:`"
            }
            SetupError::UnsafePlatformName(_) => "use letters, digits, `-`, `_` and `.` in `platform.name`",
            SetupError::UnsafeSetting(_) => "fix [vault] address and oidc_mount in tenantry.toml",
            SetupError::Kubeconfig(_) | SetupError::BadNonce | SetupError::DelimiterInContent(_) => {
                "run the command again; if it persists, report it"
            }
        }
    }
}

/// `text` as one POSIX shell word: single-quoted, each `'` written as `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A quoted heredoc writing `content` to the file named by the shell word
/// `target`. `content` is kept byte for byte: the delimiter is quoted (no
/// expansion), and refused when it occurs as a line of `content`.
fn heredoc(target: &str, content: &str, delimiter: &str) -> Result<String, SetupError> {
    if content.lines().any(|line| line == delimiter) {
        return Err(SetupError::DelimiterInContent(delimiter.to_string()));
    }
    let newline = if content.ends_with('\n') { "" } else { "\n" };
    Ok(format!("cat > {target} <<'{delimiter}'\n{content}{newline}{delimiter}\n"))
}

/// The setup script for a platform. `nonce` (8–64 ASCII alphanumerics, from
/// the caller's randomness) makes the heredoc delimiter unguessable.
pub fn setup_script(platform: &Platform, os: SetupOs, nonce: &str) -> Result<String, SetupError> {
    setup_script_with(platform, os, nonce, &SetupOptions::default())
}

/// [`setup_script`] with the Vault sign-in, OpenTofu and download servers of `options`.
pub fn setup_script_with(
    platform: &Platform,
    os: SetupOs,
    nonce: &str,
    options: &SetupOptions,
) -> Result<String, SetupError> {
    let kubeconfig = Kubeconfig::for_platform(platform).ok_or(SetupError::NoKubeconfig)?.to_yaml()?;
    let name = &platform.name;
    if name.is_empty()
        || name.starts_with('.')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(SetupError::UnsafePlatformName(name.escape_debug().to_string()));
    }
    if !(8..=64).contains(&nonce.len()) || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(SetupError::BadNonce);
    }
    let write = heredoc("\"$target.tmp\"", &kubeconfig, &format!("TENANTRY_KUBECONFIG_{nonce}"))?;
    let vault = match &options.vault {
        Some(login) => vault_file(name, login, nonce)?,
        None => String::new(),
    };
    Ok(format!(
        r#"#!/bin/sh
# Generated by tenantry ({os}). It installs what is missing (kubectl, kubelogin{extras}),
# checking each download against its release's SHA-256 sums, and writes your
# kubeconfig, which logs in as your own identity{vault_note}.
# Run it as yourself, not as root. It never overwrites a file.
set -eu
platform={platform}
{install}
mkdir -p "$HOME/.kube"
chmod 0700 "$HOME/.kube"
target="$HOME/.kube/config"
if [ -e "$target" ]; then
  target="$HOME/.kube/$platform.config"
fi
if [ -e "$target" ]; then
  echo "$target already exists; left unchanged"
else
  umask 077
  {write}  mv "$target.tmp" "$target"
  echo "wrote $target"
fi
if [ "$target" != "$HOME/.kube/config" ]; then
  echo "use it with: export KUBECONFIG=$target"
fi
echo "next: kubectl get namespaces   (a browser opens to log in)"
{vault}"#,
        os = os.label(),
        platform = shell_quote(name),
        install = install(os, options),
        extras = match (&options.vault, options.terraform) {
            (Some(_), true) => ", the OpenBao CLI, OpenTofu",
            (Some(_), false) => ", the OpenBao CLI",
            (None, true) => ", OpenTofu",
            (None, false) => "",
        },
        vault_note = if options.vault.is_some() { ", and your Vault address and sign-in" } else { "" },
    ))
}

/// The Vault sign-in file (`~/.config/tenantry/<platform>-vault.sh`):
/// the address for both CLIs and a `vault_login` function using the OIDC
/// mount, so a sign-in lands on the user's own entity. Written once.
fn vault_file(platform: &str, login: &VaultLogin, nonce: &str) -> Result<String, SetupError> {
    let address = login.address.trim_end_matches('/');
    if !(address.starts_with("https://") || address.starts_with("http://"))
        || address.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(SetupError::UnsafeSetting(format!(
            "the Vault address `{}` is not a plain URL",
            address.escape_debug()
        )));
    }
    let mount = login.oidc_mount.trim_matches('/');
    if mount.is_empty() || !mount.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.')) {
        return Err(SetupError::UnsafeSetting(format!(
            "the OIDC mount `{}` is not a mount path",
            mount.escape_debug()
        )));
    }
    let content = format!(
        "# Generated by tenantry for {platform}: your Vault address and how to sign in.\n\
         # Load it in your shell (add the line to your profile): . \"$HOME/.config/tenantry/{platform}-vault.sh\"\n\
         export VAULT_ADDR={address}\n\
         export BAO_ADDR={address}\n\
         # Sign in through your identity provider (a browser opens); you land on your own entity.\n\
         vault_login() {{\n\
         \x20 if command -v bao >/dev/null 2>&1; then bao login -method=oidc -path={mount} \"$@\"; \
         else vault login -method=oidc -path={mount} \"$@\"; fi\n\
         }}\n",
        address = shell_quote(address),
        mount = shell_quote(mount),
    );
    let write = heredoc("\"$vault_file.tmp\"", &content, &format!("TENANTRY_VAULT_{nonce}"))?;
    Ok(format!(
        r#"mkdir -p "$HOME/.config/tenantry"
vault_file="$HOME/.config/tenantry/$platform-vault.sh"
if [ -e "$vault_file" ]; then
  echo "$vault_file already exists; left unchanged"
else
  umask 077
  {write}  mv "$vault_file.tmp" "$vault_file"
  echo "wrote $vault_file"
fi
echo "Vault: . \"$vault_file\" && vault_login"
"#
    ))
}

/// The POSIX shell helpers every Linux download goes through: a temporary
/// directory, and `fetch URL SUMS_URL FILE`, which refuses (deletes the
/// download and stops) unless the file's SHA-256 is the one the release's
/// sums file gives for it (a `sha256sum`-style line naming the file, or a
/// sums file holding just the hash).
const FETCH: &str = r#"tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d ' ' -f 1; else shasum -a 256 "$1" | cut -d ' ' -f 1; fi
}
fetch() {
  name="${1##*/}"
  curl -fsSLo "$tmp/$3" "$1"
  curl -fsSLo "$tmp/$3.sums" "$2"
  want="$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1; found = 1; exit } NF == 1 { one = $1 } END { if (!found && one != "") print one }' "$tmp/$3.sums")"
  got="$(sha256 "$tmp/$3")"
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    rm -f "$tmp/$3"
    echo "checksum mismatch for $1 (expected ${want:-no sum for $name}, got $got): not installed" >&2
    exit 1
  fi
}"#;

fn install(os: SetupOs, options: &SetupOptions) -> String {
    match os {
        SetupOs::Linux => {
            let mut out = format!(
                r#"case "$(uname -m)" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "unsupported CPU $(uname -m): install the tools by hand" >&2; exit 1 ;;
esac
k8s_dl={kubernetes}
github={github}
bin="$HOME/.local/bin"
mkdir -p "$bin"
case ":$PATH:" in *":$bin:"*) ;; *) PATH="$bin:$PATH"; echo "note: add $bin to your PATH" ;; esac
{FETCH}
if ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl {KUBECTL_VERSION} into $bin"
  fetch "$k8s_dl/{KUBECTL_VERSION}/bin/linux/$arch/kubectl" "$k8s_dl/{KUBECTL_VERSION}/bin/linux/$arch/kubectl.sha256" kubectl
  chmod 0755 "$tmp/kubectl" && mv "$tmp/kubectl" "$bin/kubectl"
fi
if ! command -v kubectl-oidc_login >/dev/null 2>&1; then
  echo "installing kubelogin {KUBELOGIN_VERSION} into $bin"
  url="$github/int128/kubelogin/releases/download/{KUBELOGIN_VERSION}/kubelogin_linux_$arch.zip"
  fetch "$url" "$url.sha256" kubelogin.zip
  (cd "$tmp" && unzip -q kubelogin.zip kubelogin)
  chmod 0755 "$tmp/kubelogin" && mv "$tmp/kubelogin" "$bin/kubectl-oidc_login"
fi"#,
                kubernetes = shell_quote(&options.downloads.kubernetes),
                github = shell_quote(&options.downloads.github),
            );
            if options.vault.is_some() {
                out.push_str(&format!(
                    r#"
if ! command -v bao >/dev/null 2>&1 && ! command -v vault >/dev/null 2>&1; then
  echo "installing the OpenBao CLI (bao) {OPENBAO_VERSION} into $bin"
  release="$github/openbao/openbao/releases/download/v{OPENBAO_VERSION}"
  fetch "$release/openbao_{OPENBAO_VERSION}_linux_$arch.tar.gz" "$release/checksums.txt" openbao.tar.gz
  tar -xzf "$tmp/openbao.tar.gz" -C "$tmp" bao
  chmod 0755 "$tmp/bao" && mv "$tmp/bao" "$bin/bao"
fi"#
                ));
            }
            if options.terraform {
                out.push_str(&format!(
                    r#"
if ! command -v tofu >/dev/null 2>&1 && ! command -v terraform >/dev/null 2>&1; then
  echo "installing OpenTofu {OPENTOFU_VERSION} into $bin"
  release="$github/opentofu/opentofu/releases/download/v{OPENTOFU_VERSION}"
  fetch "$release/tofu_{OPENTOFU_VERSION}_linux_$arch.zip" "$release/tofu_{OPENTOFU_VERSION}_SHA256SUMS" tofu.zip
  (cd "$tmp" && unzip -q tofu.zip tofu)
  chmod 0755 "$tmp/tofu" && mv "$tmp/tofu" "$bin/tofu"
fi"#
                ));
            }
            out
        }
        SetupOs::Mac => {
            // Homebrew verifies each bottle's SHA-256 itself.
            let mut out = r#"if ! command -v brew >/dev/null 2>&1; then
  echo "Homebrew is required: https://brew.sh" >&2
  exit 1
fi
command -v kubectl >/dev/null 2>&1 || brew install kubectl
command -v kubectl-oidc_login >/dev/null 2>&1 || brew install int128/kubelogin/kubelogin"#
                .to_string();
            if options.vault.is_some() {
                out.push_str(
                    "\ncommand -v bao >/dev/null 2>&1 || command -v vault >/dev/null 2>&1 || brew install openbao",
                );
            }
            if options.terraform {
                out.push_str(
                    "\ncommand -v tofu >/dev/null 2>&1 || command -v terraform >/dev/null 2>&1 || brew install opentofu",
                );
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_byte_literal() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id)`id`\n"), "'$(id)`id`\n'");
    }

    #[test]
    fn a_delimiter_inside_the_content_is_refused() {
        let content = "a: 1\nEND_X\nb: 2\n";
        assert!(matches!(heredoc("f", content, "END_X"), Err(SetupError::DelimiterInContent(_))));
        assert!(heredoc("f", "  END_X\nEND_Xy\n", "END_X").is_ok(), "only a whole line ends a heredoc");
        assert_eq!(heredoc("\"$t\"", "x", "E").unwrap(), "cat > \"$t\" <<'E'\nx\nE\n");
    }
}
