//! The load generator: readings posted to the ingest webhook at a fixed
//! rate, each with a new id, over plain HTTP/1.1. A reading the ingest did
//! not accept is posted again (same id: stored once).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One POST; true on a 2xx answer.
async fn post(addr: SocketAddr, body: &str) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!(
        "POST /webhook/hrv HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut answer)).await;
    read.is_ok() && answer.starts_with(b"HTTP/1.1 2")
}

/// Posts `per_second` readings a second until `stop` turns true; returns
/// how many were accepted.
pub async fn run(
    addr: SocketAddr,
    per_second: f64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    let mut n = 0u64;
    let mut accepted = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return accepted,
        }
        n += 1;
        // rmssd 20–99 ms, as a watch reports it.
        let body = format!(
            r#"{{"id":"hrv-{n}","userId":"athlete-{}","rmssd":{}}}"#,
            n % 17,
            20 + (n * 37) % 80
        );
        while !post(addr, &body).await {
            if *stop.borrow() {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        accepted += 1;
    }
}
