//! Source priority (cli > file > env > .env > default), case-insensitive env, JSON values.

use super::World;
use crate::config::Source;
use serde_json::json;

const FIELD: &str = "heartbeat_interval_seconds";

/// Sets the field in the layers listed, each with its own value, and returns what won.
fn winner(layers: &[&str]) -> (u64, Source) {
    let mut w = World::new();
    for layer in layers {
        match *layer {
            "cli" => {
                w.cli(FIELD, json!(11));
            }
            "file" => {
                w.write("etc/worker.yaml", &format!("{FIELD}: 12\n"));
            }
            "env" => {
                w.env("ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS", "13");
            }
            "dotenv" => {
                w.write("work/.env", "ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS=14\n");
            }
            other => unreachable!("{other}"),
        }
    }
    let c = w.ok();
    (
        c.settings.heartbeat_interval_seconds,
        c.sources[FIELD].clone(),
    )
}

#[test]
fn cli_beats_file() {
    let (v, s) = winner(&["cli", "file", "env", "dotenv"]);
    assert_eq!(v, 11);
    assert_eq!(
        s,
        Source::Cli {
            flag: "--heartbeat-interval-seconds".into()
        }
    );
}

#[test]
fn file_beats_env() {
    let (v, s) = winner(&["file", "env", "dotenv"]);
    assert_eq!(v, 12);
    assert!(matches!(s, Source::File { .. }), "{s}");
}

#[test]
fn env_beats_dotenv() {
    let (v, s) = winner(&["env", "dotenv"]);
    assert_eq!(v, 13);
    assert_eq!(
        s,
        Source::Env {
            var: "ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS".into()
        }
    );
}

#[test]
fn dotenv_beats_default() {
    let (v, s) = winner(&["dotenv"]);
    assert_eq!(v, 14);
    assert!(
        matches!(&s, Source::DotEnv { path } if path.ends_with("work/.env")),
        "{s}"
    );
}

#[test]
fn default_when_nothing_set() {
    let (v, s) = winner(&[]);
    assert_eq!(v, 30);
    assert_eq!(s, Source::Default);
}

#[test]
fn lower_layers_still_supply_other_fields() {
    let mut w = World::new();
    w.cli("worker_id", json!("from-cli"));
    w.write("etc/worker.yaml", "tenant: from-file\n");
    w.env("ASTRA_WORKER_WORKER_VERSION", "9.9.9");
    w.write("work/.env", "ASTRA_WORKER_AUTH_FINGERPRINT=fp-dotenv\n");
    let c = w.ok();
    assert_eq!(c.settings.worker_id, "from-cli");
    assert_eq!(c.settings.tenant, "from-file");
    assert_eq!(c.settings.worker_version, "9.9.9");
    assert_eq!(c.settings.auth_fingerprint.as_deref(), Some("fp-dotenv"));
    assert_eq!(c.settings.transport, crate::config::Transport::Websocket);
    let shown: Vec<String> = [
        "worker_id",
        "tenant",
        "worker_version",
        "auth_fingerprint",
        "transport",
    ]
    .iter()
    .map(|f| c.sources[f].to_string())
    .collect();
    let etc = w.path("etc/worker.yaml");
    let dotenv = w.path("work/.env");
    assert_eq!(
        shown,
        vec![
            "cli --worker-id".to_string(),
            format!("file ({})", etc.display()),
            "env ASTRA_WORKER_WORKER_VERSION".to_string(),
            format!(".env ({})", dotenv.display()),
            "default".to_string(),
        ]
    );
    assert_eq!(c.settings.config_path.as_deref(), Some(etc.as_path()));
}

#[test]
fn custom_flag_names_appear_in_provenance() {
    let mut w = World::new();
    w.cli("worker_id", json!("w9"));
    w.ctx
        .override_flags
        .insert("worker_id".into(), "--id".into());
    assert_eq!(w.ok().sources["worker_id"].to_string(), "cli --id");
}

#[test]
fn unknown_override_is_an_error() {
    let mut w = World::new();
    w.cli("worker_idd", json!("x"));
    assert!(w.err().contains("worker_idd"));
}

#[test]
fn env_names_are_case_insensitive() {
    let mut w = World::new();
    w.env("astra_worker_Worker_Id", "lower");
    let c = w.ok();
    assert_eq!(c.settings.worker_id, "lower");
    assert_eq!(
        c.sources["worker_id"],
        Source::Env {
            var: "astra_worker_Worker_Id".into()
        }
    );
}

#[test]
fn upper_case_spelling_wins_over_others() {
    let mut w = World::new();
    w.env("astra_worker_tenant", "lower")
        .env("ASTRA_WORKER_TENANT", "upper");
    let c = w.ok();
    assert_eq!(c.settings.tenant, "upper");
    assert!(
        c.warnings
            .iter()
            .any(|m| m.contains("astra_worker_tenant is ignored")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn dotenv_is_case_insensitive_and_not_exported() {
    let w = World::new();
    w.write(
        "work/.env",
        "# comment\nastra_worker_tenant=t-dotenv\nOTHER_TOOL=1\n",
    );
    let c = w.ok();
    assert_eq!(c.settings.tenant, "t-dotenv");
    assert!(std::env::var("astra_worker_tenant").is_err());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn env_lists_and_dicts_as_json() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_RUNTIME_NAMES", r#"["python", "playwright"]"#)
        .env("ASTRA_WORKER_FEATURE_FLAGS", r#"["f1"]"#)
        .env(
            "ASTRA_WORKER_CONCURRENCY_PER_NODE_LIMITS",
            r#"{"resize": 2, "ocr": 1}"#,
        );
    let s = w.ok().settings;
    assert_eq!(s.runtime_names, vec!["python", "playwright"]);
    assert_eq!(s.feature_flags, vec!["f1"]);
    let limits = s.concurrency_per_node_limits.unwrap();
    assert_eq!(limits.get("resize"), Some(&2));
    assert_eq!(limits.get("ocr"), Some(&1));
    assert_eq!(limits.len(), 2);
}

#[test]
fn a_dict_from_a_higher_source_replaces_not_merges() {
    let mut w = World::new();
    w.env(
        "ASTRA_WORKER_CONCURRENCY_PER_NODE_LIMITS",
        r#"{"from_env": 2}"#,
    );
    w.write(
        "etc/worker.yaml",
        "concurrency_per_node_limits:\n  from_file: 3\n",
    );
    let limits = w.ok().settings.concurrency_per_node_limits.unwrap();
    assert_eq!(
        limits.into_iter().collect::<Vec<_>>(),
        vec![("from_file".to_string(), 3)]
    );
}

#[test]
fn explicit_null_in_file_unsets_env_value() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_AUTH_FINGERPRINT", "fp");
    w.write("etc/worker.yaml", "auth_fingerprint: null\n");
    let c = w.ok();
    assert_eq!(c.settings.auth_fingerprint, None);
    assert!(matches!(c.sources["auth_fingerprint"], Source::File { .. }));
}

#[test]
fn unknown_keys_are_warnings_not_errors() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_INLINE_RESULT_LIMIT_BYTES", "10")
        .env("ASTRA_WORKER_CONFIG_PATH", "/x");
    w.write("etc/worker.yaml", "resource_gpu: 1\nconfig_path: /nope\n");
    w.write("work/.env", "ASTRA_WORKER_BOGUS=1\n");
    let c = w.ok();
    let all = c.warnings.join("\n");
    for needle in [
        "inline_result_limit_bytes",
        "resource_gpu",
        "bogus",
        "config_path from env",
    ] {
        assert!(all.contains(needle), "missing {needle} in {all}");
    }
    assert_eq!(
        c.settings.config_path.as_deref(),
        Some(w.path("etc/worker.yaml").as_path())
    );
}
