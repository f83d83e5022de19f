//! Tokens and keys the targets authenticate with (SPEC §6 "Secrets"): read
//! from a file only its owner may read, or from the environment; never
//! printed. One place, so every target refuses a shared file the same way.

use std::path::{Path, PathBuf};

/// Why a secret could not be had, each with its fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the {what} {}: {source}", path.display())]
    Unreadable {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the {what} {} may be read by group or others (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Shared { what: String, path: PathBuf, mode: u32 },
    #[error("the {what} {} is empty", path.display())]
    EmptyFile { what: String, path: PathBuf },
    #[error("no {what}: set `{field}` (a file with mode 0600) or the environment variable {}", variables.join(" or "))]
    Missing { what: String, field: String, variables: Vec<String> },
}

pub type Result<T, E = SecretError> = std::result::Result<T, E>;

/// A token or key. Its `Debug` never shows it, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `~/x` → `$HOME/x`, as an admin writes paths in tenantry.toml.
pub fn expand_home(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~"), env("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// The text of a file only its owner may read (trimmed), refused otherwise.
pub fn read_private_file(path: &Path, what: &str) -> Result<String> {
    let unreadable = |source| SecretError::Unreadable { what: what.to_string(), path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Shared { what: what.to_string(), path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path).map_err(unreadable)?.trim().to_string();
    if text.is_empty() {
        return Err(SecretError::EmptyFile { what: what.to_string(), path: path.to_path_buf() });
    }
    Ok(text)
}

/// A secret from `file` when configured, else from the first of `variables`
/// set in `env` (passed in, so tests never race on the process environment).
/// `field` names the setting in the error that says how to provide it.
pub fn secret(
    file: Option<&Path>,
    variables: &[&str],
    what: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret> {
    if let Some(path) = file {
        return read_private_file(&expand_home(path, env), what).map(Secret);
    }
    variables
        .iter()
        .find_map(|name| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
        .map(Secret)
        .ok_or_else(|| SecretError::Missing {
            what: what.to_string(),
            field: field.to_string(),
            variables: variables.iter().map(|v| v.to_string()).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_file_only_its_owner_reads_or_the_environment_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let none = |_: &str| None;
        let shared = secret(Some(&file), &["T"], "token", "token_file", &none).unwrap_err().to_string();
        assert!(shared.contains(&format!("chmod 600 {}", file.display())) && shared.contains("644"), "{shared}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let read = secret(Some(&file), &["T"], "token", "token_file", &none).unwrap();
        assert_eq!(read.expose(), "s3cret");
        assert_eq!(format!("{read:?}"), "Secret(<redacted>)");

        let env = |name: &str| (name == "B").then(|| " from-env ".to_string());
        assert_eq!(secret(None, &["A", "B"], "token", "token_file", &env).unwrap().expose(), "from-env");
        let missing = secret(None, &["A", "B"], "token", "token_file", &none).unwrap_err();
        assert!(matches!(missing, SecretError::Missing { .. }));
        assert!(missing.to_string().contains("`token_file`") && missing.to_string().contains("A or B"));
        std::fs::write(&file, "  \n").unwrap();
        assert!(matches!(read_private_file(&file, "token"), Err(SecretError::EmptyFile { .. })));
        let home = |name: &str| (name == "HOME").then(|| "/home/x".to_string());
        assert_eq!(expand_home(Path::new("~/.vault-token"), &home), PathBuf::from("/home/x/.vault-token"));
    }
}
