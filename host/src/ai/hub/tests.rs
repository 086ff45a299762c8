//! model_download and the hub client against the mock hub on 127.0.0.1.

use super::mock::{sha256_hex, MockHub, COMMIT};
use super::*;
use crate::ai::settings::AiSettings;
use crate::ai::testutil::ctx;
use crate::runner::{FeedbackHandle, Handler};
use astra_core::secret::Secret;
use astra_core::work::TaskKey;
use astra_core::worker::Input;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "hf_T0pS3cretTokenValue";

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cache: PathBuf,
    big: Vec<u8>,
}

/// A hub holding `org/model` with a small config and a 300 KB weights file.
fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let repo = root.join("hub/org/model");
    std::fs::create_dir_all(repo.join("1_Pooling")).unwrap();
    std::fs::write(repo.join("config.json"), b"{\"hidden_size\": 4}").unwrap();
    std::fs::write(repo.join("1_Pooling/config.json"), b"{}").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(repo.join("model.safetensors"), &big).unwrap();
    World {
        cache: root.join("cache"),
        root,
        _tmp: tmp,
        big,
    }
}

impl World {
    fn hub(&self) -> MockHub {
        MockHub::start(&self.root.join("hub"))
    }
    fn settings(&self, hub: &MockHub, token: Option<&str>) -> AiSettings {
        AiSettings {
            artifact_root: self.root.join("artifacts"),
            model_cache_dir: self.cache.clone(),
            hub_endpoint: hub.url.clone(),
            hub_token: token.map(Secret::new),
            ..AiSettings::default()
        }
    }
    fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.cache.join("models--org--model/blobs"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn one(file: &str) -> PullRequest {
    PullRequest {
        attempts: 1,
        ..PullRequest::new("org/model", "main", vec![file.to_string()])
    }
}

fn no_progress() -> impl FnMut(&Progress) -> bool {
    |_| true
}

#[test]
fn whole_repo_lands_in_the_hub_layout_and_resolves() {
    let w = world();
    let hub = w.hub();
    let client = HubClient::new(&hub.url, None);
    let req = PullRequest::new("org/model", "main", vec![]);
    assert_eq!(installed(&w.cache, &req).unwrap(), None);
    let got = pull(&client, &w.cache, &req, &mut no_progress()).unwrap();
    assert_eq!(got.commit, COMMIT);
    assert_eq!(
        got.files,
        vec!["1_Pooling/config.json", "config.json", "model.safetensors"]
    );
    let repo = w.cache.join("models--org--model");
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    let link = repo
        .join("snapshots")
        .join(COMMIT)
        .join("model.safetensors");
    let target = std::fs::read_link(&link).unwrap();
    assert_eq!(
        target,
        Path::new("../../blobs").join(sha256_hex(&w.big)),
        "relative link into blobs, as huggingface_hub writes it"
    );
    let nested = std::fs::read_link(
        repo.join("snapshots")
            .join(COMMIT)
            .join("1_Pooling/config.json"),
    )
    .unwrap();
    assert!(nested.starts_with("../../../blobs"), "{nested:?}");
    assert_eq!(std::fs::read(&link).unwrap(), w.big);
    // The flat-layout resolver now finds the snapshot (hub layout first).
    assert_eq!(
        crate::ai::cache::resolve(&w.cache, "org/model", "main").unwrap(),
        repo.join("snapshots").join(COMMIT)
    );
    let again = installed(&w.cache, &req).unwrap().expect("installed");
    assert!(!again.installed_now);
    assert_eq!(again.files.len(), 3);
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let w = world();
    let hub = w.hub();
    let client = HubClient::new(&hub.url, None);
    hub.set(|c| c.cut_once_after = Some(100_000));
    let req = one("model.safetensors");
    let e = pull(&client, &w.cache, &req, &mut no_progress()).unwrap_err();
    assert!(matches!(e, HubError::Http { .. }), "{e}");
    // Partial data only under .incomplete; nothing counts as installed.
    let etag = sha256_hex(&w.big);
    assert_eq!(w.blobs(), vec![format!("{etag}.incomplete")]);
    let partial = std::fs::metadata(
        w.cache
            .join("models--org--model/blobs")
            .join(format!("{etag}.incomplete")),
    )
    .unwrap()
    .len();
    assert!(partial > 0 && partial < w.big.len() as u64, "{partial}");
    assert_eq!(installed(&w.cache, &req).unwrap(), None);
    assert!(!w.cache.join("models--org--model/refs/main").exists());

    let got = pull(&client, &w.cache, &req, &mut no_progress()).unwrap();
    assert_eq!(got.downloaded_bytes, w.big.len() as u64 - partial);
    let ranged: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(ranged.len(), 2);
    assert_eq!(
        ranged[1].range.as_deref(),
        Some(format!("bytes={partial}-").as_str())
    );
    assert_eq!(w.blobs(), vec![etag]);
    let p = installed(&w.cache, &req).unwrap().unwrap();
    assert_eq!(
        std::fs::read(p.snapshot.join("model.safetensors")).unwrap(),
        w.big
    );
}

#[test]
fn retries_within_one_pull_resume_too() {
    let w = world();
    let hub = w.hub();
    hub.set(|c| c.cut_once_after = Some(50_000));
    let client = HubClient::new(&hub.url, None);
    let req = PullRequest::new("org/model", "main", vec!["model.safetensors".into()]);
    let got = pull(&client, &w.cache, &req, &mut no_progress()).unwrap();
    // The second try fetched only the rest.
    assert_eq!(got.downloaded_bytes, w.big.len() as u64 - 50_000);
    assert!(hub
        .requests()
        .iter()
        .any(|r| r.range.as_deref() == Some("bytes=50000-")));
    assert_eq!(
        std::fs::read(got.snapshot.join("model.safetensors")).unwrap(),
        w.big
    );
}

#[test]
fn failures_and_bad_checksums_never_count_as_installed() {
    let w = world();
    let hub = w.hub();
    let client = HubClient::new(&hub.url, None);
    // One of two files fails: the other is linked, but no ref and no record.
    hub.set(|c| c.fail_files = vec!["model.safetensors".into()]);
    let req = PullRequest::new("org/model", "main", vec![]);
    let e = pull(&client, &w.cache, &req, &mut no_progress()).unwrap_err();
    assert!(matches!(e, HubError::Status { status: 500, .. }), "{e}");
    assert_eq!(installed(&w.cache, &req).unwrap(), None);
    assert_eq!(
        installed(&w.cache, &one("model.safetensors")).unwrap(),
        None
    );
    assert!(!w.cache.join("models--org--model/refs/main").exists());

    hub.set(|c| {
        c.fail_files.clear();
        c.corrupt_files = vec!["model.safetensors".into()];
    });
    let e = pull(
        &client,
        &w.cache,
        &one("model.safetensors"),
        &mut no_progress(),
    )
    .unwrap_err();
    assert!(matches!(e, HubError::Checksum { .. }), "{e}");
    assert!(
        w.blobs().is_empty(),
        "the corrupt data is removed: {:?}",
        w.blobs()
    );
    assert_eq!(
        installed(&w.cache, &one("model.safetensors")).unwrap(),
        None
    );

    // Cancelling mid-file keeps the data resumable but not installed.
    hub.set(|c| c.corrupt_files.clear());
    let mut calls = 0;
    let e = pull(&client, &w.cache, &one("model.safetensors"), &mut |_| {
        calls += 1;
        calls < 2
    })
    .unwrap_err();
    assert!(matches!(e, HubError::Cancelled), "{e}");
    assert_eq!(
        installed(&w.cache, &one("model.safetensors")).unwrap(),
        None
    );
}

#[test]
fn token_goes_only_to_the_hub_not_to_the_cdn() {
    let w = world();
    let hub = w.hub();
    let cdn = w.hub();
    hub.set(|c| c.redirect_to = Some(cdn.url.clone()));
    let client = HubClient::new(&hub.url, Some(Secret::new(TOKEN)));
    let got = pull(
        &client,
        &w.cache,
        &one("model.safetensors"),
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(got.snapshot.join("model.safetensors")).unwrap(),
        w.big
    );
    let bearer = format!("Bearer {TOKEN}");
    let hub_reqs = hub.requests();
    assert!(!hub_reqs.is_empty());
    assert!(hub_reqs
        .iter()
        .all(|r| r.authorization.as_deref() == Some(bearer.as_str())));
    let cdn_reqs = cdn.requests();
    assert!(cdn_reqs.iter().any(|r| r.path.starts_with("/cdn/")));
    assert!(
        cdn_reqs.iter().all(|r| r.authorization.is_none()),
        "{cdn_reqs:?}"
    );
}

#[test]
fn escape_attempts_are_refused_before_any_request() {
    let w = world();
    let hub = w.hub();
    let client = HubClient::new(&hub.url, None);
    for (repo, rev, file) in [
        ("../x", "main", "f"),
        ("/abs", "main", "f"),
        ("org/model", "../../x", "f"),
        ("org/model", "main", "../../../etc/passwd"),
        ("org/model", "main", "/etc/passwd"),
        ("org/model", "main", "a\\..\\b"),
        ("org/model", "main", "a\0b"),
        ("o\\x/m", "main", "f"),
    ] {
        let req = PullRequest::new(repo, rev, vec![file.to_string()]);
        let e = pull(&client, &w.cache, &req, &mut no_progress()).unwrap_err();
        assert!(matches!(e, HubError::Name(_)), "{repo} {rev} {file}: {e}");
    }
    assert!(hub.requests().is_empty());

    // A symlink planted inside the cache cannot redirect the writes outside it.
    let outside = w.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let repo = w.cache.join("models--org--model");
    std::fs::create_dir_all(&repo).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("blobs")).unwrap();
    let e = pull(&client, &w.cache, &one("config.json"), &mut no_progress()).unwrap_err();
    assert!(matches!(e, HubError::Escape { .. }), "{e}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

fn recording_ctx(
    params: Value,
    root: &Path,
) -> (
    crate::runner::ExecutionContext,
    Arc<Mutex<Vec<astra_core::work::Feedback>>>,
) {
    let mut c = ctx("model_download", params, root);
    let frames = Arc::new(Mutex::new(Vec::new()));
    let f2 = frames.clone();
    c.feedback = FeedbackHandle::new(
        TaskKey {
            run_id: "run-1".into(),
            task_id: "task-1".into(),
        },
        Arc::new(move |i| {
            if let Input::TaskFeedback { feedback, .. } = i {
                f2.lock().unwrap().push(feedback);
            }
        }),
    );
    (c, frames)
}

#[test]
fn the_executor_reports_progress_writes_its_artifact_and_skips_installed_models() {
    let w = world();
    let hub = w.hub();
    let h = ModelDownload::new(&w.settings(&hub, None));
    let (c, frames) = recording_ctx(json!({"model": "org/model"}), &w.root);
    let out = h.run(&c).unwrap();
    let o = &out["outputs"];
    assert_eq!(o["result"], "ok");
    assert_eq!(o["model_installed_now"], true);
    assert_eq!(o["commit"], COMMIT);
    assert_eq!(o["only_if_missing"], true);
    let model_path = PathBuf::from(o["model_path"].as_str().unwrap());
    assert!(model_path.join("config.json").is_file());
    assert!(o["output_uri"]
        .as_str()
        .unwrap()
        .ends_with("/task-1/output.json"));
    assert_eq!(out["artifacts"].as_array().unwrap().len(), 1);
    assert!(w.root.join("artifacts/run-1/task-1/output.json").is_file());
    let frames = frames.lock().unwrap().clone();
    assert!(
        frames.len() >= 3,
        "one per finished file at least: {frames:?}"
    );
    assert!(frames
        .iter()
        .all(|f| f.stage.as_deref() == Some("download")));
    let last = frames.last().unwrap();
    assert_eq!(last.progress, Some(1.0));
    assert_eq!(last.metrics["bytes_total"], (w.big.len() + 20) as f64);
    let fractions: Vec<f64> = frames.iter().filter_map(|f| f.progress).collect();
    assert!(fractions.windows(2).all(|p| p[0] <= p[1]), "{fractions:?}");

    // Installed: no request at all the second time.
    let before = hub.requests().len();
    let (c, _) = recording_ctx(
        json!({"model": "org/model", "only_if_missing": "true"}),
        &w.root,
    );
    let out = h.run(&c).unwrap();
    assert_eq!(out["outputs"]["model_installed_now"], false);
    assert_eq!(hub.requests().len(), before);
    // only_if_missing=false fetches metadata again (blobs are reused, not re-downloaded).
    let (c, _) = recording_ctx(
        json!({"model": "org/model", "only_if_missing": false}),
        &w.root,
    );
    let out = h.run(&c).unwrap();
    assert_eq!(out["outputs"]["model_installed_now"], true);
    assert_eq!(out["outputs"]["downloaded_bytes"], 0);
}

#[test]
fn bad_inputs_name_the_field() {
    let w = world();
    let hub = w.hub();
    let h = ModelDownload::new(&w.settings(&hub, None));
    for (params, field) in [
        (json!({}), "parameter `model`"),
        (json!({"model": "../etc"}), "parameter `model`"),
        (
            json!({"model": "o/m", "source": "git"}),
            "parameter `source`",
        ),
        (
            json!({"model": "o/m", "revision": "../x"}),
            "parameter `revision`",
        ),
        (
            json!({"model": "o/m", "files": ["../x"]}),
            "parameter `files`",
        ),
        (
            json!({"model": "o/m", "only_if_missing": "maybe"}),
            "parameter `only_if_missing`",
        ),
    ] {
        let (c, _) = recording_ctx(params.clone(), &w.root);
        let e = h.run(&c).unwrap_err();
        assert!(e.message.starts_with(field), "{params}: {}", e.message);
    }
    let (c, _) = recording_ctx(json!({"model": "org/absent"}), &w.root);
    let e = h.run(&c).unwrap_err();
    assert!(
        e.message.contains("404") && e.message.contains("parameter `model`"),
        "{}",
        e.message
    );
    assert!(hub.requests().iter().all(|r| !r.path.contains("..")));
}

#[test]
fn the_token_reaches_no_task_environment_log_or_output() {
    let w = world();
    let hub = w.hub();
    let settings = w.settings(&hub, Some(TOKEN));
    assert!(!format!("{settings:?}").contains(TOKEN));
    // The download itself authenticates...
    let h = ModelDownload::new(&settings);
    let (c, frames) = recording_ctx(
        json!({"model": "org/model", "file": "config.json"}),
        &w.root,
    );
    let out = h.run(&c).unwrap();
    assert!(hub
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..])));
    // ...but neither its result, its artifact nor its feedback carry the token.
    let text = format!("{out:?} {:?}", frames.lock().unwrap());
    assert!(!text.contains(TOKEN));
    let artifact =
        std::fs::read_to_string(w.root.join("artifacts/run-1/task-1/output.json")).unwrap();
    assert!(!artifact.contains(TOKEN));
    // A failing download's error does not quote it either.
    hub.set(|c| c.fail_files = vec!["config.json".into()]);
    let (c, _) = recording_ctx(
        json!({"model": "org/model", "file": "config.json", "only_if_missing": false}),
        &w.root,
    );
    let e = h.run(&c).unwrap_err();
    assert!(!e.message.contains(TOKEN), "{}", e.message);

    // A tool task run with the same settings sees no token in its environment.
    let tool_settings = AiSettings {
        tool_allowlist: vec!["env".into()],
        ..settings
    };
    let t = crate::ai::tool::ToolExecution::new(&tool_settings, None);
    let out = t
        .run(&ctx("tool_execution", json!({"command": "env"}), &w.root))
        .unwrap();
    let stdout = out["outputs"]["stdout"].as_str().unwrap();
    assert!(stdout.contains("PATH="), "{stdout}");
    assert!(
        !stdout.contains(TOKEN) && !stdout.contains("HF_TOKEN"),
        "{stdout}"
    );
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_token_is_in_no_log_line() {
    let w = world();
    let hub = w.hub();
    hub.set(|c| c.cut_once_after = Some(10_000));
    let buf = LogBuf::default();
    let b2 = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || b2.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let h = ModelDownload::new(&w.settings(&hub, Some(TOKEN)));
        let (c, _) = recording_ctx(
            json!({"model": "org/model", "file": "model.safetensors"}),
            &w.root,
        );
        h.run(&c).unwrap();
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    // Not vacuous: the retry, whose message quotes the failed request, was logged. (Only
    // this callsite is asserted: tests running in parallel share tracing's callsite cache,
    // which can hide other events from a thread-scoped subscriber.)
    assert!(
        logs.contains("resuming") && logs.contains("/resolve/main/model.safetensors"),
        "{logs}"
    );
    assert!(!logs.contains(TOKEN) && !logs.contains("Bearer"), "{logs}");
}
