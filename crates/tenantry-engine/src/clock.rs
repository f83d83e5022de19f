//! Time is a parameter: the engine asks a clock, tests pass a fixed one.

use std::time::SystemTime;

pub trait Clock: Send + Sync {
    /// The current time as RFC 3339 text (UTC, seconds).
    fn now(&self) -> String;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> String {
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
    }
}

/// Always the same instant; for tests and reproducible output.
#[derive(Debug, Clone)]
pub struct FixedClock(pub String);

impl Clock for FixedClock {
    fn now(&self) -> String {
        self.0.clone()
    }
}
