//! `astra-worker model pull` as a real process against the mock hub on 127.0.0.1: the
//! files land in the hub cache layout, progress is printed, a rerun is a no-op, and a
//! failing hub leaves nothing installed and a non-zero exit code.

#[path = "../../host/src/ai/hub/mock.rs"]
mod mock;

use mock::{MockHub, COMMIT};
use std::process::Command;

const TOKEN: &str = "hf_CliT0kenNeverPrinted";

fn pull(cache: &std::path::Path, hub: &MockHub, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_astra-worker"))
        .args(["model", "pull", "org/model", "--hf-endpoint", &hub.url])
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HF_TOKEN", TOKEN)
        .current_dir(cache.parent().expect("parent"))
        .output()
        .expect("run astra-worker")
}

#[test]
fn model_pull_downloads_into_the_hub_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("hub/org/model");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(repo.join("config.json"), b"{}").expect("write");
    let weights: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(repo.join("model.safetensors"), &weights).expect("write");
    let hub = MockHub::start(&tmp.path().join("hub"));
    let cache = tmp.path().join("cache");

    // A hub that fails: exit code 1, the file name in the error, nothing installed.
    hub.set(|c| c.fail_files = vec!["model.safetensors".into()]);
    let out = pull(&cache, &hub, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("500"), "{stderr}");
    assert!(!cache.join("models--org--model/refs/main").exists());

    hub.set(|c| c.fail_files.clear());
    let out = pull(&cache, &hub, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let snapshot = cache.join("models--org--model/snapshots").join(COMMIT);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        snapshot.display().to_string()
    );
    assert_eq!(
        std::fs::read(snapshot.join("model.safetensors")).expect("read"),
        weights
    );
    // Not a terminal: plain progress lines, ending at 100 %.
    assert!(stderr.contains("progress 100%"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
    // The token went to the hub as a bearer token.
    assert!(hub
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..])));

    // Installed: a rerun makes no request.
    let before = hub.requests().len();
    let out = pull(&cache, &hub, &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already installed"));
    assert_eq!(hub.requests().len(), before);

    // A repo id that would escape the cache is refused before any request.
    let out = Command::new(env!("CARGO_BIN_EXE_astra-worker"))
        .args(["model", "pull", "../../etc", "--hf-endpoint", &hub.url])
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model id \"../../etc\" is invalid"));
    assert_eq!(hub.requests().len(), before);
}

#[test]
fn model_pull_help_teaches() {
    let out = Command::new(env!("CARGO_BIN_EXE_astra-worker"))
        .args(["model", "pull", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "hub cache layout",
        "HF_TOKEN",
        "HF_ENDPOINT",
        "--revision",
        "--file",
        "Examples:",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn config_show_names_the_aliases_and_hides_the_hub_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_astra-worker"))
        .args(["config", "show"])
        .env_clear()
        .env("HF_TOKEN", TOKEN)
        .env("HF_ENDPOINT", "http://mirror.example:8080/")
        .env("SPLAI_ARTIFACT_ROOT", "/srv/art")
        .current_dir(tmp.path())
        .output()
        .expect("config show");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}");
    assert!(!s.contains(TOKEN), "token printed:\n{s}");
    let line = |f: &str| {
        s.lines()
            .find(|l| l.starts_with(&format!("{f} = ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("hf_token").contains("\"***\"") && line("hf_token").ends_with("# env HF_TOKEN"));
    assert!(line("hf_endpoint").contains("\"http://mirror.example:8080\""));
    assert!(
        line("model_cache_dir").contains("/srv/art/models"),
        "{}",
        line("model_cache_dir")
    );
    assert!(line("artifact_root").ends_with("# env SPLAI_ARTIFACT_ROOT"));
}
