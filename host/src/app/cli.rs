//! Command-line interface of both worker binaries (`astra-worker`, `astra-worker-smol`): the
//! same subcommands and flags. The help text is written to teach: each
//! command says what it is for and each flag which config field it overrides.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "astra-worker",
    version,
    about = "A worker agent for AstraFlow-compatible task schedulers.",
    long_about = "astra-worker connects to a scheduler's WebSocket control plane (AstraFlow v1), \
registers the packages it can run, sends heartbeats, runs dispatched tasks and reports their \
results, surviving bad networks, restarts and hostile input without losing work.\n\n\
Configuration comes from, highest priority first: command-line flags, a YAML/JSON file \
(ASTRA_WORKER_CONFIG_FILE, /etc/astraflow/worker.yaml, ./config/worker.yaml), ASTRA_WORKER_* \
environment variables, a .env file in the current directory, then defaults. \
`astra-worker config show` prints the result with the source of every value.",
    after_help = "Start here:\n  astra-worker demo                      # see it work, no setup needed\n  \
astra-worker config show               # what a `run` would use\n  \
astra-worker verify --url ws://HOST:8080/ws/worker\n  \
astra-worker run --url ws://HOST:8080/ws/worker --worker-id w1"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Connect to the scheduler and serve tasks until SIGTERM or SIGINT (then drain: finish
    /// in-flight tasks, flush results, close; a second signal stops at once).
    Run(RunArgs),
    /// Start a reference scheduler on 127.0.0.1, connect a worker to it over a real WebSocket,
    /// run a sample workload of builtin tasks, print what happened and a summary.
    Demo(DemoArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Check a scheduler end to end: connect, handshake, register, send one heartbeat, and
    /// report each step. Exit code 0 when every step worked.
    Verify(VerifyArgs),
    /// Serve the strict reference scheduler at ws://ADDR/ws/worker, for testing workers and
    /// protocol changes. Reads JSON commands on stdin (one per line, e.g.
    /// {"submit":{"run_id":"r1","nodes":[{"id":"n1","node_type":"echo","package_name":"astra.builtin","package_version":"0.1.0"}]}}),
    /// writes events as JSON lines on stdout.
    RefScheduler(RefSchedulerArgs),
    /// Install, list or remove packages in packages_dir, with the same checks as pkg.install
    /// (sha256, formats detected by content, hostile-archive rules, atomic replacement).
    #[command(subcommand)]
    Package(PackageCmd),
    /// Run one task locally through the same machine, runner and sandbox as a dispatched task:
    /// prints each feedback frame as it arrives and the terminal frame at the end. Exit code 0
    /// when the task succeeded. Example: astra-worker exec echo --params '{"message":"hi"}'
    Exec(ExecArgs),
    /// Manage the model cache (model_cache_dir) the AI executors load from.
    #[command(subcommand)]
    Model(ModelCmd),
}

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// Download a model from the hub (hf_endpoint, HF_ENDPOINT) into the model cache, in the
    /// standard hub cache layout (models--ORG--NAME/snapshots/COMMIT/...) that
    /// huggingface_hub and other tools reuse. Resumes an interrupted download; a partial
    /// download never counts as installed. Uses hf_token (HF_TOKEN) for private or gated
    /// repositories, sent to the hub only. Prints the snapshot directory on success.
    ///
    /// Examples:
    ///   astra-worker model pull sentence-transformers/all-MiniLM-L6-v2
    ///   astra-worker model pull org/name --revision v1.0 --file config.json --file model.safetensors
    ///   HF_ENDPOINT=http://mirror:8080 astra-worker model pull org/name
    #[command(verbatim_doc_comment)]
    Pull(ModelPullArgs),
}

#[derive(Debug, Args)]
pub struct ModelPullArgs {
    /// Repository id, ORG/NAME (or NAME).
    pub repo: String,
    /// Branch, tag or commit to download.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// A file to download (repeatable); without it, every file of the revision.
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<String>,
    /// Download even if the model is already installed (blobs already present are reused).
    #[arg(long)]
    pub force: bool,
    /// Hub base URL [hf_endpoint], e.g. https://huggingface.co or a mirror.
    #[arg(long, value_name = "URL")]
    pub hf_endpoint: Option<String>,
    /// Model cache directory [model_cache_dir].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Progress as plain lines even on a terminal.
    #[arg(long)]
    pub no_progress_bar: bool,
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Subcommand)]
pub enum PackageCmd {
    /// Install an archive (zip, tar, tar.gz) from a path, file:// or http(s):// URL.
    Install {
        /// Path or URL of the package archive.
        source: String,
        /// Expected SHA-256 of the archive (64 hex digits); a mismatch installs nothing.
        #[arg(long)]
        sha256: Option<String>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// List installed packages with their status (broken ones with the reason).
    List {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Remove one installed version.
    Remove {
        name: String,
        version: String,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The node type to run, e.g. `echo` or `example.pkg.feedback_demo`.
    pub node_type: String,
    /// Package to take it from, NAME or NAME@VERSION (needed when several packages have it).
    #[arg(long, value_name = "NAME[@VERSION]")]
    pub package: Option<String>,
    /// Task parameters as a JSON object.
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// Wall-clock limit for the task in milliseconds (as constraints.timeout_ms).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration, each value with its source. Secrets are redacted.
    Show {
        #[command(flatten)]
        overrides: Overrides,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Flags that override configuration fields (highest priority).
#[derive(Debug, Args, Default, Clone)]
pub struct Overrides {
    /// Config file to use instead of the search list (sets ASTRA_WORKER_CONFIG_FILE).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Scheduler endpoint [scheduler_ws_url], e.g. ws://127.0.0.1:8080/ws/worker.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// This worker's identity [worker_id]; must be unique per scheduler.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Tenant [tenant]. Runs started over the AstraFlow REST API use `default`.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Installed packages [packages_dir].
    #[arg(long, value_name = "DIR")]
    pub packages_dir: Option<PathBuf>,
    /// Task data, durable outbox [data_dir].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Tasks run at once; excess dispatches are acked and queued [concurrency_max_parallel].
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<u32>,
    /// Serve Prometheus /metrics and /healthz here [metrics_listen], e.g. 127.0.0.1:9108.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// websocket, or dummy for an in-process scheduler with no network [transport].
    #[arg(long)]
    pub transport: Option<String>,
    /// DEBUG traces every frame, retry and ack [log_level].
    #[arg(long)]
    pub log_level: Option<String>,
    /// text or json [log_format].
    #[arg(long)]
    pub log_format: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of sample runs to submit.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Print every scheduler event, not just the summary.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Scheduler endpoint to check (default: the configured scheduler_ws_url).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Worker id to register with (default: the configured worker_id plus "-verify", so a
    /// running worker is not superseded).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct RefSchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds a worker has to ack a dispatch before it is re-dispatched.
    #[arg(long, default_value_t = 5.0)]
    pub ack_timeout: f64,
    /// Reproduce the scheduler's ack-registration race (spec §5.1): drop acks arriving within
    /// this many milliseconds of the dispatch.
    #[arg(long, value_name = "MS")]
    pub ack_race_ms: Option<u64>,
}
