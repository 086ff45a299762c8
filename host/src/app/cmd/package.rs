//! `astra-worker package install|list|remove`: the operator's side of the package store,
//! with exactly the checks `pkg.install` applies (sha256, formats detected by content, the
//! hostile-archive rules, atomic replacement). A running worker loads what is on disk at
//! start; over the wire, `pkg.install` also re-registers at once.

use crate::app::cli::PackageCmd;
use crate::app::settings::load_settings;
use crate::packages::{install, uninstall, InstallLimits, PackageStore};
use crate::runner::{BUILTIN_PACKAGE, BUILTIN_VERSION};
use std::process::ExitCode;

pub fn package(cmd: PackageCmd) -> ExitCode {
    let overrides = match &cmd {
        PackageCmd::Install { overrides, .. }
        | PackageCmd::List { overrides }
        | PackageCmd::Remove { overrides, .. } => overrides,
    };
    let settings = match load_settings(overrides) {
        Ok(l) => l.settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match PackageStore::open(&settings.packages_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: packages_dir {}: {e}",
                settings.packages_dir.display()
            );
            return ExitCode::from(2);
        }
    };
    match cmd {
        PackageCmd::Install { source, sha256, .. } => match install(
            &store,
            &source,
            None,
            sha256.as_deref(),
            &InstallLimits::default(),
        ) {
            Ok(p) => {
                let types: Vec<&str> = p
                    .handlers
                    .iter()
                    .map(|h| h.key.node_type.as_str())
                    .collect();
                println!(
                    "installed {} {} into {}",
                    p.name,
                    p.version,
                    p.dir.display()
                );
                println!("  node types: {}", types.join(", "));
                println!("  a running worker loads it at its next start (or send pkg.install over the control plane)");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot install {source}: {e}");
                ExitCode::from(1)
            }
        },
        PackageCmd::List { .. } => {
            println!("{:<32} {:<14} {:<10} location", "name", "version", "status");
            println!(
                "{:<32} {:<14} {:<10} (compiled in)",
                BUILTIN_PACKAGE, BUILTIN_VERSION, "installed"
            );
            for p in store.list() {
                println!(
                    "{:<32} {:<14} {:<10} {}",
                    p.name,
                    p.version,
                    format!("{:?}", p.status).to_lowercase(),
                    p.dir.display()
                );
                if let Some(e) = &p.error {
                    println!("    error: {e}");
                }
            }
            ExitCode::SUCCESS
        }
        PackageCmd::Remove { name, version, .. } => {
            match uninstall(&store, &name, Some(&version)) {
                Ok(p) => {
                    println!("removed {} {} from {}", p.name, p.version, p.dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot remove {name} {version}: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
