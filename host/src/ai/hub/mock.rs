//! A mock model hub for tests: serves the hub's routes on 127.0.0.1 from files on disk.
//!
//! `<root>/<org>/<name>/<file>` is file `<file>` of repo `org/name` at every revision, all
//! at commit [`COMMIT`], with etag = the file's sha256 (like LFS files). Routes:
//! `GET /api/models/{repo}/revision/{rev}`, `HEAD|GET /{repo}/resolve/{rev}/{file}` (with
//! `Range: bytes=N-`), and `GET /cdn/{repo}/{file}` for redirected files. Knobs on
//! [`Control`] cut a body after N bytes (once), fail a file with 500, corrupt a file's
//! etag, or redirect files to another server (a "CDN"). Every request is recorded.
//!
//! std + sha2 only, so integration tests in other crates can include it with `#[path]`.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const COMMIT: &str = "4d2c0f1e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
}

#[derive(Debug, Default)]
pub struct Control {
    /// Send only this many body bytes of the next GET of a file, then drop the connection.
    pub cut_once_after: Option<u64>,
    /// Cut every GET of a file after this many bytes.
    pub cut_always_after: Option<u64>,
    /// Files answered with 500.
    pub fail_files: Vec<String>,
    /// Files whose advertised etag is wrong (a sha256 of something else).
    pub corrupt_files: Vec<String>,
    /// Redirect resolve requests to `{base}/cdn/...` (the base of another mock).
    pub redirect_to: Option<String>,
    pub requests: Vec<Recorded>,
}

pub struct MockHub {
    pub url: String,
    pub control: Arc<Mutex<Control>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if e.path().is_dir() {
            list_files(&e.path(), &rel, out);
        } else {
            out.push(rel);
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

impl MockHub {
    pub fn start(root: &Path) -> MockHub {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = l.local_addr().expect("addr");
        let control = Arc::new(Mutex::new(Control::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st, root) = (control.clone(), stop.clone(), root.to_path_buf());
        std::thread::spawn(move || {
            for s in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(s) = s else { continue };
                let (c, root) = (c.clone(), root.clone());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = serve(s, &root, &c);
                });
            }
        });
        MockHub {
            url: format!("http://{addr}"),
            control,
            stop,
            addr,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.control.lock().unwrap().requests.clone()
    }

    pub fn set(&self, f: impl FnOnce(&mut Control)) {
        f(&mut self.control.lock().unwrap());
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)
}

fn serve(mut s: TcpStream, root: &Path, control: &Mutex<Control>) -> std::io::Result<()> {
    // One request per connection (we answer `Connection: close`).
    let mut reader = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (mut auth, mut range) = (None, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(v.trim().to_string()),
                "range" => range = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut ctl = control.lock().unwrap();
    ctl.requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        authorization: auth,
        range: range.clone(),
    });
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let not_found = |s: &mut TcpStream| {
        respond(
            s,
            "404 Not Found",
            &[("Content-Length".into(), "0".into())],
            b"",
        )
    };

    // GET /api/models/{org}/{name}/revision/{rev}
    if segs.len() == 6 && segs[0] == "api" && segs[1] == "models" && segs[4] == "revision" {
        let dir = root.join(&segs[2]).join(&segs[3]);
        if !dir.is_dir() {
            return not_found(&mut s);
        }
        let mut files = Vec::new();
        list_files(&dir, "", &mut files);
        files.sort();
        let siblings: Vec<String> = files
            .iter()
            .map(|f| format!("{{\"rfilename\":{f:?}}}"))
            .collect();
        let body = format!(
            "{{\"id\":\"{}/{}\",\"sha\":\"{COMMIT}\",\"siblings\":[{}]}}",
            segs[2],
            segs[3],
            siblings.join(",")
        );
        return respond(
            &mut s,
            "200 OK",
            &[
                ("Content-Type".into(), "application/json".into()),
                ("Content-Length".into(), body.len().to_string()),
            ],
            body.as_bytes(),
        );
    }

    // /{org}/{name}/resolve/{rev}/{file...} or /cdn/{org}/{name}/{file...}
    let (repo_dir, file, via_cdn) = if segs.len() >= 5 && segs[2] == "resolve" {
        (
            root.join(&segs[0]).join(&segs[1]),
            segs[4..].join("/"),
            false,
        )
    } else if segs.len() >= 4 && segs[0] == "cdn" {
        (
            root.join(&segs[1]).join(&segs[2]),
            segs[3..].join("/"),
            true,
        )
    } else {
        return not_found(&mut s);
    };
    let fpath: PathBuf = repo_dir.join(&file);
    let Ok(body) = std::fs::read(&fpath) else {
        return not_found(&mut s);
    };
    if ctl.fail_files.contains(&file) {
        return respond(
            &mut s,
            "500 Internal Server Error",
            &[("Content-Length".into(), "0".into())],
            b"",
        );
    }
    let mut etag = sha256_hex(&body);
    if ctl.corrupt_files.contains(&file) {
        etag = sha256_hex(b"something else");
    }
    let common = vec![
        ("X-Repo-Commit".to_string(), COMMIT.to_string()),
        ("Accept-Ranges".to_string(), "bytes".to_string()),
    ];
    if !via_cdn {
        if let Some(base) = &ctl.redirect_to {
            let mut h = common.clone();
            h.push((
                "Location".into(),
                format!("{base}/cdn/{}/{}/{file}", segs[0], segs[1]),
            ));
            h.push(("X-Linked-Etag".into(), format!("\"{etag}\"")));
            h.push(("X-Linked-Size".into(), body.len().to_string()));
            h.push(("Content-Length".into(), "0".into()));
            return respond(&mut s, "302 Found", &h, b"");
        }
    }
    let mut h = common;
    h.push(("ETag".into(), format!("\"{etag}\"")));
    if method == "HEAD" {
        h.push(("Content-Length".into(), body.len().to_string()));
        return respond(&mut s, "200 OK", &h, b"");
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    if start > body.len() {
        return respond(
            &mut s,
            "416 Range Not Satisfiable",
            &[("Content-Length".into(), "0".into())],
            b"",
        );
    }
    let part = &body[start..];
    let status = if start > 0 {
        h.push((
            "Content-Range".into(),
            format!(
                "bytes {start}-{}/{}",
                body.len().saturating_sub(1),
                body.len()
            ),
        ));
        "206 Partial Content"
    } else {
        "200 OK"
    };
    h.push(("Content-Length".into(), part.len().to_string()));
    let cut = ctl.cut_once_after.take().or(ctl.cut_always_after);
    drop(ctl);
    match cut {
        Some(n) if (n as usize) < part.len() => {
            respond(&mut s, status, &h, &part[..n as usize])?;
            s.flush()?;
            // Drop without sending the rest: the client sees a short body.
            let _ = s.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
        _ => respond(&mut s, status, &h, part),
    }
}
