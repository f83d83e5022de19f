//! `tenantry doctor` on the host (SPEC §7, §11.6): each workstation
//! checkout checked with git as its account (clean, on its default branch,
//! not diverged: what the hourly refresh needs to fast-forward it), and
//! each user's sticky ports — the env file readable and saying what
//! tenantry reserved, and no other account's process listening on them
//! (`<root>/proc/net/tcp` and `tcp6`).
//!
//! The homes are the tenants' and hostile: everything in one is looked at
//! through the home's verified handle (`tenantry-fs`), a link or FIFO is
//! reported, never followed or waited on, and git runs as the account,
//! hardened like every git tenantry runs, without optional locks and under
//! a short timeout (a checkout that makes git hang costs doctor at most
//! that). A port held by the user's own process is their service on their
//! port, not a finding: only another uid's listener is.

use crate::error::{Error, Result};
use crate::etc::Etc;
use crate::git;
use crate::home::{Home, under_root};
use crate::inner::Inner;
use crate::ports::{PORTS_ENV_RELATIVE, env_key, parse_ports_env};
use crate::spec::{self, CheckoutSpec, Kind, PortSpec};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;
use tenantry_core::doctor::{
    CheckInfo, CheckoutIssue, CheckoutState, DiagnoseRequest, Diagnosis, Finding, Listener, classify_checkout,
    listeners,
};
use tenantry_core::{Owner, Resource};

pub const CHECKOUT: &str = "checkout";
pub const PORTS: &str = "ports";

/// The checks of the host target.
pub const CHECKS: &[CheckInfo] = &[
    CheckInfo { name: CHECKOUT, about: "workstation checkouts: present, clean, on their default branch, not diverged" },
    CheckInfo {
        name: PORTS,
        about: "each user's env file and sticky ports: readable, as reserved, not listened on by another user",
    },
];

/// The longest one of doctor's git commands may run: they only read the
/// checkout, and a tenant's checkout must not hold doctor up.
const GIT_TIMEOUT: Duration = Duration::from_secs(20);
/// The most read of one `/proc/net/tcp*` (a busy host's socket table fits).
const PROC_NET_LIMIT: u64 = 64 << 20;

fn apply_fix(owner: &Owner) -> String {
    match owner.user() {
        Some(user) => format!("tenantry apply --only {user}"),
        None => "tenantry apply".to_string(),
    }
}

impl Inner {
    pub fn diagnose(&self, request: &DiagnoseRequest) -> Result<Diagnosis> {
        let etc = Etc::read(self.root())?;
        let mut diagnosis = Diagnosis::default();
        diagnosis.ran(CHECKOUT);
        let mut ports: BTreeMap<String, Vec<(&Resource, PortSpec)>> = BTreeMap::new();
        for resource in &request.desired {
            match Kind::of(&resource.id) {
                Some(Kind::Checkout) => {
                    let Ok(checkout) = spec::parse::<CheckoutSpec>(&resource.id, &resource.content) else { continue };
                    for finding in self.diagnose_checkout(&etc, &resource.owner, &checkout) {
                        diagnosis.found(finding.about(&resource.id));
                    }
                }
                Some(Kind::Port) => {
                    if let Ok(port) = spec::parse::<PortSpec>(&resource.id, &resource.content) {
                        ports.entry(port.os_user.clone()).or_default().push((resource, port));
                    }
                }
                _ => {}
            }
        }
        match self.listening() {
            Ok(listening) => {
                diagnosis.ran(PORTS);
                for (os_user, reserved) in &ports {
                    for finding in self.diagnose_ports(&etc, os_user, reserved, &listening) {
                        diagnosis.found(finding);
                    }
                }
            }
            Err(why) => diagnosis.skip(PORTS, why),
        }
        Ok(diagnosis)
    }

    /// Why a checkout will not be refreshed, or is not there at all.
    fn diagnose_checkout(&self, etc: &Etc, owner: &Owner, checkout: &CheckoutSpec) -> Vec<Finding> {
        let os_user = checkout.os_user.as_str();
        let shown = checkout.path.as_str();
        let problem = |cause: String, fix: String| Finding::problem(CHECKOUT, owner.clone(), cause, fix);
        let home = match self.home(etc, os_user) {
            Ok(home) => home,
            Err(Error::MissingAccount { .. }) => {
                return vec![problem(
                    format!("account `{os_user}` does not exist, so neither does its checkout {shown}"),
                    apply_fix(owner),
                )];
            }
            Err(error) => {
                return vec![
                    problem(
                        format!("the home of `{os_user}` cannot be opened safely"),
                        "make the home a directory of the account's under root-owned directories (see the refusal), then check again".to_string(),
                    )
                    .evidence(error.to_string()),
                ];
            }
        };
        let Ok(path) = under_root(self.root(), &checkout.path) else { return Vec::new() };
        let move_away = format!(
            "`{os_user}` moves what is at {shown} out of the way (`sudo -u {os_user} mv {shown} {shown}.old`); then `{}` clones it again",
            apply_fix(owner)
        );
        match git::git_dir(&home, &path) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let empty = match home.open_dir(&path) {
                    Ok(Some(dir)) => dir.is_empty().unwrap_or(false),
                    Ok(None) => true,
                    Err(_) => false,
                };
                return vec![if empty {
                    problem(format!("{shown} is not checked out"), format!("{} clones it", apply_fix(owner)))
                        .evidence(format!("nothing at {shown}"))
                } else {
                    problem(
                        format!("{shown} exists but is not a git checkout (no .git directory of its own)"),
                        move_away,
                    )
                    .evidence(format!("{shown}/.git is missing or not a directory (a link is never followed)"))
                }];
            }
            Err(error) => {
                return vec![
                    problem(
                        format!("{shown} cannot be looked at safely: something in the way is not a plain directory"),
                        move_away,
                    )
                    .evidence(error.to_string()),
                ];
            }
        }
        let ids = self.ids(etc, os_user).ok().flatten();
        let (state, default) = match self.checkout_state(&home, os_user, ids, &path) {
            Ok(found) => found,
            Err(error) => {
                return vec![
                    problem(
                        format!("git could not read the checkout {shown}"),
                        format!("look at it as its account: `sudo -u {os_user} git -C {shown} status`"),
                    )
                    .evidence(error.to_string()),
                ];
            }
        };
        let as_user = format!("sudo -u {os_user} git -C {shown}");
        let Some(default) = default else {
            return vec![
                Finding::warning(
                    CHECKOUT,
                    owner.clone(),
                    format!("the default branch of {shown} is unknown, so it is never refreshed"),
                    format!("`{as_user} remote set-head origin --auto`"),
                )
                .evidence("refs/remotes/origin/HEAD is not set"),
            ];
        };
        let branch = state.branch.clone().unwrap_or_else(|| "(detached HEAD)".to_string());
        let left_alone = "; until then the hourly refresh leaves the checkout alone";
        classify_checkout(&state, &default)
            .into_iter()
            .map(|issue| match issue {
                CheckoutIssue::Dirty { changed } => Finding::warning(
                    CHECKOUT,
                    owner.clone(),
                    format!("{shown} has uncommitted changes"),
                    format!("`{os_user}` commits or stashes them (`{as_user} status` lists them){left_alone}"),
                )
                .evidence(format!("`git status --porcelain`: {changed} changed or untracked path(s)")),
                CheckoutIssue::NotOnDefault { branch: found, default } => Finding::warning(
                    CHECKOUT,
                    owner.clone(),
                    match found {
                        Some(found) => format!("{shown} is on branch `{found}`, not its default branch `{default}`"),
                        None => format!("{shown} has a detached HEAD, not its default branch `{default}`"),
                    },
                    format!("`{os_user}` switches back once the work is pushed: `{as_user} switch {default}`{left_alone}"),
                )
                .evidence(format!("HEAD: {branch}; origin/HEAD: origin/{default}")),
                CheckoutIssue::Diverged { ahead, behind } => Finding::warning(
                    CHECKOUT,
                    owner.clone(),
                    format!("{shown} has diverged: `{branch}` has {ahead} local commit(s) not upstream"),
                    format!(
                        "`{os_user}` rebases them onto upstream (`{as_user} pull --rebase`) or moves them to a branch of their own{left_alone}"
                    ),
                )
                .evidence(format!("{ahead} ahead of, {behind} behind its upstream (as of the last fetch)")),
                CheckoutIssue::NoUpstream => Finding::warning(
                    CHECKOUT,
                    owner.clone(),
                    format!("`{branch}` in {shown} tracks no upstream branch"),
                    format!("`{as_user} branch --set-upstream-to=origin/{default}`"),
                )
                .evidence("`git rev-parse @{upstream}` found none"),
            })
            .collect()
    }

    /// Branch, changes and divergence of a checkout, and its default branch,
    /// with git run as the account (read-only: no fetch, no optional locks).
    fn checkout_state(
        &self,
        home: &Home,
        os_user: &str,
        ids: Option<(u32, u32)>,
        path: &Path,
    ) -> Result<(CheckoutState, Option<String>)> {
        let target = path.to_string_lossy().into_owned();
        let git = |args: &[&str]| {
            let mut full = vec!["-C".to_string(), target.clone()];
            full.extend(args.iter().map(|a| a.to_string()));
            let mut cmd = self.git(home.path(), os_user, full);
            cmd.ids = ids;
            // `git status` would otherwise refresh the index: doctor writes nothing.
            cmd.env.push(("GIT_OPTIONAL_LOCKS".to_string(), "0".to_string()));
            let timeout = Duration::from_secs(self.config.git_timeout_secs).min(GIT_TIMEOUT);
            cmd.with_timeout(timeout)
        };
        let quiet = |args: &[&str]| self.run(&git(args)).ok().map(|out| out.trim().to_string());
        let changed = self.run(&git(&["status", "--porcelain"]))?.lines().filter(|l| !l.is_empty()).count();
        let branch = quiet(&["symbolic-ref", "--quiet", "--short", "HEAD"]);
        let default = quiet(&["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"])
            .map(|d| d.strip_prefix("origin/").unwrap_or(&d).to_string());
        let ahead_behind = match quiet(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"]) {
            None => None,
            Some(_) => quiet(&["rev-list", "--left-right", "--count", "HEAD...@{upstream}"]).and_then(|counts| {
                let mut numbers = counts.split_whitespace().map(str::parse::<usize>);
                Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
            }),
        };
        Ok((CheckoutState { branch, changed, ahead_behind }, default))
    }

    /// Every listening TCP socket of the machine, from `<root>/proc/net/tcp`
    /// and `tcp6` (the latter may be absent: no IPv6). An error says why the
    /// check cannot run.
    fn listening(&self) -> std::result::Result<Vec<Listener>, String> {
        let mut found = Vec::new();
        for (name, required) in [("tcp", true), ("tcp6", false)] {
            let path = self.root().join("proc/net").join(name);
            let mut text = String::new();
            let read = std::fs::File::open(&path).and_then(|file| file.take(PROC_NET_LIMIT).read_to_string(&mut text));
            match read {
                Ok(_) => found.extend(listeners(&text)),
                Err(_) if !required => {}
                Err(error) => {
                    return Err(format!(
                        "{} cannot be read ({error}): is /proc mounted under the host root?",
                        path.display()
                    ));
                }
            }
        }
        Ok(found)
    }

    /// One account's env file against its reservations, and the listeners on its ports.
    fn diagnose_ports(
        &self,
        etc: &Etc,
        os_user: &str,
        reserved: &[(&Resource, PortSpec)],
        listening: &[Listener],
    ) -> Vec<Finding> {
        let mut found = Vec::new();
        let Some((first, _)) = reserved.first() else { return found };
        let owner = first.owner.clone();
        let Some(account) = etc.user(os_user).filter(|entry| etc.is_regular(entry)) else { return found };
        let env_shown = format!("{}/{PORTS_ENV_RELATIVE}", account.home.trim_end_matches('/'));
        let pools: Vec<&str> = reserved.iter().map(|(_, port)| port.pool.as_str()).collect();
        let read = Home::open(self.root(), account, self.privileged)
            .and_then(|home| home.read(&home.path().join(PORTS_ENV_RELATIVE)));
        let in_file = match read {
            Ok(Some(bytes)) => Some(parse_ports_env(&String::from_utf8_lossy(&bytes), pools.iter().copied())),
            Ok(None) => {
                found.push(
                    Finding::problem(
                        PORTS,
                        owner.clone(),
                        format!("`{os_user}` has no port env file {env_shown}"),
                        format!("{} writes it", apply_fix(&owner)),
                    )
                    .about(&first.id),
                );
                None
            }
            Err(error) => {
                found.push(
                    Finding::problem(
                        PORTS,
                        owner.clone(),
                        format!("the port env file {env_shown} cannot be read safely; it is not used"),
                        format!(
                            "`{os_user}` removes what is there (`sudo -u {os_user} rm {env_shown}`); then `{}` writes it again",
                            apply_fix(&owner)
                        ),
                    )
                    .about(&first.id)
                    .evidence(error.to_string()),
                );
                None
            }
        };
        for (resource, port) in reserved {
            let key = env_key(&port.pool);
            let listed = in_file.as_ref().and_then(|ports| ports.get(&port.pool).copied());
            if let Some(ports) = &in_file
                && listed != Some(port.port)
            {
                let said = listed.map(|p| p.to_string()).unwrap_or_else(|| "nothing".to_string());
                found.push(
                    Finding::problem(
                        PORTS,
                        owner.clone(),
                        format!("{env_shown} says {key}={said}, but tenantry reserved {} for `{os_user}`", port.port),
                        format!("{} rewrites it (a sticky port never moves)", apply_fix(&owner)),
                    )
                    .about(&resource.id)
                    .evidence(format!("{} pool(s) read from the file", ports.len())),
                );
            }
            // The port the user's processes use: the file's, else the reservation.
            let number = listed.unwrap_or(port.port);
            let mut others: BTreeMap<u32, Vec<&Listener>> = BTreeMap::new();
            for listener in listening.iter().filter(|l| l.port == number && l.uid != account.uid) {
                others.entry(listener.uid).or_default().push(listener);
            }
            for (uid, sockets) in others {
                let holder = etc.user_by_uid(uid).map(|e| format!("uid {uid} (`{}`)", e.name));
                let holder = holder.unwrap_or_else(|| format!("uid {uid}"));
                let mut finding = Finding::problem(
                    PORTS,
                    owner.clone(),
                    format!("port {number} ({key} of `{os_user}`) is taken: {holder} is listening on it"),
                    format!(
                        "stop that process (`ss -ltnp 'sport = :{number}'` names it); the port stays `{os_user}`'s, sticky ports never move"
                    ),
                )
                .about(&resource.id);
                for socket in sockets {
                    let address = socket.ip().map(|ip| ip.to_string()).unwrap_or_else(|| socket.address.clone());
                    finding = finding.evidence(format!(
                        "listening on {address} port {number}, {holder}, socket inode {}",
                        socket.inode
                    ));
                }
                found.push(finding.evidence(format!("`{os_user}` is uid {}", account.uid)));
            }
        }
        found
    }
}
