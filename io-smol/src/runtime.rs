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

pub struct SmolTimer(smol::Timer);

impl Future for SmolTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Timer for SmolTimer {
    fn reset(&mut self, at: std::time::Instant) {
        self.0.set_at(at);
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

    fn timer(&self, at: std::time::Instant) -> SmolTimer {
        SmolTimer(smol::Timer::at(at))
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
