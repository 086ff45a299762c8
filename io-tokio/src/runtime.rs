//! tokio behind the application's [`Runtime`] seam: tokio's scheduler, timers and signals,
//! tokio-tungstenite for WebSockets. Accepted TCP streams are adapted to futures-io with
//! tokio-util's compat layer so the shared metrics responder can use them.

use astra_host::app::refsched::worker_path_only;
use astra_host::app::runtime::{Runtime, Timer, WebSocketConfig, WsError};
use futures_util::stream::BoxStream;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The tokio runtime; must be used from inside one (`Runtime::block_on`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

pub struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Timer for TokioTimer {
    fn reset(&mut self, at: std::time::Instant) {
        self.0.as_mut().reset(tokio::time::Instant::from_std(at));
    }
}

impl Runtime for TokioRuntime {
    type Timer = TokioTimer;
    type WsClient = WebSocketStream<MaybeTlsStream<TcpStream>>;
    type WsServer = WebSocketStream<TcpStream>;
    type Listener = TcpListener;
    type Conn = Compat<TcpStream>;

    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(fut);
    }

    fn spawn_blocking(&self, f: Box<dyn FnOnce() + Send + 'static>) {
        tokio::task::spawn_blocking(f);
    }

    fn timer(&self, at: std::time::Instant) -> TokioTimer {
        TokioTimer(Box::pin(tokio::time::sleep_until(
            tokio::time::Instant::from_std(at),
        )))
    }

    async fn connect_ws(
        &self,
        url: &str,
        config: WebSocketConfig,
    ) -> Result<Self::WsClient, WsError> {
        let (ws, _resp) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        Ok(ws)
    }

    async fn bind(&self, addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
        let l = TcpListener::bind(addr).await?;
        let bound = l.local_addr()?;
        Ok((l, bound))
    }

    async fn accept<'a>(&'a self, listener: &'a TcpListener) -> std::io::Result<Self::Conn> {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(stream.compat())
    }

    async fn accept_ws(
        &self,
        conn: Self::Conn,
        config: WebSocketConfig,
    ) -> Result<Self::WsServer, WsError> {
        tokio_tungstenite::accept_hdr_async_with_config(
            conn.into_inner(),
            worker_path_only,
            Some(config),
        )
        .await
    }

    fn signals(&self) -> std::io::Result<BoxStream<'static, ()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| {
            if term.poll_recv(cx).is_ready() || int.poll_recv(cx).is_ready() {
                Poll::Ready(Some(()))
            } else {
                Poll::Pending
            }
        })))
    }
}
