//! `astra-worker model pull REPO`: downloads a model into the model cache through the same
//! code as the `model_download` executor, with a progress bar on a terminal (plain progress
//! lines otherwise). Prints the snapshot directory on stdout; exit code 0 on success, 1 when
//! the download failed, 2 for bad configuration or arguments.

use crate::ai::hub::{installed, pull as hub_pull, HubClient, Progress, PullRequest};
use crate::ai::AiSettings;
use crate::app::cli::ModelPullArgs;
use crate::app::settings::override_context;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const BAR_WIDTH: usize = 30;
/// Plain-line mode prints at most this often (and at the end of each file).
const LINE_EVERY: Duration = Duration::from_secs(2);
const BAR_EVERY: Duration = Duration::from_millis(100);

pub fn pull(args: ModelPullArgs) -> ExitCode {
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let req = PullRequest::new(&args.repo, &args.revision, args.files.clone());
    if !args.force {
        match installed(&settings.model_cache_dir, &req) {
            Ok(Some(p)) => {
                eprintln!(
                    "{}@{} is already installed (commit {}); --force downloads it again",
                    req.repo, req.revision, p.commit
                );
                println!("{}", p.snapshot.display());
                return ExitCode::SUCCESS;
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let client = HubClient::new(&settings.hub_endpoint, settings.hub_token.clone());
    let bar = std::io::stderr().is_terminal() && !args.no_progress_bar;
    eprintln!(
        "pulling {}@{} from {} into {}",
        req.repo,
        req.revision,
        settings.hub_endpoint,
        settings.model_cache_dir.display()
    );
    let mut shown = Shown::new(bar);
    let started = Instant::now();
    let result = hub_pull(&client, &settings.model_cache_dir, &req, &mut |p| {
        shown.update(p);
        true
    });
    shown.finish();
    match result {
        Ok(p) => {
            eprintln!(
                "done: {} files, {} downloaded in {:.1}s, commit {}",
                p.files.len(),
                human(p.downloaded_bytes),
                started.elapsed().as_secs_f64(),
                p.commit
            );
            println!("{}", p.snapshot.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn settings(args: &ModelPullArgs) -> Result<AiSettings, String> {
    let mut ctx = override_context(&args.overrides).map_err(|e| e.to_string())?;
    let mut set = |field: &str, flag: &str, v: Value| {
        ctx.overrides.insert(field.to_string(), v);
        ctx.override_flags
            .insert(field.to_string(), flag.to_string());
    };
    if let Some(u) = &args.hf_endpoint {
        set("hf_endpoint", "--hf-endpoint", Value::String(u.clone()));
    }
    if let Some(d) = &args.cache_dir {
        set(
            "model_cache_dir",
            "--cache-dir",
            Value::String(d.display().to_string()),
        );
    }
    let loaded = crate::config::load_with(&ctx).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(AiSettings::from_config(&loaded.settings))
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The progress display: a redrawn bar on a terminal, else a line now and then.
struct Shown {
    bar: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Shown {
    fn new(bar: bool) -> Shown {
        Shown {
            bar,
            last: None,
            drawn: false,
        }
    }

    fn update(&mut self, p: &Progress) {
        let file_done = p.file_done == p.file_size;
        let every = if self.bar { BAR_EVERY } else { LINE_EVERY };
        if !file_done && self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let frac = if p.total_size == 0 {
            1.0
        } else {
            p.total_done as f64 / p.total_size as f64
        };
        let mut err = std::io::stderr().lock();
        if self.bar {
            let filled = ((frac * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {:>3.0}% {}/{} {} ({}/{})",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                frac * 100.0,
                human(p.total_done),
                human(p.total_size),
                p.file,
                p.file_index,
                p.file_count
            );
            self.drawn = true;
        } else {
            let _ = writeln!(
                err,
                "progress {:.0}% {}/{} bytes: file {}/{} {} {}/{} bytes",
                frac * 100.0,
                p.total_done,
                p.total_size,
                p.file_index,
                p.file_count,
                p.file,
                p.file_done,
                p.file_size
            );
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
