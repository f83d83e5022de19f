//! The destroy stage for an account (SPEC §6): the home is archived first,
//! and only a complete, readable archive lets `userdel` remove anything.

use crate::HostConfig;
use crate::command::{Cmd, CommandRunner as _, SystemRunner};
use crate::error::{Error, Result};
use crate::etc::Etc;
use crate::home::under_root;
use crate::records::{Records, remove_if_present};
use crate::redact;
use crate::spec::Kind;
use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenantry_core::{Domain, Mark, ResourceId, TargetError};

/// The destroy stage of the `Target` trait: every account among `resources`
/// archived and deleted; a rerun after `userdel` finds nothing left to archive.
/// An account whose record now names another platform is not `platform`'s
/// to destroy: it is kept, with a note, and the user's entries stay in the
/// inventory.
pub(crate) async fn destroy_user(
    config: &HostConfig,
    platform: &str,
    user: &str,
    resources: &[ResourceId],
    backup_dir: &Path,
) -> Result<tenantry_core::Destroyed, TargetError> {
    // A home is streamed by tar into the backup directory, not held in memory.
    let config = HostConfig { backup_dir: Some(backup_dir.to_path_buf()), ..config.clone() };
    let resources = resources.to_vec();
    let platform = platform.to_string();
    let failed = |message: String| TargetError::rejected(format!("host/Account (user {user})"), message);
    let task = tokio::task::spawn_blocking(move || {
        let mut done = tenantry_core::Destroyed::default();
        let records = Records::new(config.records_path());
        let mut kept = Vec::new();
        for id in resources.iter().filter(|id| Kind::of(id) == Some(Kind::Account)) {
            if let Some(Mark::Foreign { platform: theirs }) = records.read(id).map(|r| r.mark(&platform)) {
                done.notes.push(format!(
                    "{id}: kept, its record belongs to the platform `{theirs}` (another roster on this host)"
                ));
                kept.push(id.clone());
                continue;
            }
            let os_user = id.name.to_string();
            let present = Etc::read(&config.root)?.user(&os_user).is_some();
            if present {
                done.backups.push(destroy_account(&config, &os_user)?);
            } else {
                done.notes.push(format!("account `{os_user}` was already gone; nothing to archive"));
            }
        }
        // A kept account keeps what lives in it (its checkouts, files, ports) too.
        if kept.is_empty() {
            done.removed = resources;
        }
        Ok::<_, Error>(done)
    });
    match task.await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(error)) => Err(error.into_target_error("host/Account")),
        Err(error) => Err(failed(format!("destroy task failed: {error}"))),
    }
}

/// Archive `os_user`'s home as `<backup_dir>/<os_user>-home-<unix seconds>.tar.gz`,
/// then delete the account and its home with `userdel --root <root> --remove`,
/// and forget tenantry's records of it. Returns the archive.
pub fn destroy_account(config: &HostConfig, os_user: &str) -> Result<PathBuf> {
    let root = &config.root;
    let etc = Etc::read(root)?;
    let entry = etc
        .user(os_user)
        .ok_or_else(|| Error::Refused(format!("account `{os_user}` does not exist on the host; nothing to destroy")))?;
    if !etc.is_regular(entry) {
        return Err(Error::Refused(etc.system_account_reason(entry)));
    }
    let backup_dir = config.backup_dir.as_ref().ok_or_else(|| {
        Error::Refused(
            "the destroy stage writes a backup first: set `backup_dir` in [host] (or pass --backup DIR)".to_string(),
        )
    })?;
    let home = under_root(root, &entry.home)?;
    let (Some(home_parent), Some(home_name)) = (home.parent(), home.file_name()) else {
        return Err(Error::Content(format!("`{}` cannot be archived", entry.home)));
    };
    if !home.is_dir() {
        return Err(Error::Refused(format!(
            "the home {} of `{os_user}` is missing; nothing was deleted (remove the account by hand if that is intended)",
            home.display()
        )));
    }
    if !backup_dir.exists() {
        std::fs::create_dir_all(backup_dir).map_err(|e| Error::io(format!("creating {}", backup_dir.display()), e))?;
        std::fs::set_permissions(backup_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("setting the mode of {}", backup_dir.display()), e))?;
    }

    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = format!("{os_user}-home-{seconds}.tar.gz");
    let archive = backup_dir.join(&name);
    if archive.exists() {
        return Err(Error::Refused(format!("{} already exists; retry in a second", archive.display())));
    }
    let temp = backup_dir.join(format!(".tenantry-tmp-{name}"));
    let temp_text = temp.to_string_lossy().into_owned();
    let create = Cmd::new(
        &config.tar,
        [
            "--create".to_string(),
            "--gzip".to_string(),
            "--numeric-owner".to_string(),
            "--file".to_string(),
            temp_text.clone(),
            "--directory".to_string(),
            home_parent.to_string_lossy().into_owned(),
            home_name.to_string_lossy().into_owned(),
        ],
    )
    .with_timeout(Duration::from_secs(config.archive_timeout_secs));
    let verify = Cmd::new(&config.tar, ["--list", "--gzip", "--file", &temp_text])
        .with_timeout(Duration::from_secs(config.archive_timeout_secs));
    let archived = run(&create).and_then(|_| run(&verify)).and_then(|_| {
        File::open(&temp).and_then(|f| f.sync_all()).map_err(|e| Error::io(format!("syncing {temp_text}"), e))?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(format!("setting the mode of {temp_text}"), e))?;
        std::fs::rename(&temp, &archive).map_err(|e| Error::io(format!("moving {temp_text} into place"), e))?;
        File::open(backup_dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("syncing the backup directory", e))
    });
    if let Err(error) = archived {
        let _ = remove_if_present(&temp);
        return Err(error);
    }

    let records = Records::new(config.records_path());
    let account = ResourceId::global(Domain::Host, "Account", os_user);
    let user = records.read(&account).and_then(|r| r.content.get("user").and_then(|u| u.as_str()).map(str::to_string));
    let root_text = root.to_string_lossy().into_owned();
    run(&Cmd::new(&config.userdel, ["--root", root_text.as_str(), "--remove", os_user])
        .with_timeout(Duration::from_secs(config.command_timeout_secs)))?;

    records.remove(&account)?;
    for kind in ["Checkout", "Kubeconfig", "ManagedFile", "SkeletonLink"] {
        records.remove_scope(kind, os_user)?;
    }
    if let Some(user) = user {
        records.remove_named("Port", &user)?;
    }
    Ok(archive)
}

fn run(cmd: &Cmd) -> Result<()> {
    let output = SystemRunner.run(cmd).map_err(|e| Error::io(format!("running `{}`", cmd.program.display()), e))?;
    if output.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: cmd.to_string(),
            status: output.status_text(),
            stderr: redact::urls(output.stderr.trim()),
        })
    }
}
