//! The optional metrics listener: a minimal HTTP/1.1 responder for `/metrics` and
//! `/healthz`. Request parsing and bodies live in [`crate::metrics`].

use crate::app::rt::timeout;
use crate::app::runtime::Runtime;
use crate::metrics::Metrics;
use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Longest request line read; anything longer is answered as a bad request.
const MAX_REQUEST_LINE: u64 = 8192;

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn serve<R: Runtime>(
    rt: &R,
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<SocketAddr> {
    let (listener, bound) = rt.bind(addr).await?;
    let task_rt = rt.clone();
    rt.spawn(async move {
        while let Ok(conn) = task_rt.accept(&listener).await {
            let metrics = metrics.clone();
            let conn_rt = task_rt.clone();
            task_rt.spawn(async move { respond(&conn_rt, conn, &metrics).await });
        }
    });
    Ok(bound)
}

async fn respond<R: Runtime>(rt: &R, mut conn: R::Conn, metrics: &Metrics) {
    let mut line = String::new();
    {
        let mut reader = BufReader::new((&mut conn).take(MAX_REQUEST_LINE));
        // A client that sends nothing must not hold a task forever.
        if timeout(rt, Duration::from_secs(5), reader.read_line(&mut line))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = conn.write_all(&metrics.respond(line.trim_end())).await;
    let _ = conn.close().await;
}
