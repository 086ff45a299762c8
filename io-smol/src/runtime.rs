//! smol behind the application's [`Runtime`] seam: an `async-executor` the binary runs on
//! its main thread, async-io timers, async-net sockets, async-tungstenite (`smol-runtime`,
//! rustls + webpki roots for `wss://`), async-signal for SIGTERM/SIGINT, and smol's blocking
//! pool (`blocking`) for file-system work.

use astra_host::app::refsched::worker_path_only;
use astra_host::app::runtime::{Runtime, Timer, WebSocketConfig, WsError};
use async_tungstenite::WebSocketStream;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use smol::net::{TcpListener, TcpStream};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tungstenite::client::IntoClientRequest;
use tungstenite::error::UrlError;

/// smol, with every task on one executor (the binary drives it on its main thread).
#[derive(Clone)]
pub struct SmolRuntime {
    ex: Arc<smol::Executor<'static>>,
}

impl SmolRuntime {
    pub fn new(ex: Arc<smol::Executor<'static>>) -> Self {
        SmolRuntime { ex }
    }
}

/// An async-io timer that is re-armed only when it must fire earlier.
///
/// Every async-io timer (re-)registration notifies the reactor (an eventfd write that makes
/// the thread in `epoll_wait` return for nothing), and the control loop moves its deadline on
/// almost every input (each outbound frame that wants an ack brings its retry 200 ms closer).
/// Re-arming on each move cost a syscall and a spurious reactor wake-up per dispatch, and a
/// run of such empty wake-ups makes async-io's `block_on` hand the reactor to its helper
/// thread, after which every socket event costs a cross-thread wake-up. So a later deadline
/// leaves the armed one in place; when that fires before the target, the timer re-arms once.
pub struct SmolTimer {
    timer: smol::Timer,
    /// When the owner wants the timer to fire.
    target: Instant,
    /// When the async-io timer is armed to fire (`<= target`); `None` once it has fired.
    armed: Option<Instant>,
    /// Registrations made (first arming included): what this type exists to keep low.
    arms: u64,
}

impl SmolTimer {
    fn at(at: Instant) -> Self {
        SmolTimer {
            timer: smol::Timer::at(at),
            target: at,
            armed: Some(at),
            arms: 1,
        }
    }

    fn arm(&mut self, at: Instant) {
        self.timer.set_at(at);
        self.armed = Some(at);
        self.arms += 1;
    }

    /// How many times the underlying async-io timer was armed.
    pub fn arms(&self) -> u64 {
        self.arms
    }
}

impl Future for SmolTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.armed.is_none() {
                // Fired at the target already; pending until the next `reset`.
                return Poll::Pending;
            }
            match Pin::new(&mut self.timer).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => {
                    self.armed = None;
                    if Instant::now() >= self.target {
                        return Poll::Ready(());
                    }
                    // Armed for an earlier deadline that has since moved later.
                    let target = self.target;
                    self.arm(target);
                }
            }
        }
    }
}

impl Timer for SmolTimer {
    fn reset(&mut self, at: Instant) {
        self.target = at;
        match self.armed {
            // Fires first at `armed`, then re-arms for `at` (see `poll`).
            Some(armed) if armed <= at => {}
            _ => self.arm(at),
        }
    }
}

impl Runtime for SmolRuntime {
    type Timer = SmolTimer;
    type WsClient = WebSocketStream<async_tungstenite::smol::ConnectStream>;
    type WsServer = WebSocketStream<TcpStream>;
    type Listener = TcpListener;
    type Conn = TcpStream;

    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.ex.spawn(fut).detach();
    }

    fn spawn_blocking(&self, f: Box<dyn FnOnce() + Send + 'static>) {
        smol::unblock(f).detach();
    }

    fn timer(&self, at: Instant) -> SmolTimer {
        SmolTimer::at(at)
    }

    async fn connect_ws(
        &self,
        url: &str,
        config: WebSocketConfig,
    ) -> Result<Self::WsClient, WsError> {
        // Connect the TCP stream here rather than with `connect_async`, to turn Nagle off:
        // an ack followed by a result would otherwise wait for the peer's delayed ACK.
        let request = url.into_client_request()?;
        let uri = request.uri();
        let host = uri
            .host()
            .ok_or(WsError::Url(UrlError::NoHostName))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = match (uri.port_u16(), uri.scheme_str()) {
            (Some(p), _) => p,
            (None, Some("wss")) => 443,
            (None, Some("ws")) => 80,
            _ => return Err(WsError::Url(UrlError::UnsupportedUrlScheme)),
        };
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let (ws, _resp) =
            async_tungstenite::smol::client_async_tls_with_config(request, tcp, Some(config))
                .await?;
        Ok(ws)
    }

    async fn bind(&self, addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
        let l = TcpListener::bind(addr).await?;
        let bound = l.local_addr()?;
        Ok((l, bound))
    }

    async fn accept<'a>(&'a self, listener: &'a TcpListener) -> std::io::Result<TcpStream> {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn accept_ws(
        &self,
        conn: TcpStream,
        config: WebSocketConfig,
    ) -> Result<Self::WsServer, WsError> {
        async_tungstenite::accept_hdr_async_with_config(conn, worker_path_only, Some(config)).await
    }

    fn signals(&self) -> std::io::Result<BoxStream<'static, ()>> {
        use async_signal::{Signal, Signals};
        let s = Signals::new([Signal::Term, Signal::Int])?;
        Ok(Box::pin(s.map(|_| ())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_later_deadline_does_not_re_register_and_still_fires_no_earlier() {
        smol::block_on(async {
            let start = Instant::now();
            let mut t = SmolTimer::at(start + Duration::from_millis(20));
            // The control loop's pattern: the deadline creeps later many times.
            for i in 1..=100u64 {
                t.reset(start + Duration::from_millis(20 + i));
            }
            assert_eq!(t.arms(), 1, "later deadlines must not re-register");
            let target = start + Duration::from_millis(120);
            (&mut t).await;
            assert!(Instant::now() >= target, "fired before its deadline");
            // One re-arm when the early registration fired short of the target.
            assert_eq!(t.arms(), 2);
        });
    }

    #[test]
    fn an_earlier_deadline_re_arms_at_once() {
        smol::block_on(async {
            let start = Instant::now();
            let mut t = SmolTimer::at(start + Duration::from_secs(3600));
            let target = start + Duration::from_millis(10);
            t.reset(target);
            assert_eq!(t.arms(), 2);
            (&mut t).await;
            assert!(Instant::now() >= target);
        });
    }

    #[test]
    fn a_fired_timer_stays_pending_until_reset_then_fires_again() {
        smol::block_on(async {
            let mut t = SmolTimer::at(Instant::now());
            (&mut t).await;
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(Pin::new(&mut t).poll(&mut cx).is_pending());
            let target = Instant::now() + Duration::from_millis(5);
            t.reset(target);
            (&mut t).await;
            assert!(Instant::now() >= target);
        });
    }
}
