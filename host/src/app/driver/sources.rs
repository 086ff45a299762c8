//! Everything the control loop waits on, polled together: the socket, a connect in progress,
//! host completions, the machine's next deadline and signals. One wake-up collects every
//! ready event (bounded per source) so a busy socket cannot starve task completions, and a
//! burst of frames is handled with a single flush.

use crate::app::runtime::{Message, Runtime, Timer, WsError};
use astra_core::worker::Input;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// At most this many items per source per wake-up.
const BATCH: usize = 64;

pub(super) type Connecting<'a, W> = Pin<Box<dyn Future<Output = Result<W, String>> + Send + 'a>>;

pub(super) enum Ev<W> {
    /// An item from the socket; a terminal one (close, error, end) has already dropped it.
    Ws(Option<Result<Message, WsError>>),
    Connected(Result<W, String>),
    Host(Input),
    Tick,
    Signal,
}

pub(super) struct Sources<'a, R: Runtime> {
    pub ws: Option<R::WsClient>,
    pub connecting: Option<Connecting<'a, R::WsClient>>,
    // Boxed: async-channel's receiver is not `Unpin` (it embeds its listener).
    rx: Pin<Box<async_channel::Receiver<Input>>>,
    rx_open: bool,
    timer: Option<R::Timer>,
    armed: Option<std::time::Instant>,
    signals: Option<BoxStream<'static, ()>>,
}

impl<'a, R: Runtime> Sources<'a, R> {
    pub fn new(
        rx: async_channel::Receiver<Input>,
        signals: Option<BoxStream<'static, ()>>,
    ) -> Self {
        Sources {
            ws: None,
            connecting: None,
            rx: Box::pin(rx),
            rx_open: true,
            timer: None,
            armed: None,
            signals,
        }
    }

    /// Waits until at least one event is ready (or `deadline` passes) and appends them all.
    pub async fn wait(
        &mut self,
        rt: &R,
        deadline: Option<std::time::Instant>,
        out: &mut Vec<Ev<R::WsClient>>,
    ) {
        // Re-arm only when the deadline moves (quinn's `drive_timer`): timers are not free.
        match deadline {
            Some(d) if self.armed != Some(d) => {
                match self.timer.as_mut() {
                    Some(t) => t.reset(d),
                    None => self.timer = Some(rt.timer(d)),
                }
                self.armed = Some(d);
            }
            Some(_) => {}
            None => self.armed = None,
        }
        std::future::poll_fn(|cx| self.poll_events(cx, out)).await
    }

    fn poll_events(&mut self, cx: &mut Context<'_>, out: &mut Vec<Ev<R::WsClient>>) -> Poll<()> {
        for _ in 0..BATCH {
            let Some(ws) = self.ws.as_mut() else { break };
            match ws.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(m))) if !matches!(m, Message::Close(_)) => {
                    out.push(Ev::Ws(Some(Ok(m))))
                }
                Poll::Ready(item) => {
                    self.ws = None;
                    out.push(Ev::Ws(item));
                }
                Poll::Pending => break,
            }
        }
        if let Some(c) = self.connecting.as_mut() {
            if let Poll::Ready(res) = c.as_mut().poll(cx) {
                self.connecting = None;
                out.push(Ev::Connected(res));
            }
        }
        for _ in 0..BATCH {
            if !self.rx_open {
                break;
            }
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(i)) => out.push(Ev::Host(i)),
                Poll::Ready(None) => self.rx_open = false,
                Poll::Pending => break,
            }
        }
        if self.armed.is_some() {
            if let Some(t) = self.timer.as_mut() {
                if Pin::new(t).poll(cx).is_ready() {
                    self.armed = None;
                    out.push(Ev::Tick);
                }
            }
        }
        if let Some(s) = self.signals.as_mut() {
            if let Poll::Ready(Some(())) = s.poll_next_unpin(cx) {
                out.push(Ev::Signal);
            }
        }
        if out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}
