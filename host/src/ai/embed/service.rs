//! The embedding thread: one dedicated OS thread per loaded model owns the model, a
//! compute pool of exactly `threads` rayon threads and, with more than one thread, as many
//! one-thread "lanes", so inference never runs on the async runtime's workers and never
//! uses more than `threads` cores at once. Requests from concurrent tasks queue on a
//! channel and run one at a time, split into batches; cancellation is checked between
//! batches. Texts are batched by length so padding stays small.
//!
//! A batch of several texts is split across the lanes (one forward per lane, see
//! `BertEmbedder::embed_batch`); a single text runs on the pool, where candle decides per
//! matmul whether to parallelise (it reads `RAYON_NUM_THREADS`, default the physical core
//! count). Set `RAYON_NUM_THREADS` to make candle split a GEMM that many ways.

use super::error::EmbedError;
use super::model::{BertEmbedder, ModelInfo};
use crate::runner::CancelToken;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

type Reply = Result<Vec<Vec<f32>>, EmbedError>;

struct Job {
    texts: Vec<String>,
    batch_size: usize,
    cancel: CancelToken,
    reply: mpsc::Sender<Reply>,
}

/// A handle to a model's embedding thread. Dropping it ends the thread once queued jobs
/// are done.
pub struct Embedder {
    info: ModelInfo,
    jobs: Mutex<mpsc::Sender<Job>>,
}

const POLL: Duration = Duration::from_millis(20);

impl Embedder {
    /// Starts the thread and loads the model on it (the load's cost is in `info().load_ms`).
    pub fn start(model: &str, dir: &Path, threads: usize) -> Result<Embedder, EmbedError> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<ModelInfo, EmbedError>>();
        let (model_id, dir) = (model.to_string(), dir.to_path_buf());
        let gone = || EmbedError::ThreadGone(model.to_string());
        std::thread::Builder::new()
            .name(format!(
                "astra-embed-{}",
                model.rsplit('/').next().unwrap_or(model)
            ))
            .spawn(move || {
                let (pool, lanes) = match compute_threads(threads) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(EmbedError::Load {
                            model: model_id.clone(),
                            path: dir.clone(),
                            problem: format!("cannot start {threads} compute threads: {e}"),
                        }));
                        return;
                    }
                };
                let embedder = match pool.install(|| BertEmbedder::load(&model_id, &dir)) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(embedder.info().clone()));
                for job in jobs_rx {
                    let _ = job.reply.send(run_job(&pool, &lanes, &embedder, &job));
                }
            })
            .map_err(|e| EmbedError::Load {
                model: model.to_string(),
                path: Path::new("").to_path_buf(),
                problem: format!("cannot start the embedding thread: {e}"),
            })?;
        let info = ready_rx.recv().map_err(|_| gone())??;
        Ok(Embedder {
            info,
            jobs: Mutex::new(jobs_tx),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Embeds `texts` in batches of `batch_size`; returns early with `Cancelled` once
    /// `cancel` fires (the thread stops after the current batch).
    pub fn embed(
        &self,
        texts: Vec<String>,
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let gone = || EmbedError::ThreadGone(self.info.model.clone());
        let (reply, rx) = mpsc::channel();
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job {
                texts,
                batch_size,
                cancel: cancel.clone(),
                reply,
            })
            .map_err(|_| gone())?;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(r) => return r,
                Err(RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                    return Err(EmbedError::Cancelled)
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(gone()),
            }
        }
    }
}

/// The compute pool of `threads` threads and, with more than one, `threads` one-thread
/// pools for the lanes of a batch (with one thread the pool is the one lane).
fn compute_threads(
    threads: usize,
) -> Result<(rayon::ThreadPool, Vec<rayon::ThreadPool>), rayon::ThreadPoolBuildError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("astra-embed-pool-{i}"))
        .build()?;
    let lanes = if threads <= 1 {
        Vec::new()
    } else {
        (0..threads)
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("astra-embed-lane-{i}"))
                    .build()
            })
            .collect::<Result<_, _>>()?
    };
    Ok((pool, lanes))
}

/// Embeds a job's texts in batches of similar length (as sentence-transformers does), so
/// short texts are not padded to the longest one, and returns them in the caller's order.
fn run_job(
    pool: &rayon::ThreadPool,
    lanes: &[rayon::ThreadPool],
    embedder: &BertEmbedder,
    job: &Job,
) -> Reply {
    let mut order: Vec<usize> = (0..job.texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(job.texts[i].len()));
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); job.texts.len()];
    for idx in order.chunks(job.batch_size.max(1)) {
        if job.cancel.is_cancelled() {
            return Err(EmbedError::Cancelled);
        }
        let chunk: Vec<String> = idx.iter().map(|&i| job.texts[i].clone()).collect();
        let vectors = embedder.embed_batch(&chunk, pool, lanes)?;
        for (&i, v) in idx.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}
