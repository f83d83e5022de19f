//! Refresh: fetch a checkout and fast-forward it only when that cannot lose
//! anything (on the default branch, clean, with an upstream, no local
//! commits). git runs as the account, hardened like every git tenantry runs.

use crate::error::Result;
use crate::etc::Etc;
use crate::git;
use crate::home::under_root;
use crate::inner::{Inner, lock};
use crate::spec::{self, CheckoutSpec};
use tenantry_core::{Content, Domain, ResourceId, TargetError};

/// What a refresh did to one checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    FastForwarded {
        commits: u64,
    },
    UpToDate,
    /// Not touched (dirty tree, another branch, local commits, no upstream); the reason says which.
    LeftAlone {
        reason: String,
    },
}

impl Inner {
    pub fn refresh(&self, content: &Content) -> Result<RefreshOutcome, TargetError> {
        let checkout: CheckoutSpec =
            spec::parse(&"the checkout to refresh", content).map_err(|e| e.into_target_error("host/Checkout"))?;
        let id = ResourceId::new(Domain::Host, "Checkout", &checkout.os_user, &checkout.repo);
        self.refresh_checkout(&checkout).map_err(|e| e.into_target_error(&id.to_string()))
    }

    fn refresh_checkout(&self, checkout: &CheckoutSpec) -> Result<RefreshOutcome> {
        let os_user = checkout.os_user.as_str();
        let user_lock = self.user_lock(os_user);
        let _user = lock(&user_lock);
        let etc = Etc::read(self.root())?;
        // Only a tenant's account, and only its verified home.
        let home = self.home(&etc, os_user)?;
        let ids = self.ids(&etc, os_user)?;
        let path = under_root(self.root(), &checkout.path)?;
        let left_alone = |reason: String| {
            tracing::warn!(target: "tenantry::host", path = %path.display(), "checkout not refreshed: {reason}");
            Ok(RefreshOutcome::LeftAlone { reason })
        };
        if !git::is_checkout(&home, &path) {
            return left_alone("not checked out yet".to_string());
        }
        let target = path.to_string_lossy().into_owned();
        let git = |args: &[&str]| {
            let mut full = vec!["-C".to_string(), target.clone()];
            full.extend(args.iter().map(|a| a.to_string()));
            let mut cmd = self.git(home.path(), os_user, full);
            cmd.ids = ids;
            cmd
        };
        self.run(&git(&["fetch", "--all", "--prune", "--quiet"]))?;
        let quiet = |args: &[&str]| self.run(&git(args)).ok().map(|out| out.trim().to_string());
        let Some(branch) = quiet(&["symbolic-ref", "--quiet", "--short", "HEAD"]) else {
            return left_alone("HEAD is detached".to_string());
        };
        let default = quiet(&["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"])
            .map(|d| d.strip_prefix("origin/").unwrap_or(&d).to_string());
        let Some(default) = default else {
            return left_alone("the default branch is unknown (run `git remote set-head origin --auto`)".to_string());
        };
        if branch != default {
            return left_alone(format!("on branch `{branch}`, not the default branch `{default}`"));
        }
        if !quiet(&["status", "--porcelain"]).unwrap_or_default().is_empty() {
            return left_alone("the work tree has uncommitted changes".to_string());
        }
        if quiet(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"]).is_none() {
            return left_alone(format!("`{branch}` has no upstream"));
        }
        let counts = quiet(&["rev-list", "--left-right", "--count", "HEAD...@{upstream}"]).unwrap_or_default();
        let mut numbers = counts.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
        let (ahead, behind) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if ahead > 0 {
            return left_alone(format!("`{branch}` has {ahead} local commit(s) not upstream"));
        }
        if behind == 0 {
            return Ok(RefreshOutcome::UpToDate);
        }
        self.run(&git(&["merge", "--ff-only", "--quiet", "@{upstream}"]))?;
        Ok(RefreshOutcome::FastForwarded { commits: behind })
    }
}
