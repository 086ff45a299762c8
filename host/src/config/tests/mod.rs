//! Tests of the configuration loader, run against temp dirs and injected env maps only.

mod ai_fields;
mod files;
mod mapping;
mod precedence;
mod secrets;
mod validation;

use super::{load_with, ConfigError, LoadContext, LoadedConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A hermetic world: a temp dir holding `home/`, `work/` (the cwd) and `etc/`.
pub(super) struct World {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub ctx: LoadContext,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        for d in ["home", "work", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let env = BTreeMap::from([("HOME".to_string(), root.join("home").display().to_string())]);
        let mut ctx = LoadContext::new(env, root.join("work"));
        ctx.file_candidates = vec![
            root.join("etc/worker.yaml"),
            PathBuf::from("./config/worker.yaml"),
        ];
        World {
            _tmp: tmp,
            root,
            ctx,
        }
    }

    /// Writes `text` at `rel` under the root, creating parents.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn env(&mut self, k: &str, v: &str) -> &mut Self {
        self.ctx.env.insert(k.to_string(), v.to_string());
        self
    }

    pub fn cli(&mut self, field: &str, v: serde_json::Value) -> &mut Self {
        self.ctx.overrides.insert(field.to_string(), v);
        self
    }

    pub fn load(&self) -> Result<LoadedConfig, ConfigError> {
        load_with(&self.ctx)
    }

    pub fn ok(&self) -> LoadedConfig {
        match self.load() {
            Ok(c) => c,
            Err(e) => panic!("expected a valid config, got: {e}"),
        }
    }

    pub fn err(&self) -> String {
        match self.load() {
            Ok(c) => panic!("expected an error, got {:?}", c.settings),
            Err(e) => e.to_string(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

pub(super) fn show_path(p: &Path) -> String {
    p.display().to_string()
}
