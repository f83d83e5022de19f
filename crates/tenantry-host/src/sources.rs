//! Reading every place a port reservation is written on the host (the
//! dispatch map and the users' env files), so the engine's state can be
//! checked against them before anything is allocated (SPEC §8.3).

use crate::HostTarget;
use crate::etc::Etc;
use crate::fsx::under_root;
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
    /// recorded), refusing when two of them disagree. A reservation only the
    /// host remembers (a state database lost or rebuilt) is returned too, so
    /// the user keeps their port.
    pub fn reconcile_ports(&self, roster: &Roster, state: &Reservations) -> Result<Reservations, PortConflict> {
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
            let Some(entry) = etc.user(&os_user) else { continue };
            let Ok(home) = under_root(&config.root, &entry.home) else { continue };
            let path = home.join(PORTS_ENV_RELATIVE);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(unreadable(path.display().to_string(), error.to_string())),
            };
            let ports = parse_ports_env(&text, pools.iter().copied());
            env_files.insert(user, EnvFilePorts { os_user, path: path.display().to_string(), ports });
        }

        let dispatch_path = under_root(&config.root, &workstation.dispatch_path)
            .map_err(|e| unreadable(workstation.dispatch_path.clone(), e.to_string()))?;
        let dispatch_text = match std::fs::read_to_string(&dispatch_path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(unreadable(dispatch_path.display().to_string(), error.to_string())),
        };
        let pool = dispatch_pool(&workstation.port_pools);
        let dispatch = match (&dispatch_text, pool) {
            (Some(json), Some(pool)) => Some(DispatchSource { path: &workstation.dispatch_path, pool, json }),
            _ => None,
        };
        reconcile_port_sources(state, dispatch.as_ref(), &env_files)
    }
}
