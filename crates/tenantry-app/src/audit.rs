//! The audit trail (SPEC §11.6): every applied change and every destroy
//! becomes one JSON line in `audit.jsonl` next to the state database —
//! when, who (the OS user, or `controller` in serve), the roster's digest
//! and git revision, target, id, action, outcome, error — and, with
//! `[audit] webhook_url_file`, one Slack incoming-webhook message per
//! apply. Neither ever fails or holds up the apply: a problem becomes a
//! warning note, and the webhook has a bounded deadline for all its tries.

use serde::Serialize;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenantry_core::{Note, Plan};
use tenantry_engine::{ApplyReport, DestroyPlan, DestroyReport};

/// The audit log's file name, in the state database's directory.
pub const AUDIT_LOG: &str = "audit.jsonl";

/// `[audit]` in tenantry.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A file only its owner may read holding the Slack incoming-webhook URL
    /// (the URL is a secret: whoever has it may post).
    pub webhook_url_file: Option<PathBuf>,
    /// Seconds all tries of one message may take together (default 10).
    pub webhook_timeout_seconds: Option<u64>,
}

/// Default bound on all tries of one webhook message.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl AuditConfig {
    pub fn keys() -> &'static [&'static str] {
        tenantry_core::plugin::struct_fields::<AuditConfig>()
    }

    pub fn timeout(&self) -> Duration {
        self.webhook_timeout_seconds.map(Duration::from_secs).unwrap_or(WEBHOOK_TIMEOUT)
    }
}

/// Which roster a run derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterRef {
    /// `roster.yaml` or `vault://…`.
    pub source: String,
    /// SHA-256 of the roster text.
    pub digest: String,
    /// The commit checked out where the roster file lives, when it is in a git checkout.
    pub revision: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditEvent {
    pub time: String,
    /// The OS user who ran tenantry, or `controller`.
    pub who: String,
    pub run: i64,
    pub command: String,
    pub roster: AuditRoster,
    pub target: String,
    pub id: String,
    pub owner: String,
    /// `create`, `update`, `adopt`, `cut`, `delete`, `conflict`, or `destroy`.
    pub action: String,
    /// `done`, `failed` or `skipped`.
    pub outcome: String,
    pub error: Option<String>,
}

/// The roster fields of an event (the same as [`RosterRef`], readable back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditRoster {
    pub source: String,
    pub digest: String,
    pub revision: Option<String>,
}

impl From<&RosterRef> for AuditRoster {
    fn from(roster: &RosterRef) -> AuditRoster {
        AuditRoster { source: roster.source.clone(), digest: roster.digest.clone(), revision: roster.revision.clone() }
    }
}

/// What every event of one run shares.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    pub time: &'a str,
    pub who: &'a str,
    pub command: &'a str,
    pub roster: &'a RosterRef,
}

impl RunContext<'_> {
    fn event(&self, run: i64, target: &str, id: String, owner: &str, action: &str, error: Option<&str>) -> AuditEvent {
        let outcome = match error {
            None => "done",
            Some(error) if error.starts_with("skipped:") => "skipped",
            Some(_) => "failed",
        };
        AuditEvent {
            time: self.time.to_string(),
            who: self.who.to_string(),
            run,
            command: self.command.to_string(),
            roster: self.roster.into(),
            target: target.to_string(),
            id,
            owner: owner.to_string(),
            action: action.to_string(),
            outcome: outcome.to_string(),
            error: error.map(str::to_string),
        }
    }
}

/// One event per change the apply acted on (applied, failed or skipped), in plan order.
pub fn apply_events(plan: &Plan, report: &ApplyReport, context: &RunContext<'_>) -> Vec<AuditEvent> {
    // By target and id: a dead peer fails every change, and a search per
    // change would be quadratic (100,000 changes × 100,000 failures).
    let mut failures: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
    for failure in &report.failures {
        failures.entry(failure.target.as_str()).or_default().insert(failure.id.as_str(), failure.error.as_str());
    }
    plan.changes
        .iter()
        .filter(|change| change.action.is_applied())
        .map(|change| {
            let id = change.id.to_string();
            let error = failures.get(change.target.as_str()).and_then(|by_id| by_id.get(id.as_str())).copied();
            context.event(report.run, &change.target, id, change.owner.as_label(), change.action.as_str(), error)
        })
        .collect()
}

/// One event per resource the destroy stage was to remove.
pub fn destroy_events(plan: &DestroyPlan, report: &DestroyReport, context: &RunContext<'_>) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    for (target, ids) in &plan.by_target {
        let outcome = report.targets.get(target);
        for id in ids {
            let error = match outcome {
                Some(Ok(done)) if done.removed.contains(id) => None,
                Some(Ok(_)) => Some("the target did not remove it".to_string()),
                Some(Err(error)) => Some(error.clone()),
                None => Some("skipped: the target did not run".to_string()),
            };
            events.push(context.event(report.run, target, id.to_string(), &plan.user, "destroy", error.as_deref()));
        }
    }
    events
}

/// Append `events` to the audit log at `path` (created 0600), one JSON object per line,
/// in one write so concurrent runs never interleave within a line.
pub fn append(path: &Path, events: &[AuditEvent]) -> std::io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // Line by line through a buffer, not one text of every event (tens of
    // MB at 10,000 users). Runs on one state database never overlap (the
    // run lock), so no other writer's lines land between these.
    let mut file = std::io::BufWriter::with_capacity(1 << 20, options.open(path)?);
    for event in events {
        serde_json::to_writer(&mut file, event).map_err(std::io::Error::other)?;
        file.write_all(b"\n")?;
    }
    file.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_data()
}

/// Read the audit log (a missing file is an empty log; a line that does
/// not parse — a torn write of a killed run — is skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<AuditEvent>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// The commit checked out in the git checkout holding `file`, read from
/// `.git` directly (no git process: the roster's checkout may come from a
/// pull request, and its config must not run anything). `None` outside a
/// checkout or when it cannot be told.
pub fn git_revision(file: &Path) -> Option<String> {
    let start = std::path::absolute(file).ok()?;
    let mut dir = start.parent()?.to_path_buf();
    loop {
        let dot_git = dir.join(".git");
        if let Ok(meta) = std::fs::symlink_metadata(&dot_git) {
            let git_dir = if meta.is_dir() {
                dot_git
            } else {
                // A worktree: `.git` is a file naming the git directory.
                let text = read_small(&dot_git)?;
                let target = text.trim().strip_prefix("gitdir:")?.trim();
                dir.join(target)
            };
            return resolve_head(&git_dir);
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    (meta.len() <= 1 << 20).then(|| std::fs::read_to_string(path).ok()).flatten()
}

fn resolve_head(git_dir: &Path) -> Option<String> {
    let head = read_small(&git_dir.join("HEAD"))?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        return is_object_id(head).then(|| head.to_string());
    };
    if !reference.starts_with("refs/") || reference.contains("..") {
        return None;
    }
    // A linked worktree keeps its refs in the common directory.
    let common =
        read_small(&git_dir.join("commondir")).map(|c| git_dir.join(c.trim())).unwrap_or_else(|| git_dir.to_path_buf());
    for dir in [git_dir, common.as_path()] {
        if let Some(id) = read_small(&dir.join(reference)).map(|t| t.trim().to_string()) {
            return is_object_id(&id).then_some(id);
        }
        if let Some(packed) = read_small(&dir.join("packed-refs")) {
            for line in packed.lines() {
                if let Some((id, name)) = line.split_once(' ')
                    && name == reference
                    && is_object_id(id)
                {
                    return Some(id.to_string());
                }
            }
        }
    }
    None
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Slack incoming-webhook message (`{"text": …}`) summarising one run.
pub fn slack_message(events: &[AuditEvent], summary: &str) -> serde_json::Value {
    const SHOWN: usize = 20;
    let Some(first) = events.first() else { return serde_json::json!({ "text": summary }) };
    let revision = first.roster.revision.as_deref().map(|r| format!(" @ {}", short(r))).unwrap_or_default();
    let mut text = format!(
        "tenantry run {} by {}: {summary}\nroster {} (sha256 {}{revision})",
        first.run,
        first.who,
        first.roster.source,
        short(&first.roster.digest)
    );
    for event in events.iter().take(SHOWN) {
        let mark = match event.outcome.as_str() {
            "done" => "•",
            "skipped" => "◦",
            _ => "✗",
        };
        text.push_str(&format!("\n{mark} {} {} {} [{}]", event.owner, event.action, event.id, event.target));
        if let Some(error) = &event.error {
            text.push_str(&format!(": {error}"));
        }
    }
    if events.len() > SHOWN {
        text.push_str(&format!("\n… and {} more (see `tenantry history`)", events.len() - SHOWN));
    }
    serde_json::json!({ "text": text })
}

fn short(text: &str) -> &str {
    text.get(..12).unwrap_or(text)
}

/// "N applied, M failed, K skipped" of a run's events.
pub fn summary(events: &[AuditEvent]) -> String {
    let count = |outcome: &str| events.iter().filter(|e| e.outcome == outcome).count();
    format!("{} applied, {} failed, {} skipped", count("done"), count("failed"), count("skipped"))
}

/// Post `message` to the webhook, retrying 5xx, 429 and connection errors
/// with exponential backoff, every try within one `deadline`. Never
/// returns the URL (a secret) in its error.
pub async fn post(url: &str, message: &serde_json::Value, deadline: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(deadline)
        .connect_timeout(deadline)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", e.without_url()))?;
    let attempts = async {
        let mut delay = Duration::from_millis(250);
        let mut last = String::new();
        for attempt in 1..=4 {
            match client.post(url).json(message).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    last = format!("the webhook answered HTTP {status}");
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return Err(last);
                    }
                }
                Err(error) => last = format!("{}", error.without_url()),
            }
            if attempt < 4 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(format!("{last} (after 4 tries)"))
    };
    match tokio::time::timeout(deadline, attempts).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", deadline.as_secs_f32())),
    }
}

/// Write the events and announce them; what went wrong comes back as
/// warning notes for the run's report (the run itself succeeded or failed
/// on its own).
pub async fn record(
    log: &Path,
    webhook: Option<(&tenantry_secret::Secret, Duration)>,
    events: Vec<AuditEvent>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    if events.is_empty() {
        return notes;
    }
    let path = log.to_path_buf();
    // The events go to the file writer and come back for the webhook (no copy).
    let written = tokio::task::spawn_blocking(move || (append(&path, &events), events)).await;
    let events = match written {
        Ok((Ok(()), events)) => events,
        Ok((Err(error), events)) => {
            notes.push(Note::warning(format!(
                "the audit log {} was not written: {error} (the journal in the state database still has every change)",
                log.display()
            )));
            events
        }
        Err(error) => {
            notes.push(Note::warning(format!("the audit log was not written: {error}")));
            return notes;
        }
    };
    if let Some((url, deadline)) = webhook {
        let message = slack_message(&events, &summary(&events));
        if let Err(error) = post(url.expose(), &message, deadline).await {
            notes.push(Note::warning(format!(
                "the audit webhook was not told about run {}: {error}; the audit log has it",
                events[0].run
            )));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: &str, error: Option<&str>) -> AuditEvent {
        AuditEvent {
            time: "2026-01-02T03:04:05Z".into(),
            who: "ada".into(),
            run: 7,
            command: "tenantry apply --yes".into(),
            roster: AuditRoster { source: "roster.yaml".into(), digest: "ab".repeat(32), revision: None },
            target: "kubernetes".into(),
            id: "kubernetes/Namespace/-/alice".into(),
            owner: "alice".into(),
            action: "create".into(),
            outcome: outcome.into(),
            error: error.map(String::from),
        }
    }

    #[test]
    fn the_log_is_json_lines_readable_back_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(AUDIT_LOG);
        append(&path, &[event("done", None)]).unwrap();
        append(&path, &[event("failed", Some("boom"))]).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"torn").unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back, [event("done", None), event("failed", Some("boom"))]);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&dir.path().join("none")).unwrap(), []);
    }

    /// Each applied change gets its own outcome, matched by target and id
    /// (a lookup, not a search: a dead peer fails every change).
    #[test]
    fn each_change_gets_its_own_outcome_by_target_and_id() {
        use tenantry_core::{Action, Change, Owner, ResourceId};
        let change = |target: &str, name: &str, action: Action| {
            let id = ResourceId::new(tenantry_core::Domain::Kubernetes, "Namespace", "-", name);
            Change::bare(target, id, Owner::User(name.to_string()), action)
        };
        let plan = Plan {
            changes: vec![
                change("kubernetes", "alice", Action::Create),
                change("kubernetes", "bob", Action::Create),
                change("local", "bob", Action::Create),
                change("kubernetes", "carol", Action::Update),
                change("kubernetes", "dave", Action::Withheld),
            ],
            ..Plan::default()
        };
        let failure = |target: &str, name: &str, error: &str| tenantry_engine::Failure {
            owner: Owner::User(name.to_string()),
            target: target.to_string(),
            id: format!("kubernetes/Namespace/-/{name}"),
            action: Action::Create,
            error: error.to_string(),
            skipped: error.starts_with("skipped:"),
            unknown: false,
        };
        let report = ApplyReport {
            run: 3,
            failures: vec![failure("kubernetes", "bob", "forbidden"), failure("kubernetes", "carol", "skipped: down")],
            ..ApplyReport::default()
        };
        let roster = RosterRef { source: "roster.yaml".into(), digest: "ab".into(), revision: None };
        let context = RunContext { time: "t", who: "ada", command: "tenantry apply", roster: &roster };
        let outcomes: Vec<(String, String, String, Option<String>)> = apply_events(&plan, &report, &context)
            .into_iter()
            .map(|e| (e.target, e.owner, e.outcome, e.error))
            .collect();
        let row = |target: &str, owner: &str, outcome: &str, error: Option<&str>| {
            (target.to_string(), owner.to_string(), outcome.to_string(), error.map(str::to_string))
        };
        assert_eq!(
            outcomes,
            [
                row("kubernetes", "alice", "done", None),
                row("kubernetes", "bob", "failed", Some("forbidden")),
                // The same id on another target did not fail.
                row("local", "bob", "done", None),
                row("kubernetes", "carol", "skipped", Some("skipped: down")),
            ]
        );
    }

    #[test]
    fn the_slack_message_names_the_run_who_and_each_change() {
        let events = [event("done", None), event("failed", Some("forbidden"))];
        let message = slack_message(&events, &summary(&events));
        let text = message["text"].as_str().unwrap();
        assert!(text.starts_with("tenantry run 7 by ada: 1 applied, 1 failed, 0 skipped\n"), "{text}");
        assert!(text.contains("• alice create kubernetes/Namespace/-/alice [kubernetes]"), "{text}");
        assert!(text.contains("✗ alice create kubernetes/Namespace/-/alice [kubernetes]: forbidden"), "{text}");
        assert_eq!(message.as_object().unwrap().len(), 1, "Slack's format: one `text` field");
    }

    #[test]
    fn the_git_revision_is_read_from_the_checkout_without_git() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let id = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(git.join("refs/heads/main"), format!("{id}\n")).unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        assert_eq!(git_revision(&dir.path().join("sub/roster.yaml")).as_deref(), Some(id));
        std::fs::remove_file(git.join("refs/heads/main")).unwrap();
        std::fs::write(git.join("packed-refs"), format!("# pack-refs\n{id} refs/heads/main\n")).unwrap();
        assert_eq!(git_revision(&dir.path().join("roster.yaml")).as_deref(), Some(id));
        std::fs::write(git.join("HEAD"), "ref: ../../etc/passwd\n").unwrap();
        assert_eq!(git_revision(&dir.path().join("roster.yaml")), None, "a ref outside refs/ is not followed");
    }
}
