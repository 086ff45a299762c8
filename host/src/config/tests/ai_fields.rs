//! The executors' fields: defaults, `model_cache_dir` following `artifact_root`, the
//! documented SPLAI/HF aliases and which source wins, and the hub token never shown.

use super::World;
use crate::config::{render_show, render_show_json, Source};
use serde_json::json;
use std::path::PathBuf;

const TOKEN: &str = "hf_Zq8xSecretHubToken";

fn env_src(var: &str) -> Source {
    Source::Env { var: var.into() }
}

#[test]
fn defaults_follow_the_splai_worker() {
    let c = World::new().ok();
    let s = &c.settings;
    assert_eq!(s.artifact_root, PathBuf::from("/tmp/splai-artifacts"));
    assert_eq!(
        s.model_cache_dir,
        PathBuf::from("/tmp/splai-artifacts/models")
    );
    assert_eq!(s.hf_endpoint, "https://huggingface.co");
    assert_eq!(s.hf_token, None);
    assert_eq!(s.index_dir, None);
    assert!(s.tool_allowlist.is_empty());
    assert_eq!(
        (s.tool_timeout_seconds, s.tool_output_bytes, s.ai_threads),
        (30, 1 << 20, 0)
    );
    assert_eq!(c.source_of("model_cache_dir"), Some(&Source::Default));
}

#[test]
fn model_cache_dir_follows_artifact_root_from_any_source() {
    let mut w = World::new();
    w.write("etc/worker.yaml", "artifact_root: ./art\n");
    let c = w.ok();
    assert_eq!(c.settings.artifact_root, w.path("work/art"));
    assert_eq!(c.settings.model_cache_dir, w.path("work/art/models"));
    w.env("SPLAI_MODEL_CACHE_DIR", "~/models");
    let c = w.ok();
    assert_eq!(c.settings.model_cache_dir, w.path("home/models"));
    assert_eq!(
        c.source_of("model_cache_dir"),
        Some(&env_src("SPLAI_MODEL_CACHE_DIR"))
    );
}

#[test]
fn aliases_are_honoured_and_lose_to_every_astra_source() {
    let mut w = World::new();
    w.env("SPLAI_ARTIFACT_ROOT", "/a")
        .env("HF_ENDPOINT", "http://mirror:8080/")
        .env("HF_TOKEN", TOKEN)
        .env("SPLAI_TOOL_ALLOWLIST", "echo, cat");
    let c = w.ok();
    assert_eq!(c.settings.artifact_root, PathBuf::from("/a"));
    assert_eq!(c.settings.model_cache_dir, PathBuf::from("/a/models"));
    assert_eq!(c.settings.hf_endpoint, "http://mirror:8080");
    assert_eq!(
        c.settings.hf_token.as_ref().map(|t| t.expose()),
        Some(TOKEN)
    );
    assert_eq!(c.settings.tool_allowlist, vec!["echo", "cat"]);
    for (field, var) in [
        ("artifact_root", "SPLAI_ARTIFACT_ROOT"),
        ("hf_endpoint", "HF_ENDPOINT"),
        ("hf_token", "HF_TOKEN"),
        ("tool_allowlist", "SPLAI_TOOL_ALLOWLIST"),
    ] {
        assert_eq!(c.source_of(field), Some(&env_src(var)), "{field}");
    }

    // The ASTRA_WORKER_ name beats the alias...
    w.env("ASTRA_WORKER_ARTIFACT_ROOT", "/b")
        .env("ASTRA_WORKER_HF_TOKEN", "other-token");
    let c = w.ok();
    assert_eq!(c.settings.artifact_root, PathBuf::from("/b"));
    assert_eq!(
        c.source_of("artifact_root"),
        Some(&env_src("ASTRA_WORKER_ARTIFACT_ROOT"))
    );
    assert_eq!(
        c.settings.hf_token.as_ref().map(|t| t.expose()),
        Some("other-token")
    );
    // ...the file beats both, and a flag beats the file.
    w.write("etc/worker.yaml", "hf_endpoint: https://file.example\n");
    assert_eq!(w.ok().settings.hf_endpoint, "https://file.example");
    w.cli("hf_endpoint", json!("http://cli.example"));
    assert_eq!(w.ok().settings.hf_endpoint, "http://cli.example");
}

#[test]
fn an_alias_beats_dotenv_and_an_empty_alias_is_unset() {
    let mut w = World::new();
    w.write("work/.env", "ASTRA_WORKER_ARTIFACT_ROOT=/from-dotenv\n");
    w.env("HF_TOKEN", "  ")
        .env("SPLAI_ARTIFACT_ROOT", "/from-alias");
    let c = w.ok();
    assert_eq!(c.settings.hf_token, None);
    assert_eq!(c.settings.artifact_root, PathBuf::from("/from-alias"));
    // Aliases are exact names: other tools read them case-sensitively too.
    let mut w = World::new();
    w.env("hf_token", TOKEN);
    assert_eq!(w.ok().settings.hf_token, None);
}

#[test]
fn a_bad_alias_value_names_the_field_and_the_variable() {
    let mut w = World::new();
    w.env("HF_ENDPOINT", "ftp://x");
    let e = w.err();
    assert!(
        e.starts_with("hf_endpoint: \"ftp://x\" from env HF_ENDPOINT is not valid: expected an http:// or https:// URL"),
        "{e}"
    );
}

#[test]
fn the_hub_token_is_hidden_everywhere() {
    let mut w = World::new();
    w.env("HF_TOKEN", TOKEN);
    let c = w.ok();
    let show = render_show(&c);
    assert!(
        show.lines()
            .any(|l| l.starts_with("hf_token = \"***\"") && l.ends_with("# env HF_TOKEN")),
        "{show}"
    );
    for text in [
        show,
        render_show_json(&c).to_string(),
        format!("{c:?}"),
        format!("{:?}", crate::ai::AiSettings::from_config(&c.settings)),
    ] {
        assert!(
            !text.contains(TOKEN) && !text.contains(&TOKEN[..10]),
            "{text}"
        );
    }
    // Nor in the error about a bad token.
    let mut w = World::new();
    w.env("ASTRA_WORKER_HF_TOKEN", &format!("{TOKEN}\u{7}"));
    let e = w.err();
    assert!(
        e.starts_with("hf_token: *** from env ASTRA_WORKER_HF_TOKEN"),
        "{e}"
    );
    assert!(!e.contains(&TOKEN[..10]), "{e}");
}
