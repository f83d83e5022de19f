//! `tenantry doctor`'s vocabulary (SPEC §7, §11.6): the checks a target
//! declares, what it is asked to check, and the typed finding it answers
//! with — cause, evidence with numbers, the exact fix, whose and where.
//!
//! Targets run the checks that need I/O ([`crate::Target::diagnose`]); the
//! evaluations that need none live here as pure functions with `now` and
//! the observations as parameters, so they are tested without a peer.

use crate::resource::{Owner, Resource};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// One check a target can run, as `doctor` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    /// Stable name (`quota`, `tls`, `dns-resolution`): JSON and `--output` use it.
    pub name: &'static str,
    /// What it looks at, in words.
    pub about: &'static str,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something will go wrong soon (quota at 90 %, a certificate expiring in 14 days).
    Warning,
    /// Something is wrong now.
    Problem,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Problem => "problem",
        }
    }
}

/// What a check found: the cause, what was observed (with numbers), and the
/// exact fix (a command or a roster edit).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The check that found it ([`CheckInfo::name`]).
    pub check: String,
    pub severity: Severity,
    /// Whose it is: a roster user, or the platform (shared objects, tenantry itself).
    pub owner: Owner,
    /// The target it was observed on (`kubernetes`, or `tenantry` for its own health).
    pub target: String,
    /// The resource it concerns, when one (`kubernetes/ResourceQuota/alice/user-quota`).
    pub resource: Option<String>,
    pub cause: String,
    /// What was observed, one fact per line, with the numbers.
    pub evidence: Vec<String>,
    pub fix: String,
}

impl Finding {
    pub fn new(
        check: &str,
        severity: Severity,
        owner: Owner,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check: check.to_string(),
            severity,
            owner,
            target: String::new(),
            resource: None,
            cause: cause.into(),
            evidence: Vec::new(),
            fix: fix.into(),
        }
    }

    pub fn problem(check: &str, owner: Owner, cause: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding::new(check, Severity::Problem, owner, cause, fix)
    }

    pub fn warning(check: &str, owner: Owner, cause: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding::new(check, Severity::Warning, owner, cause, fix)
    }

    pub fn about(mut self, resource: impl std::fmt::Display) -> Finding {
        self.resource = Some(resource.to_string());
        self
    }

    pub fn evidence(mut self, line: impl Into<String>) -> Finding {
        self.evidence.push(line.into());
        self
    }

    /// Name the target (the app does, for every finding a target returns).
    pub fn on_target(mut self, target: &str) -> Finding {
        if self.target.is_empty() {
            self.target = target.to_string();
        }
        self
    }
}

/// What a target is asked to check: the desired resources it applies, of
/// the users asked about, and the time.
#[derive(Debug, Clone)]
pub struct DiagnoseRequest {
    /// The roster's `platform.name`: whose marks count as this platform's.
    pub platform: String,
    /// The desired resources this target applies (of the users asked about;
    /// platform-owned ones too when everyone is asked about).
    pub desired: Vec<Resource>,
    /// Now, for expiry checks.
    pub now: SystemTime,
    /// Roster key → email of the users asked about: how a check tells
    /// whose an account on a peer is (a forge login that belongs to
    /// someone else, the person's account under another login).
    pub emails: BTreeMap<String, String>,
}

/// A target's answer: which of its checks ran, which it skipped and why,
/// and what they found.
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub ran: BTreeSet<String>,
    /// Check → why it did not run (a setting missing, a provider without the API).
    pub skipped: BTreeMap<String, String>,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// Record that `check` ran (whatever it found).
    pub fn ran(&mut self, check: &str) {
        self.ran.insert(check.to_string());
    }

    pub fn skip(&mut self, check: &str, why: impl Into<String>) {
        self.skipped.insert(check.to_string(), why.into());
    }

    pub fn found(&mut self, finding: Finding) {
        self.ran(&finding.check.clone());
        self.findings.push(finding);
    }
}

/// The share of a quota's limit in use, from a ResourceQuota's
/// `status.used` and `status.hard` quantities: `None` when either is not a
/// quantity or the limit is zero.
pub fn quota_ratio(used: &str, hard: &str) -> Option<f64> {
    let used = tenantry_model::quantity::quantity_value(used)?;
    let hard = tenantry_model::quantity::quantity_value(hard)?;
    (hard > 0.0).then(|| used / hard)
}

/// At or above this share of a limit, a quota is reported (SPEC §7).
pub const QUOTA_WARNING: f64 = 0.9;

/// How a code checkout stands, from what git reported about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutState {
    /// The checked-out branch; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// Lines of `git status --porcelain` (changed or untracked paths).
    pub changed: usize,
    /// Commits on HEAD not on its upstream, and on the upstream not on HEAD
    /// (`None` without an upstream).
    pub ahead_behind: Option<(usize, usize)>,
}

/// Why a checkout will not be refreshed (the hourly fast-forward leaves it
/// alone), in the order an admin fixes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutIssue {
    Dirty { changed: usize },
    NotOnDefault { branch: Option<String>, default: String },
    Diverged { ahead: usize, behind: usize },
    NoUpstream,
}

/// Classify a checkout against its default branch (pure).
pub fn classify_checkout(state: &CheckoutState, default_branch: &str) -> Vec<CheckoutIssue> {
    let mut issues = Vec::new();
    if state.changed > 0 {
        issues.push(CheckoutIssue::Dirty { changed: state.changed });
    }
    if state.branch.as_deref() != Some(default_branch) {
        issues.push(CheckoutIssue::NotOnDefault { branch: state.branch.clone(), default: default_branch.to_string() });
    }
    match state.ahead_behind {
        Some((ahead, behind)) if ahead > 0 => issues.push(CheckoutIssue::Diverged { ahead, behind }),
        Some(_) => {}
        None if state.branch.as_deref() == Some(default_branch) => issues.push(CheckoutIssue::NoUpstream),
        None => {}
    }
    issues
}

/// What a forge or CI server knows about one roster user's login there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginSeen<'a> {
    /// The login the roster gives the user (`forge_user`).
    pub login: &'a str,
    /// The roster's email of the user.
    pub email: Option<&'a str>,
    /// `None`: no account has that login; `Some(email)`: the account, with
    /// its email when the server shows one.
    pub account: Option<Option<&'a str>>,
    /// The login of the account holding the roster's email, when one does.
    pub email_holder: Option<&'a str>,
}

/// Whether a roster user's login on `peer` (`Gitea`, `Woodpecker`) is
/// missing or differs from the account that is theirs by email (pure).
/// `missing_fix` says how an account comes to exist on that peer.
pub fn login_finding(
    check: &str,
    owner: &Owner,
    peer: &str,
    seen: &LoginSeen<'_>,
    missing_fix: &str,
) -> Option<Finding> {
    let user = owner.as_label();
    let login = seen.login;
    let email = seen.email.unwrap_or("(none)");
    let apply = format!("tenantry apply --only {user}");
    let set_login = |holder: &str| format!("set `users.{user}.forge_user: {holder}` in the roster, then `{apply}`");
    let holder = seen.email_holder.filter(|holder| !holder.eq_ignore_ascii_case(login));
    match (seen.account, holder) {
        (None, Some(holder)) => Some(
            Finding::problem(
                check,
                owner.clone(),
                format!("forge login `{login}` of `{user}` does not exist on the {peer}; their account is `{holder}`"),
                set_login(holder),
            )
            .evidence(format!("no account `{login}`; `{holder}` has the roster's email {email}")),
        ),
        (None, None) => Some(
            Finding::problem(
                check,
                owner.clone(),
                format!("forge login `{login}` of `{user}` does not exist on the {peer}"),
                format!("{missing_fix}, or set `users.{user}.forge_user` to their login; then `{apply}`"),
            )
            .evidence(format!("no account `{login}`, and none with the roster's email {email}")),
        ),
        (Some(found), Some(holder)) => Some(
            Finding::problem(
                check,
                owner.clone(),
                format!("forge login `{login}` of `{user}` is not their account on the {peer}: `{holder}` is"),
                set_login(holder),
            )
            .evidence(format!("`{holder}` has the roster's email {email}"))
            .evidence(format!("`{login}` has {}", found.filter(|e| !e.is_empty()).unwrap_or("no email shown"))),
        ),
        (Some(Some(found)), None)
            if !found.is_empty() && seen.email.is_some_and(|wanted| !wanted.eq_ignore_ascii_case(found)) =>
        {
            Some(
                Finding::warning(
                    check,
                    owner.clone(),
                    format!("forge login `{login}` of `{user}` has another email on the {peer} than in the roster"),
                    format!(
                        "if `{login}` is not `{user}`'s account, set `users.{user}.forge_user` to theirs; if it is, make the emails agree (roster or {peer})"
                    ),
                )
                .evidence(format!("`{login}`: {found}; roster: {email}")),
            )
        }
        _ => None,
    }
}

/// One listening TCP socket from `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub uid: u32,
    /// The local address as the kernel printed it (hex).
    pub address: String,
    pub inode: u64,
}

impl Listener {
    /// The local address, decoded from the kernel's hex (IPv4: one
    /// little-endian word; IPv6: four of them); `None` when it is neither.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        let words: Option<Vec<u32>> = (0..self.address.len() / 8)
            .map(|i| self.address.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()))
            .collect();
        let bytes: Vec<u8> = words?.iter().flat_map(|w| w.to_le_bytes()).collect();
        match (self.address.len(), bytes.len()) {
            (8, 4) => Some(std::net::IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])),
            (32, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&bytes);
                Some(std::net::IpAddr::from(octets))
            }
            _ => None,
        }
    }
}

/// The listening sockets in the text of `/proc/net/tcp` or `/proc/net/tcp6`
/// (state `0A`); lines that do not parse are ignored.
pub fn listeners(proc_net_tcp: &str) -> Vec<Listener> {
    proc_net_tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, uid, inode) = (fields.get(1)?, fields.get(3)?, fields.get(7)?, fields.get(9)?);
            if *state != "0A" {
                return None;
            }
            let (address, port) = local.rsplit_once(':')?;
            Some(Listener {
                port: u16::from_str_radix(port, 16).ok()?,
                uid: uid.parse().ok()?,
                address: address.to_string(),
                inode: inode.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_ratios() {
        assert_eq!(quota_ratio("500m", "1"), Some(0.5));
        assert_eq!(quota_ratio("lots", "20"), None);
        assert_eq!(quota_ratio("18", "20"), Some(0.9));
        assert_eq!(quota_ratio("1536Mi", "2Gi"), Some(0.75));
        assert_eq!(quota_ratio("1", "0"), None);
        assert!(quota_ratio("19", "20").is_some_and(|r| r >= QUOTA_WARNING));
        assert!(quota_ratio("17", "20").is_some_and(|r| r < QUOTA_WARNING));
    }

    fn state(branch: Option<&str>, changed: usize, ahead_behind: Option<(usize, usize)>) -> CheckoutState {
        CheckoutState { branch: branch.map(String::from), changed, ahead_behind }
    }

    #[test]
    fn checkouts_are_classified_against_their_default_branch() {
        assert_eq!(classify_checkout(&state(Some("master"), 0, Some((0, 3))), "master"), []);
        assert_eq!(
            classify_checkout(&state(Some("master"), 2, Some((1, 4))), "master"),
            [CheckoutIssue::Dirty { changed: 2 }, CheckoutIssue::Diverged { ahead: 1, behind: 4 }]
        );
        assert_eq!(
            classify_checkout(&state(None, 0, None), "master"),
            [CheckoutIssue::NotOnDefault { branch: None, default: "master".into() }]
        );
        assert_eq!(classify_checkout(&state(Some("master"), 0, None), "master"), [CheckoutIssue::NoUpstream]);
    }

    #[test]
    fn logins_are_checked_against_the_account_holding_the_roster_email() {
        let owner = Owner::User("ann".into());
        let seen =
            |account, holder| LoginSeen { login: "ann", email: Some("ann@x.org"), account, email_holder: holder };
        let check = |seen: LoginSeen<'_>| login_finding("forge-login", &owner, "Gitea", &seen, "create it");
        assert_eq!(check(seen(Some(Some("ANN@x.org")), Some("ann"))), None, "hers, emails agree");
        assert_eq!(check(seen(Some(None), None)), None, "an email the server does not show is no finding");
        let missing = check(seen(None, None)).unwrap();
        assert_eq!(missing.severity, Severity::Problem);
        assert_eq!(
            missing.fix,
            "create it, or set `users.ann.forge_user` to their login; then `tenantry apply --only ann`"
        );
        let moved = check(seen(None, Some("ann2"))).unwrap();
        assert_eq!(moved.fix, "set `users.ann.forge_user: ann2` in the roster, then `tenantry apply --only ann`");
        let other = check(seen(Some(Some("bob@x.org")), Some("ann2"))).unwrap();
        assert_eq!(other.cause, "forge login `ann` of `ann` is not their account on the Gitea: `ann2` is");
        let unsure = check(seen(Some(Some("bob@x.org")), None)).unwrap();
        assert_eq!(unsure.severity, Severity::Warning);
    }

    #[test]
    fn listening_sockets_are_read_from_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0EBD 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 43210 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:9C40 0100007F:0EBD 01 00000000:00000000 00:00000000 00000000     0        0 43211 1 0000000000000000 100 0 0 10 0\n\
   garbage\n";
        assert_eq!(
            listeners(text),
            [Listener { port: 3773, uid: 1001, address: "0100007F".into(), inode: 43210 }],
            "only the LISTEN line (state 0A) counts"
        );
        assert_eq!(listeners(text)[0].ip(), Some(std::net::Ipv4Addr::LOCALHOST.into()));
        let v6 = "sl local\n 0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 1002 0 77 1\n";
        let found = listeners(v6);
        assert_eq!((found[0].port, found[0].uid), (8080, 1002));
        assert_eq!(found[0].ip(), Some(std::net::Ipv6Addr::LOCALHOST.into()));
    }
}
