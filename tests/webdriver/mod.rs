//! A minimal W3C WebDriver client over plain HTTP/1.1, for driving Debian's headless
//! Chromium through `chromedriver` in tests. Only what the status-page test needs. Its
//! HTTP client is `common::http`: a test crate with `mod webdriver;` has `mod common;`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver and one browser session.
pub(crate) struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    /// Chromium's profile directory (deleted on drop).
    profile_dir: tempfile::TempDir,
}

/// One request to chromedriver; returns (status, JSON body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r = crate::common::http::request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        &body,
    )?;
    let v = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body));
    Ok((r.status, v))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub(crate) fn start() -> Result<Browser, String> {
        Self::start_with(&[])
    }

    /// [`Browser::start`] with more Chromium arguments, e.g.
    /// `--host-resolver-rules=MAP attacker.example 127.0.0.1`.
    pub(crate) fn start_with(extra: &[&str]) -> Result<Browser, String> {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or("chromedriver is not installed; run scripts/test.sh (installs chromium and chromium-driver)")?;
        let port = crate::common::free_tcp_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {driver_bin}: {e}"))?;
        // From here on, dropping `b` (any error below) stops chromedriver.
        let mut b = Browser {
            driver,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            session: String::new(),
            profile_dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        let addr = b.addr;
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(addr, "GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(format!(
            "--user-data-dir={}",
            b.profile_dir.path().display()
        ));
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args
            }
        }}});
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
        let (st, v) = http(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )?;
        if st != 200 {
            return Err(format!("webdriver {method} {path}: {st} {v}"));
        }
        Ok(v["value"].clone())
    }

    pub(crate) fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// The first element matching a CSS selector.
    pub(crate) fn find(&self, css: &str) -> Result<String, String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}"))
    }

    pub(crate) fn click(&self, el: &str) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})))
            .map(drop)
    }

    pub(crate) fn type_into(&self, el: &str, text: &str) -> Result<(), String> {
        self.cmd("POST", &format!("/element/{el}/clear"), Some(json!({})))?;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    pub(crate) fn text(&self, el: &str) -> Result<String, String> {
        Ok(self
            .cmd("GET", &format!("/element/{el}/text"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// An attribute (or property) of an element, e.g. `class`; `None` when it has none.
    pub(crate) fn attribute(&self, el: &str, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .cmd("GET", &format!("/element/{el}/attribute/{name}"), None)?
            .as_str()
            .map(str::to_owned))
    }

    /// The page's visible text.
    pub(crate) fn body_text(&self) -> Result<String, String> {
        let b = self.find("body")?;
        self.text(&b)
    }

    /// A PNG screenshot of the page.
    pub(crate) fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let b64 = v.as_str().ok_or("no screenshot data")?;
        base64_decode(b64)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
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
