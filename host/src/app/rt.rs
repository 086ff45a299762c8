//! Runtime-generic helpers built on the [`Runtime`] seam: deadlines, blocking calls and
//! background tasks with a result, written once for both drivers.

use super::runtime::Runtime;
use futures_util::future::{select, Either};
use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

/// A deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline passed")]
pub struct Elapsed;

/// Sleeps until `at`.
pub async fn sleep_until<R: Runtime>(rt: &R, at: Instant) {
    rt.timer(at).await
}

/// Runs `fut` until `at`; `Err(Elapsed)` if the deadline comes first (`fut` is dropped).
pub async fn timeout_at<R: Runtime, F: Future>(
    rt: &R,
    at: Instant,
    fut: F,
) -> Result<F::Output, Elapsed> {
    let timer = rt.timer(at);
    match select(pin!(fut), timer).await {
        Either::Left((v, _)) => Ok(v),
        Either::Right(((), _)) => Err(Elapsed),
    }
}

/// [`timeout_at`] with a duration from now.
pub async fn timeout<R: Runtime, F: Future>(
    rt: &R,
    d: Duration,
    fut: F,
) -> Result<F::Output, Elapsed> {
    timeout_at(rt, Instant::now() + d, fut).await
}

/// The blocking call panicked (its result channel closed without a value).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a blocking task panicked (see the log above)")]
pub struct Panicked;

/// Runs blocking `f` on the runtime's blocking pool and waits for its result. The work runs
/// to the end even if the caller stops waiting.
pub async fn unblock<R: Runtime, T: Send + 'static>(
    rt: &R,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    let (tx, rx) = async_channel::bounded(1);
    rt.spawn_blocking(Box::new(move || {
        let _ = tx.try_send(f());
    }));
    rx.recv().await.map_err(|_| Panicked)
}

/// A background task's result, awaited like a join handle. Dropping it detaches the task.
pub struct Joined<T>(async_channel::Receiver<T>);

impl<T> Joined<T> {
    /// `None` when the task panicked.
    pub async fn join(self) -> Option<T> {
        self.0.recv().await.ok()
    }
}

/// Spawns `fut` and returns a handle to await its output.
pub fn spawn_joined<R: Runtime, T: Send + 'static>(
    rt: &R,
    fut: impl Future<Output = T> + Send + 'static,
) -> Joined<T> {
    let (tx, rx) = async_channel::bounded(1);
    rt.spawn(async move {
        let _ = tx.try_send(fut.await);
    });
    Joined(rx)
}
