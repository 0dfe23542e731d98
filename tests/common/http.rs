//! A minimal HTTP/1.1 client over a plain TCP stream (one request per connection,
//! `Connection: close`), for the admin API and chromedriver. Bounded: connect 5 s, whole
//! response 60 s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One response.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The status line and headers, as sent.
    pub(crate) head: String,
    /// The body (de-chunked).
    pub(crate) body: String,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as JSON; panics (with the body) when it is not JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.body))
    }
}

/// Sends `method path` with `headers` and `body` to `addr` and reads the whole response.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // Read the head, then the body by its length: some servers (chromedriver) answer
    // `Connection: close` and keep the connection open.
    let mut resp = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).map_err(|e| e.to_string())? {
            0 => return Err("connection closed before the end of the HTTP head".into()),
            n => resp.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&resp[..head_end]).into_owned();
    let mut r = Response {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?,
        head,
        body: String::new(),
    };
    let mut body = resp.split_off(head_end + 4);
    let length: Option<usize> = r.header("content-length").and_then(|l| l.parse().ok());
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    loop {
        let complete = match length {
            Some(n) => body.len() >= n,
            None => chunked && body.ends_with(b"0\r\n\r\n"),
        };
        if complete || method == "HEAD" {
            break;
        }
        match s.read(&mut chunk).map_err(|e| e.to_string())? {
            0 if length.is_none() && !chunked => break,
            0 => return Err("connection closed before the end of the body".into()),
            n => body.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&body);
    r.body = if chunked {
        dechunk(&text)
    } else {
        text.into_owned()
    };
    Ok(r)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
