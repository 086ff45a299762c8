//! Installs over HTTP from a one-shot server on 127.0.0.1 that stops by itself.

use super::fixtures::{package_files, snapshot, zip_of};
use super::install_tests::Sandbox;
use crate::packages::{install, FetchError, InstallError, InstallLimits};
use astra_core::v1::payloads::PackageStatus;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Serves `response` (raw HTTP) to the first connection, then exits. Gives up after 10 s if
/// nobody connects, so a failing test cannot leave a thread blocked forever.
fn serve_once(response: Vec<u8>) -> (String, JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut conn, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return None,
            }
        };
        conn.set_nonblocking(false).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        // The client may hang up early (e.g. on a size limit); that is not a server error.
        let _ = conn.write_all(&response);
        let _ = conn.flush();
        Some(String::from_utf8_lossy(&request).into_owned())
    });
    (format!("http://{addr}"), handle)
}

fn ok_response(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn installs_over_http_with_a_misleading_extension() {
    let sb = Sandbox::new();
    let body = zip_of(&package_files("example.pkg", "1.0.0", "http"));
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let (base, server) = serve_once(ok_response(&body));
    let url = format!("{base}/packages/example.pkg/1.0.0/package.cwx");
    let p = install(
        &sb.store,
        &url,
        Some(("example.pkg", "1.0.0")),
        Some(&sha),
        &InstallLimits::default(),
    )
    .unwrap();
    assert_eq!(p.status, PackageStatus::Installed);
    assert!(sb.echo_py("1.0.0").contains("# http"));
    let request = server.join().unwrap().expect("server saw a request");
    assert!(
        request.starts_with("GET /packages/example.pkg/1.0.0/package.cwx "),
        "{request}"
    );
}

#[test]
fn http_errors_and_oversized_downloads_fail_cleanly() {
    let sb = Sandbox::new();
    let before = snapshot(&sb.root);

    let (base, server) = serve_once(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    );
    let err = install(
        &sb.store,
        &format!("{base}/missing.zip"),
        None,
        None,
        &InstallLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, InstallError::Fetch(FetchError::Http { reason, .. }) if reason.contains("404")),
        "{err}"
    );
    server.join().unwrap();

    let body = zip_of(&package_files("example.pkg", "1.0.0", "big"));
    let mut small = InstallLimits::default();
    small.fetch.max_bytes = 512;
    // Announced too large by Content-Length.
    let (base, server) = serve_once(ok_response(&body));
    let err = install(&sb.store, &format!("{base}/p"), None, None, &small).unwrap_err();
    assert!(
        matches!(err, InstallError::Fetch(FetchError::TooLarge { .. })),
        "{err}"
    );
    server.join().unwrap();
    // Not announced (body until close): caught while streaming.
    let mut chunked = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    chunked.extend_from_slice(&body);
    let (base, server) = serve_once(chunked);
    let err = install(&sb.store, &format!("{base}/p"), None, None, &small).unwrap_err();
    assert!(
        matches!(err, InstallError::Fetch(FetchError::TooLarge { .. })),
        "{err}"
    );
    server.join().unwrap();

    assert_eq!(snapshot(&sb.root), before);
}
