//! A cancellation token shared between the runner and a running handler.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Cloneable; every clone observes the same cancellation. Cancelling is idempotent and the
/// first reason wins.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<(Mutex<Option<String>>, Condvar)>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, Option<String>> {
        // A poisoned lock only means another thread panicked while holding it; the
        // Option inside is always valid, so keep using it.
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests cancellation; wakes every `wait`er.
    pub fn cancel(&self, reason: impl Into<String>) {
        let mut state = self.state();
        if state.is_none() {
            *state = Some(reason.into());
        }
        self.inner.1.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        self.state().is_some()
    }

    /// Why the task was cancelled (`timeout`, an operator reason, ...), once it is.
    pub fn reason(&self) -> Option<String> {
        self.state().clone()
    }

    /// Sleeps up to `timeout`; returns `true` as soon as the token is cancelled (at once if it
    /// already is), `false` if the full time passed without cancellation.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.state();
        loop {
            if state.is_some() {
                return true;
            }
            let remaining = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                // A timeout too large to represent: wait in long slices forever.
                None => Duration::from_secs(3600),
            };
            if remaining.is_zero() {
                return false;
            }
            state = match self.inner.1.wait_timeout(state, remaining) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_times_out_without_cancel() {
        let t = CancelToken::new();
        let start = Instant::now();
        assert!(!t.wait(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(!t.is_cancelled());
    }

    #[test]
    fn wait_returns_early_on_cancel_and_first_reason_wins() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            t2.cancel("first");
            t2.cancel("second");
        });
        let start = Instant::now();
        assert!(t.wait(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(t.reason().as_deref(), Some("first"));
        h.join().unwrap();
        // Already cancelled: returns immediately.
        assert!(t.wait(Duration::from_secs(10)));
    }
}
