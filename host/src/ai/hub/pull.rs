//! Pulling a model (some files, or the whole repository) into the hub cache layout, and
//! telling whether it is already installed.
//!
//! Partial data only ever lives in `blobs/<etag>.incomplete`; a blob gets its real name
//! after its size (and sha256, when the etag is one) checked out, and `refs/<revision>` plus
//! the completeness record `.astra/<commit>.json` are written after the last file. So an
//! interrupted or failed pull is never mistaken for an installed model, and the next pull
//! continues the incomplete blob with a `Range` request.

use super::client::{FileMeta, HubClient};
use super::error::HubError;
use crate::ai::cache::{self, is_commit};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const CHUNK: usize = 64 * 1024;
const RECORD_DIR: &str = ".astra";

/// What to pull. `files` empty means every file of the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub repo: String,
    pub revision: String,
    pub files: Vec<String>,
    /// Tries per file; a later try resumes where the previous one stopped.
    pub attempts: u32,
}

impl PullRequest {
    pub fn new(repo: &str, revision: &str, files: Vec<String>) -> PullRequest {
        PullRequest {
            repo: repo.to_string(),
            revision: revision.to_string(),
            files,
            attempts: 3,
        }
    }

    fn validate(&self) -> Result<(), HubError> {
        cache::check_repo(&self.repo)?;
        cache::check_revision(&self.revision)?;
        for f in &self.files {
            cache::check_file(f)?;
        }
        Ok(())
    }
}

/// A model in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub commit: String,
    /// `<cache>/models--org--name/snapshots/<commit>`.
    pub snapshot: PathBuf,
    pub files: Vec<String>,
    /// Bytes fetched by this pull (0 when everything was present).
    pub downloaded_bytes: u64,
    pub installed_now: bool,
}

/// Where a pull is, for progress bars and `feedback` frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub file: String,
    /// 1-based.
    pub file_index: usize,
    pub file_count: usize,
    pub file_done: u64,
    pub file_size: u64,
    pub total_done: u64,
    pub total_size: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    commit: String,
    files: BTreeSet<String>,
}

fn record_path(repo_dir: &Path, commit: &str) -> PathBuf {
    repo_dir.join(RECORD_DIR).join(format!("{commit}.json"))
}

/// The installed model, if `req` is fully present: its revision resolves to a commit whose
/// snapshot holds every requested file (or, with no files named, every file a completed
/// whole-repository pull recorded). Never touches the network.
pub fn installed(cache_dir: &Path, req: &PullRequest) -> Result<Option<Pulled>, HubError> {
    req.validate()?;
    let Some(commit) = cache::hub_commit(cache_dir, &req.repo, &req.revision)? else {
        return Ok(None);
    };
    let repo_dir = cache::hub_repo_dir(cache_dir, &req.repo)?;
    let snapshot = repo_dir.join("snapshots").join(&commit);
    let files: Vec<String> = if req.files.is_empty() {
        let Ok(text) = fs::read_to_string(record_path(&repo_dir, &commit)) else {
            return Ok(None);
        };
        match serde_json::from_str::<Record>(&text) {
            Ok(r) if r.commit == commit => r.files.into_iter().collect(),
            _ => return Ok(None),
        }
    } else {
        req.files.clone()
    };
    // Each entry must resolve (through its symlink) to a complete blob: a blob only gets
    // its name once complete, so an existing target means a complete file.
    for f in &files {
        if cache::check_file(f).is_err() || !snapshot.join(f).is_file() {
            return Ok(None);
        }
    }
    Ok(Some(Pulled {
        commit,
        snapshot,
        files,
        downloaded_bytes: 0,
        installed_now: false,
    }))
}

/// Creates `dir` and checks that, symlinks resolved, it is still inside `root`.
fn contained_dir(root: &Path, dir: &Path) -> Result<(), HubError> {
    fs::create_dir_all(dir).map_err(HubError::io(dir))?;
    let real_root = fs::canonicalize(root).map_err(HubError::io(root))?;
    let real = fs::canonicalize(dir).map_err(HubError::io(dir))?;
    if real.starts_with(&real_root) {
        Ok(())
    } else {
        Err(HubError::Escape {
            path: dir.to_path_buf(),
        })
    }
}

fn valid_etag(etag: &str) -> bool {
    (1..=128).contains(&etag.len()) && etag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn sha256_file(path: &Path) -> Result<String, HubError> {
    let mut f = File::open(path).map_err(HubError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).map_err(HubError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Downloads `req` into `cache_dir` (hub layout). `progress` is called as bytes arrive and
/// cancels the pull by returning `false` (what was fetched stays resumable).
pub fn pull(
    client: &HubClient,
    cache_dir: &Path,
    req: &PullRequest,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Pulled, HubError> {
    req.validate()?;
    let repo_dir = cache::hub_repo_dir(cache_dir, &req.repo)?;
    fs::create_dir_all(cache_dir).map_err(HubError::io(cache_dir))?;
    contained_dir(cache_dir, &repo_dir)?;

    // Pin the commit first, so every file comes from the same one.
    let (pin, files) = if req.files.is_empty() {
        let (commit, files) = client.list(&req.repo, &req.revision)?;
        let mut files: Vec<String> = files
            .into_iter()
            .filter(|f| cache::check_file(f).is_ok())
            .collect();
        files.sort();
        (Some(commit), files)
    } else {
        (None, req.files.clone())
    };
    let mut metas: Vec<(String, FileMeta)> = Vec::new();
    for f in &files {
        let rev = pin.as_deref().unwrap_or(&req.revision);
        let meta = client.head(&req.repo, rev, f)?;
        let bad = |problem: String| HubError::Protocol {
            url: meta.url.clone(),
            problem,
        };
        if !is_commit(&meta.commit) {
            return Err(bad(format!(
                "x-repo-commit {:?} is not a commit hash",
                meta.commit
            )));
        }
        if !valid_etag(&meta.etag) {
            return Err(bad(format!("etag {:?} is not a blob id", meta.etag)));
        }
        if let Some((_, first)) = metas.first() {
            if first.commit != meta.commit {
                return Err(bad(format!(
                    "the revision moved during the download ({} then {}); retry",
                    first.commit, meta.commit
                )));
            }
        }
        metas.push((f.clone(), meta));
    }
    let commit = match (metas.first(), pin) {
        (Some((_, m)), _) => m.commit.clone(),
        (None, Some(c)) if is_commit(&c) => c.to_ascii_lowercase(),
        (None, _) => {
            return Err(HubError::Protocol {
                url: client.endpoint().to_string(),
                problem: format!("{}@{} has no files", req.repo, req.revision),
            })
        }
    };

    let blobs = repo_dir.join("blobs");
    let snapshot = repo_dir.join("snapshots").join(&commit);
    contained_dir(&repo_dir, &blobs)?;
    contained_dir(&repo_dir, &snapshot)?;
    let total_size: u64 = metas.iter().map(|(_, m)| m.size).sum();
    let mut total_done = 0u64;
    let mut downloaded = 0u64;
    let count = metas.len();
    for (i, (file, meta)) in metas.iter().enumerate() {
        let mut p = Progress {
            file: file.clone(),
            file_index: i + 1,
            file_count: count,
            file_done: 0,
            file_size: meta.size,
            total_done,
            total_size,
        };
        let blob = blobs.join(&meta.etag);
        let have = fs::metadata(&blob).map(|m| m.is_file() && m.len() == meta.size);
        if !have.unwrap_or(false) {
            let mut attempt = 0;
            loop {
                attempt += 1;
                p.total_done = total_done;
                match fetch_blob(client, meta, &blob, file, &mut p, progress) {
                    Ok(n) => {
                        downloaded += n;
                        break;
                    }
                    Err(e @ (HubError::Http { .. } | HubError::Protocol { .. }))
                        if attempt < req.attempts.max(1) =>
                    {
                        tracing::warn!(repo = %req.repo, file = %file, attempt, error = %e, "download interrupted; resuming");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        link(&repo_dir, &snapshot, file, &meta.etag)?;
        total_done += meta.size;
        p.file_done = meta.size;
        p.total_done = total_done;
        if !progress(&p) {
            return Err(HubError::Cancelled);
        }
    }

    if !is_commit(&req.revision) {
        let refs = repo_dir.join("refs");
        let ref_path = refs.join(&req.revision);
        if let Some(parent) = ref_path.parent() {
            contained_dir(&repo_dir, parent)?;
        }
        write_atomic(&ref_path, commit.as_bytes())?;
    }
    let record = repo_dir.join(RECORD_DIR);
    contained_dir(&repo_dir, &record)?;
    let path = record_path(&repo_dir, &commit);
    let mut rec = fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Record>(&t).ok())
        .filter(|r| r.commit == commit)
        .unwrap_or(Record {
            commit: commit.clone(),
            files: BTreeSet::new(),
        });
    // Only a whole-repository pull may vouch for "every file"; named files are checked
    // one by one by `installed`.
    if req.files.is_empty() {
        rec.files = files.iter().cloned().collect();
        let text = serde_json::to_vec_pretty(&rec).map_err(|e| HubError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &text)?;
    }
    Ok(Pulled {
        commit,
        snapshot,
        files,
        downloaded_bytes: downloaded,
        installed_now: true,
    })
}

/// Fetches one blob into `<blob>.incomplete` (resuming it), checks it and renames it.
/// Returns the bytes transferred.
fn fetch_blob(
    client: &HubClient,
    meta: &FileMeta,
    blob: &Path,
    file: &str,
    p: &mut Progress,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<u64, HubError> {
    // `p.total_done` is the total before this file; it advances as bytes arrive.
    let base = p.total_done;
    let inc = blob.with_file_name(format!("{}.incomplete", meta.etag));
    let mut have = fs::metadata(&inc).map(|m| m.len()).unwrap_or(0);
    if have > meta.size {
        have = 0;
    }
    let mut fetched = 0u64;
    if have < meta.size || meta.size == 0 {
        let (partial, mut body) = client.get_from(&meta.url, have)?;
        let mut out = if partial && have > 0 {
            OpenOptions::new().append(true).open(&inc)
        } else {
            have = 0;
            File::create(&inc)
        }
        .map_err(HubError::io(&inc))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(HubError::Http {
                        url: meta.url.clone(),
                        reason: format!("connection broke after {have} of {} bytes of {file} ({e}); the next try resumes", meta.size),
                    })
                }
            };
            if have + n as u64 > meta.size {
                drop(out);
                let _ = fs::remove_file(&inc);
                return Err(HubError::Protocol {
                    url: meta.url.clone(),
                    problem: format!("{file} is longer than the {} bytes announced", meta.size),
                });
            }
            out.write_all(&buf[..n]).map_err(HubError::io(&inc))?;
            have += n as u64;
            fetched += n as u64;
            p.file_done = have;
            p.total_done = base + have;
            if !progress(p) {
                return Err(HubError::Cancelled);
            }
        }
        out.sync_all().map_err(HubError::io(&inc))?;
        if have != meta.size {
            return Err(HubError::Http {
                url: meta.url.clone(),
                reason: format!(
                    "connection closed after {have} of {} bytes of {file}; the next try resumes",
                    meta.size
                ),
            });
        }
    }
    if meta.etag.len() == 64 && meta.etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        let actual = sha256_file(&inc)?;
        if !actual.eq_ignore_ascii_case(&meta.etag) {
            let _ = fs::remove_file(&inc);
            return Err(HubError::Checksum {
                file: file.to_string(),
                expected: meta.etag.clone(),
                actual,
            });
        }
    }
    fs::rename(&inc, blob).map_err(HubError::io(blob))?;
    Ok(fetched)
}

/// `snapshots/<commit>/<file>` → `../../blobs/<etag>` (one more `..` per subdirectory),
/// replaced atomically.
fn link(repo_dir: &Path, snapshot: &Path, file: &str, etag: &str) -> Result<(), HubError> {
    let dest = snapshot.join(file);
    let parent = dest.parent().unwrap_or(snapshot);
    contained_dir(repo_dir, parent)?;
    let depth = 2 + file.matches('/').count();
    let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
    let tmp = parent.join(format!(
        ".{}.link-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).map_err(HubError::io(&tmp))?;
    fs::rename(&tmp, &dest).map_err(HubError::io(&dest))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(HubError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(HubError::io(path))
}
