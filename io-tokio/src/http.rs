//! The optional metrics listener: a minimal HTTP/1.1 responder for `/metrics` and
//! `/healthz`. Request parsing and bodies live in `astra_host::metrics`.

use astra_host::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut line = String::new();
                let mut reader = BufReader::new(r.take(8192));
                if tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    reader.read_line(&mut line),
                )
                .await
                .is_err()
                {
                    return;
                }
                let _ = w.write_all(&metrics.respond(line.trim_end())).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(bound)
}

use tokio::io::AsyncReadExt as _;
