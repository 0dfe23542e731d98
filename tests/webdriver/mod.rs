//! A minimal W3C WebDriver client over plain HTTP/1.1, for driving Debian's headless
//! Chromium through `chromedriver` in tests. Only what the status-page test needs.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver and one browser session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, JSON body).
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Ok((status, v))
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

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Result<Browser, String> {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or("chromedriver is not installed; run scripts/test.sh (installs chromium and chromium-driver)")?;
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {driver_bin}: {e}"))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(addr, "GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let (st, v) = http(addr, "POST", "/session", Some(&caps))?;
        if st != 200 {
            return Err(format!("cannot create a browser session: {v}"));
        }
        b.session = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {v}"))?
            .to_owned();
        Ok(b)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (st, v) = http(self.addr, method, &format!("/session/{}{path}", self.session), body.as_ref())?;
        if st != 200 {
            return Err(format!("webdriver {method} {path}: {st} {v}"));
        }
        Ok(v["value"].clone())
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).map(drop)
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<String, String> {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}"))
    }

    pub fn click(&self, el: &str) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({}))).map(drop)
    }

    pub fn type_into(&self, el: &str, text: &str) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{el}/clear"), Some(json!({})))?;
        self.cmd("POST", &format!("/element/{el}/value"), Some(json!({ "text": text })))
            .map(drop)
    }

    pub fn text(&self, el: &str) -> Result<String, String> {
        Ok(self
            .cmd("GET", &format!("/element/{el}/text"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The page's visible text.
    pub fn body_text(&self) -> Result<String, String> {
        let b = self.find("body")?;
        self.text(&b)
    }

    /// A PNG screenshot of the page.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let b64 = v.as_str().ok_or("no screenshot data")?;
        base64_decode(b64)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.addr, "DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return Err(format!("bad base64 byte {c}")),
        };
        buf = buf << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Ok(out)
}
