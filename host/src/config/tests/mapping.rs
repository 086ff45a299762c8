//! `to_worker_config`, `config show` layout, and the field list staying complete.

use super::World;
use crate::config::{render_show, render_show_json, WorkerSettings, FIELDS};
use astra_core::WallClock;
use std::time::Duration;

#[test]
fn fields_list_matches_the_struct() {
    let v = serde_json::to_value(WorkerSettings::default()).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.retain(|k| *k != "config_path");
    let mut fields = FIELDS.to_vec();
    keys.sort();
    fields.sort();
    assert_eq!(keys, fields);
}

#[test]
fn defaults_map_to_the_core_defaults() {
    let s = World::new().ok().settings;
    let got = s.to_worker_config("localhost", WallClock::new(0), 0);
    let want = astra_core::worker::WorkerConfig::default();
    // WorkerConfig has no PartialEq; compare the Debug forms (the token is None in both).
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
}

#[test]
fn every_knob_is_mapped() {
    let mut w = World::new();
    for (k, v) in [
        ("WORKER_ID", "w7"),
        ("TENANT", "t7"),
        ("WORKER_VERSION", "2.0.0"),
        ("HANDSHAKE_PROTOCOL_VERSION", "3"),
        ("AUTH_MODE", "mtls"),
        ("AUTH_TOKEN", "tok"),
        ("AUTH_FINGERPRINT", "fp"),
        ("HEARTBEAT_INTERVAL_SECONDS", "7"),
        ("HEARTBEAT_JITTER_SECONDS", "0"),
        ("ACK_RETRY_BASE_MS", "150"),
        ("ACK_RETRY_MAX_MS", "900"),
        ("ACK_RETRY_ATTEMPTS", "9"),
        ("EXTRA_ACK_DELAY_MS", "0"),
        ("REHANDSHAKE_DELAY_MS", "0"),
        ("RECONNECT_MIN_MS", "100"),
        ("RECONNECT_MAX_MS", "800"),
        ("CONCURRENCY_MAX_PARALLEL", "4"),
        ("CONCURRENCY_PER_NODE_LIMITS", r#"{"n": 2}"#),
        ("RUNTIME_NAMES", r#"["python"]"#),
        ("FEATURE_FLAGS", r#"["x"]"#),
        ("DUPLICATE_POLICY", "concurrency_violation"),
        ("DRAIN_GRACE_SECONDS", "3"),
        ("FLUSH_TIMEOUT_SECONDS", "4"),
        ("MAX_FRAME_BYTES", "100000"),
        ("RESULT_CACHE_SIZE", "12"),
    ] {
        w.env(&format!("ASTRA_WORKER_{k}"), v);
    }
    let c = w
        .ok()
        .settings
        .to_worker_config("host-a", WallClock::new(42), 99);
    assert_eq!(
        (
            c.worker_id.as_str(),
            c.tenant.as_str(),
            c.worker_version.as_str()
        ),
        ("w7", "t7", "2.0.0")
    );
    assert_eq!(
        (c.hostname.as_str(), c.protocol_version, c.seed, c.wall),
        ("host-a", 3, 99, WallClock::new(42))
    );
    assert_eq!(c.auth_mode, astra_core::v1::payloads::AuthMode::Mtls);
    assert_eq!(c.auth_token.as_ref().map(|t| t.expose()), Some("tok"));
    assert_eq!(c.auth_fingerprint.as_deref(), Some("fp"));
    assert_eq!(
        (c.heartbeat_interval, c.heartbeat_jitter),
        (Duration::from_secs(7), Duration::ZERO)
    );
    assert_eq!(
        (c.ack_retry_base, c.ack_retry_max, c.ack_retry_attempts),
        (Duration::from_millis(150), Duration::from_millis(900), 9)
    );
    assert!(c.extra_ack_delays.is_empty());
    assert_eq!(c.rehandshake_delay, None);
    assert_eq!(
        (c.reconnect_min, c.reconnect_max),
        (Duration::from_millis(100), Duration::from_millis(800))
    );
    assert_eq!(c.max_parallel, 4);
    assert_eq!(c.per_node_limits.get("n"), Some(&2));
    assert_eq!(
        (c.runtimes, c.features),
        (vec!["python".to_string()], vec!["x".to_string()])
    );
    assert_eq!(
        c.duplicate_policy,
        astra_core::worker::DuplicatePolicy::ConcurrencyViolation
    );
    assert_eq!(
        (c.drain_grace, c.flush_timeout),
        (Duration::from_secs(3), Duration::from_secs(4))
    );
    assert_eq!((c.max_frame_bytes, c.result_cache), (100_000, 12));
}

#[test]
fn nonzero_delays_are_mapped() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_EXTRA_ACK_DELAY_MS", "350")
        .env("ASTRA_WORKER_REHANDSHAKE_DELAY_MS", "2500");
    let c = w.ok().settings.to_worker_config("h", WallClock::new(0), 0);
    assert_eq!(c.extra_ack_delays, vec![Duration::from_millis(350)]);
    assert_eq!(c.rehandshake_delay, Some(Duration::from_millis(2500)));
}

#[test]
fn show_lists_every_field_in_order_with_its_source() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_TENANT", "acme");
    w.write("etc/worker.yaml", "unknown_thing: 1\n");
    let c = w.ok();
    let show = render_show(&c);
    let lines: Vec<&str> = show.lines().collect();
    for (i, f) in FIELDS.iter().enumerate() {
        assert!(
            lines[i].starts_with(&format!("{f} = ")),
            "line {i}: {}",
            lines[i]
        );
        assert!(lines[i].contains("    # "), "{}", lines[i]);
    }
    assert!(lines[FIELDS.len()].starts_with(&format!(
        "config_path = \"{}\"",
        w.path("etc/worker.yaml").display()
    )));
    let tenant = lines.iter().find(|l| l.starts_with("tenant = ")).unwrap();
    assert!(
        tenant.starts_with("tenant = \"acme\"") && tenant.ends_with("# env ASTRA_WORKER_TENANT"),
        "{tenant}"
    );
    let hb = lines
        .iter()
        .find(|l| l.starts_with("heartbeat_interval_seconds = "))
        .unwrap();
    assert!(
        hb.starts_with("heartbeat_interval_seconds = 30 ") && hb.ends_with("# default"),
        "{hb}"
    );
    assert!(
        show.contains("# warning: unknown setting `unknown_thing`"),
        "{show}"
    );
    // The `#` column is aligned.
    let cols: std::collections::BTreeSet<usize> = lines
        .iter()
        .filter_map(|l| l.find("# "))
        .filter(|&c| c > 0)
        .collect();
    assert_eq!(cols.len(), 1, "{show}");

    let j = render_show_json(&c);
    assert_eq!(j["fields"]["tenant"]["value"], "acme");
    assert_eq!(j["fields"]["tenant"]["source"], "env ASTRA_WORKER_TENANT");
    assert_eq!(j["fields"]["auth_token"]["value"], serde_json::Value::Null);
    assert_eq!(j["fields"].as_object().unwrap().len(), FIELDS.len());
    assert_eq!(j["warnings"].as_array().unwrap().len(), 1);
}
