//! Reusable threads for the runner: a drop-in for `std::thread::Builder::spawn` that hands a
//! job to an idle thread when there is one and starts a new thread otherwise.
//!
//! Every job gets a thread at once (never a queue behind a stuck handler), so timeouts,
//! cancellation and abandoning a handler that ignores its deadline work exactly as with a
//! fresh thread per job; the pool only saves the thread creation (two per task before).
//! Threads idle for [`KEEP_ALIVE`] exit, so an idle worker holds no pool threads.

use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a finished thread waits for another job before it exits.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct State {
    /// Invariant: `idle` = threads waiting for a job − `queue.len()`, i.e. waiting threads no
    /// job has been handed to yet. A job is queued only when it can be matched to one.
    idle: usize,
    queue: VecDeque<Job>,
    /// Threads alive (running a job or waiting), for tests and diagnostics.
    threads: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    keep_alive: Duration,
    name: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and every update is a few integer/queue operations that
        // cannot panic halfway, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cheap to clone; clones share the threads.
#[derive(Clone)]
pub struct ThreadPool {
    shared: Arc<Shared>,
}

impl ThreadPool {
    /// Threads are named `name`; idle ones exit after `keep_alive`.
    pub fn new(name: &str, keep_alive: Duration) -> Self {
        ThreadPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                keep_alive,
                name: name.to_string(),
            }),
        }
    }

    /// Runs `job` on a thread of its own right away: an idle one, or a new one. Fails only
    /// when a new thread was needed and the OS refused it (the job is then dropped).
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let job: Job = Box::new(job);
        {
            let mut st = self.shared.lock();
            if st.idle > 0 {
                st.idle -= 1;
                st.queue.push_back(job);
                drop(st);
                self.shared.wake.notify_one();
                return Ok(());
            }
            st.threads += 1;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name(self.shared.name.clone())
            .spawn(move || worker(&shared, job));
        if let Err(e) = spawned {
            self.shared.lock().threads -= 1;
            return Err(e);
        }
        Ok(())
    }

    /// Threads alive now (busy or idle).
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Idle threads waiting for a job.
    pub fn idle(&self) -> usize {
        self.shared.lock().idle
    }
}

fn worker(shared: &Shared, first: Job) {
    let mut job = first;
    loop {
        // A panicking job must not take the thread's bookkeeping down with it; the runner
        // already catches handler panics, so this is only a safety net.
        let _ = catch_unwind(AssertUnwindSafe(job));
        let mut st = shared.lock();
        st.idle += 1;
        let until = Instant::now() + shared.keep_alive;
        job = loop {
            if let Some(next) = st.queue.pop_front() {
                // `spawn` already took this thread off `idle` when it queued the job.
                break next;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Nothing queued, so this thread is still counted in `idle`.
                st.idle -= 1;
                st.threads -= 1;
                return;
            }
            st = shared
                .wake
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const WAIT: Duration = Duration::from_secs(10);

    fn wait_for(mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < end, "condition not reached in time");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_finished_thread_is_reused() {
        let pool = ThreadPool::new("t", WAIT);
        let (tx, rx) = mpsc::channel();
        for _ in 0..5 {
            let tx = tx.clone();
            pool.spawn(move || tx.send(std::thread::current().id()).unwrap())
                .unwrap();
            rx.recv_timeout(WAIT).unwrap();
            wait_for(|| pool.idle() == 1);
        }
        assert_eq!(pool.threads(), 1);
    }

    #[test]
    fn a_blocked_job_never_delays_the_next_one() {
        let pool = ThreadPool::new("t", WAIT);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        pool.spawn(move || {
            let _ = release_rx.recv_timeout(WAIT);
        })
        .unwrap();
        // The first job holds its thread; the second must get another one at once.
        let (tx, rx) = mpsc::channel();
        pool.spawn(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(WAIT).unwrap();
        assert_eq!(pool.threads(), 2);
        release_tx.send(()).unwrap();
        wait_for(|| pool.idle() == 2);
    }

    #[test]
    fn idle_threads_exit_after_keep_alive() {
        let pool = ThreadPool::new("t", Duration::from_millis(20));
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            pool.spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                tx.send(()).unwrap()
            })
            .unwrap();
        }
        for _ in 0..3 {
            rx.recv_timeout(WAIT).unwrap();
        }
        wait_for(|| pool.threads() == 0);
        assert_eq!(pool.idle(), 0);
        // And the pool still works afterwards.
        pool.spawn(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(WAIT).unwrap();
    }

    #[test]
    fn a_panicking_job_keeps_the_thread() {
        let pool = ThreadPool::new("t", WAIT);
        pool.spawn(|| panic!("boom")).unwrap();
        wait_for(|| pool.idle() == 1);
        let (tx, rx) = mpsc::channel();
        pool.spawn(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(WAIT).unwrap();
        assert_eq!(pool.threads(), 1);
    }

    #[test]
    fn many_concurrent_jobs_all_run() {
        let pool = ThreadPool::new("t", WAIT);
        let (tx, rx) = mpsc::channel();
        for round in 0..4 {
            for i in 0..50 {
                let tx = tx.clone();
                pool.spawn(move || tx.send(round * 100 + i).unwrap())
                    .unwrap();
            }
            let mut got: Vec<i32> = (0..50).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
            got.sort();
            assert_eq!(got, (0..50).map(|i| round * 100 + i).collect::<Vec<_>>());
            // Once every thread is back, the next round finds them idle and reuses them.
            wait_for(|| pool.idle() == pool.threads());
            assert!(pool.threads() <= 50, "{}", pool.threads());
        }
    }
}
