//! What wakes the reconcile loop besides its timers: the roster source
//! (a file watched with `notify`, a `vault://` entry polled by version, a
//! ConfigMap watched) and drift reported by the cluster's watches. Each
//! runs as its own task and sends [`Trigger`]s.

use crate::status::Shared;
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tenantry_app::{Controller, Drift};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The roster source may have changed: read it again.
    RosterTouched,
    /// A watch saw an object deleted or changed by someone else (or started over).
    Drift(Drift),
}

/// Queue drift; when the queue is full, a drift pass is queued already.
fn send_drift(triggers: &mpsc::Sender<Trigger>, drift: Drift) {
    let _ = triggers.try_send(Trigger::Drift(drift));
}

/// Queue a roster change: never dropped, whatever else is queued (it waits
/// for room instead).
async fn send_roster_touched(triggers: &mpsc::Sender<Trigger>) {
    let _ = triggers.send(Trigger::RosterTouched).await;
}

/// Watch a roster file's directory (editors and ConfigMap volumes replace
/// files by rename), and report events about it after `debounce` of quiet:
/// a file written in several steps is read once, when the writer is done
/// (and if it is still half-written, it is reported and not applied).
pub fn watch_file(path: &Path, debounce: Duration, triggers: mpsc::Sender<Trigger>) -> notify::Result<FileWatch> {
    use notify::Watcher as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        // The roster itself, or a ConfigMap volume's `..data` swap.
        let ours = event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == name.as_os_str() || n.to_string_lossy().starts_with("..")));
        if ours {
            let _ = raw_tx.send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            // Quiet for `debounce` since the last event.
            loop {
                match tokio::time::timeout(debounce, raw_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            send_roster_touched(&triggers).await;
        }
    });
    Ok(FileWatch { _watcher: watcher, task })
}

/// A running file watch; dropping it stops watching.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Poll a `vault://` roster's KV version every `every`; a new version is a trigger.
pub fn poll_vault(
    controller: Arc<Controller>,
    every: Duration,
    triggers: mpsc::Sender<Trigger>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<String> = None;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match controller.roster_revision().await {
                Ok(Some(version)) => {
                    if last.as_ref().is_some_and(|seen| *seen != version) {
                        send_roster_touched(&triggers).await;
                    }
                    last = Some(version);
                }
                Ok(None) => return,
                Err(error) => tracing::warn!(%error, "cannot read the roster's version from Vault; trying again"),
            }
        }
    })
}

/// Forward a ConfigMap roster's changes.
pub fn forward_roster_changes(
    mut changes: futures::stream::BoxStream<'static, ()>,
    triggers: mpsc::Sender<Trigger>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while changes.next().await.is_some() {
            send_roster_touched(&triggers).await;
        }
    })
}

/// Forward drift from the cluster's watches, without the events of another
/// platform than the roster's in force (a cluster shared by several
/// rosters: their churn must not fill the loop's queue); the loop counts
/// what it keeps.
pub fn forward_drift(
    mut drift: futures::stream::BoxStream<'static, Drift>,
    shared: Arc<Shared>,
    triggers: mpsc::Sender<Trigger>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = drift.next().await {
            if let Drift::Object { platform: Some(theirs), .. } = &event
                && shared.view(|s| s.roster.platform.as_ref().is_some_and(|ours| ours != theirs))
            {
                continue;
            }
            send_drift(&triggers, event);
        }
    })
}
