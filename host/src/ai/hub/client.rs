//! The hub's HTTP API as blocking calls: list a revision, look up one file, fetch a range.
//!
//! The token goes out as `Authorization: Bearer` only on requests to the configured
//! endpoint's own origin; a redirect to another host (the hub's CDN) is fetched without it.

use super::error::HubError;
use astra_core::secret::Secret;
use std::io::Read;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A read that stalls this long fails the attempt (resumable on the next).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What a `HEAD .../resolve/...` told about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub commit: String,
    /// The blob id: `x-linked-etag` (LFS: the sha256) else `etag`, quotes and `W/` removed.
    pub etag: String,
    pub size: u64,
    /// Where to `GET` it (the hub itself, or the redirect target).
    pub url: String,
}

pub struct HubClient {
    endpoint: String,
    token: Option<Secret>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .finish()
    }
}

/// `scheme://authority` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let after = url.find("://")? + 3;
    let end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    Some(&url[..end])
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header<'a>(resp: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `"abc"` / `W/"abc"` → `abc`.
fn clean_etag(raw: &str) -> String {
    raw.trim_start_matches("W/").trim_matches('"').to_string()
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            ": the repository is private or gated; set hf_token (HF_TOKEN) to a token with access"
        }
        404 => ": no such repository, revision or file",
        416 => ": the range asked for is past the end of the file",
        _ => "",
    }
}

impl HubClient {
    /// `endpoint` without a trailing `/`, e.g. `https://huggingface.co`.
    pub fn new(endpoint: &str, token: Option<Secret>) -> HubClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .http_status_as_error(false)
            // Redirects are followed by hand so the token is never sent to another host.
            .max_redirects(0)
            .user_agent(concat!("astra-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HubClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn authorised(&self, url: &str) -> bool {
        self.token.is_some() && origin(url).is_some() && origin(url) == origin(&self.endpoint)
    }

    fn with_auth<B>(&self, req: ureq::RequestBuilder<B>, url: &str) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) if self.authorised(url) => {
                req.header("Authorization", format!("Bearer {}", t.expose()))
            }
            _ => req,
        }
    }

    fn http_err(url: &str, e: ureq::Error) -> HubError {
        HubError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        }
    }

    fn check(url: &str, resp: &ureq::http::Response<ureq::Body>) -> Result<(), HubError> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(HubError::Status {
            url: url.to_string(),
            status,
            hint: status_hint(status),
        })
    }

    /// The commit and file list of `repo` at `revision`.
    pub fn list(&self, repo: &str, revision: &str) -> Result<(String, Vec<String>), HubError> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.endpoint,
            encode(repo, true),
            encode(revision, false)
        );
        let mut resp = self
            .with_auth(self.agent.get(&url), &url)
            .call()
            .map_err(|e| Self::http_err(&url, e))?;
        Self::check(&url, &resp)?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| Self::http_err(&url, e))?;
        let proto = |problem: &str| HubError::Protocol {
            url: url.clone(),
            problem: problem.to_string(),
        };
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| proto("the body is not JSON"))?;
        let commit = doc["sha"]
            .as_str()
            .ok_or_else(|| proto("no `sha` (commit) field"))?
            .to_string();
        let files = doc["siblings"]
            .as_array()
            .ok_or_else(|| proto("no `siblings` (file list) field"))?
            .iter()
            .filter_map(|s| s["rfilename"].as_str().map(str::to_string))
            .collect();
        Ok((commit, files))
    }

    /// Looks up `file` of `repo` at `revision` (following one redirect by hand, without the
    /// token when it leaves the hub's origin).
    pub fn head(&self, repo: &str, revision: &str, file: &str) -> Result<FileMeta, HubError> {
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            encode(repo, true),
            encode(revision, false),
            encode(file, true)
        );
        let resp = self
            .with_auth(self.agent.head(&url), &url)
            .call()
            .map_err(|e| Self::http_err(&url, e))?;
        let status = resp.status().as_u16();
        let proto = |problem: String| HubError::Protocol {
            url: url.clone(),
            problem,
        };
        let location = if (300..400).contains(&status) {
            let loc = header(&resp, "location")
                .ok_or_else(|| proto(format!("redirect {status} without a Location")))?;
            Some(if loc.starts_with('/') {
                format!("{}{loc}", origin(&self.endpoint).unwrap_or_default())
            } else {
                loc.to_string()
            })
        } else {
            Self::check(&url, &resp)?;
            None
        };
        let commit = header(&resp, "x-repo-commit")
            .ok_or_else(|| proto("no x-repo-commit header".into()))?
            .to_ascii_lowercase();
        let etag = header(&resp, "x-linked-etag")
            .or_else(|| header(&resp, "etag"))
            .map(clean_etag)
            .ok_or_else(|| proto("no etag header".into()))?;
        let size = header(&resp, "x-linked-size")
            .or_else(|| header(&resp, "content-length"))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| proto("no file size (x-linked-size / content-length)".into()))?;
        Ok(FileMeta {
            commit,
            etag,
            size,
            url: location.unwrap_or(url.clone()),
        })
    }

    /// `GET url` from byte `from` on. Returns whether the server honoured the range (206)
    /// and the body.
    pub fn get_from(&self, url: &str, from: u64) -> Result<(bool, Box<dyn Read + Send>), HubError> {
        let mut req = self.with_auth(self.agent.get(url), url);
        if from > 0 {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let resp = req.call().map_err(|e| Self::http_err(url, e))?;
        Self::check(url, &resp)?;
        let partial = resp.status().as_u16() == 206;
        Ok((partial, Box::new(resp.into_body().into_reader())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_goes_to_the_hub_origin_only() {
        let c = HubClient::new("http://127.0.0.1:9/", Some(Secret::new("tok-xyz")));
        assert!(c.authorised("http://127.0.0.1:9/o/n/resolve/main/f"));
        assert!(!c.authorised("http://127.0.0.1:10/o/n"));
        assert!(!c.authorised("http://127.0.0.1:9.evil.example/o/n"));
        assert!(!c.authorised("https://127.0.0.1:9/o/n"));
        assert!(!format!("{c:?}").contains("tok-xyz"));
    }

    #[test]
    fn names_are_encoded_into_one_path() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("a b/c?.json", true), "a%20b/c%3F.json");
        assert_eq!(clean_etag("W/\"abc\""), "abc");
    }
}
