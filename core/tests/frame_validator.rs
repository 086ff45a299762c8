//! Every frame type the worker can emit, checked against the field tables of the protocol
//! spec (§2, §3) independently of the serde types: no extra keys, required keys present,
//! enums in the right case, and the envelope conventions (sender role, UUID ids, offset
//! timestamps, corr = task id, seq = dispatch seq, acks requested where the spec says).

use astra_core::secret::Secret;
use astra_core::time::{Instant, WallClock};
use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::{Feedback, HandlerKey, Inventory, TaskKey, TaskOutcome};
use astra_core::worker::{Action, Incoming, Input, PackageOpDone, Worker, WorkerConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const TS: &str = "2025-11-03T13:21:00.100000+00:00";

struct Table {
    required: &'static [&'static str],
    optional: &'static [&'static str],
}

fn payload_table(kind: &str) -> Table {
    match kind {
        "handshake" => Table {
            required: &["protocol", "auth", "worker"],
            optional: &[],
        },
        "register" => Table {
            required: &["capabilities", "packages"],
            optional: &["channels"],
        },
        "heartbeat" => Table {
            required: &["healthy", "metrics"],
            optional: &["packages"],
        },
        "ack" => Table {
            required: &[],
            optional: &["ok", "for", "info"],
        },
        "result" => Table {
            required: &["run_id", "task_id", "status", "result"],
            optional: &["duration_ms", "metadata", "artifacts", "error"],
        },
        "feedback" => Table {
            required: &["run_id", "task_id"],
            optional: &[
                "stage", "progress", "message", "chunks", "metrics", "metadata",
            ],
        },
        "command.error" => Table {
            required: &["code", "message"],
            optional: &["remediation", "context"],
        },
        "pkg.event" => Table {
            required: &["name", "version", "status"],
            optional: &["log_url", "details"],
        },
        other => panic!("the worker emitted a frame type it must never send: {other}"),
    }
}

fn check_keys(what: &str, obj: &Value, t: &Table) {
    let o = obj
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {obj}"));
    for r in t.required {
        assert!(
            o.contains_key(*r),
            "{what}: required key `{r}` missing in {obj}"
        );
    }
    for k in o.keys() {
        assert!(
            t.required.contains(&k.as_str()) || t.optional.contains(&k.as_str()),
            "{what}: key `{k}` is not in the spec's table: {obj}"
        );
    }
}

fn is_uuid_v4(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
        && &s[14..15] == "4"
}

fn validate(f: &Value, dispatch_seq: &BTreeMap<String, u64>) {
    let env = Table {
        required: &["type", "id", "ts", "tenant", "sender", "payload"],
        optional: &["corr", "seq", "ack", "flags"],
    };
    check_keys("envelope", f, &env);
    let kind = f["type"].as_str().unwrap();
    assert!(
        is_uuid_v4(f["id"].as_str().unwrap()),
        "id is not a UUIDv4: {f}"
    );
    assert!(
        astra_core::time::validate_rfc3339_aware(f["ts"].as_str().unwrap()).is_ok(),
        "ts without offset: {f}"
    );
    check_keys(
        "sender",
        &f["sender"],
        &Table {
            required: &["role", "id"],
            optional: &[],
        },
    );
    assert_eq!(f["sender"]["role"], "worker");
    if let Some(ack) = f.get("ack") {
        check_keys(
            "ack",
            ack,
            &Table {
                required: &[],
                optional: &["for", "request"],
            },
        );
    }
    let p = &f["payload"];
    check_keys(&format!("{kind} payload"), p, &payload_table(kind));
    let wants_ack = matches!(
        kind,
        "handshake" | "register" | "result" | "command.error" | "pkg.event"
    );
    assert_eq!(
        f["ack"]["request"] == true,
        wants_ack,
        "ack.request convention for {kind}: {f}"
    );
    match kind {
        "handshake" => {
            check_keys(
                "auth",
                &p["auth"],
                &Table {
                    required: &["mode"],
                    optional: &["token", "fingerprint"],
                },
            );
            assert!(matches!(p["auth"]["mode"].as_str(), Some("token" | "mtls")));
            check_keys(
                "worker",
                &p["worker"],
                &Table {
                    required: &["id", "version", "hostname"],
                    optional: &[],
                },
            );
            assert!(p["protocol"].as_u64().unwrap() >= 1);
        }
        "register" => {
            let c = &p["capabilities"];
            check_keys(
                "capabilities",
                c,
                &Table {
                    required: &["concurrency", "runtimes", "features"],
                    optional: &[],
                },
            );
            check_keys(
                "concurrency",
                &c["concurrency"],
                &Table {
                    required: &["max_parallel"],
                    optional: &["per_node_limits"],
                },
            );
            assert!(
                !c["runtimes"].as_array().unwrap().is_empty(),
                "runtimes needs an item"
            );
            assert!(p.get("queues").is_none(), "queues closes the socket");
            for pk in p["packages"].as_array().unwrap() {
                check_keys(
                    "package",
                    pk,
                    &Table {
                        required: &["name", "version", "status"],
                        optional: &[],
                    },
                );
                assert!(matches!(
                    pk["status"].as_str(),
                    Some("installed" | "missing" | "failed")
                ));
            }
        }
        "heartbeat" => {
            assert!(p["healthy"].is_boolean());
            assert!(
                p["metrics"]["inflight"].as_u64().is_some(),
                "metrics.inflight integer: {p}"
            );
        }
        "ack" => {
            assert!(
                f["ack"]["for"].is_string(),
                "acks name the acked frame in the envelope: {f}"
            );
            assert_eq!(p["for"], f["ack"]["for"]);
        }
        "result" => {
            assert!(
                matches!(
                    p["status"].as_str(),
                    Some("SUCCEEDED" | "FAILED" | "SKIPPED" | "CANCELLED")
                ),
                "{p}"
            );
            assert_eq!(f["corr"], p["task_id"], "corr = task id (R2)");
            assert_eq!(
                f["seq"].as_u64(),
                dispatch_seq.get(p["task_id"].as_str().unwrap()).copied()
            );
            if p["status"] == "FAILED" {
                check_keys(
                    "error",
                    &p["error"],
                    &Table {
                        required: &["code", "message"],
                        optional: &["remediation"],
                    },
                );
            }
        }
        "feedback" => {
            assert_eq!(f["corr"], p["task_id"]);
            assert!(f.get("seq").is_none(), "feedback carries no seq");
            if let Some(pr) = p.get("progress") {
                assert!((0.0..=1.0).contains(&pr.as_f64().unwrap()));
            }
            for c in p["chunks"].as_array().into_iter().flatten() {
                assert!(matches!(
                    c["channel"].as_str(),
                    Some("stdout" | "stderr" | "log" | "llm" | "metric" | "custom")
                ));
            }
        }
        "command.error" => {
            assert!(
                !p["message"].as_str().unwrap().is_empty(),
                "an empty message closes the socket"
            );
            check_keys(
                "context",
                &p["context"],
                &Table {
                    required: &[],
                    optional: &["where", "details"],
                },
            );
            assert!(
                p["context"]["details"]["run_id"].is_string(),
                "the scheduler finds the run by details.run_id"
            );
            assert_eq!(f["corr"], p["context"]["details"]["task_id"]);
        }
        "pkg.event" => assert!(matches!(p["status"].as_str(), Some("installed" | "failed"))),
        _ => unreachable!(),
    }
}

fn sched(kind: &str, id: &str, extra: Value, payload: Value) -> String {
    let mut v = json!({"type":kind,"id":id,"ts":TS,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"payload":payload});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

#[test]
fn every_emitted_frame_type_matches_the_spec_tables() {
    let cfg = WorkerConfig {
        worker_id: "w".into(),
        auth_token: Some(Secret::new("tok")),
        max_parallel: 2,
        wall: WallClock::new(1_762_175_750_000_000),
        seed: 3,
        ..WorkerConfig::default()
    };
    let mut w = Worker::new(cfg);
    let mut inv = Inventory::default();
    inv.packages.insert(PackageEntry {
        name: "p".into(),
        version: "1".into(),
        status: PackageStatus::Installed,
    });
    inv.handlers.insert(HandlerKey::new("p", "1", "echo"));
    let mut frames: Vec<Value> = Vec::new();
    let mut now = Instant::ZERO;
    let step = |w: &mut Worker, now: Instant, i: Input, frames: &mut Vec<Value>| -> Vec<Value> {
        w.handle(now, i);
        let mut out = Vec::new();
        while let Some(a) = w.poll_action() {
            if let Action::Send(f) = a {
                out.push(serde_json::from_str::<Value>(f.text()).unwrap());
            }
        }
        frames.extend(out.clone());
        out
    };
    let ack = |id: &Value| {
        Input::Frame(Incoming::Text(sched(
            "ack",
            "sa",
            json!({"ack": {"for": id.as_str().unwrap()}}),
            json!({"ok": true, "for": id}),
        )))
    };
    step(&mut w, now, Input::SetInventory(inv.clone()), &mut frames);
    step(&mut w, now, Input::Start, &mut frames);
    let hs = step(&mut w, now, Input::Connected, &mut frames);
    let reg = step(&mut w, now, ack(&hs[0]["id"]), &mut frames);
    step(&mut w, now, ack(&reg[0]["id"]), &mut frames);
    let mut seqs = BTreeMap::new();
    for (i, (task, node_type)) in [("t1", "echo"), ("t2", "echo"), ("t3", "nope")]
        .iter()
        .enumerate()
    {
        seqs.insert(task.to_string(), 10 + i as u64);
        let d = sched(
            "cmd.dispatch",
            &format!("d{i}"),
            json!({"corr": task, "seq": 10 + i, "ack": {"request": true}}),
            json!({"run_id":"r","task_id":task,"node_id":task,"node_type":node_type,"package_name":"p","package_version":"1","parameters":{},"constraints":{},"concurrency_key":format!("r:{task}")}),
        );
        step(&mut w, now, Input::Frame(Incoming::Text(d)), &mut frames);
    }
    let t1 = TaskKey {
        run_id: "r".into(),
        task_id: "t1".into(),
    };
    let t2 = TaskKey {
        run_id: "r".into(),
        task_id: "t2".into(),
    };
    let fb = Feedback {
        stage: Some("streaming".into()),
        progress: Some(0.5),
        message: Some("half".into()),
        ..Default::default()
    };
    step(
        &mut w,
        now,
        Input::TaskFeedback {
            task: t1.clone(),
            feedback: fb,
        },
        &mut frames,
    );
    step(
        &mut w,
        now,
        Input::TaskFinished {
            task: t1,
            outcome: TaskOutcome::succeeded(Default::default(), 3),
        },
        &mut frames,
    );
    step(
        &mut w,
        now,
        Input::TaskFinished {
            task: t2,
            outcome: TaskOutcome::failed("E.RUNNER.FAILURE", "", 1),
        },
        &mut frames,
    );
    let install = sched(
        "pkg.install",
        "pi",
        json!({"ack": {"request": true}}),
        json!({"name":"q","version":"2","url":"file:///x"}),
    );
    step(
        &mut w,
        now,
        Input::Frame(Incoming::Text(install)),
        &mut frames,
    );
    step(
        &mut w,
        now,
        Input::PackageOpFinished(PackageOpDone {
            op_id: 1,
            name: "q".into(),
            version: "2".into(),
            install: true,
            outcome: Err("sha256 mismatch".into()),
            inventory: inv,
        }),
        &mut frames,
    );
    now = now + std::time::Duration::from_secs(40);
    step(&mut w, now, Input::Tick, &mut frames);

    let kinds: BTreeSet<String> = frames
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = [
        "handshake",
        "register",
        "heartbeat",
        "ack",
        "result",
        "feedback",
        "command.error",
        "pkg.event",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        kinds, expected,
        "the scenario must exercise every frame type the worker sends"
    );
    for f in &frames {
        validate(f, &seqs);
    }
}
