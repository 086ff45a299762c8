//! The reference scheduler served over a real WebSocket on tokio: the same strict machine as
//! in `astra_core::scheduler`, at `ws://ADDR/ws/worker`. Used by `demo`, by the
//! `ref-scheduler` command (for scheduler and worker authors), by tests and benchmarks.

use crate::clock::Clock;
use astra_core::scheduler::{
    ConnId, RunSpec, SchedAction, SchedEvent, SchedInput, Scheduler, SchedulerConfig,
};
use astra_core::worker::Incoming;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

type Inspect = Box<dyn FnOnce(&Scheduler) + Send>;

enum Ctl {
    Input(SchedInput),
    Inspect(Inspect),
    /// Abort every connection without a close frame (tests: a scheduler crash or network cut).
    DropAll,
}

enum ConnEvent {
    Opened(ConnId, mpsc::UnboundedSender<Out>),
    Frame(ConnId, Incoming),
    Closed(ConnId),
}

enum Out {
    Text(String),
    Close(u16, String),
    Abort,
}

/// A running reference scheduler. Dropping it stops the server.
pub struct RefScheduler {
    pub addr: SocketAddr,
    ctl: mpsc::UnboundedSender<Ctl>,
    events: broadcast::Sender<SchedEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl RefScheduler {
    /// Binds `bind` (use port 0 for any) and serves until dropped.
    pub async fn start(bind: SocketAddr, cfg: SchedulerConfig) -> std::io::Result<RefScheduler> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1 << 16);
        let task = tokio::spawn(serve(listener, cfg, ctl_rx, events.clone()));
        Ok(RefScheduler {
            addr,
            ctl: ctl_tx,
            events,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws/worker", self.addr)
    }

    pub fn submit(&self, run: RunSpec) {
        let _ = self.ctl.send(Ctl::Input(SchedInput::SubmitRun(run)));
    }

    pub fn inject_to_worker(&self, worker_id: &str, text: String) {
        let _ = self.ctl.send(Ctl::Input(SchedInput::InjectToWorker {
            worker_id: worker_id.to_string(),
            text,
        }));
    }

    pub fn drop_connections(&self) {
        let _ = self.ctl.send(Ctl::DropAll);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SchedEvent> {
        self.events.subscribe()
    }

    /// Runs `f` on the scheduler state inside its loop.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Scheduler) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let job: Inspect = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        self.ctl.send(Ctl::Inspect(job)).ok()?;
        rx.await.ok()
    }
}

impl Drop for RefScheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    cfg: SchedulerConfig,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    events: broadcast::Sender<SchedEvent>,
) {
    let clock = Clock::new();
    let cfg = SchedulerConfig {
        wall: clock.wall,
        ..cfg
    };
    let max_frame = cfg.max_frame_bytes;
    let mut sched = Scheduler::new(cfg);
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<ConnEvent>();
    let next_conn = Arc::new(AtomicU64::new(1));
    let mut writers: std::collections::BTreeMap<ConnId, mpsc::UnboundedSender<Out>> =
        Default::default();
    loop {
        let deadline = sched.poll_timeout().map(|t| clock.to_tokio(t));
        let input = tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let id = ConnId(next_conn.fetch_add(1, Ordering::Relaxed));
                    tokio::spawn(connection(stream, id, conn_tx.clone(), max_frame));
                }
                continue;
            }
            Some(ev) = conn_rx.recv() => match ev {
                ConnEvent::Opened(id, w) => { writers.insert(id, w); SchedInput::Connected(id) }
                ConnEvent::Frame(id, f) => SchedInput::Frame(id, f),
                ConnEvent::Closed(id) => { writers.remove(&id); SchedInput::Disconnected(id) }
            },
            c = ctl.recv() => match c {
                Some(Ctl::Input(i)) => i,
                Some(Ctl::Inspect(f)) => { f(&sched); continue; }
                Some(Ctl::DropAll) => { for w in writers.values() { let _ = w.send(Out::Abort); } continue; }
                None => return,
            },
            _ = sleep_opt(deadline) => SchedInput::Tick,
        };
        sched.handle(clock.now(), input);
        while let Some(a) = sched.poll_action() {
            match a {
                SchedAction::Send { conn, text } => {
                    if let Some(w) = writers.get(&conn) {
                        let _ = w.send(Out::Text(text));
                    }
                }
                SchedAction::Close { conn, code, reason } => {
                    if let Some(w) = writers.get(&conn) {
                        let _ = w.send(Out::Close(code, reason));
                    }
                }
                SchedAction::Event(e) => {
                    tracing::debug!(event = ?e, "scheduler event");
                    let _ = events.send(e);
                }
            }
        }
    }
}

async fn sleep_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn connection(
    stream: TcpStream,
    id: ConnId,
    events: mpsc::UnboundedSender<ConnEvent>,
    max_frame: usize,
) {
    let _ = stream.set_nodelay(true);
    let check_path = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == "/ws/worker" {
            Ok(resp)
        } else {
            let mut r = ErrorResponse::new(Some("the worker endpoint is /ws/worker".into()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            Err(r)
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame));
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(config)).await
    else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    if events.send(ConnEvent::Opened(id, out_tx)).is_err() {
        return;
    }
    loop {
        tokio::select! {
            msg = source.next() => match msg {
                Some(Ok(Message::Text(t))) => { let _ = events.send(ConnEvent::Frame(id, Incoming::Text(t.as_str().to_string()))); }
                Some(Ok(Message::Binary(b))) => { let _ = events.send(ConnEvent::Frame(id, Incoming::Binary(b.len()))); }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = out_rx.recv() => match out {
                Some(Out::Text(t)) => { if sink.send(Message::text(t)).await.is_err() { break; } }
                Some(Out::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))).await;
                    // Wait (briefly) for the peer's close so it sees our code.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async { while let Some(Ok(_)) = source.next().await {} }).await;
                    break;
                }
                Some(Out::Abort) | None => break,
            },
        }
    }
    let _ = events.send(ConnEvent::Closed(id));
}
