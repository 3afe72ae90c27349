//! Listening on a port that may be taken for a moment.
//!
//! The services' default ports (gRPC 50051–50055) lie inside Linux's ephemeral range
//! (32768–60999), from which the kernel takes the local port of every outgoing connection: one
//! may hold a service's port for a moment, and so may a previous instance still closing. A
//! service retries the bind for a while instead of exiting on the first "address in use".

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

/// How long a taken port is tried again before giving up.
pub const BIND_PATIENCE: Duration = Duration::from_secs(30);

/// Binds `addr`, retrying with growing pauses (50 ms up to 2 s) while it is in use, for at most
/// `patience`. Any other error, or the port still taken after that, is returned.
pub async fn bind(addr: SocketAddr, patience: Duration) -> std::io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(50);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::warn!(%addr, retry_in_ms = pause.as_millis() as u64,
                    "address in use; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_freed_meanwhile_is_taken() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(holder);
        });
        let l = bind(addr, Duration::from_secs(5))
            .await
            .expect("bound after release");
        assert_eq!(l.local_addr().unwrap(), addr);
        release.await.unwrap();
    }

    #[tokio::test]
    async fn a_port_held_too_long_is_an_error() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        let e = bind(addr, Duration::from_millis(200))
            .await
            .expect_err("still taken");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
