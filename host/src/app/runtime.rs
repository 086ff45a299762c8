//! The async runtime seam (quinn's `Runtime` shape): the few things the shared application
//! layer needs from tokio or smol. Each driver crate implements it in one small file; nothing
//! else in the application knows which runtime it runs on.
//!
//! Both drivers use tungstenite 0.30 (tokio-tungstenite 0.30, async-tungstenite 0.35), so the
//! WebSocket streams carry `tungstenite::Message` directly with no conversion glue. If one
//! driver moves to another tungstenite, its `WsClient` bound stops compiling: bump both.

use futures_util::io::{AsyncRead, AsyncWrite};
use futures_util::stream::BoxStream;
use futures_util::{Sink, Stream};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;
pub use tungstenite::protocol::WebSocketConfig;
pub use tungstenite::{Error as WsError, Message};

/// A one-shot timer that can be re-armed (the control loop keeps one and moves it).
pub trait Timer: Future<Output = ()> + Send + Unpin + 'static {
    /// Re-arms the timer for `at`; a timer that already fired becomes pending again.
    fn reset(&mut self, at: Instant);
}

/// A WebSocket as both drivers' tungstenite bindings expose it.
pub trait WebSocket:
    Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Send + Unpin + 'static
{
}

impl<T> WebSocket for T where
    T: Sink<Message, Error = WsError>
        + Stream<Item = Result<Message, WsError>>
        + Send
        + Unpin
        + 'static
{
}

/// What the application needs from an async runtime. Implementations are cheap handles
/// (`Clone`), passed by reference through the commands.
pub trait Runtime: Clone + Send + Sync + 'static {
    type Timer: Timer;
    /// A client connection to a scheduler (`ws://` or `wss://`).
    type WsClient: WebSocket;
    /// A connection accepted by the reference scheduler.
    type WsServer: WebSocket;
    type Listener: Send + Sync + 'static;
    /// An accepted TCP connection (Nagle off), as futures-io streams.
    type Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Runs `fut` to completion in the background (detached).
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static);

    /// Runs blocking `f` on the runtime's blocking pool (detached; see [`super::rt::unblock`]).
    fn spawn_blocking(&self, f: Box<dyn FnOnce() + Send + 'static>);

    /// A timer firing at `at`.
    fn timer(&self, at: Instant) -> Self::Timer;

    /// Opens a WebSocket client connection to `url` (TLS for `wss://`, Nagle off).
    fn connect_ws(
        &self,
        url: &str,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::WsClient, WsError>> + Send;

    /// Binds a TCP listener; returns it with the address actually bound (port 0 resolved).
    fn bind(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = std::io::Result<(Self::Listener, SocketAddr)>> + Send;

    /// Accepts one connection.
    fn accept<'a>(
        &'a self,
        listener: &'a Self::Listener,
    ) -> impl Future<Output = std::io::Result<Self::Conn>> + Send + 'a;

    /// Completes the server side of the WebSocket handshake on `conn`, answering 404 unless
    /// the request path is `/ws/worker` (see [`super::refsched::worker_path_only`]).
    fn accept_ws(
        &self,
        conn: Self::Conn,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::WsServer, WsError>> + Send;

    /// One item per SIGTERM or SIGINT received from now on.
    fn signals(&self) -> std::io::Result<BoxStream<'static, ()>>;
}
