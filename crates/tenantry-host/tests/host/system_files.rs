//! `platform.workstation.system_files`: a file installed on the host from the
//! roster's source, rewritten when the source changes, left alone once
//! someone else changed it (JSON has no header: tenantry's record holds the
//! digest of what it wrote).

use super::{ALICE_SINGLE, PLATFORM, Sandbox};
use std::os::unix::fs::MetadataExt as _;
use tenantry_core::Policy;

const DEST: &str = "/etc/claude-code/managed-settings.json";

fn roster(sandbox: &Sandbox) -> tenantry_model::Roster {
    let text = format!("{}{ALICE_SINGLE}", PLATFORM.replace("@REPOS@", &sandbox.repos.display().to_string())).replace(
        "    skeleton_links:",
        &format!("    system_files: [{{ source: files/managed-settings.json, dest: {DEST} }}]\n    skeleton_links:"),
    );
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
}

#[tokio::test]
async fn a_system_file_follows_its_source_until_someone_else_changes_it() {
    let sandbox = Sandbox::new();
    let source = sandbox.base.join("roster/files/managed-settings.json");
    std::fs::write(&source, "{\"permissions\": {\"deny\": [\"Bash(rm:*)\"]}}\n").unwrap();
    let roster = roster(&sandbox);
    sandbox.apply(&roster).await;
    let installed = sandbox.path(DEST);
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&source).unwrap());
    let meta = std::fs::metadata(&installed).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    sandbox.assert_no_changes(&roster).await;

    // The source changes: the plan shows it, apply installs it.
    std::fs::write(&source, "{\"permissions\": {\"deny\": []}}\n").unwrap();
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let id = "host/SystemFile/-/etc/claude-code/managed-settings.json";
    assert!(super::change(&prepared, id).is_some_and(|c| c.action.is_change()), "{:#?}", prepared.plan.changes);
    sandbox.apply(&roster).await;
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&source).unwrap());
    sandbox.assert_no_changes(&roster).await;

    // An admin's edit is kept, even when the source changes again.
    std::fs::write(&installed, "{\"edited\": true}\n").unwrap();
    sandbox.assert_no_changes(&roster).await;
    std::fs::write(&source, "{\"permissions\": {\"deny\": [\"WebFetch\"]}}\n").unwrap();
    sandbox.assert_no_changes(&roster).await;
    assert_eq!(std::fs::read_to_string(&installed).unwrap(), "{\"edited\": true}\n");

    // Gone from the roster: the file stays (a policy other programs enforce).
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    assert!(installed.exists());
}

#[tokio::test]
async fn a_file_that_was_there_first_is_left_alone_with_a_warning() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.base.join("roster/files/managed-settings.json"), "{}\n").unwrap();
    let installed = sandbox.path(DEST);
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::write(&installed, "{\"admin\": 1}\n").unwrap();
    let (report, warnings) = sandbox.apply_with(&roster(&sandbox), Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(warnings.iter().any(|w| w.contains(DEST) && w.contains("left alone")), "{warnings:#?}");
    assert_eq!(std::fs::read_to_string(&installed).unwrap(), "{\"admin\": 1}\n");
}
