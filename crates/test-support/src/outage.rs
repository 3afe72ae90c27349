//! A database outage for one service: a TCP forwarder between the service and PostgreSQL that a
//! test can cut and restore.
//!
//! The machine's PostgreSQL serves every test at once, so a test cannot stop it. Cutting the
//! path instead is what a service sees when its database goes away — every open connection
//! drops, every new one is refused — and the traffic that does pass is real PostgreSQL protocol
//! to the real server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// A forwarder to `upstream` that can be cut. Stops forwarding on drop.
pub struct DbOutage {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl DbOutage {
    /// Forwards a local port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind forwarder");
        let addr = listener.local_addr().expect("forwarder address");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let acceptor = {
            let cut = cut.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(client); // refused: closed at once
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut open = connections.lock().await;
                    open.retain(|t| !t.is_finished());
                    open.push(task);
                }
            })
        };
        Self {
            addr,
            cut,
            connections,
            acceptor,
        }
    }

    /// Forwards to the server of `database_url`.
    pub async fn for_url(database_url: &str) -> Self {
        let rest = database_url
            .split_once("://")
            .map_or(database_url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let upstream = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
        Self::start(upstream).await
    }

    /// `database_url` with its host and port replaced by this forwarder's.
    pub fn url_for(&self, database_url: &str) -> String {
        let (scheme, rest) = database_url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let userinfo = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}{}/{path}", self.addr)
    }

    /// The database goes away: open connections drop, new ones are refused.
    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.connections.lock().await.drain(..) {
            task.abort();
        }
    }

    /// The database is back.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for DbOutage {
    fn drop(&mut self) {
        self.acceptor.abort();
        if let Ok(mut open) = self.connections.try_lock() {
            open.drain(..).for_each(|t| t.abort());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_keep_user_and_database() {
        let o = DbOutage::start("127.0.0.1:5432".into()).await;
        let url = o.url_for("postgres://postgres@127.0.0.1:5432/redress_test_1");
        assert_eq!(
            url,
            format!("postgres://postgres@{}/redress_test_1", o.addr)
        );
    }
}
