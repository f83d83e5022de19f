//! `why` and `explain`: where each grant comes from — the roster line, the
//! catalog rule, the target that applies it and what the journal recorded.

use crate::error::{AppError, Result};
use crate::session::Session;
use crate::wire::{FORMAT_VERSION, origin_text};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenantry_core::{Domain, ResourceId};
use tenantry_engine::JournalEntry;
use tenantry_model::Span;

/// Why one resource exists.
#[derive(Debug, Clone)]
pub enum WhyReport {
    /// The roster derives it.
    Derived(Derived),
    /// The roster no longer derives it, but tenantry remembers it.
    Remembered { id: ResourceId, inventory: Vec<(String, String)>, history: Vec<JournalEntry> },
}

#[derive(Debug, Clone)]
pub struct Derived {
    pub id: ResourceId,
    pub owner: String,
    pub rule: &'static str,
    /// The roster's source name and the position in it.
    pub source: String,
    pub origin: Span,
    /// The roster line at `origin`.
    pub origin_line: Option<String>,
    /// For an app instance's object: the template file and line of its document.
    pub template: Option<String>,
    /// The target that applies it, or `(not configured)`.
    pub target: String,
    pub depends_on: Vec<ResourceId>,
    /// (target, since) for each target whose inventory holds it.
    pub inventory: Vec<(String, String)>,
    /// Newest first.
    pub history: Vec<JournalEntry>,
}

impl WhyReport {
    pub fn to_json(&self) -> Value {
        match self {
            WhyReport::Remembered { id, inventory, history } => {
                json!({ "id": id.to_string(), "derived": false, "inventory": inventory, "history": history })
            }
            WhyReport::Derived(found) => json!({
                "format_version": FORMAT_VERSION,
                "id": found.id.to_string(),
                "derived": true,
                "owner": found.owner,
                "rule": found.rule,
                "origin": origin_text(&found.source, found.origin),
                "origin_line": found.origin_line,
                "template": found.template,
                "target": found.target,
                "depends_on": found.depends_on.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "inventory": found.inventory,
                "history": found.history,
            }),
        }
    }
}

/// Everything one user gets, and why.
#[derive(Debug, Clone)]
pub struct ExplainReport {
    pub user: String,
    pub email: String,
    pub tier: &'static str,
    pub namespaces: Vec<String>,
    pub domains: Vec<String>,
    pub ports: Option<BTreeMap<String, u16>>,
    /// The roster's source name and the user's line in it.
    pub source: String,
    pub line: u32,
    /// In id order (so grouped by domain).
    pub resources: Vec<Grant>,
}

/// One resource of a user, with its provenance.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: ResourceId,
    pub rule: &'static str,
    pub origin: Span,
    /// The target that applies it, if one is configured.
    pub target: Option<String>,
}

impl Grant {
    pub fn domain(&self) -> Domain {
        self.id.domain
    }
}

impl ExplainReport {
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .resources
            .iter()
            .map(|r| {
                json!({
                    "id": r.id.to_string(),
                    "rule": r.rule,
                    "origin": origin_text(&self.source, r.origin),
                    "target": r.target,
                })
            })
            .collect();
        json!({
            "format_version": FORMAT_VERSION,
            "user": self.user,
            "email": self.email,
            "tier": self.tier,
            "namespaces": self.namespaces,
            "domains": self.domains,
            "ports": self.ports,
            "resources": items,
        })
    }
}

impl Session {
    /// Why `resource` (an id as `plan` prints it) exists.
    pub async fn why(&self, resource: &str) -> Result<WhyReport> {
        let id: ResourceId = resource.parse().map_err(|e: tenantry_core::ParseIdError| {
            AppError::usage(e.0, "ids are printed by `tenantry plan` and `tenantry explain USER`")
        })?;
        let engine = self.engine().await?;
        let desired = engine.desired(self.roster()).await?;
        let (history, inventory) = {
            let id = id.clone();
            engine.state_handle().call(move |s| Ok((s.history(&id, 10)?, s.inventory_since(&id)?))).await?
        };
        let routing = engine.routing();
        let Some(found) = desired.get(&id) else {
            if history.is_empty() && inventory.is_empty() {
                let suggestion = desired
                    .resources()
                    .iter()
                    .map(|r| r.id.to_string())
                    .map(|candidate| (strsim::jaro_winkler(resource, &candidate), candidate))
                    .filter(|(score, _)| *score > 0.85)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, c)| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| "list a user's resources with `tenantry explain USER`".to_string());
                return Err(AppError::usage(
                    format!("`{id}` is not derived from the roster and tenantry has no record of it"),
                    suggestion,
                ));
            }
            return Ok(WhyReport::Remembered { id, inventory, history });
        };
        let origin_line = self
            .roster_text()
            .lines()
            .nth((found.origin.line as usize).saturating_sub(1))
            .filter(|_| found.origin.is_known())
            .map(str::to_string);
        Ok(WhyReport::Derived(Derived {
            owner: found.owner.as_label().to_string(),
            rule: found.rule,
            source: self.roster().source.clone(),
            origin: found.origin,
            origin_line,
            template: found.template.as_deref().map(str::to_string),
            target: routing.target_for(id.domain).unwrap_or("(not configured)").to_string(),
            depends_on: found.deps.to_vec(),
            inventory,
            history,
            id,
        }))
    }

    /// Everything `user` gets, and why.
    pub async fn explain(&self, user: &str) -> Result<ExplainReport> {
        let Some(person) = self.roster().users.get(user) else {
            let help = tenantry_model::did_you_mean(user, self.roster().users.keys().map(String::as_str))
                .map(|k| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| "users are the keys under `users:` in the roster".to_string());
            return Err(AppError::usage(format!("`{user}` is not in the roster"), help));
        };
        let engine = self.engine().await?;
        let desired = engine.desired(self.roster()).await?;
        let routing = engine.routing();
        let resources = desired
            .owned_by(user)
            .map(|r| Grant {
                id: r.id.clone(),
                rule: r.rule,
                origin: r.origin,
                target: routing.target_for(r.id.domain).map(str::to_string),
            })
            .collect();
        Ok(ExplainReport {
            user: user.to_string(),
            email: person.email.value.clone(),
            tier: person.tier.value.as_str(),
            namespaces: person.namespaces.iter().map(|n| n.value.clone()).collect(),
            domains: person.domains.iter().map(|d| d.value.clone()).collect(),
            ports: desired.ports.get(user).cloned(),
            source: self.roster().source.clone(),
            line: person.span.line,
            resources,
        })
    }
}
