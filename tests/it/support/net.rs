//! Small networking helpers: free ports and a dependency-free readiness probe that works
//! from both sync and async tests (no runtime needed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago (bind to :0, read it, drop the socket).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local_addr of the probe socket")
        .port()
}

/// Sends one plain HTTP/1.0 request to 127.0.0.1:`port` and returns the status code.
pub fn http_status(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        let n = stream.read(&mut head[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let line = String::from_utf8_lossy(&head[..len]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not HTTP: {line:?}"),
            )
        })
}

/// Outcome of waiting for a freshly started server.
pub enum Ready {
    /// The probe got an accepted status.
    Up,
    /// The process exited first (e.g. the port was taken meanwhile): worth a retry.
    Exited(String),
    /// Still not answering at the deadline.
    TimedOut(String),
}

/// Polls `GET path` until it answers with one of `accept`, the child exits, or `timeout`.
pub fn wait_http(
    child: &mut Child,
    port: u16,
    path: &str,
    accept: &[u16],
    timeout: Duration,
) -> Ready {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Ready::Exited(format!("process exited with {status}"));
        }
        let last = match http_status(port, "GET", path) {
            Ok(code) if accept.contains(&code) => return Ready::Up,
            Ok(code) => format!("GET {path} answered {code}"),
            Err(e) => format!("GET {path}: {e}"),
        };
        if Instant::now() >= deadline {
            return Ready::TimedOut(last);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills and reaps a child; used by the servers' `Drop`.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `max` bytes of a log file, for panic messages when a server fails to start.
pub fn log_tail(path: &std::path::Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}
