//! Shared by the health tests and the probe load bench: real HTTP(S) servers on loopback
//! whose behaviour a test sets (answer, hang, trickle), a test CA, the real signpost binary
//! on free loopback ports, and a small DNS client.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// One request as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// TLS server name indication, for HTTPS servers.
    pub sni: Option<String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with this status and body.
    Status(u16, &'static str),
    /// A redirect to `location` with this status.
    Redirect(u16, &'static str),
    /// Read the request, never answer (the connection stays open).
    Hang,
    /// Read the request and close the connection without answering.
    Close,
    /// Send the status line and headers at once, then one body byte every `every`.
    Trickle { len: usize, every: Duration },
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub fn always(reply: Reply) -> Handler {
    Arc::new(move |_| reply.clone())
}

/// An HTTP/1.1 server on 127.0.0.1 (keep-alive unless the client asks to close). Stopping it closes the
/// listener and every open connection, like a killed process.
pub struct HttpServer {
    pub addr: SocketAddr,
    handler: Arc<Mutex<Handler>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub async fn start(handler: Handler) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), handler, None).await
    }

    pub async fn start_tls(handler: Handler, tls: tokio_rustls::TlsAcceptor) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), handler, Some(tls)).await
    }

    async fn start_at(
        addr: SocketAddr,
        handler: Handler,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let mut s = Self {
            addr,
            handler: Arc::new(Mutex::new(handler)),
            tls,
            requests: Arc::default(),
            connections: Arc::default(),
            task: None,
        };
        s.listen().await;
        s
    }

    async fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind test server");
        self.addr = listener.local_addr().unwrap();
        let (handler, tls, requests, connections) = (
            self.handler.clone(),
            self.tls.clone(),
            self.requests.clone(),
            self.connections.clone(),
        );
        self.task = Some(tokio::spawn(async move {
            // Connections live in this set: aborting the accept task drops them all.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        connections.fetch_add(1, Ordering::Relaxed);
                        let (handler, tls, requests) = (handler.clone(), tls.clone(), requests.clone());
                        conns.spawn(async move {
                            match tls {
                                None => serve(stream, None, handler, requests).await,
                                Some(acceptor) => {
                                    let Ok(stream) = acceptor.accept(stream).await else { return };
                                    let sni = stream.get_ref().1.server_name().map(str::to_owned);
                                    serve(stream, sni, handler, requests).await;
                                }
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        }));
    }

    /// Changes what the server answers from now on.
    pub fn set(&self, handler: Handler) {
        *self.handler.lock().unwrap() = handler;
    }

    /// Closes the listener and every connection; the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.listen().await;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves requests on one connection: HTTP/1.1 keep-alive for plain answers unless the
/// client sent `Connection: close`; every other reply ends the connection.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    sni: Option<String>,
    handler: Arc<Mutex<Handler>>,
    requests: Arc<Mutex<Vec<Request>>>,
) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf[0] == 0x16 {
                // A TLS ClientHello on a plain port: answer as web servers do.
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    .await;
                return;
            }
            if buf.len() > 16 * 1024 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        // Probes send no request body: the next request starts right after this head.
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let req = Request {
            method: first.next().unwrap_or_default().to_owned(),
            path: first.next().unwrap_or_default().to_owned(),
            headers: lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
            sni: sni.clone(),
        };
        let keep_alive = !req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = (handler.lock().unwrap().clone())(&req);
        requests.lock().unwrap().push(req);
        let head = |status: u16, len: usize, extra: &str, close: bool| {
            format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\n{}{extra}\r\n",
                reason(status),
                if close { "Connection: close\r\n" } else { "" },
            )
        };
        match reply {
            Reply::Status(status, body) => {
                let mut out = head(status, body.len(), "", !keep_alive).into_bytes();
                out.extend_from_slice(body.as_bytes());
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                if keep_alive {
                    continue;
                }
                let _ = stream.shutdown().await;
            }
            Reply::Redirect(status, location) => {
                let extra = format!("Location: {location}\r\n");
                let _ = stream
                    .write_all(head(status, 0, &extra, true).as_bytes())
                    .await;
                let _ = stream.shutdown().await;
            }
            Reply::Close => {}
            Reply::Hang => {
                // Keep the connection open until the client gives up.
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                }
            }
            Reply::Trickle { len, every } => {
                if stream
                    .write_all(head(200, len, "", true).as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = stream.flush().await;
                for _ in 0..len {
                    tokio::time::sleep(every).await;
                    if stream.write_all(b"o").await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                }
                let _ = stream.shutdown().await;
            }
        }
        return;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A port on 127.0.0.1 that refuses connections (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A CA generated for the test, and server certificates it signs.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub pem: String,
}

impl TestCa {
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "signpost test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Writes the CA certificate as PEM to `path`.
    pub fn write(&self, path: &std::path::Path) {
        std::fs::write(path, &self.pem).unwrap();
    }

    /// A TLS acceptor with a certificate for `names` signed by this CA.
    pub fn acceptor(&self, names: &[&str]) -> tokio_rustls::TlsAcceptor {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Polls `f` every 20 ms until it returns true or `limit` passes; returns the time taken.
pub async fn wait_for(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const ZONE: &str = "$ORIGIN gslb.example.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
@   IN NS  ns1
ns1 IN A   127.0.0.1
";

/// The real binary, serving `gslb.example` plus `profiles` (TOML) on a free loopback port.
pub struct Signpost {
    child: Child,
    /// The UDP DNS address.
    pub dns: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Signpost {
    pub fn start(profiles: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        std::fs::write(zones.join("gslb.example.zone"), ZONE).unwrap();
        let config = dir.path().join("signpost.toml");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nudp_sockets = 1\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[zones]\ndir = {:?}\n\n[state]\ndir = {:?}\n\n{profiles}",
            zones.display().to_string(),
            dir.path().join("state").display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_signpost"))
            .args([
                "--log-format",
                "json",
                "--log-level",
                "info",
                "serve",
                "--config",
            ])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start signpost");
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = VecDeque::new();
        let dns = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!("signpost did not start listening; stderr: {seen:#?}");
                }
            };
            seen.push_back(line.clone());
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let f = &v["fields"];
            if f["message"] == "listening for DNS" && f["proto"] == "udp" {
                break f["addr"].as_str().unwrap().parse().unwrap();
            }
        };
        Self {
            child,
            dns,
            logs,
            _dir: dir,
        }
    }

    /// Log lines (JSON) whose `fields.message` contains `text`.
    pub fn log_lines(&self, text: &str) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(text))
            })
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Signpost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `server` for the A records of `name` over UDP; `Err` on timeout or a bad answer.
pub async fn query_a(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<Ipv4Addr>, String> {
    let reply = query(server, name, timeout).await?;
    Ok(reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect())
}

/// Asks `server` for the A records of `name` over UDP and returns the whole reply.
pub async fn query(server: SocketAddr, name: &str, timeout: Duration) -> Result<Message, String> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    let id = msg.metadata.id;
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    sock.send_to(&bytes, server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        let reply = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
        if reply.metadata.id == id {
            return Ok(reply);
        }
    }
}

/// The distinct addresses seen in `n` answers for `name`.
pub async fn answers(server: SocketAddr, name: &str, n: usize) -> Vec<Ipv4Addr> {
    let mut seen = Vec::new();
    for _ in 0..n {
        if let Ok(addrs) = query_a(server, name, Duration::from_millis(500)).await {
            for a in addrs {
                if !seen.contains(&a) {
                    seen.push(a);
                }
            }
        }
    }
    seen.sort();
    seen
}

/// A TCP connection to `addr` works.
pub async fn reachable(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_ok()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
