//! `HostTarget`: the handle the engine and the CLI hold. The `Target`
//! implementation only delegates (to `observe`, `plan`, `execute`,
//! `destroy`); what the CLI needs beyond the trait — warnings, the steps of a
//! change, refresh (`hooks`) and port reconciliation (`sources`) — are
//! separate inherent methods.

use crate::HostConfig;
use crate::command::{CommandRunner, SystemRunner};
use crate::error::Error;
use crate::inner::Inner;
use crate::records::Records;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenantry_core::{Change, Domain, ObserveRequest, Observed, ResourceId, Target, TargetError};

/// Applies host resources to `/` or a sandbox root.
#[derive(Debug, Clone)]
pub struct HostTarget {
    inner: Arc<Inner>,
}

impl HostTarget {
    pub fn new(config: HostConfig) -> HostTarget {
        HostTarget::with_runner(config, Arc::new(SystemRunner))
    }

    /// With another command runner (tests, or a runner that logs every command).
    pub fn with_runner(config: HostConfig, runner: Arc<dyn CommandRunner>) -> HostTarget {
        HostTarget {
            inner: Arc::new(Inner {
                records: Records::new(config.records_path()),
                config,
                runner,
                privileged: rustix::process::geteuid().is_root(),
                accounts: Mutex::new(()),
                users: Mutex::new(HashMap::new()),
                warnings: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The shared state, for work moved onto a blocking thread.
    pub(crate) fn shared(&self) -> Arc<Inner> {
        Arc::clone(&self.inner)
    }

    /// The content of every account tenantry recorded applying (present or departed users).
    pub(crate) fn account_records(&self) -> Vec<Value> {
        self.inner.records.read_kind("Account").into_iter().map(|record| record.content).collect()
    }
}

#[async_trait::async_trait]
impl Target for HostTarget {
    fn name(&self) -> &str {
        "host"
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Host]
    }

    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        let inner = Arc::clone(&self.inner);
        let resources = request.resources.clone();
        tokio::task::spawn_blocking(move || inner.observe(&resources))
            .await
            .map_err(|e| TargetError::Other {
                target: "host".to_string(),
                message: format!("observer task failed: {e}"),
            })?
            .map_err(|e| TargetError::Unavailable { target: "host".to_string(), message: e.to_string() })
    }

    fn describe(&self, change: &Change) -> Vec<String> {
        match self.commands_for(change) {
            Ok(steps) => steps,
            // The usual case in a first plan: the account is created earlier in the same apply.
            Err(Error::MissingAccount { os_user }) => {
                vec![format!("# after `{os_user}` is created: the steps depend on its home and ids")]
            }
            Err(error) => vec![format!("# cannot tell what would run: {error}")],
        }
    }

    /// Every account of the user is archived and deleted (`destroy_account`);
    /// everything else tenantry recorded for them lived in those homes.
    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> tenantry_core::target::Result<tenantry_core::Destroyed> {
        crate::destroy::destroy_user(self.config(), user, resources, backups.dir()).await
    }

    async fn apply(&self, change: &Change) -> tenantry_core::target::Result<()> {
        let inner = Arc::clone(&self.inner);
        let change = change.clone();
        tokio::task::spawn_blocking(move || {
            let id = change.id.to_string();
            inner.apply(&change).map_err(|e| e.into_target_error(&id))
        })
        .await
        .map_err(|e| TargetError::Other { target: "host".to_string(), message: format!("apply task failed: {e}") })?
    }
}
