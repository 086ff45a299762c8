//! Each invalid value fails with the field, its source, the value and the accepted form.

use super::World;
use crate::config::{LogLevel, FIELDS, SECRET_FIELDS};
use serde_json::json;

/// Loads with `ASTRA_WORKER_<FIELD>=value` and returns the error text.
fn env_error(field: &str, value: &str) -> String {
    let mut w = World::new();
    let var = format!("ASTRA_WORKER_{}", field.to_ascii_uppercase());
    w.env(&var, value);
    let e = w.err();
    assert!(
        e.starts_with(&format!("{field}: ")),
        "field not named first: {e}"
    );
    assert!(
        e.contains(&format!("from env {var}")),
        "source missing: {e}"
    );
    assert!(e.contains("expected "), "accepted form missing: {e}");
    e
}

#[test]
fn the_documented_example_message() {
    assert_eq!(
        env_error("heartbeat_interval_seconds", "abc"),
        r#"heartbeat_interval_seconds: "abc" from env ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS is not valid: expected a whole number of seconds greater than 0"#
    );
}

#[test]
fn every_field_rejects_a_bad_value_with_context() {
    let cases: &[(&str, &str, &str)] = &[
        ("scheduler_ws_url", "http://h/ws/worker", "ws:// or wss://"),
        ("scheduler_ws_url", "ws://", "with a host"),
        ("scheduler_rest_base_url", "ftp://x", "http://"),
        ("tenant", "  ", "non-empty"),
        ("worker_id", "", "non-empty"),
        ("worker_version", "a\u{7}b", "control"),
        ("handshake_protocol_version", "0", "greater than 0"),
        ("auth_mode", "basic", "one of token, mtls"),
        ("auth_fingerprint", "x\ny", "control"),
        ("transport", "carrier-pigeon", "one of websocket, dummy"),
        ("heartbeat_interval_seconds", "-1", "seconds greater than 0"),
        ("heartbeat_interval_seconds", "99999999999", "at most"),
        ("heartbeat_jitter_seconds", "1.5", "0 disables jitter"),
        ("ack_retry_base_ms", "0", "milliseconds greater than 0"),
        ("ack_retry_max_ms", "x", "milliseconds greater than 0"),
        ("ack_retry_attempts", "0", "greater than 0"),
        ("concurrency_max_parallel", "0", "greater than 0"),
        (
            "concurrency_per_node_limits",
            r#"{"a": 0}"#,
            "greater than 0",
        ),
        ("concurrency_per_node_limits", "[1]", "mapping"),
        ("runtime_names", "python", "JSON"),
        ("feature_flags", "[1, 2]", "list of non-empty strings"),
        ("packages_dir", "", "directory path"),
        ("data_dir", "\u{1}", "directory path"),
        ("log_level", "loud", "one of trace, debug"),
        ("log_format", "xml", "one of text, json"),
        ("outbox_sync", "sometimes", "one of batch, always"),
        ("metrics_listen", "localhost", "IP address and port"),
        ("max_frame_bytes", "1024", "at least 65536"),
        ("reconnect_min_ms", "0", "milliseconds greater than 0"),
        ("reconnect_max_ms", "", "milliseconds greater than 0"),
        ("extra_ack_delay_ms", "-5", "0 disables the second ack"),
        ("rehandshake_delay_ms", "soon", "0 disables"),
        ("drain_grace_seconds", "-1", "0 or more"),
        ("flush_timeout_seconds", "x", "0 or more"),
        ("task_timeout_seconds", "0", "greater than 0"),
        (
            "duplicate_policy",
            "ignore",
            "one of attach, concurrency_violation",
        ),
        ("result_cache_size", "0", "greater than 0"),
        ("artifact_root", "", "directory path"),
        ("model_cache_dir", "\u{1}", "directory path"),
        ("index_dir", "a\u{7}", "directory path"),
        ("hf_endpoint", "huggingface.co", "http:// or https:// URL"),
        ("tool_allowlist", "echo,c\u{7}t", "program names"),
        ("tool_timeout_seconds", "0", "seconds greater than 0"),
        ("tool_output_bytes", "0", "bytes greater than 0"),
        ("ai_threads", "many", "0 for half the CPUs"),
    ];
    for (field, value, accepted) in cases {
        let e = env_error(field, value);
        assert!(e.contains(accepted), "{field}={value:?}: {e}");
    }
    // Every field except the secrets (covered in `secrets`) has at least one case.
    for f in FIELDS.iter().filter(|f| !SECRET_FIELDS.contains(f)) {
        assert!(
            cases.iter().any(|(c, _, _)| c == f),
            "no validation case for {f}"
        );
    }
}

#[test]
fn bad_value_from_a_file_names_the_file() {
    let w = World::new();
    let p = w.write("etc/worker.yaml", "concurrency_max_parallel: -3\n");
    assert_eq!(
        w.err(),
        format!(
            "concurrency_max_parallel: -3 from file ({}) is not valid: expected a whole number greater than 0",
            p.display()
        )
    );
}

#[test]
fn bad_value_from_cli_names_the_flag() {
    let mut w = World::new();
    w.cli("log_level", json!(3));
    let e = w.err();
    assert!(
        e.starts_with("log_level: 3 from cli --log-level is not valid: expected one of"),
        "{e}"
    );
}

#[test]
fn floats_and_booleans_are_not_whole_numbers() {
    let w = World::new();
    w.write("etc/worker.yaml", "ack_retry_attempts: 2.0\n");
    assert!(w.err().starts_with("ack_retry_attempts: 2.0 from file"));
    w.write("etc/worker.yaml", "ack_retry_attempts: true\n");
    assert!(w.err().starts_with("ack_retry_attempts: true from file"));
}

#[test]
fn reconnect_min_must_not_exceed_max() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_RECONNECT_MIN_MS", "5000")
        .env("ASTRA_WORKER_RECONNECT_MAX_MS", "1000");
    assert_eq!(
        w.err(),
        "reconnect_min_ms: \"5000\" from env ASTRA_WORKER_RECONNECT_MIN_MS is not valid: expected at most reconnect_max_ms (1000, from env ASTRA_WORKER_RECONNECT_MAX_MS)"
    );
    w.env("ASTRA_WORKER_RECONNECT_MIN_MS", "1000");
    assert_eq!(w.ok().settings.reconnect_min_ms, 1000);
}

#[test]
fn ack_retry_base_must_not_exceed_max() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_ACK_RETRY_BASE_MS", "6000");
    let e = w.err();
    assert!(e.starts_with("ack_retry_base_ms: \"6000\" from env"), "{e}");
    assert!(
        e.contains("at most ack_retry_max_ms (5000, from default)"),
        "{e}"
    );
}

#[test]
fn ws_url_without_path_gets_the_endpoint_and_a_note() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_SCHEDULER_WS_URL", "wss://sched.example:8443");
    let c = w.ok();
    assert_eq!(
        c.settings.scheduler_ws_url,
        "wss://sched.example:8443/ws/worker"
    );
    assert!(
        c.warnings
            .iter()
            .any(|m| m.contains("no path") && m.contains("/ws/worker")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn ws_url_with_path_is_kept() {
    let mut w = World::new();
    w.env(
        "ASTRA_WORKER_SCHEDULER_WS_URL",
        "ws://10.0.0.5:8080/ws/worker",
    );
    let c = w.ok();
    assert_eq!(c.settings.scheduler_ws_url, "ws://10.0.0.5:8080/ws/worker");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn accepted_spellings() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_LOG_LEVEL", "warn")
        .env("ASTRA_WORKER_AUTH_MODE", "MTLS")
        .env("ASTRA_WORKER_AUTH_FINGERPRINT", "ab:cd")
        .env("ASTRA_WORKER_DUPLICATE_POLICY", "Concurrency-Violation")
        .env("ASTRA_WORKER_HEARTBEAT_JITTER_SECONDS", "0")
        .env("ASTRA_WORKER_METRICS_LISTEN", "127.0.0.1:9100")
        .env("ASTRA_WORKER_TRANSPORT", " dummy ");
    let s = w.ok().settings;
    assert_eq!(s.log_level, LogLevel::Warning);
    assert_eq!(s.auth_mode, astra_core::v1::payloads::AuthMode::Mtls);
    assert_eq!(
        s.duplicate_policy,
        astra_core::worker::DuplicatePolicy::ConcurrencyViolation
    );
    assert_eq!(s.heartbeat_jitter_seconds, 0);
    assert_eq!(s.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(s.transport, crate::config::Transport::Dummy);
    for (raw, level) in [
        ("trace", LogLevel::Trace),
        ("DEBUG", LogLevel::Debug),
        ("Critical", LogLevel::Critical),
    ] {
        w.env("ASTRA_WORKER_LOG_LEVEL", raw);
        assert_eq!(w.ok().settings.log_level, level);
    }
}

#[test]
fn long_bad_values_are_truncated() {
    let e = env_error("tenant", &format!("{}\u{7}", "x".repeat(5000)));
    assert!(e.len() < 600, "{} chars", e.len());
    assert!(e.contains("characters)"));
}

#[test]
fn paths_are_expanded_and_made_absolute() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_PACKAGES_DIR", "~/pk");
    w.write("etc/worker.yaml", "data_dir: ./var/../state\n");
    let s = w.ok().settings;
    assert_eq!(s.packages_dir, w.path("home/pk"));
    assert_eq!(s.data_dir, w.path("work/state"));
    // Defaults are relative to the cwd too.
    let d = World::new();
    let s = d.ok().settings;
    assert_eq!(s.packages_dir, d.path("work/packages"));
    assert_eq!(s.data_dir, d.path("work/var/data"));
}

#[test]
fn tilde_without_home_is_an_error() {
    let mut w = World::new();
    w.ctx.env.remove("HOME");
    w.env("ASTRA_WORKER_DATA_DIR", "~/d");
    assert!(w.err().contains("HOME is not set"));
}
