//! `astra-worker config show`: the effective configuration and where each value came from.

use crate::app::cli::Overrides;
use crate::app::settings::load_settings;
use std::process::ExitCode;

pub fn show(o: &Overrides, json: bool) -> ExitCode {
    match load_settings(o) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            if json {
                let v = crate::config::render_show_json(&loaded);
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", crate::config::render_show(&loaded));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
