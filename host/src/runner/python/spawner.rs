//! A long-lived thread that starts every bridge process.
//!
//! The sandbox sets PR_SET_PDEATHSIG, which fires when the *thread* that forked the child
//! exits, not the process. Runner task threads end with their task, so a bridge spawned
//! from one would be killed right after its first task. This thread lives as long as the
//! runtime, so bridges live as long as the worker.

use super::error::PythonError;
use crate::sandbox::{Sandbox, SandboxError, SandboxedChild, SpawnRequest};
use std::sync::mpsc;
use std::sync::Arc;

type Reply = mpsc::Sender<Result<SandboxedChild, SandboxError>>;

pub(crate) struct Spawner {
    jobs: mpsc::Sender<(SpawnRequest, Reply)>,
}

impl Spawner {
    pub(crate) fn start(sandbox: Arc<Sandbox>) -> std::io::Result<Spawner> {
        let (jobs, rx) = mpsc::channel::<(SpawnRequest, Reply)>();
        std::thread::Builder::new()
            .name("astra-py-spawner".into())
            .spawn(move || {
                // Ends when the runtime (the only sender) is dropped.
                for (req, reply) in rx {
                    // If the caller stopped waiting, the child is dropped here: killed.
                    let _ = reply.send(sandbox.spawn(&req));
                }
            })?;
        Ok(Spawner { jobs })
    }

    pub(crate) fn spawn(
        &self,
        req: SpawnRequest,
    ) -> Result<Result<SandboxedChild, SandboxError>, PythonError> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send((req, tx))
            .map_err(|_| PythonError::SpawnerGone)?;
        rx.recv().map_err(|_| PythonError::SpawnerGone)
    }
}
