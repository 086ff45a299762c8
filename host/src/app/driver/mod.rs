//! The worker's control loop, for any [`Runtime`]: one task owns the core machine and the
//! socket, waits on the socket, host completions, the machine's next deadline and signals,
//! and feeds each as one input. Actions go through [`HostAgent::apply`]; only socket effects
//! come back here.

mod inproc;
mod sources;

use crate::agent::{Effect, HostAgent};
use crate::app::clock::Clock;
use crate::app::rt::timeout;
use crate::app::runtime::{Message, Runtime, WebSocketConfig};
use astra_core::worker::{Command, Incoming, Input, Worker};
use futures_util::SinkExt;
use inproc::InProc;
use sources::{Ev, Sources};
use std::collections::VecDeque;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

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

/// Runs the machine until it stops. Host completions and commands arrive on `rx` (the same
/// channel the runner's sink feeds); `Input::Command(Drain)` sent there drains the worker.
pub async fn run<R: Runtime>(
    rt: &R,
    mut worker: Worker,
    mut agent: HostAgent,
    rx: async_channel::Receiver<Input>,
    clock: Clock,
    opts: DriverOptions,
) -> Result<(), DriverError> {
    let mut inproc = match opts.link {
        Link::InProcess => Some(InProc::new(&clock)),
        Link::WebSocket { .. } => None,
    };
    let signals = if opts.signals {
        Some(rt.signals().map_err(DriverError::Signals)?)
    } else {
        None
    };
    let mut src: Sources<'_, R> = Sources::new(rx, signals);
    let mut signal_count = 0u32;
    let mut pending: VecDeque<Input> = VecDeque::from([Input::Start]);
    let mut events = Vec::new();

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
                            ip.connect(&clock);
                            pending.push_back(Input::Connected);
                        }
                        (
                            Link::WebSocket {
                                url,
                                max_frame_bytes,
                            },
                            None,
                        ) => {
                            src.connecting = Some(Box::pin(connect(
                                rt,
                                url.clone(),
                                *max_frame_bytes,
                                opts.connect_timeout,
                            )));
                        }
                        (Link::InProcess, None) => {}
                    },
                    Some(Effect::Send(f)) => {
                        if let Some(ip) = inproc.as_mut() {
                            ip.send(&clock, f.text());
                        } else if let Some(s) = src.ws.as_mut() {
                            // Buffered; flushed once the queued inputs are handled.
                            if let Err(e) = s.feed(Message::text(f.text().to_string())).await {
                                broken = Some(format!("send failed: {e}"));
                            }
                        }
                    }
                    Some(Effect::Close { code, reason }) => {
                        if let Some(ip) = inproc.as_mut() {
                            ip.close(&clock);
                        } else if let Some(mut s) = src.ws.take() {
                            let frame = CloseFrame {
                                code: CloseCode::from(code),
                                reason: reason.into(),
                            };
                            let close = s.send(Message::Close(Some(frame)));
                            let _ = timeout(rt, Duration::from_secs(2), close).await;
                        }
                    }
                    Some(Effect::Stopped) => stopped = true,
                }
            }
            agent.publish(worker.stats());
            if let Some(msg) = agent.fatal() {
                // Frames already handed over were persisted first: deliver them if we can.
                if let Some(s) = src.ws.as_mut() {
                    let _ = s.flush().await;
                }
                return Err(DriverError::Fatal(msg.to_string()));
            }
            if stopped {
                if let Some(s) = src.ws.as_mut() {
                    let _ = s.flush().await;
                }
                return Ok(());
            }
            if let Some(reason) = broken {
                src.ws = None;
                pending.push_back(Input::Disconnected { reason });
            }
            if let Some(ip) = inproc.as_mut() {
                ip.deliver(&mut pending);
            }
        }
        if let Some(s) = src.ws.as_mut() {
            if let Err(e) = s.flush().await {
                src.ws = None;
                pending.push_back(Input::Disconnected {
                    reason: format!("send failed: {e}"),
                });
                continue;
            }
        }

        let mut deadline = worker.poll_timeout();
        if let Some(ip) = inproc.as_ref() {
            deadline = [deadline, ip.poll_timeout()].into_iter().flatten().min();
        }
        src.wait(rt, deadline.map(|t| clock.to_std(t)), &mut events)
            .await;
        for ev in events.drain(..) {
            match ev {
                Ev::Ws(Some(Ok(Message::Text(t)))) => {
                    agent.trace_in(t.as_str());
                    pending.push_back(Input::Frame(Incoming::Text(t.as_str().to_string())));
                }
                Ev::Ws(Some(Ok(Message::Binary(b)))) => {
                    pending.push_back(Input::Frame(Incoming::Binary(b.len())))
                }
                Ev::Ws(Some(Ok(Message::Close(c)))) => pending.push_back(Input::Disconnected {
                    reason: format!(
                        "closed by the scheduler: {}",
                        c.map(|c| format!("{} {}", c.code, c.reason))
                            .unwrap_or_default()
                    ),
                }),
                Ev::Ws(Some(Ok(_))) => {}
                Ev::Ws(Some(Err(e))) => pending.push_back(Input::Disconnected {
                    reason: e.to_string(),
                }),
                Ev::Ws(None) => pending.push_back(Input::Disconnected {
                    reason: "connection ended".into(),
                }),
                Ev::Connected(Ok(s)) => {
                    src.ws = Some(s);
                    pending.push_back(Input::Connected);
                }
                Ev::Connected(Err(e)) => {
                    tracing::warn!(error = %e, "cannot connect to the scheduler");
                    pending.push_back(Input::Disconnected { reason: e });
                }
                Ev::Host(input) => {
                    agent.observe(&input);
                    pending.push_back(input);
                }
                Ev::Tick => {
                    if let Some(ip) = inproc.as_mut() {
                        ip.tick(&clock);
                    }
                    pending.push_back(Input::Tick);
                }
                Ev::Signal => {
                    signal_count += 1;
                    if signal_count == 1 {
                        tracing::info!("signal received: draining (send it again to stop at once)");
                        pending.push_back(Input::Command(Command::Drain));
                    } else {
                        tracing::warn!("second signal: shutting down now");
                        pending.push_back(Input::Command(Command::Shutdown));
                    }
                }
            }
        }
        if let Some(ip) = inproc.as_mut() {
            ip.deliver(&mut pending);
        }
    }
}

/// The WebSocket read buffer of the control connection (see `connect`).
const READ_BUFFER_BYTES: usize = 16 * 1024;

async fn connect<R: Runtime>(
    rt: &R,
    url: String,
    max_frame: usize,
    limit: Duration,
) -> Result<R::WsClient, String> {
    // Allow the hard cap to exceed the soft limit the core enforces, so an oversize frame
    // gets a clear error frame instead of a dropped connection.
    let hard = max_frame.saturating_mul(4).max(1 << 20);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) when the socket is
    // first read, so all of it is resident for the life of the connection. Control frames
    // are well under 1 KiB and a larger one still arrives whole (the buffer grows to fit it);
    // 16 KiB only means more reads for a frame bigger than that.
    let config = WebSocketConfig::default()
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard))
        .read_buffer_size(READ_BUFFER_BYTES);
    match timeout(rt, limit, rt.connect_ws(&url, config)).await {
        Ok(Ok(ws)) => Ok(ws),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!("{url}: no answer within {} s", limit.as_secs())),
    }
}
