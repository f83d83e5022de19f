//! The host's work behind the `Target` hooks: the steps a change would run
//! (`describe`) and checkout refresh (`after_apply`). Port reconciliation
//! (`reconcile_facts`) is in `sources`.

use crate::HostTarget;
use crate::error::Result;
use crate::etc::Etc;
use crate::ops::Op;
use crate::refresh::RefreshOutcome;
use crate::spec::Kind;
use tenantry_core::{Change, Content, Desired, Domain, ResourceId, TargetError};

impl HostTarget {
    /// Exactly what applying `change` would run now, one line per step.
    pub fn commands_for(&self, change: &Change) -> Result<Vec<String>> {
        let etc = Etc::read(&self.inner().config.root)?;
        Ok(self.inner().ops_for(change, &etc)?.iter().filter_map(Op::describe).collect())
    }

    /// Fetch a checkout (content of a `host/Checkout`) and fast-forward it
    /// only when it is on its default branch with a clean tree and an
    /// upstream; otherwise nothing is touched and the reason is returned.
    pub async fn refresh(&self, checkout: &Content) -> Result<RefreshOutcome, TargetError> {
        let inner = self.shared();
        let content = checkout.clone();
        tokio::task::spawn_blocking(move || inner.refresh(&content))
            .await
            .map_err(|e| TargetError::other(format!("refresh task failed: {e}")))?
    }

    /// Refresh every checkout the roster derives, `concurrency` at a time
    /// (apply never refreshes: an existing checkout is a no-op in the plan).
    /// One checkout's failure (an offline remote) does not stop the others.
    pub async fn refresh_all(
        &self,
        desired: &Desired,
        concurrency: usize,
    ) -> Vec<(ResourceId, Result<RefreshOutcome, TargetError>)> {
        let checkouts: Vec<(ResourceId, Content)> = desired
            .resources()
            .iter()
            .filter(|r| r.id.domain == Domain::Host && Kind::of(&r.id) == Some(Kind::Checkout))
            .map(|r| (r.id.clone(), r.content.clone()))
            .collect();
        let mut pending = checkouts.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut out = Vec::new();
        loop {
            while running.len() < concurrency.max(1) {
                let Some((id, content)) = pending.next() else { break };
                let this = self.clone();
                running.spawn(async move { (id, this.refresh(&content).await) });
            }
            let Some(done) = running.join_next().await else { break };
            if let Ok(result) = done {
                out.push(result);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
