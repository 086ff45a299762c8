//! Process handles for the binaries under test: the reference scheduler (events read from
//! its stdout on a thread, control written to its stdin) and workers (config through flags
//! and `ASTRA_WORKER_*`, logs captured to a file for failure diagnostics).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct RefSched {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Value>,
    pub url: String,
    /// Every event seen so far, in order.
    pub seen: Vec<Value>,
}

impl RefSched {
    /// Starts `<bin> ref-scheduler` on `listen` (e.g. `127.0.0.1:0`) with extra flags.
    pub fn start(bin: &Path, listen: &str, extra: &[&str]) -> RefSched {
        let mut child = Command::new(bin)
            .arg("ref-scheduler")
            .args(["--listen", listen])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ref-scheduler");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("ref-scheduler printed its address");
        let url = first["listening"]
            .as_str()
            .expect("listening url")
            .to_string();
        RefSched {
            child,
            stdin,
            events: rx,
            url,
            seen: Vec::new(),
        }
    }

    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("port in url")
    }

    pub fn control(&mut self, v: Value) {
        writeln!(self.stdin, "{v}").expect("write control");
        self.stdin.flush().expect("flush control");
    }

    pub fn submit(&mut self, run: Value) {
        self.control(serde_json::json!({ "submit": run }));
    }

    pub fn inject(&mut self, worker_id: &str, frame: Value) {
        self.control(serde_json::json!({ "inject": { "worker_id": worker_id, "frame": frame } }));
    }

    pub fn drop_connections(&mut self) {
        self.control(serde_json::json!({ "drop_connections": {} }));
    }

    /// Waits for an event `{Kind: {...}}` whose body satisfies `pred`; returns the body.
    pub fn wait(&mut self, kind: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self
            .seen
            .iter()
            .filter_map(|e| e.get(kind))
            .find(|b| pred(b))
        {
            return v.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) => {
                    self.seen.push(ev.clone());
                    if let Some(body) = ev.get(kind) {
                        if pred(body) {
                            return body.clone();
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no {kind} event within {timeout:?}; seen: {:#?}",
                    self.tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("ref-scheduler exited; seen: {:#?}", self.tail())
                }
            }
        }
    }

    /// Collects events for `d` (to assert something did NOT happen).
    pub fn settle(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(ev) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(ev);
        }
    }

    pub fn count(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> usize {
        self.seen
            .iter()
            .filter_map(|e| e.get(kind))
            .filter(|b| pred(b))
            .count()
    }

    fn tail(&self) -> Vec<Value> {
        self.seen.iter().rev().take(30).rev().cloned().collect()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RefSched {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct WorkerProc {
    child: Option<Child>,
    pub log: PathBuf,
    pub metrics: Option<String>,
}

pub struct WorkerOpts<'a> {
    pub worker_id: &'a str,
    pub url: &'a str,
    pub dir: &'a Path,
    pub max_parallel: u32,
    pub metrics_port: Option<u16>,
    pub env: Vec<(&'a str, String)>,
}

impl WorkerProc {
    pub fn start(bin: &Path, o: &WorkerOpts<'_>) -> WorkerProc {
        let log = o.dir.join(format!(
            "{}-{}.log",
            o.worker_id,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .args(["--url", o.url, "--worker-id", o.worker_id])
            .arg("--data-dir")
            .arg(o.dir.join("data"))
            .arg("--packages-dir")
            .arg(o.dir.join("packages"))
            .args(["--max-parallel", &o.max_parallel.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ASTRA_WORKER_LOG_LEVEL", "DEBUG")
            .env("ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS", "1")
            .env("ASTRA_WORKER_HEARTBEAT_JITTER_SECONDS", "0")
            .env("ASTRA_WORKER_RECONNECT_MIN_MS", "100")
            .env("ASTRA_WORKER_RECONNECT_MAX_MS", "1000")
            .env("ASTRA_WORKER_CONFIG_FILE", o.dir.join("no-config.yaml"))
            .current_dir(o.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        // An explicitly named config file that does not exist is an error: give it an empty one.
        std::fs::write(o.dir.join("no-config.yaml"), "{}\n").expect("empty config");
        let metrics = o.metrics_port.map(|p| {
            cmd.args(["--metrics-listen", &format!("127.0.0.1:{p}")]);
            format!("127.0.0.1:{p}")
        });
        for (k, v) in &o.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn worker");
        WorkerProc {
            child: Some(child),
            log,
            metrics,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn sigterm(&self) {
        // SAFETY: sending a signal to our own child process id.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
    }

    /// Waits for exit; returns the exit code (None if killed by a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let c = self.child.as_mut().expect("running");
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return st.code();
            }
            if Instant::now() > deadline {
                panic!(
                    "worker did not exit within {timeout:?}; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// GET a path from the worker's metrics listener.
    pub fn http_get(&self, path: &str) -> Option<String> {
        let addr = self.metrics.as_ref()?;
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// A counter or gauge value from /metrics.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = self.http_get("/metrics")?;
        body.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// A free loopback port (bound then released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
