//! `tenantry doctor [USER]` (SPEC §7, §11.6): every configured target's
//! live checks on the resources the roster derives for one user (or
//! everyone), and tenantry's own health — the state database, the last
//! run's changes without an outcome, targets that cannot be reached.
//!
//! Doctor changes nothing and takes no run lock: it reads the state
//! (without recovering a killed run's intents, which the next apply does)
//! and asks each target's [`tenantry_core::Target::diagnose`]. A check
//! whose target is not configured, or that its target did not run, is
//! listed as skipped, never as passed.

use crate::config::TARGETS;
use crate::error::{AppError, Result};
use crate::session::Session;
use crate::wire::FORMAT_VERSION;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::doctor::{DiagnoseRequest, Finding, Severity};
use tenantry_core::{Owner, Policy, Remembered, Routing, Target, derive};
use tenantry_engine::State;

/// The target name tenantry's own checks report under.
pub const TENANTRY: &str = "tenantry";
/// tenantry's own checks.
pub const STATE_CHECK: &str = "state";
pub const TARGETS_CHECK: &str = "targets";

/// How long one target's checks may take in all.
const DIAGNOSE_TIMEOUT: Duration = Duration::from_secs(120);

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStatus {
    /// It ran; the findings say what it found (none: it passed).
    Ran,
    /// It did not run, and why.
    Skipped(String),
}

/// One check of the report.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub check: String,
    pub target: String,
    pub about: String,
    pub status: CheckStatus,
}

/// What doctor found.
#[derive(Debug, Clone)]
pub struct DoctorReport {
    /// The user asked about; `None` for everyone.
    pub user: Option<String>,
    /// When the checks ran.
    pub at: String,
    pub checks: Vec<CheckOutcome>,
    /// Problems first, then warnings; by owner within each.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// No problem and no warning.
    pub fn healthy(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn problems(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Problem).count()
    }

    fn found_by(&self, check: &CheckOutcome) -> usize {
        self.findings.iter().filter(|f| f.check == check.check && f.target == check.target).count()
    }

    /// The documented JSON form (`docs/OUTPUT.md`).
    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|check| {
                let (status, reason) = match &check.status {
                    CheckStatus::Ran if self.found_by(check) > 0 => ("found", None),
                    CheckStatus::Ran => ("ok", None),
                    CheckStatus::Skipped(why) => ("skipped", Some(why.clone())),
                };
                json!({
                    "check": check.check,
                    "target": check.target,
                    "about": check.about,
                    "status": status,
                    "reason": reason,
                    "findings": self.found_by(check),
                })
            })
            .collect();
        json!({
            "format_version": FORMAT_VERSION,
            "user": self.user,
            "at": self.at,
            "healthy": self.healthy(),
            "counts": {
                "problem": self.problems(),
                "warning": self.findings.len() - self.problems(),
                "skipped": self.checks.iter().filter(|c| matches!(c.status, CheckStatus::Skipped(_))).count(),
            },
            "checks": checks,
            "findings": self.findings.iter().map(finding_json).collect::<Vec<_>>(),
        })
    }
}

fn finding_json(finding: &Finding) -> Value {
    json!({
        "check": finding.check,
        "severity": finding.severity,
        "owner": finding.owner.as_label(),
        "target": finding.target,
        "resource": finding.resource,
        "cause": finding.cause,
        "evidence": finding.evidence,
        "fix": finding.fix,
    })
}

fn own_check(check: &str, about: &str, status: CheckStatus) -> CheckOutcome {
    CheckOutcome { check: check.to_string(), target: TENANTRY.to_string(), about: about.to_string(), status }
}

impl Session {
    /// Run every check for `user` (everyone when `None`).
    pub async fn doctor(&self, user: Option<&str>) -> Result<DoctorReport> {
        if let Some(user) = user
            && !self.roster().users.contains_key(user)
        {
            return Err(AppError::usage(
                format!("`{user}` is not in the roster"),
                "doctor checks roster users; use a roster key, or no user for everyone",
            ));
        }
        let at = self.now();
        let now = humantime::parse_rfc3339(&at)
            .map_err(|e| AppError::config(format!("the clock gave `{at}`: {e}"), "this is a bug in the clock"))?;
        let mut checks = Vec::new();
        let mut findings = Vec::new();

        // tenantry's own health: the state database and the last run.
        let remembered = self.state_health(&mut checks, &mut findings).await;

        // What the roster derives now, with the ports the state remembers.
        let (remembered, inventory) = remembered.unwrap_or_default();
        let facts = tenantry_core::facts(self.roster(), &Policy::default(), remembered, &inventory);
        let desired = derive(self.roster(), &self.config.settings(), &facts);

        // Connect each configured target on its own; one that fails is a finding.
        let connected = self.config.connect_each(&self.roster().platform.name).await;
        let mut routing = Routing::default();
        let mut targets: BTreeMap<&str, Arc<dyn Target>> = BTreeMap::new();
        let mut unreachable: BTreeMap<&str, String> = BTreeMap::new();
        for (section, result) in connected {
            match result {
                Ok(target) => {
                    routing.add(target.name(), target.domains(), target.renders_only());
                    targets.insert(section, target);
                }
                Err((message, help)) => {
                    findings.push(
                        Finding::problem(
                            TARGETS_CHECK,
                            Owner::Platform,
                            format!("target `{section}` cannot be reached"),
                            help,
                        )
                        .evidence(message)
                        .on_target(TENANTRY),
                    );
                    unreachable.insert(section, "its target cannot be reached (see the `targets` finding)".into());
                }
            }
        }

        let wanted = |owner: &Owner| match user {
            Some(user) => owner.user() == Some(user),
            None => true,
        };
        let emails: BTreeMap<String, String> = self
            .roster()
            .users
            .values()
            .filter(|u| user.is_none_or(|wanted| wanted == u.key))
            .map(|u| (u.key.clone(), u.email.value.clone()))
            .collect();
        let diagnoses = futures::future::join_all(targets.iter().map(|(section, target)| {
            let request = DiagnoseRequest {
                platform: self.roster().platform.name.clone(),
                desired: desired
                    .resources()
                    .iter()
                    .filter(|r| routing.target_for(r.id.domain) == Some(target.name()) && wanted(&r.owner))
                    .cloned()
                    .collect(),
                now,
                emails: emails.clone(),
            };
            async move {
                let result = tokio::time::timeout(DIAGNOSE_TIMEOUT, target.diagnose(&request)).await;
                (*section, target.name().to_string(), result)
            }
        }))
        .await;
        let mut ran: BTreeMap<&str, tenantry_core::doctor::Diagnosis> = BTreeMap::new();
        for (section, name, result) in diagnoses {
            match result {
                Ok(Ok(diagnosis)) => {
                    findings.extend(diagnosis.findings.iter().cloned().map(|f| f.on_target(&name)));
                    ran.insert(section, diagnosis);
                }
                Ok(Err(error)) => {
                    let help =
                        format!("check the `[{section}]` settings in tenantry.toml and that the server is reachable");
                    findings.push(
                        Finding::problem(
                            TARGETS_CHECK,
                            Owner::Platform,
                            format!("target `{name}` could not be checked"),
                            help,
                        )
                        .evidence(error.in_target(&name).to_string())
                        .on_target(TENANTRY),
                    );
                    unreachable.insert(section, "its target could not be checked (see the `targets` finding)".into());
                }
                Err(_) => {
                    findings.push(
                        Finding::problem(
                            TARGETS_CHECK,
                            Owner::Platform,
                            format!("target `{name}` did not answer within {} s", DIAGNOSE_TIMEOUT.as_secs()),
                            format!("check that the `[{section}]` server is reachable and not overloaded"),
                        )
                        .on_target(TENANTRY),
                    );
                    unreachable.insert(section, "its target did not answer in time".into());
                }
            }
        }
        checks.push(own_check(TARGETS_CHECK, "every configured target can be reached and checked", CheckStatus::Ran));

        // Every check every target in this build knows, configured or not.
        for plugin in TARGETS {
            let section = plugin.section();
            for info in plugin.checks() {
                let status = if let Some(why) = unreachable.get(section) {
                    CheckStatus::Skipped(why.clone())
                } else if let Some(diagnosis) = ran.get(section) {
                    match diagnosis.skipped.get(info.name) {
                        Some(why) => CheckStatus::Skipped(why.clone()),
                        None if diagnosis.ran.contains(info.name) => CheckStatus::Ran,
                        None => CheckStatus::Skipped(format!("the `{section}` target does not run this check")),
                    }
                } else {
                    CheckStatus::Skipped(format!("[{section}] is not configured in tenantry.toml"))
                };
                checks.push(CheckOutcome {
                    check: info.name.to_string(),
                    target: section.to_string(),
                    about: info.about.to_string(),
                    status,
                });
            }
        }
        findings.sort_by(|a, b| {
            (std::cmp::Reverse(a.severity), &a.owner, &a.check, &a.resource).cmp(&(
                std::cmp::Reverse(b.severity),
                &b.owner,
                &b.check,
                &b.resource,
            ))
        });
        Ok(DoctorReport { user: user.map(str::to_string), at, checks, findings })
    }

    /// Read the state database (never creating or recovering it) and report
    /// the last run's changes without an outcome. What it remembers feeds
    /// derivation (sticky ports).
    async fn state_health(
        &self,
        checks: &mut Vec<CheckOutcome>,
        findings: &mut Vec<Finding>,
    ) -> Option<(Remembered, tenantry_core::Inventory)> {
        let path = self.config.local.state.clone();
        let about = "the state database is readable; the last run left no change without an outcome";
        if !path.exists() {
            checks.push(own_check(STATE_CHECK, about, CheckStatus::Ran));
            return None;
        }
        let display = path.display().to_string();
        let read = tokio::task::spawn_blocking(move || -> tenantry_engine::Result<_> {
            let state = State::open(&path)?;
            let remembered = Remembered { ports: state.ports()?, routes: state.routes()? };
            Ok((remembered, state.inventory()?, state.unfinished()?))
        })
        .await;
        checks.push(own_check(STATE_CHECK, about, CheckStatus::Ran));
        let (remembered, inventory, (run, unfinished)) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => {
                findings.push(
                    Finding::problem(
                        STATE_CHECK,
                        Owner::Platform,
                        format!("the state database {display} cannot be read"),
                        format!("restore {display} from a backup, or inspect it with `sqlite3 {display} .schema`; without it tenantry forgets its inventory (sticky ports are recovered from the host)"),
                    )
                    .evidence(error.to_string())
                    .on_target(TENANTRY),
                );
                return None;
            }
            Err(error) => {
                findings.push(
                    Finding::problem(STATE_CHECK, Owner::Platform, "the state database was not read", "run again")
                        .evidence(error.to_string())
                        .on_target(TENANTRY),
                );
                return None;
            }
        };
        if !unfinished.is_empty() {
            let run_text = run
                .as_ref()
                .map(|r| format!("run {} (`{}`, started {})", r.run, r.command, r.started_at))
                .unwrap_or_else(|| "the last run".to_string());
            let mut finding = Finding::problem(
                STATE_CHECK,
                Owner::Platform,
                format!(
                    "{run_text} left {} change(s) without a known outcome: it was killed, is still running, or a peer stopped answering",
                    unfinished.len()
                ),
                "when no tenantry run is going on, run `tenantry plan`, then `tenantry apply`: a rerun converges",
            )
            .on_target(TENANTRY);
            for change in unfinished.iter().take(10) {
                finding =
                    finding.evidence(format!("{} {} [{}]: {}", change.action, change.id, change.target, change.phase));
            }
            if unfinished.len() > 10 {
                finding = finding.evidence(format!("… and {} more", unfinished.len() - 10));
            }
            findings.push(finding);
        }
        Some((remembered, inventory))
    }
}
