//! The state database, shared by a long-running process and kept off the
//! async executor: every call runs on tokio's blocking pool, one at a time.

use crate::state::State;
use crate::{Error, Result};
use std::sync::{Arc, Mutex, MutexGuard};

/// A shared handle on one [`State`].
#[derive(Debug, Clone)]
pub struct StateHandle {
    inner: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot corrupt SQLite (transactions
    // roll back); keep going with the connection.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StateHandle {
    pub fn new(state: State) -> StateHandle {
        StateHandle { inner: Arc::new(Mutex::new(state)) }
    }

    /// Run `f` on the state from async code, on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut State) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&mut lock(&inner)))
            .await
            .map_err(|error| Error::Task(format!("state database call: {error}")))?
    }

    /// Run `f` on the state from synchronous code (tests, tools); blocks.
    pub fn blocking<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.inner))
    }

    /// Where the database lives (`:memory:` for an in-memory one).
    pub fn path(&self) -> String {
        lock(&self.inner).path().to_string()
    }
}
