//! One run at a time per state database: two `apply`s (or an `apply` and a
//! `plan`, whose journal recovery would mistake the other run's intents for
//! a crash) never interleave, in one process or across processes.
//!
//! The lock is an exclusive `flock` on `<state>.lock` beside the database,
//! held for the whole run and released by the kernel if the process dies,
//! so a killed run never leaves a stale lock. The holder writes who it is
//! into the file, so a waiting run can say whom it waits for.

use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a waiter waits for the holder to write its name before it
/// reports an anonymous holder.
const HOLDER_NAME_PATIENCE: Duration = Duration::from_secs(2);
const HOLDER_NAME_POLL: Duration = Duration::from_millis(10);

/// Held while a run reads and writes the state; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file of the state database at `state`.
    pub fn path_for(state: &Path) -> PathBuf {
        let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".lock");
        state.with_file_name(name)
    }

    /// Take the lock of the state database at `state`. When another run
    /// holds it, `waiting` is told who (the holder's own words) and this
    /// waits until it ends.
    pub fn acquire(state: &Path, holder: &str, waiting: &dyn Fn(&str)) -> Result<RunLock> {
        let path = RunLock::path_for(state);
        let io = |source| Error::Lock { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        // The holder writes its name just after it takes the lock, so a
        // waiter that finds the file empty gives it a moment before saying
        // whom it waits for; the lock may also come free meanwhile.
        let mut patience = HOLDER_NAME_PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let other = holder_of(&mut file);
                    if other.is_empty() && !patience.is_zero() {
                        let step = patience.min(HOLDER_NAME_POLL);
                        std::thread::sleep(step);
                        patience -= step;
                        continue;
                    }
                    waiting(if other.is_empty() { "another tenantry run" } else { &other });
                    file.lock().map_err(io)?;
                    break;
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
            }
        }
        // Who holds it now, for the next waiter. Best effort: the lock itself is the flock.
        let _ = file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).and_then(|_| {
            writeln!(file, "{holder} (pid {})", std::process::id())?;
            file.flush()
        });
        Ok(RunLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder's own words, read from the start of the lock file.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut text));
    text.trim().to_string()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_second_run_waits_and_is_told_for_whom() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = dir.path().join("state.db");
        let first = RunLock::acquire(&state, "tenantry apply --yes", &|_| {}).unwrap_or_else(|e| panic!("{e}"));
        let told = Arc::new(Mutex::new(String::new()));
        let heard = Arc::clone(&told);
        let state2 = state.clone();
        let second = std::thread::spawn(move || {
            RunLock::acquire(&state2, "tenantry plan", &|holder| {
                if let Ok(mut text) = heard.lock() {
                    *text = holder.to_string();
                }
            })
            .map(|_| ())
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!second.is_finished(), "the second run must wait while the first holds the lock");
        drop(first);
        assert!(second.join().is_ok_and(|r| r.is_ok()));
        let text = told.lock().map(|t| t.clone()).unwrap_or_default();
        assert!(text.starts_with("tenantry apply --yes (pid "), "{text}");
    }

    #[test]
    fn a_waiter_that_comes_before_the_holder_has_written_its_name_still_names_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = dir.path().join("state.db");
        let path = RunLock::path_for(&state);
        // A holder caught between taking the lock and writing its name.
        let mut holder = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).unwrap();
        holder.lock().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(150));
            writeln!(holder, "tenantry apply --yes (pid 1)").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(150));
            holder.unlock().unwrap();
        });
        let told = Mutex::new(String::new());
        let lock = RunLock::acquire(&state, "tenantry plan", &|holder| {
            if let Ok(mut text) = told.lock() {
                *text = holder.to_string();
            }
        });
        assert!(lock.is_ok());
        writer.join().unwrap();
        assert_eq!(told.lock().map(|t| t.clone()).unwrap_or_default(), "tenantry apply --yes (pid 1)");
    }
}
