//! Maps tokio's monotonic clock onto the core's virtual `Instant` (microseconds since the
//! driver started) and the wall clock used for envelope timestamps.

use astra_core::time::{Instant, WallClock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: tokio::time::Instant,
    pub wall: WallClock,
}

impl Clock {
    pub fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            base: tokio::time::Instant::now(),
            wall: WallClock::new(unix.as_micros() as u64),
        }
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.base.elapsed().as_micros() as u64)
    }

    pub fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        self.base + Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
