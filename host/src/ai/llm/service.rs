//! The LLM thread: one dedicated OS thread per loaded model owns the model (weights + KV
//! cache), so decoding never runs on the async runtime's workers. Requests queue on a
//! channel and run one at a time; the thread sends progress events back while it generates
//! and checks the task's cancel token before every token.
//!
//! Threads: the model's compute (the row-split matmuls of `model/matmul.rs`) runs in a
//! rayon pool of exactly `threads` threads (`ai_threads`), created here and kept for the
//! model's life; the model thread works inside it (`install`), so it is one of them.

use super::error::LlmError;
use super::generate::{self, Backend, Event, GenerateParams, Generation};
use super::request::PromptInput;
use crate::runner::CancelToken;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

/// What the thread sends back for one request: events, then exactly one `Done`.
#[derive(Debug)]
pub enum Reply {
    Event(Event),
    Done(Result<Generation, LlmError>),
}

struct Job {
    input: PromptInput,
    params: GenerateParams,
    cancel: CancelToken,
    reply: mpsc::Sender<Reply>,
}

/// A handle to a model's thread. Dropping it ends the thread once queued jobs are done.
pub struct LlmService<I> {
    model: String,
    info: I,
    jobs: Mutex<mpsc::Sender<Job>>,
}

const POLL: Duration = Duration::from_millis(20);

impl<I: Clone + Send + 'static> LlmService<I> {
    /// Starts the thread and runs `load` on it (inside the compute pool); `describe` gives
    /// the info the handle keeps about the loaded model.
    pub fn start<B, L, D>(
        model: &str,
        threads: usize,
        load: L,
        describe: D,
    ) -> Result<Self, LlmError>
    where
        B: Backend + 'static,
        L: FnOnce() -> Result<B, LlmError> + Send + 'static,
        D: FnOnce(&B) -> I + Send + 'static,
    {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<I, LlmError>>();
        let model_id = model.to_string();
        let gone = || LlmError::ThreadGone(model.to_string());
        std::thread::Builder::new()
            .name(format!(
                "astra-llm-{}",
                model.rsplit('/').next().unwrap_or(model)
            ))
            .spawn(move || {
                let pool = match rayon::ThreadPoolBuilder::new()
                    .num_threads(threads.max(1))
                    .thread_name(|i| format!("astra-llm-pool-{i}"))
                    .build()
                {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(LlmError::Load {
                            model: model_id.clone(),
                            path: Default::default(),
                            problem: format!("cannot start {threads} compute threads: {e}"),
                        }));
                        return;
                    }
                };
                let mut backend = match pool.install(load) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(describe(&backend)));
                for job in jobs_rx {
                    let reply = job.reply.clone();
                    let result = pool.install(|| {
                        generate::generate(
                            &mut backend,
                            &job.input,
                            &job.params,
                            &job.cancel,
                            &mut |e| {
                                let _ = reply.send(Reply::Event(e));
                            },
                        )
                    });
                    let _ = job.reply.send(Reply::Done(result));
                }
            })
            .map_err(|e| LlmError::Load {
                model: model.to_string(),
                path: Default::default(),
                problem: format!("cannot start the llm thread: {e}"),
            })?;
        let info = ready_rx.recv().map_err(|_| gone())??;
        Ok(LlmService {
            model: model.to_string(),
            info,
            jobs: Mutex::new(jobs_tx),
        })
    }

    pub fn info(&self) -> &I {
        &self.info
    }

    /// Generates, calling `on_event` on the caller's thread as progress arrives. Returns
    /// `Cancelled` within one poll interval of `cancel` firing, even while the request
    /// still waits in the queue.
    pub fn generate(
        &self,
        input: PromptInput,
        params: GenerateParams,
        cancel: &CancelToken,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Generation, LlmError> {
        let gone = || LlmError::ThreadGone(self.model.clone());
        let (reply, rx) = mpsc::channel();
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job {
                input,
                params,
                cancel: cancel.clone(),
                reply,
            })
            .map_err(|_| gone())?;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(Reply::Event(e)) => on_event(e),
                Ok(Reply::Done(r)) => return r,
                Err(RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                    return Err(LlmError::Cancelled)
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(gone()),
            }
        }
    }
}
