//! Config file search and every way reading it can fail.

use super::{show_path, World};
use crate::config::ConfigError;

#[test]
fn first_existing_candidate_is_used() {
    let w = World::new();
    w.write("work/config/worker.yaml", "tenant: second\n");
    assert_eq!(w.ok().settings.tenant, "second");
    w.write("etc/worker.yaml", "tenant: first\n");
    let c = w.ok();
    assert_eq!(c.settings.tenant, "first");
    assert_eq!(c.settings.config_path, Some(w.path("etc/worker.yaml")));
}

#[test]
fn no_file_means_defaults_and_no_config_path() {
    let c = World::new().ok();
    assert_eq!(c.settings.config_path, None);
    assert_eq!(c.settings.tenant, "default");
}

#[test]
fn unsupported_candidate_suffix_is_skipped() {
    let mut w = World::new();
    w.write("etc/worker.toml", "tenant = 'toml'\n");
    w.write("etc/worker.json", r#"{"tenant": "json"}"#);
    w.ctx.file_candidates = vec![w.path("etc/worker.toml"), w.path("etc/worker.json")];
    let c = w.ok();
    assert_eq!(c.settings.tenant, "json");
    assert_eq!(c.settings.config_path, Some(w.path("etc/worker.json")));
}

#[test]
fn explicit_file_from_env_with_tilde() {
    let mut w = World::new();
    w.write("home/my.yml", "worker_id: tilde\n");
    w.write("etc/worker.yaml", "worker_id: searched\n");
    w.env("ASTRA_WORKER_CONFIG_FILE", "~/my.yml");
    let c = w.ok();
    assert_eq!(c.settings.worker_id, "tilde");
    assert_eq!(c.settings.config_path, Some(w.path("home/my.yml")));
}

#[test]
fn explicit_missing_file_is_an_error_naming_it() {
    let mut w = World::new();
    w.write("etc/worker.yaml", "worker_id: searched\n");
    w.env("ASTRA_WORKER_CONFIG_FILE", "/definitely/not/here.yaml");
    let e = w.err();
    assert!(
        e.contains("/definitely/not/here.yaml") && e.contains("ASTRA_WORKER_CONFIG_FILE"),
        "{e}"
    );
}

#[test]
fn explicit_unsupported_file_is_an_error_naming_it() {
    let mut w = World::new();
    let p = w.write("etc/worker.toml", "x = 1\n");
    w.ctx.config_file = Some(p.clone());
    let e = w.err();
    assert!(
        e.contains(&show_path(&p)) && e.contains(".yaml, .yml or .json"),
        "{e}"
    );
}

#[test]
fn empty_yaml_is_an_empty_mapping() {
    let w = World::new();
    w.write("etc/worker.yaml", "# nothing here\n");
    let c = w.ok();
    assert_eq!(c.settings.config_path, Some(w.path("etc/worker.yaml")));
    assert_eq!(c.settings.worker_id, "worker-local");
}

#[test]
fn non_mapping_top_level_is_an_error() {
    let w = World::new();
    let p = w.write("etc/worker.yaml", "- a\n- b\n");
    let e = w.load().unwrap_err();
    assert!(matches!(e, ConfigError::FileNotMapping { .. }));
    let e = e.to_string();
    assert!(e.contains(&show_path(&p)) && e.contains("a list"), "{e}");
}

#[test]
fn yaml_parse_error_names_file_and_line() {
    let w = World::new();
    let p = w.write("etc/worker.yaml", "tenant: a\nworker_id: [unclosed\nx: 1\n");
    let e = w.err();
    assert!(
        e.contains(&show_path(&p)) && e.contains("YAML") && e.contains("line"),
        "{e}"
    );
}

#[test]
fn json_parse_error_names_file_and_line() {
    let mut w = World::new();
    let p = w.write("etc/worker.json", "{\n  \"tenant\": \"a\",\n  oops\n}\n");
    w.ctx.file_candidates = vec![p.clone()];
    let e = w.err();
    assert!(
        e.contains(&show_path(&p)) && e.contains("JSON") && e.contains("line 3"),
        "{e}"
    );
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let w = World::new();
    // A directory with the file's name exists but cannot be read as a file (root ignores
    // permission bits, so chmod would not make this test meaningful).
    std::fs::create_dir_all(w.path("etc/worker.yaml")).unwrap();
    let e = w.load().unwrap_err();
    assert!(matches!(e, ConfigError::FileUnreadable { .. }), "{e}");
    assert!(e
        .to_string()
        .contains(&show_path(&w.path("etc/worker.yaml"))));
}

#[test]
fn non_utf8_file_is_unreadable() {
    let w = World::new();
    std::fs::write(w.path("etc/worker.yaml"), b"tenant: \xff\xfe\n").unwrap();
    assert!(matches!(
        w.load().unwrap_err(),
        ConfigError::FileUnreadable { .. }
    ));
}

#[test]
fn bad_dotenv_line_is_an_error_naming_file_and_line() {
    let w = World::new();
    let p = w.write(
        "work/.env",
        "ASTRA_WORKER_TENANT=ok\nASTRA_WORKER_WORKER_ID='unterminated\n",
    );
    let e = w.err();
    assert!(e.contains(&show_path(&p)), "{e}");
}
