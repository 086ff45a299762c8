//! Finding a Python interpreter that really works inside the sandbox: exists, is readable
//! and executable by the sandbox user, starts with `-I`, and is Python 3.8 or newer.

use super::error::PythonError;
use crate::sandbox::{ExitStatus, Sandbox, SpawnRequest, SAFE_PATH};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the probe runs: prints the version, fails on Pythons the bridge does not support.
const PROBE: &str = "import sys; sys.stdout.write('%d.%d.%d' % sys.version_info[:3]); \
                     sys.exit(0 if sys.version_info >= (3, 8) else 3)";
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub path: PathBuf,
    /// e.g. `3.11.2`.
    pub version: String,
}

/// Where `python` may be: itself when it has a `/`, else every match on the worker's PATH
/// and then on the sandbox's PATH, without duplicates.
fn candidates(python: &Path) -> Vec<PathBuf> {
    if python.components().count() > 1 || python.is_absolute() {
        return vec![python.to_path_buf()];
    }
    let worker_path = std::env::var_os("PATH").unwrap_or_default();
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(&worker_path).chain(std::env::split_paths(SAFE_PATH)) {
        if !dir.is_absolute() {
            continue; // a relative PATH entry depends on the cwd: never trust it
        }
        let candidate = dir.join(python);
        if !candidate.is_file() {
            continue;
        }
        let canonical = candidate
            .canonicalize()
            .unwrap_or_else(|_| candidate.clone());
        if !seen.contains(&canonical) {
            seen.push(canonical);
            out.push(candidate);
        }
    }
    out
}

fn probe(sandbox: &Sandbox, program: &Path, workdir: &Path) -> Result<String, String> {
    let req = SpawnRequest {
        program: program.to_path_buf(),
        args: vec!["-I".into(), "-c".into(), PROBE.into()],
        env: Vec::new(),
        cwd: workdir.to_path_buf(),
        feedback_pipe: false,
    };
    let mut child = sandbox.spawn(&req).map_err(|e| e.to_string())?;
    let outcome = child.supervise(Some(Instant::now() + PROBE_TIMEOUT), || false);
    // The output is a few bytes (or a short traceback): it fits in the pipe buffer, so
    // reading after the exit cannot deadlock.
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let err = err.trim();
    match outcome.status {
        ExitStatus::Exited(0) if outcome.stopped.is_none() => Ok(out.trim().to_string()),
        ExitStatus::Exited(3) => Err(format!("is Python {}, older than 3.8", out.trim())),
        status => Err(format!(
            "{status} in the sandbox{}",
            if err.is_empty() {
                String::new()
            } else {
                format!(" ({})", tail(err, 300))
            }
        )),
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The first candidate for `python` that passes the probe, or every reason why none did.
pub(crate) fn locate(
    sandbox: &Sandbox,
    python: &Path,
    workdir: &Path,
) -> Result<Interpreter, PythonError> {
    let found = candidates(python);
    if found.is_empty() {
        return Err(PythonError::NoInterpreter(format!(
            "{} was not found on PATH or {SAFE_PATH}",
            python.display()
        )));
    }
    let mut reasons = Vec::new();
    for path in found {
        match probe(sandbox, &path, workdir) {
            Ok(version) => {
                if !reasons.is_empty() {
                    tracing::info!(python = %path.display(), skipped = %reasons.join("; "), "using the first Python that works in the sandbox");
                }
                return Ok(Interpreter { path, version });
            }
            Err(why) => reasons.push(format!("{} {why}", path.display())),
        }
    }
    Err(PythonError::NoInterpreter(reasons.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_paths_are_the_only_candidate() {
        assert_eq!(
            candidates(Path::new("/nope/python3")),
            vec![PathBuf::from("/nope/python3")]
        );
        assert!(candidates(Path::new("surely-no-such-python-here")).is_empty());
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("ab", 10), "ab");
    }
}
