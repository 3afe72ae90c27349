//! A Server-Sent Events client over a plain TCP connection, for tests and benchmarks of the
//! board's event gateway: what a dashboard's `EventSource` does, without a browser.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

/// One event as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    /// `message` unless the server named it (`dropped`).
    pub event: String,
    pub data: String,
}

/// An open event stream, or the response that refused it.
pub enum SseResponse {
    Stream(SseClient),
    Refused { status: u16, body: String },
}

pub struct SseClient {
    reader: BufReader<OwnedReadHalf>,
    _write: tokio::net::tcp::OwnedWriteHalf,
}

impl SseClient {
    /// `GET path` on `addr` with extra `headers`; a 200 opens the stream.
    pub async fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseResponse {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the board");
        stream.set_nodelay(true).ok();
        let (read, mut write) = stream.into_split();
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        write
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut reader = BufReader::new(read);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .await
            .expect("status line");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut chunked = false;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("transfer-encoding: chunked") {
                chunked = true;
            }
            if let Some(n) = lower.strip_prefix("content-length:") {
                length = n.trim().parse().unwrap_or(0);
            }
        }
        if status != 200 {
            let mut body = vec![0; length];
            let _ =
                tokio::time::timeout(Duration::from_secs(5), reader.read_exact(&mut body)).await;
            return SseResponse::Refused {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
        }
        assert!(chunked, "an event stream is sent chunked");
        SseResponse::Stream(SseClient {
            reader,
            _write: write,
        })
    }

    /// The next event within `timeout`; `None` when none came or the stream ended.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        tokio::time::timeout(timeout, self.read_event())
            .await
            .ok()
            .flatten()
    }

    async fn read_event(&mut self) -> Option<SseEvent> {
        let mut event = SseEvent {
            event: "message".into(),
            ..Default::default()
        };
        let mut has_data = false;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                if has_data {
                    return Some(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // keep-alive comment
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = value.to_owned(),
                "data" => {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                _ => {}
            }
        }
    }

    /// One line of the event stream, taken out of the HTTP chunks.
    async fn line(&mut self) -> Option<String> {
        loop {
            let mut raw = String::new();
            if self.reader.read_line(&mut raw).await.ok()? == 0 {
                return None;
            }
            let line = raw.trim_end_matches(['\r', '\n']);
            // A chunk-size line: hexadecimal digits only (event lines never are).
            if !line.is_empty() && line.bytes().all(|b| b.is_ascii_hexdigit()) {
                if line.trim_start_matches('0').is_empty() {
                    return None; // the last chunk
                }
                continue;
            }
            return Some(line.to_owned());
        }
    }
}
