//! The host's session timer and boot service (SPEC §11.5): systemd units
//! running `tenantry session save` every 5 minutes and `tenantry session
//! restore` at boot, derived as generated files when
//! `platform.workstation.session_command` is configured. They are
//! system-wide (the commands iterate the roster's workstation users), so a
//! departed user drops out of them with the roster; when the roster stops
//! configuring the command, the files are deleted like every generated file.
//!
//! They are enabled by drop-ins (`timers.target.d/…`, `multi-user.target.d/…`
//! with `Wants=`) instead of `systemctl enable` links: plain files, owned and
//! removed like the units; systemd reads them at the next `daemon-reload` or boot.

use super::host::GENERATED_HEADER;
use super::{Item, Out, Settings};
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
use serde_json::json;
use tenantry_model::Roster;

/// Where the units go.
pub const SYSTEMD_UNIT_DIR: &str = "/etc/systemd/system";
/// What the units run when `[host] tenantry_command` does not say.
pub const DEFAULT_TENANTRY_COMMAND: [&str; 5] =
    ["/usr/local/bin/tenantry", "--config", "/etc/tenantry/tenantry.toml", "--roster", "/etc/tenantry/roster.yaml"];

pub const SAVE_SERVICE: &str = "tenantry-session-save.service";
pub const SAVE_TIMER: &str = "tenantry-session-save.timer";
pub const RESTORE_SERVICE: &str = "tenantry-session-restore.service";

/// One word of an `ExecStart=` line: plain when it holds only safe
/// characters, else double-quoted with `\` and `"` escaped; `%` and `$` are
/// doubled everywhere (systemd's specifiers and variable expansion).
/// Control characters are refused where the command is configured.
pub fn systemd_word(word: &str) -> String {
    let doubled = word.replace('%', "%%").replace('$', "$$");
    let plain = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._=:,+@-%$".contains(&b));
    if plain { doubled } else { format!("\"{}\"", doubled.replace('\\', "\\\\").replace('"', "\\\"")) }
}

/// `ExecStart=` for `tenantry … session <action>`.
fn exec_start(tenantry: &[String], action: &str) -> String {
    let words: Vec<String> = tenantry.iter().map(|w| systemd_word(w)).collect();
    format!("ExecStart={} session {action}", words.join(" "))
}

/// The generated files: (resource name, absolute path, text).
pub fn session_unit_files(tenantry: &[String]) -> Vec<(String, String, String)> {
    let save = format!(
        "{GENERATED_HEADER}\n[Unit]\nDescription=tenantry: snapshot the workstation users' tmux sessions\n\
         After=local-fs.target\n\n[Service]\nType=oneshot\n{}\nTimeoutStartSec=15min\n",
        exec_start(tenantry, "save")
    );
    let timer = format!(
        "{GENERATED_HEADER}\n[Unit]\nDescription=tenantry: snapshot the tmux sessions every 5 minutes\n\n\
         [Timer]\nOnBootSec=5min\nOnUnitActiveSec=5min\nUnit={SAVE_SERVICE}\n\n[Install]\nWantedBy=timers.target\n"
    );
    // RemainAfterExit: the tmux servers it starts stay in its cgroup, which
    // systemd would otherwise stop once the oneshot command exits.
    let restore = format!(
        "{GENERATED_HEADER}\n[Unit]\nDescription=tenantry: recreate the workstation users' missing tmux sessions\n\
         After=local-fs.target remote-fs.target systemd-user-sessions.service\n\n[Service]\nType=oneshot\n\
         RemainAfterExit=yes\n{}\nTimeoutStartSec=15min\n\n[Install]\nWantedBy=multi-user.target\n",
        exec_start(tenantry, "restore")
    );
    let wants = |unit: &str| format!("{GENERATED_HEADER}\n[Unit]\nWants={unit}\n");
    vec![
        (SAVE_SERVICE.to_string(), format!("{SYSTEMD_UNIT_DIR}/{SAVE_SERVICE}"), save),
        (SAVE_TIMER.to_string(), format!("{SYSTEMD_UNIT_DIR}/{SAVE_TIMER}"), timer),
        (RESTORE_SERVICE.to_string(), format!("{SYSTEMD_UNIT_DIR}/{RESTORE_SERVICE}"), restore),
        (
            "timers.target.d-tenantry-session.conf".to_string(),
            format!("{SYSTEMD_UNIT_DIR}/timers.target.d/tenantry-session.conf"),
            wants(SAVE_TIMER),
        ),
        (
            "multi-user.target.d-tenantry-session.conf".to_string(),
            format!("{SYSTEMD_UNIT_DIR}/multi-user.target.d/tenantry-session.conf"),
            wants(RESTORE_SERVICE),
        ),
    ]
}

pub(super) fn derive(roster: &Roster, settings: &Settings, out: &mut Out) {
    let workstation = &roster.platform.workstation;
    let Some(command) = &workstation.session_command else { return };
    if !roster.users.values().any(|u| u.workstation.is_some()) {
        return;
    }
    let tenantry: Vec<String> = match &settings.host_tenantry_command {
        Some(words) => words.clone(),
        None => DEFAULT_TENANTRY_COMMAND.iter().map(|w| w.to_string()).collect(),
    };
    for (name, path, text) in session_unit_files(&tenantry) {
        out.push(
            Item::new(
                ResourceId::global(Domain::Host, "GeneratedFile", &name),
                &Owner::Platform,
                command.span,
                "session layer: systemd unit for `tenantry session save|restore` (platform.workstation.session_command)",
            ),
            &json!({ "path": path, "mode": "0644", "text": text }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::systemd_word;

    #[test]
    fn exec_words_are_quoted_for_systemd() {
        assert_eq!(systemd_word("/usr/local/bin/tenantry"), "/usr/local/bin/tenantry");
        assert_eq!(systemd_word("a b"), "\"a b\"");
        assert_eq!(systemd_word("50%"), "50%%");
        assert_eq!(systemd_word("$HOME"), "$$HOME");
        assert_eq!(systemd_word("say \"hi\" \\ %h"), "\"say \\\"hi\\\" \\\\ %%h\"");
        assert_eq!(systemd_word(""), "\"\"");
    }
}
