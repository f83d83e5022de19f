//! Reading every place a port reservation is written on the host (the
//! dispatch map and the users' env files), so the engine's state can be
//! checked against them before anything is allocated (SPEC §8.3).
//!
//! The env files are in the tenants' homes: each is read through the home's
//! verified handle, only as a regular file of the account's of bounded
//! size, without blocking. One that cannot be read that way, or whose claim
//! contradicts the trusted sources, is set aside with a warning (the state
//! database is authoritative, and the next apply rewrites the file): a
//! tenant can neither hang nor stop a run, nor take another user's port.

use crate::HostTarget;
use crate::etc::Etc;
use crate::home::{Home, read_system, under_root};
use crate::ports::{
    DispatchSource, EnvFilePorts, PORTS_ENV_RELATIVE, PortConflict, parse_ports_env, reconcile_port_sources,
};
use std::collections::BTreeMap;
use tenantry_core::derive::dispatch_pool;
use tenantry_model::Roster;

/// Reservations by user and pool.
pub type Reservations = BTreeMap<String, BTreeMap<String, u16>>;

impl HostTarget {
    /// Merge `state`'s reservations with the host's dispatch map and the env
    /// files of every workstation user (in the roster, or departed but still
    /// recorded). A reservation only the host remembers (a state database
    /// lost or rebuilt) is returned too, so the user keeps their port.
    ///
    /// Fails only when root's own sources (the state database, the dispatch
    /// map) disagree or the dispatch map cannot be read; an env file that
    /// cannot be read safely or contradicts them is left out, with a
    /// warning (returned beside the reservations).
    pub fn reconcile_ports(
        &self,
        roster: &Roster,
        state: &Reservations,
    ) -> Result<(Reservations, Vec<String>), PortConflict> {
        let mut warnings = Vec::new();
        let config = self.config();
        let unreadable = |source: String, message: String| PortConflict::Unreadable { source, message };
        let etc = Etc::read(&config.root).map_err(|e| unreadable("/etc/passwd".to_string(), e.to_string()))?;
        let workstation = &roster.platform.workstation;
        let pools: Vec<&str> = workstation.port_pools.keys().map(String::as_str).collect();

        // roster user → os_user, for everyone whose home may hold an env file.
        let mut os_users: BTreeMap<String, String> = BTreeMap::new();
        for record in self.account_records() {
            if let (Some(user), Some(os_user)) = (record.get("user"), record.get("os_user"))
                && let (Some(user), Some(os_user)) = (user.as_str(), os_user.as_str())
            {
                os_users.insert(user.to_string(), os_user.to_string());
            }
        }
        for user in roster.users.values() {
            if let Some(station) = &user.workstation {
                os_users.insert(user.key.clone(), station.os_user.value.clone());
            }
        }

        let mut env_files = BTreeMap::new();
        for (user, os_user) in os_users {
            // Only tenants' homes: a system account's home is nobody's env file.
            let Some(entry) = etc.user(&os_user).filter(|e| etc.is_regular(e)) else { continue };
            let shown = under_root(&config.root, &entry.home)
                .map(|home| home.join(PORTS_ENV_RELATIVE).display().to_string())
                .unwrap_or_else(|_| format!("{}/{PORTS_ENV_RELATIVE}", entry.home));
            let read = Home::open(&config.root, entry, false)
                .and_then(|home| home.read(&home.path().join(PORTS_ENV_RELATIVE)));
            let text = match read {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(None) => continue,
                Err(error) => {
                    warnings.push(format!(
                        "{shown} is not used as a port source: {error}; the state database decides, and the next apply rewrites it"
                    ));
                    continue;
                }
            };
            let ports = parse_ports_env(&text, pools.iter().copied());
            env_files.insert(user, EnvFilePorts { os_user, path: shown, ports });
        }

        let dispatch_text = read_system(&config.root, &workstation.dispatch_path)
            .map_err(|e| unreadable(workstation.dispatch_path.clone(), e.to_string()))?
            .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned());
        let pool = dispatch_pool(&workstation.port_pools);
        let dispatch = match (&dispatch_text, pool) {
            (Some(json), Some(pool)) => Some(DispatchSource { path: &workstation.dispatch_path, pool, json }),
            _ => None,
        };
        let reconciled = reconcile_port_sources(state, dispatch.as_ref(), &env_files)?;
        for conflict in reconciled.ignored {
            warnings.push(format!(
                "a tenant's env file is not used as a port source: {conflict}; the next apply rewrites it"
            ));
        }
        for warning in &warnings {
            tracing::warn!(target: "tenantry::host", "{warning}");
        }
        Ok((reconciled.reservations, warnings))
    }
}
