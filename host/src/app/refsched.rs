//! The reference scheduler served over a real WebSocket on any [`Runtime`]: the same strict
//! machine as in `astra_core::scheduler`, at `ws://ADDR/ws/worker`. Used by `demo`, by the
//! `ref-scheduler` command (for scheduler and worker authors), by tests and benchmarks.

use crate::app::clock::Clock;
use crate::app::runtime::{Message, Runtime, Timer, WebSocketConfig};
use astra_core::scheduler::{
    ConnId, RunSpec, SchedAction, SchedEvent, SchedInput, Scheduler, SchedulerConfig,
};
use astra_core::worker::Incoming;
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

/// Longest wait for a step's frames to be written before its events are published anyway.
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

type Inspect = Box<dyn FnOnce(&Scheduler) + Send>;

enum Ctl {
    Input(SchedInput),
    Inspect(Inspect),
    /// Abort every connection without a close frame (tests: a scheduler crash or network cut).
    DropAll,
}

enum ConnEvent {
    Opened(ConnId, async_channel::Sender<Out>),
    Frame(ConnId, Incoming),
    Closed(ConnId),
}

/// Held with a frame until the connection task has written it (or gave up): the loop waits
/// for every holder to drop before publishing the step's events.
type Written = async_channel::Sender<()>;

enum Out {
    Text(String, Written),
    Close(u16, String, Written),
    Abort,
}

/// Subscribers to scheduler events. Unbounded per subscriber: nothing is dropped; a
/// subscriber that went away is removed at the next event.
type Subscribers = Arc<Mutex<Vec<async_channel::Sender<SchedEvent>>>>;

/// The handshake callback of the reference scheduler: 404 unless the path is `/ws/worker`.
// The signature is tungstenite's `Callback`; its error type is not ours to shrink.
#[allow(clippy::result_large_err)]
pub fn worker_path_only(req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() == "/ws/worker" {
        Ok(resp)
    } else {
        let mut r = ErrorResponse::new(Some("the worker endpoint is /ws/worker".into()));
        *r.status_mut() = StatusCode::NOT_FOUND;
        Err(r)
    }
}

/// A running reference scheduler. Dropping it stops the server (its loop ends when the
/// control channel closes, and every connection with it).
pub struct RefScheduler {
    pub addr: SocketAddr,
    ctl: async_channel::Sender<Ctl>,
    subscribers: Subscribers,
}

impl RefScheduler {
    /// Binds `bind` (use port 0 for any) and serves until dropped.
    pub async fn start<R: Runtime>(
        rt: &R,
        bind: SocketAddr,
        cfg: SchedulerConfig,
    ) -> std::io::Result<RefScheduler> {
        let (listener, addr) = rt.bind(bind).await?;
        let (ctl_tx, ctl_rx) = async_channel::unbounded();
        let subscribers = Subscribers::default();
        let task_rt = rt.clone();
        let subs = subscribers.clone();
        rt.spawn(async move { serve(&task_rt, listener, cfg, ctl_rx, subs).await });
        Ok(RefScheduler {
            addr,
            ctl: ctl_tx,
            subscribers,
        })
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws/worker", self.addr)
    }

    pub fn submit(&self, run: RunSpec) {
        let _ = self.ctl.try_send(Ctl::Input(SchedInput::SubmitRun(run)));
    }

    pub fn inject_to_worker(&self, worker_id: &str, text: String) {
        let _ = self.ctl.try_send(Ctl::Input(SchedInput::InjectToWorker {
            worker_id: worker_id.to_string(),
            text,
        }));
    }

    pub fn drop_connections(&self) {
        let _ = self.ctl.try_send(Ctl::DropAll);
    }

    /// Every scheduler event from now on.
    pub fn subscribe(&self) -> async_channel::Receiver<SchedEvent> {
        let (tx, rx) = async_channel::unbounded();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Runs `f` on the scheduler state inside its loop.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Scheduler) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = async_channel::bounded(1);
        let job: Inspect = Box::new(move |s| {
            let _ = tx.try_send(f(s));
        });
        self.ctl.try_send(Ctl::Inspect(job)).ok()?;
        rx.recv().await.ok()
    }
}

enum Wake<C> {
    Accepted(std::io::Result<C>),
    Conn(ConnEvent),
    Ctl(Option<Ctl>),
    Tick,
}

async fn serve<R: Runtime>(
    rt: &R,
    listener: R::Listener,
    cfg: SchedulerConfig,
    ctl: async_channel::Receiver<Ctl>,
    subscribers: Subscribers,
) {
    let clock = Clock::new();
    let cfg = SchedulerConfig {
        wall: clock.wall,
        ..cfg
    };
    let max_frame = cfg.max_frame_bytes;
    let mut sched = Scheduler::new(cfg);
    let (conn_tx, conn_rx) = async_channel::unbounded::<ConnEvent>();
    // Boxed: async-channel's receivers are not `Unpin` (they embed their listener).
    let mut conn_rx = Box::pin(conn_rx);
    let mut next_conn = 1u64;
    let mut writers: BTreeMap<ConnId, async_channel::Sender<Out>> = BTreeMap::new();
    let mut ctl = Box::pin(ctl);
    let mut accept = Box::pin(rt.accept(&listener));
    let mut timer: Option<R::Timer> = None;
    let mut armed: Option<std::time::Instant> = None;
    loop {
        let deadline = sched.poll_timeout().map(|t| clock.to_std(t));
        match deadline {
            Some(d) if armed != Some(d) => {
                match timer.as_mut() {
                    Some(t) => t.reset(d),
                    None => timer = Some(rt.timer(d)),
                }
                armed = Some(d);
            }
            Some(_) => {}
            None => armed = None,
        }
        // Rare sources first, so a flood of frames cannot delay deadlines or control.
        let wake = std::future::poll_fn(|cx| {
            if let (Some(_), Some(t)) = (armed, timer.as_mut()) {
                if Pin::new(t).poll(cx).is_ready() {
                    armed = None;
                    return Poll::Ready(Wake::Tick);
                }
            }
            if let Poll::Ready(c) = ctl.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Ctl(c));
            }
            if let Poll::Ready(Some(ev)) = conn_rx.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Conn(ev));
            }
            if let Poll::Ready(c) = accept.as_mut().poll(cx) {
                return Poll::Ready(Wake::Accepted(c));
            }
            Poll::Pending
        })
        .await;
        let input = match wake {
            Wake::Accepted(accepted) => {
                accept = Box::pin(rt.accept(&listener));
                if let Ok(conn) = accepted {
                    let id = ConnId(next_conn);
                    next_conn += 1;
                    let conn_rt = rt.clone();
                    let events = conn_tx.clone();
                    rt.spawn(
                        async move { connection(&conn_rt, conn, id, events, max_frame).await },
                    );
                }
                continue;
            }
            Wake::Conn(ConnEvent::Opened(id, w)) => {
                writers.insert(id, w);
                SchedInput::Connected(id)
            }
            Wake::Conn(ConnEvent::Frame(id, f)) => SchedInput::Frame(id, f),
            Wake::Conn(ConnEvent::Closed(id)) => {
                writers.remove(&id);
                SchedInput::Disconnected(id)
            }
            Wake::Ctl(Some(Ctl::Input(i))) => i,
            Wake::Ctl(Some(Ctl::Inspect(f))) => {
                f(&sched);
                continue;
            }
            Wake::Ctl(Some(Ctl::DropAll)) => {
                for w in writers.values() {
                    let _ = w.try_send(Out::Abort);
                }
                continue;
            }
            Wake::Ctl(None) => return,
            Wake::Tick => SchedInput::Tick,
        };
        sched.handle(clock.now(), input);
        let (written, all_written) = async_channel::bounded::<()>(1);
        let mut step_events = Vec::new();
        while let Some(a) = sched.poll_action() {
            match a {
                SchedAction::Send { conn, text } => {
                    if let Some(w) = writers.get(&conn) {
                        let _ = w.try_send(Out::Text(text, written.clone()));
                    }
                }
                SchedAction::Close { conn, code, reason } => {
                    if let Some(w) = writers.get(&conn) {
                        let _ = w.try_send(Out::Close(code, reason, written.clone()));
                    }
                }
                SchedAction::Event(e) => step_events.push(e),
            }
        }
        drop(written);
        if !step_events.is_empty() {
            // An event a subscriber sees (e.g. `Dispatched` on stdout) means its frames are
            // on the socket: tests may act on it at once, e.g. kill this process. Bounded,
            // so a stuck peer cannot stall the scheduler.
            let _ = crate::app::rt::timeout(rt, WRITE_WAIT, all_written.recv()).await;
        }
        let mut subs = subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for e in step_events {
            tracing::debug!(event = ?e, "scheduler event");
            subs.retain(|s| s.try_send(e.clone()).is_ok());
        }
    }
}

async fn connection<R: Runtime>(
    rt: &R,
    conn: R::Conn,
    id: ConnId,
    events: async_channel::Sender<ConnEvent>,
    max_frame: usize,
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame));
    let Ok(ws) = rt.accept_ws(conn, config).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (out_tx, out_rx) = async_channel::unbounded();
    if events.try_send(ConnEvent::Opened(id, out_tx)).is_err() {
        return;
    }
    loop {
        let next = match select(source.next(), pin!(out_rx.recv())).await {
            Either::Left((msg, _)) => Either::Left(msg),
            Either::Right((out, _)) => Either::Right(out),
        };
        match next {
            Either::Left(msg) => match msg {
                Some(Ok(Message::Text(t))) => {
                    let _ = events
                        .try_send(ConnEvent::Frame(id, Incoming::Text(t.as_str().to_string())));
                }
                Some(Ok(Message::Binary(b))) => {
                    let _ = events.try_send(ConnEvent::Frame(id, Incoming::Binary(b.len())));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            Either::Right(out) => match out {
                Ok(Out::Text(t, written)) => {
                    let sent = sink.send(Message::text(t)).await;
                    drop(written);
                    if sent.is_err() {
                        break;
                    }
                }
                Ok(Out::Close(code, reason, written)) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    drop(written);
                    // Wait (briefly) for the peer's close so it sees our code.
                    let drain = async { while let Some(Ok(_)) = source.next().await {} };
                    let _ =
                        crate::app::rt::timeout(rt, std::time::Duration::from_secs(2), drain).await;
                    break;
                }
                Ok(Out::Abort) | Err(_) => break,
            },
        }
    }
    let _ = events.try_send(ConnEvent::Closed(id));
}
