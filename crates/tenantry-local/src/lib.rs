//! The `local` target: the embedded default (SPEC §5).
//!
//! Renders every resource it is given as files under one directory —
//! Kubernetes manifests per user ready for `kubectl apply -R -f`, Vault
//! policies as HCL plus their JSON payloads, DNS records, host files — and
//! reads them back to observe. Every write is atomic (temp file, fsync,
//! rename); only files tenantry wrote (per the inventory) are ever removed.

mod files;
mod layout;
mod plugin;

pub use files::{AtomicWriter, remove_file_and_empty_parents};
pub use layout::{Rendered, render};
pub use plugin::PLUGIN;

use std::path::{Path, PathBuf};
use tenantry_core::{
    Action, Applied, Change, Content, Domain, ObserveRequest, Observed, Owner, Snapshot, Target, TargetError,
    target::Result,
};

/// Settings of `[local]` in tenantry.toml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Where rendered files go.
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    /// The SQLite state database (inventory, journal, port reservations).
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// Set to false to stop rendering (the state database is still used).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("tenantry-out")
}
fn default_state() -> PathBuf {
    PathBuf::from(".tenantry/state.db")
}
fn default_enabled() -> bool {
    true
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig { out_dir: default_out_dir(), state: default_state(), enabled: true }
    }
}

/// Renders the domains no live target applies.
#[derive(Debug, Clone)]
pub struct LocalTarget {
    out_dir: PathBuf,
    domains: Vec<Domain>,
}

impl LocalTarget {
    pub fn new(out_dir: impl Into<PathBuf>, domains: Vec<Domain>) -> LocalTarget {
        LocalTarget { out_dir: out_dir.into(), domains }
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    fn io_error(&self, context: String, source: std::io::Error) -> TargetError {
        TargetError::io(context, source)
    }

    /// Read back one resource from its files; `None` when its main file is absent.
    fn observe_one(&self, id: &tenantry_core::ResourceId, owner: &Owner) -> Result<Option<Content>> {
        let primary = layout::primary_path(id, owner);
        let path = self.out_dir.join(&primary);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.io_error(format!("reading {}", path.display()), error)),
        };
        let Some(content) = layout::parse_primary(id, &text) else {
            // Unreadable (hand-edited into invalid YAML/JSON): report it as drift.
            return Ok(Some(Content::from_value(
                &serde_json::json!({ "unreadable-file": primary.display().to_string() }),
            )));
        };
        // The companions (HCL text, literal host files) must match too.
        let rendered = layout::render(id, owner, &content);
        for (relative, bytes) in rendered.files.iter().skip(1) {
            let matches = std::fs::read(self.out_dir.join(relative)).is_ok_and(|on_disk| on_disk == *bytes);
            if !matches {
                return Ok(Some(Content::from_value(&serde_json::json!({
                    "out-of-date-file": relative.display().to_string(),
                    "content": content.to_value(),
                }))));
            }
        }
        Ok(Some(content))
    }
}

#[async_trait::async_trait]
impl Target for LocalTarget {
    fn name(&self) -> &str {
        "local"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    fn renders_only(&self) -> bool {
        true
    }

    async fn observe(&self, request: &ObserveRequest) -> Result<Observed> {
        // Nothing rendered yet (a first plan): no file to look for, nothing to sweep.
        if !self.out_dir.is_dir() {
            return Ok(Observed::default());
        }
        let this = self.clone();
        let resources = request.resources.clone();
        // Plain blocking file reads, off the async workers.
        tokio::task::spawn_blocking(move || {
            files::sweep_stale_temp_files(&this.out_dir);
            let mut observed = Observed::default();
            // A file read per resource (a few microseconds each, 160,000 at
            // 10,000 users): split over the cores, in order.
            let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 4);
            let chunk = resources.len().div_ceil(threads).max(1);
            let read: Vec<Result<Vec<(tenantry_core::ResourceId, Content)>>> = std::thread::scope(|scope| {
                let workers: Vec<_> = resources
                    .chunks(chunk)
                    .map(|slice| {
                        let this = &this;
                        scope.spawn(move || {
                            let mut found = Vec::new();
                            for (id, owner) in slice {
                                if let Some(content) = this.observe_one(id, owner)? {
                                    found.push((id.clone(), content));
                                }
                            }
                            Ok(found)
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|worker| {
                        worker.join().unwrap_or_else(|_| Err(TargetError::other("a file reader died".to_string())))
                    })
                    .collect()
            });
            for part in read {
                for (id, content) in part? {
                    // Files carry no ownership marks: the inventory decides.
                    observed.insert(id, content, None);
                }
            }
            Ok(observed)
        })
        .await
        .map_err(|e| TargetError::other(format!("observer task failed: {e}")))?
    }

    /// Rendered files hold no data of the user's: the destroy stage removes
    /// them (every file the resource renders to) without a backup.
    async fn destroy(
        &self,
        user: &str,
        resources: &[tenantry_core::ResourceId],
        _backups: &dyn tenantry_core::Backups,
    ) -> Result<tenantry_core::Destroyed> {
        let this = self.clone();
        let owner = tenantry_core::Owner::User(user.to_string());
        let resources = resources.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut done = tenantry_core::Destroyed::default();
            for id in resources {
                let rendered = match this.observe_one(&id, &owner)? {
                    Some(content) => render(&id, &owner, &content).files.into_iter().map(|(p, _)| p).collect(),
                    None => vec![layout::primary_path(&id, &owner)],
                };
                for relative in rendered {
                    remove_file_and_empty_parents(&this.out_dir, &relative)
                        .map_err(|e| this.io_error(format!("removing {}", relative.display()), e))?;
                }
                done.removed.push(id);
            }
            Ok(done)
        })
        .await
        .map_err(|e| TargetError::other(format!("destroy task failed: {e}")))?
    }

    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> Result<Applied> {
        let this = self.clone();
        let change = change.clone();
        tokio::task::spawn_blocking(move || this.apply_blocking(&change).map(|()| Applied::done()))
            .await
            .map_err(|e| TargetError::other(format!("writer task failed: {e}")))?
    }
}

impl LocalTarget {
    fn apply_blocking(&self, change: &Change) -> Result<()> {
        match change.action {
            Action::Create | Action::Update | Action::Adopt | Action::Cut => {
                let Some(content) = &change.after else {
                    return Err(TargetError::other(format!("{} has no content to write", change.id)));
                };
                for (relative, bytes) in render(&change.id, &change.owner, content).files {
                    let path = self.out_dir.join(&relative);
                    AtomicWriter::write(&path, &bytes)
                        .map_err(|e| self.io_error(format!("writing {}", path.display()), e))?;
                }
                Ok(())
            }
            Action::Delete => {
                let rendered = match &change.before {
                    Some(before) => {
                        render(&change.id, &change.owner, before).files.into_iter().map(|(p, _)| p).collect()
                    }
                    None => vec![layout::primary_path(&change.id, &change.owner)],
                };
                for relative in rendered {
                    remove_file_and_empty_parents(&self.out_dir, &relative)
                        .map_err(|e| self.io_error(format!("removing {}", relative.display()), e))?;
                }
                Ok(())
            }
            Action::Withheld | Action::Departing | Action::Kept | Action::Conflict | Action::NoOp => Ok(()),
        }
    }
}
