//! `astra-worker exec NODE_TYPE`: runs one task locally through the same core machine,
//! runner and sandbox as a dispatched task, printing each feedback frame as it arrives and
//! the terminal frame (`result` or `command.error`) at the end, exactly as the scheduler
//! would receive them. For package authors and debugging.

use crate::app::cli::ExecArgs;
use crate::app::settings::{load_settings, runtime_seed};
use crate::packages::PackageStore;
use crate::runner::{register_builtins_with, Runner, RunnerConfig, Sink};
use astra_core::time::{Instant, WallClock};
use astra_core::work::HandlerKey;
use astra_core::worker::{Action, Incoming, Input, Worker};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::Duration;

const TS: &str = "2025-01-01T00:00:00+00:00";

pub fn exec(args: ExecArgs) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn sched_frame(kind: &str, id: &str, extra: Value, payload: Value) -> String {
    let mut v = json!({"type": kind, "id": id, "ts": TS, "tenant": "default", "sender": {"role": "scheduler", "id": "exec"}, "payload": payload});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v.to_string()
}

fn run(args: ExecArgs) -> Result<bool, String> {
    let settings = load_settings(&args.overrides)
        .map_err(|e| e.to_string())?
        .settings;
    let params: Value =
        serde_json::from_str(&args.params).map_err(|e| format!("--params is not JSON: {e}"))?;
    if !params.is_object() {
        return Err("--params must be a JSON object, e.g. '{\"message\":\"hi\"}'".into());
    }
    let runner = Runner::new(RunnerConfig {
        data_dir: settings.data_dir.join("exec"),
        default_timeout: Duration::from_secs(settings.task_timeout_seconds.max(1)),
        worker_id: settings.worker_id.clone(),
        tenant: settings.tenant.clone(),
    });
    register_builtins_with(
        runner.registry(),
        &crate::ai::AiSettings::from_config(&settings),
    );
    PackageStore::open(&settings.packages_dir)
        .map_err(|e| format!("packages_dir {}: {e}", settings.packages_dir.display()))?;
    let packages = crate::agent::packages_for(&settings, &runner)?;
    let inventory = packages.inventory();
    let key = pick_handler(
        &inventory.handlers,
        &args.node_type,
        args.package.as_deref(),
    )?;

    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut cfg = settings.to_worker_config(
        &crate::config::hostname(),
        WallClock::new(unix.as_micros() as u64),
        runtime_seed(),
    );
    cfg.extra_ack_delays.clear();
    cfg.rehandshake_delay = None;
    let mut w = Worker::new(cfg);
    let (tx, rx) = mpsc::channel::<Input>();
    let sink: Sink = Arc::new(move |i| {
        let _ = tx.send(i);
    });
    let t0 = std::time::Instant::now();
    let now = || Instant::from_micros(t0.elapsed().as_micros() as u64);
    w.handle(now(), Input::SetInventory(inventory));
    w.handle(now(), Input::Start);
    w.handle(now(), Input::Connected);
    let mut pending = vec![];
    let mut success = None;
    let mut dispatched = false;
    loop {
        while let Some(a) = w.poll_action() {
            match a {
                Action::Send(f) => {
                    let v: Value = serde_json::from_str(f.text()).unwrap_or(Value::Null);
                    match f.kind.as_str() {
                        "handshake" | "register" => pending.push(sched_frame(
                            "ack",
                            &format!("ack-{}", f.id),
                            json!({"ack": {"for": f.id}}),
                            json!({"ok": true, "for": f.id}),
                        )),
                        "feedback" => println!("{}", f.log_text()),
                        "result" | "command.error" => {
                            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                            success = Some(
                                f.kind.as_str() == "result"
                                    && v["payload"]["status"] == "SUCCEEDED",
                            );
                        }
                        _ => {}
                    }
                }
                Action::StartTask(spec) => runner.start(*spec, sink.clone()),
                _ => {}
            }
        }
        if let Some(ok) = success {
            return Ok(ok);
        }
        if let Some(f) = pending.pop() {
            w.handle(now(), Input::Frame(Incoming::Text(f)));
            continue;
        }
        if w.is_registered() && !dispatched {
            dispatched = true;
            let mut constraints = json!({});
            if let Some(ms) = args.timeout_ms {
                constraints["timeout_ms"] = json!(ms);
            }
            let d = sched_frame(
                "cmd.dispatch",
                "exec-dispatch",
                json!({"corr": "exec", "seq": 1, "ack": {"request": true}}),
                json!({"run_id": format!("exec-{}", std::process::id()), "task_id": "exec", "node_id": "exec", "node_type": key.node_type,
                       "package_name": key.package, "package_version": key.version, "parameters": params, "constraints": constraints,
                       "concurrency_key": "exec"}),
            );
            w.handle(now(), Input::Frame(Incoming::Text(d)));
            continue;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(i) => w.handle(now(), i),
            Err(mpsc::RecvTimeoutError::Timeout) => w.handle(now(), Input::Tick),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the runner stopped without an outcome".into())
            }
        }
    }
}

/// The handler to run: `--package NAME[@VERSION]` narrows the search; without it the node
/// type must be unique across installed packages (the builtin package included).
fn pick_handler(
    handlers: &std::collections::BTreeSet<HandlerKey>,
    node_type: &str,
    package: Option<&str>,
) -> Result<HandlerKey, String> {
    let (pname, pver) = match package {
        Some(p) => match p.split_once('@') {
            Some((n, v)) => (Some(n), Some(v)),
            None => (Some(p), None),
        },
        None => (None, None),
    };
    let found: Vec<&HandlerKey> = handlers
        .iter()
        .filter(|k| {
            k.node_type == node_type
                && pname.is_none_or(|n| k.package == n)
                && pver.is_none_or(|v| k.version == v)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let known: Vec<String> = handlers
                .iter()
                .map(|k| format!("{} ({} {})", k.node_type, k.package, k.version))
                .collect();
            Err(format!(
                "no installed handler for node type `{node_type}`{}; known: {}",
                package.map(|p| format!(" in {p}")).unwrap_or_default(),
                known.join(", ")
            ))
        }
        many => {
            let c: Vec<String> = many
                .iter()
                .map(|k| format!("{}@{}", k.package, k.version))
                .collect();
            Err(format!("node type `{node_type}` exists in several packages ({}); choose one with --package NAME[@VERSION]", c.join(", ")))
        }
    }
}
