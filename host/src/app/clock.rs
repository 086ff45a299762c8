//! Maps the monotonic clock onto the core's virtual `Instant` (microseconds since the driver
//! started) and the wall clock used for envelope timestamps. Timers take `std::time::Instant`,
//! which both runtimes accept.

use astra_core::time::{Instant, WallClock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: std::time::Instant,
    pub wall: WallClock,
}

impl Clock {
    pub fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            base: std::time::Instant::now(),
            wall: WallClock::new(unix.as_micros() as u64),
        }
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.base.elapsed().as_micros() as u64)
    }

    /// The real instant of a core deadline, for arming a runtime timer.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.base + Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
