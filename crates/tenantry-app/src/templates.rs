//! App templates (SPEC §11.5): the manifests of each `platform.apps` entry,
//! read from its directory beside the roster file and handed to derivation
//! as text, so derivation stays pure.
//!
//! A template directory belongs to whoever writes the roster, but it is
//! read with the same care as any input: only regular `*.yaml`/`*.yml` files
//! directly in it (symlinks refused), each UTF-8 and bounded in size.

use crate::error::{AppError, Result};
use std::path::Path;
use tenantry_model::{Roster, TemplateFile};

/// Largest template file read (a manifest is a few KiB).
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;
/// Most files one template directory may hold.
pub const MAX_TEMPLATE_FILES: usize = 200;

/// Read every app's template files from `base` (the roster file's directory).
pub fn load_app_templates(roster: &mut Roster, base: Option<&Path>) -> Result<()> {
    if roster.platform.apps.is_empty() {
        return Ok(());
    }
    let Some(base) = base else {
        return Err(AppError::config(
            "`platform.apps` names template directories, but this roster has no directory to read them from",
            "read the roster from a file (or give a `vault://` roster its platform with `--platform-from FILE`)",
        ));
    };
    for app in roster.platform.apps.values_mut() {
        app.files = read_template_dir(&base.join(&app.template.value), &app.template.value)?;
    }
    Ok(())
}

fn read_template_dir(dir: &Path, written: &str) -> Result<Vec<TemplateFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| AppError::read(dir.display(), e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AppError::read(dir.display(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let metadata = std::fs::symlink_metadata(&path).map_err(|e| AppError::read(path.display(), e))?;
        if !metadata.file_type().is_file() {
            return Err(AppError::config(
                format!("{} is not a regular file (a symlink or a directory)", path.display()),
                "keep the app's manifests as plain files in its template directory",
            ));
        }
        if metadata.len() > MAX_TEMPLATE_BYTES {
            return Err(AppError::config(
                format!(
                    "{} is {} bytes; a template file may hold {MAX_TEMPLATE_BYTES}",
                    path.display(),
                    metadata.len()
                ),
                "split the manifests, or check that the right directory is named",
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| AppError::read(path.display(), e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            AppError::config(
                format!("{} is not UTF-8 text", path.display()),
                "a template is YAML text; if it is git-crypt ciphertext, unlock the checkout first",
            )
        })?;
        files.push(TemplateFile { path: format!("{}/{name}", written.trim_end_matches('/')), text });
        if files.len() > MAX_TEMPLATE_FILES {
            return Err(AppError::config(
                format!("{} holds more than {MAX_TEMPLATE_FILES} manifest files", dir.display()),
                "an app template is a handful of manifests; check that the right directory is named",
            ));
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn roster(text: &str) -> Roster {
        tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
    }

    const ROSTER: &str = "platform:\n  apps:\n    budget: { template: apps/budget }\nusers: {}\n";

    #[test]
    fn manifests_are_read_sorted_and_other_files_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let apps = dir.path().join("apps/budget");
        std::fs::create_dir_all(&apps).unwrap();
        std::fs::write(apps.join("service.yaml"), "kind: Service\n").unwrap();
        std::fs::write(apps.join("deployment.yml"), "kind: Deployment\n").unwrap();
        std::fs::write(apps.join("README.md"), "notes").unwrap();
        let mut roster = roster(ROSTER);
        load_app_templates(&mut roster, Some(dir.path())).unwrap();
        let files: Vec<&str> = roster.platform.apps["budget"].files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, ["apps/budget/deployment.yml", "apps/budget/service.yaml"]);
    }

    #[test]
    fn a_symlink_or_a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut missing = roster(ROSTER);
        let error = load_app_templates(&mut missing, Some(dir.path())).unwrap_err();
        assert!(error.to_string().contains("apps/budget"), "{error}");

        let apps = dir.path().join("apps/budget");
        std::fs::create_dir_all(&apps).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", apps.join("passwd.yaml")).unwrap();
        let mut linked = roster(ROSTER);
        let error = load_app_templates(&mut linked, Some(dir.path())).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn a_roster_without_a_directory_cannot_name_templates() {
        let mut roster = roster(ROSTER);
        assert!(load_app_templates(&mut roster, None).is_err());
        let mut plain = super::tests::roster("users: {}\n");
        load_app_templates(&mut plain, None).unwrap();
    }
}
