//! The worker's control loop on tokio: one task owns the core machine and the socket, waits
//! on the socket, host completions, the machine's next deadline and signals, and feeds each
//! as one input. Everything else is the shared host agent.

use crate::clock::Clock;
use astra_core::scheduler::{ConnId, SchedAction, SchedInput, Scheduler, SchedulerConfig};
use astra_core::worker::{Command, Incoming, Input, Worker};
use astra_host::agent::{Effect, HostAgent};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the worker reaches its scheduler.
#[derive(Debug, Clone)]
pub enum Link {
    /// A real scheduler at this `ws://` or `wss://` URL.
    WebSocket { url: String, max_frame_bytes: usize },
    /// `transport=dummy`: an in-process reference scheduler, no network at all.
    InProcess,
}

#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub link: Link,
    /// Map SIGTERM/SIGINT to drain (first) and shutdown (second).
    pub signals: bool,
    pub connect_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Fatal(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The in-process scheduler of `transport=dummy`, pumped inside the same loop.
struct InProc {
    sched: Scheduler,
    conn: Option<ConnId>,
    next: u64,
    inbox: VecDeque<String>,
}

impl InProc {
    fn pump(&mut self, clock: &Clock, input: SchedInput) {
        self.sched.handle(clock.now(), input);
        while let Some(a) = self.sched.poll_action() {
            match a {
                SchedAction::Send { conn, text } if Some(conn) == self.conn => {
                    self.inbox.push_back(text)
                }
                SchedAction::Close { conn, .. } if Some(conn) == self.conn => self.conn = None,
                _ => {}
            }
        }
    }
}

enum Ev {
    Input(Input),
    Connected(Ws),
    Idle,
}

/// Runs the machine until it stops. Host completions and commands arrive on `rx` (the same
/// channel the runner's sink feeds); `Input::Command(Drain)` sent there drains the worker.
pub async fn run(
    mut worker: Worker,
    mut agent: HostAgent,
    mut rx: mpsc::UnboundedReceiver<Input>,
    clock: Clock,
    opts: DriverOptions,
) -> Result<(), DriverError> {
    let mut ws: Option<Ws> = None;
    let mut connecting: Option<tokio::task::JoinHandle<Result<Ws, String>>> = None;
    let mut inproc = match opts.link {
        Link::InProcess => Some(InProc {
            sched: Scheduler::new(SchedulerConfig {
                wall: clock.wall,
                ..SchedulerConfig::default()
            }),
            conn: None,
            next: 1,
            inbox: VecDeque::new(),
        }),
        Link::WebSocket { .. } => None,
    };
    let mut signals = if opts.signals {
        Some(Signals::new().map_err(DriverError::Signals)?)
    } else {
        None
    };
    let mut signal_count = 0u32;
    let mut pending: VecDeque<Input> = VecDeque::from([Input::Start]);

    loop {
        while let Some(input) = pending.pop_front() {
            worker.handle(clock.now(), input);
            let mut stopped = false;
            let mut broken: Option<String> = None;
            while let Some(action) = worker.poll_action() {
                match agent.apply(action) {
                    None => {}
                    Some(Effect::Connect) => match (&opts.link, inproc.as_mut()) {
                        (_, Some(ip)) => {
                            let id = ConnId(ip.next);
                            ip.next += 1;
                            ip.conn = Some(id);
                            ip.pump(&clock, SchedInput::Connected(id));
                            pending.push_back(Input::Connected);
                        }
                        (
                            Link::WebSocket {
                                url,
                                max_frame_bytes,
                            },
                            None,
                        ) => {
                            connecting = Some(tokio::spawn(connect(
                                url.clone(),
                                *max_frame_bytes,
                                opts.connect_timeout,
                            )));
                        }
                        (Link::InProcess, None) => {}
                    },
                    Some(Effect::Send(f)) => {
                        if let Some(ip) = inproc.as_mut() {
                            if let Some(c) = ip.conn {
                                ip.pump(
                                    &clock,
                                    SchedInput::Frame(c, Incoming::Text(f.text().to_string())),
                                );
                            }
                        } else if let Some(s) = ws.as_mut() {
                            if let Err(e) = s.feed(Message::text(f.text().to_string())).await {
                                broken = Some(format!("send failed: {e}"));
                            }
                        }
                    }
                    Some(Effect::Close { code, reason }) => {
                        if let Some(ip) = inproc.as_mut() {
                            if let Some(c) = ip.conn.take() {
                                ip.pump(&clock, SchedInput::Disconnected(c));
                            }
                        } else if let Some(mut s) = ws.take() {
                            let frame = CloseFrame {
                                code: CloseCode::from(code),
                                reason: reason.into(),
                            };
                            let _ =
                                tokio::time::timeout(Duration::from_secs(2), s.close(Some(frame)))
                                    .await;
                        }
                    }
                    Some(Effect::Stopped) => stopped = true,
                }
            }
            if let Some(s) = ws.as_mut() {
                if broken.is_none() {
                    if let Err(e) = s.flush().await {
                        broken = Some(format!("send failed: {e}"));
                    }
                }
            }
            agent.publish(worker.stats());
            if let Some(msg) = agent.fatal() {
                return Err(DriverError::Fatal(msg.to_string()));
            }
            if stopped {
                return Ok(());
            }
            if let Some(reason) = broken {
                ws = None;
                pending.push_back(Input::Disconnected { reason });
            }
            if let Some(ip) = inproc.as_mut() {
                while let Some(t) = ip.inbox.pop_front() {
                    pending.push_back(Input::Frame(Incoming::Text(t)));
                }
            }
        }

        let mut deadline = worker.poll_timeout();
        if let Some(ip) = inproc.as_ref() {
            deadline = [deadline, ip.sched.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
        }
        let ev = tokio::select! {
            msg = next_message(&mut ws) => match msg {
                Some(Ok(Message::Text(t))) => { agent.trace_in(t.as_str()); Ev::Input(Input::Frame(Incoming::Text(t.as_str().to_string()))) }
                Some(Ok(Message::Binary(b))) => Ev::Input(Input::Frame(Incoming::Binary(b.len()))),
                Some(Ok(Message::Close(c))) => { ws = None; Ev::Input(Input::Disconnected { reason: format!("closed by the scheduler: {}", c.map(|c| format!("{} {}", c.code, c.reason)).unwrap_or_default()) }) }
                Some(Ok(_)) => Ev::Idle,
                Some(Err(e)) => { ws = None; Ev::Input(Input::Disconnected { reason: e.to_string() }) }
                None => { ws = None; Ev::Input(Input::Disconnected { reason: "connection ended".into() }) }
            },
            res = join_connect(&mut connecting) => {
                connecting = None;
                match res {
                    Ok(s) => Ev::Connected(s),
                    Err(e) => { tracing::warn!(error = %e, "cannot connect to the scheduler"); Ev::Input(Input::Disconnected { reason: e }) }
                }
            }
            Some(input) = rx.recv() => { agent.observe(&input); Ev::Input(input) }
            _ = sleep_opt(deadline.map(|t| clock.to_tokio(t))) => {
                if let Some(ip) = inproc.as_mut() { ip.pump(&clock, SchedInput::Tick); }
                Ev::Input(Input::Tick)
            }
            _ = next_signal(&mut signals) => {
                signal_count += 1;
                if signal_count == 1 {
                    tracing::info!("signal received: draining (send it again to stop at once)");
                    Ev::Input(Input::Command(Command::Drain))
                } else {
                    tracing::warn!("second signal: shutting down now");
                    Ev::Input(Input::Command(Command::Shutdown))
                }
            }
        };
        match ev {
            Ev::Input(i) => pending.push_back(i),
            Ev::Connected(s) => {
                ws = Some(s);
                pending.push_back(Input::Connected);
            }
            Ev::Idle => {}
        }
        if let Some(ip) = inproc.as_mut() {
            while let Some(t) = ip.inbox.pop_front() {
                pending.push_back(Input::Frame(Incoming::Text(t)));
            }
        }
    }
}

async fn connect(url: String, max_frame: usize, timeout: Duration) -> Result<Ws, String> {
    // Allow the hard cap to exceed the soft limit the core enforces, so an oversize frame
    // gets a clear error frame instead of a dropped connection.
    let hard = max_frame.saturating_mul(4).max(1 << 20);
    let config = WebSocketConfig::default()
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard));
    let fut = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok((ws, _resp))) => Ok(ws),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!("{url}: no answer within {} s", timeout.as_secs())),
    }
}

async fn next_message(
    ws: &mut Option<Ws>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws.as_mut() {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn join_connect(
    c: &mut Option<tokio::task::JoinHandle<Result<Ws, String>>>,
) -> Result<Ws, String> {
    match c.as_mut() {
        Some(h) => h
            .await
            .unwrap_or_else(|e| Err(format!("connect task failed: {e}"))),
        None => std::future::pending().await,
    }
}

async fn sleep_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

async fn next_signal(s: &mut Option<Signals>) {
    match s.as_mut() {
        Some(s) => {
            tokio::select! {
                _ = s.term.recv() => {}
                _ = s.int.recv() => {}
            }
        }
        None => std::future::pending().await,
    }
}
