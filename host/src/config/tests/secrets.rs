//! The auth token must not appear in `config show`, Debug output, warnings or errors.

use super::World;
use crate::config::{render_show, render_show_json};
use serde_json::json;

const TOKEN: &str = "s3cr3t-T0KEN-7f9a";

fn assert_hidden(text: &str) {
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    // Substrings too, in case something truncates or slices it.
    assert!(!text.contains(&TOKEN[..8]), "token prefix leaked: {text}");
}

#[test]
fn token_hidden_in_show_debug_and_json() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_AUTH_TOKEN", TOKEN);
    let c = w.ok();
    assert_eq!(
        c.settings.auth_token.as_ref().map(|s| s.expose()),
        Some(TOKEN)
    );
    let show = render_show(&c);
    assert_hidden(&show);
    assert!(
        show.lines().any(|l| l.starts_with("auth_token = \"***\"")
            && l.ends_with("# env ASTRA_WORKER_AUTH_TOKEN")),
        "{show}"
    );
    assert_hidden(&render_show_json(&c).to_string());
    assert_hidden(&format!("{c:?}"));
    assert_hidden(&format!("{:?}", c.settings));
    assert_hidden(&format!(
        "{:?}",
        c.settings
            .to_worker_config("h", astra_core::WallClock::new(0), 1)
    ));
}

#[test]
fn unset_token_shows_unset() {
    let show = render_show(&World::new().ok());
    assert!(
        show.lines().any(|l| l.starts_with("auth_token = (unset)")),
        "{show}"
    );
}

#[test]
fn token_hidden_when_another_field_is_bad() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_AUTH_TOKEN", TOKEN)
        .env("ASTRA_WORKER_TENANT", "");
    assert_hidden(&w.err());
    assert_hidden(&format!("{:?}", w.load().unwrap_err()));
}

#[test]
fn token_hidden_when_the_token_itself_is_bad() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_AUTH_TOKEN", &format!("{TOKEN}\u{7}"));
    let e = w.err();
    assert_hidden(&e);
    assert!(
        e.starts_with("auth_token: *** from env ASTRA_WORKER_AUTH_TOKEN is not valid"),
        "{e}"
    );

    let mut w = World::new();
    w.cli("auth_token", json!([TOKEN]));
    let e = w.err();
    assert_hidden(&e);
    assert!(
        e.starts_with("auth_token: *** from cli --auth-token"),
        "{e}"
    );
}

#[test]
fn token_hidden_in_dotenv_parse_errors() {
    let w = World::new();
    w.write(
        "work/.env",
        &format!("ASTRA_WORKER_TENANT=a\nASTRA_WORKER_AUTH_TOKEN='{TOKEN}\n"),
    );
    let e = w.err();
    assert_hidden(&e);
    assert!(e.contains(".env"), "{e}");
}

#[test]
fn token_hidden_in_warnings_of_misspelt_names() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_TOKEN", TOKEN);
    w.write("etc/worker.yaml", &format!("authtoken: {TOKEN}\n"));
    let c = w.ok();
    assert!(c.warnings.len() >= 2, "{:?}", c.warnings);
    assert_hidden(&c.warnings.join("\n"));
    assert_hidden(&render_show(&c));
}

#[test]
fn token_hidden_in_context_debug() {
    let mut w = World::new();
    w.env("ASTRA_WORKER_AUTH_TOKEN", TOKEN)
        .cli("auth_token", json!(TOKEN));
    let shown = format!("{:?}", w.ctx);
    assert_hidden(&shown);
    assert!(shown.contains("ASTRA_WORKER_AUTH_TOKEN"), "{shown}");
}
