//! Fetches a package archive named by `pkg.install`'s `url` (an `http(s)://` URL, a `file://`
//! URL or a plain path) into a private file, hashing it on the way.
//!
//! Local files are copied too, not read in place: the copy is what gets hashed *and*
//! extracted, so nobody can swap the file between the checksum and the unpacking.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bounds on fetching one archive.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Largest archive accepted, downloaded or local.
    pub max_bytes: u64,
    /// Whole-request deadline for HTTP downloads (connect to last byte).
    pub timeout: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_bytes: 256 * 1024 * 1024,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Where an archive comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Http(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("pkg.install has no url: give an http(s):// or file:// URL or a local path to the package archive")]
    Missing,
    #[error("unsupported URL scheme {scheme:?} in {url:?}; use http://, https://, file:// or a plain path")]
    UnsupportedScheme { scheme: String, url: String },
    #[error("bad file URL {url:?}: {reason}")]
    BadFileUrl { url: String, reason: String },
    #[error("{path} is a directory; pack the package as a zip, tar or tar.gz archive")]
    IsDirectory { path: PathBuf },
    #[error("cannot read package archive {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("download of {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("package archive from {from} is larger than the {limit}-byte limit")]
    TooLarge { from: String, limit: u64 },
    #[error("cannot write the downloaded archive to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// A fetched archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Lower-case hex SHA-256 of the bytes written.
    pub sha256: String,
    pub bytes: u64,
}

/// `%XX` decoding for `file://` paths; malformed escapes are an error, not passed through.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "decoded path is not UTF-8".to_string())
}

impl Source {
    /// Classifies `pkg.install`'s `url`. Anything without `scheme://` is a plain path
    /// (so `C:\pkgs\x.zip` is a path, not a URL with scheme `c`).
    pub fn parse(url: &str) -> Result<Source, FetchError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(FetchError::Missing);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(Source::Path(PathBuf::from(url)));
        };
        let valid_scheme = scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Ok(Source::Path(PathBuf::from(url)));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => Ok(Source::Http(url.to_string())),
            "file" => {
                let bad = |reason: &str| FetchError::BadFileUrl {
                    url: url.to_string(),
                    reason: reason.to_string(),
                };
                // file:///p and file://localhost/p are local; file://host/p is not ours to read.
                let path = match rest.find('/') {
                    Some(0) => rest,
                    Some(i) if rest[..i].eq_ignore_ascii_case("localhost") => &rest[i..],
                    _ => return Err(bad("only local files (file:///path) are supported")),
                };
                let path = path.split(['?', '#']).next().unwrap_or(path);
                let decoded = percent_decode(path).map_err(|r| bad(&r))?;
                Ok(Source::Path(PathBuf::from(decoded)))
            }
            other => Err(FetchError::UnsupportedScheme {
                scheme: other.to_string(),
                url: url.to_string(),
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Http(u) => u.clone(),
        }
    }
}

/// Copies the archive into `dest` (created new), hashing it and enforcing `max_bytes`.
pub fn fetch(source: &Source, dest: &Path, limits: &FetchLimits) -> Result<Fetched, FetchError> {
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|source| FetchError::Write {
            path: dest.to_path_buf(),
            source,
        })?;
    match source {
        Source::Path(path) => {
            let open_err = |source| FetchError::Open {
                path: path.clone(),
                source,
            };
            let meta = std::fs::metadata(path).map_err(open_err)?;
            if meta.is_dir() {
                return Err(FetchError::IsDirectory { path: path.clone() });
            }
            let mut file = File::open(path).map_err(open_err)?;
            copy_hashed(&mut file, &mut out, dest, source, limits.max_bytes, |e| {
                FetchError::Open {
                    path: path.clone(),
                    source: e,
                }
            })
        }
        Source::Http(url) => {
            let http_err = |reason: String| FetchError::Http {
                url: url.clone(),
                reason,
            };
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(limits.timeout))
                .http_status_as_error(true)
                .build()
                .into();
            let response = agent.get(url).call().map_err(|e| http_err(e.to_string()))?;
            // Refuse early when the server admits the body is too big.
            let announced = response
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if announced.is_some_and(|n| n > limits.max_bytes) {
                return Err(FetchError::TooLarge {
                    from: url.clone(),
                    limit: limits.max_bytes,
                });
            }
            let mut body = response.into_body().into_reader();
            copy_hashed(&mut body, &mut out, dest, source, limits.max_bytes, |e| {
                http_err(e.to_string())
            })
        }
    }
}

fn copy_hashed(
    input: &mut dyn Read,
    out: &mut File,
    dest: &Path,
    source: &Source,
    max_bytes: u64,
    read_err: impl Fn(io::Error) -> FetchError,
) -> Result<Fetched, FetchError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes: u64 = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        bytes += n as u64;
        if bytes > max_bytes {
            return Err(FetchError::TooLarge {
                from: source.describe(),
                limit: max_bytes,
            });
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|source| FetchError::Write {
                path: dest.to_path_buf(),
                source,
            })?;
    }
    out.flush().map_err(|source| FetchError::Write {
        path: dest.to_path_buf(),
        source,
    })?;
    Ok(Fetched {
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sources() {
        assert_eq!(
            Source::parse("/tmp/a.zip").unwrap(),
            Source::Path("/tmp/a.zip".into())
        );
        assert_eq!(
            Source::parse("rel/a.zip").unwrap(),
            Source::Path("rel/a.zip".into())
        );
        assert_eq!(
            Source::parse("file:///tmp/my%20pkg.zip").unwrap(),
            Source::Path("/tmp/my pkg.zip".into())
        );
        assert_eq!(
            Source::parse("file://localhost/tmp/a.zip").unwrap(),
            Source::Path("/tmp/a.zip".into())
        );
        assert_eq!(
            Source::parse("HTTPS://h/p.cwx").unwrap(),
            Source::Http("HTTPS://h/p.cwx".into())
        );
        assert!(matches!(
            Source::parse("ftp://h/p.zip"),
            Err(FetchError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Source::parse("file://otherhost/p.zip"),
            Err(FetchError::BadFileUrl { .. })
        ));
        assert!(matches!(
            Source::parse("file:///p%zz"),
            Err(FetchError::BadFileUrl { .. })
        ));
        assert!(matches!(Source::parse("  "), Err(FetchError::Missing)));
    }
}
