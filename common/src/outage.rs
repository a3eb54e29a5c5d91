//! "Log once per outage": a failure that repeats every cycle (a missing
//! file, an unreachable peer) is said once when it starts and once when it
//! ends, never once per attempt.

/// One thing that can fail repeatedly, and why it last did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outage {
    failing: Option<String>,
}

impl Outage {
    /// Notes a failure; true when it starts an outage (say so then).
    pub fn failed(&mut self, why: impl Into<String>) -> bool {
        self.failing.replace(why.into()).is_none()
    }

    /// Notes a success; true when it ends an outage (say so then).
    pub fn recovered(&mut self) -> bool {
        self.failing.take().is_some()
    }

    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Why it last failed, while it does.
    pub fn error(&self) -> Option<&str> {
        self.failing.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_ends_are_reported_once_each() {
        let mut outage = Outage::default();
        assert!(!outage.recovered(), "nothing to recover from");
        assert!(outage.failed("refused"));
        assert!(!outage.failed("timed out"), "the same outage");
        assert_eq!(outage.error(), Some("timed out"));
        assert!(outage.recovered());
        assert!(!outage.is_failing() && outage.error().is_none());
        assert!(outage.failed("again"), "a new outage");
    }
}
