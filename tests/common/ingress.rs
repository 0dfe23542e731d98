//! The test ingress: real HTTP(S) servers on loopback whose behaviour a test sets
//! (answer, hang, trickle) and a test CA, for what signpost probes.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One request as the server saw it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    /// TLS server name indication, for HTTPS servers.
    pub(crate) sni: Option<String>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// Answer with this status and body.
    Status(u16, &'static str),
    /// A redirect to `location` with this status.
    Redirect(u16, &'static str),
    /// Read the request, never answer (the connection stays open).
    Hang,
    /// Read the request and close the connection without answering.
    Close,
    /// Answer with this status and body after a delay.
    Delayed(Duration, u16, &'static str),
    /// Send the status line and headers at once, then one body byte every `every`.
    Trickle { len: usize, every: Duration },
}

pub(crate) type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub(crate) fn always(reply: Reply) -> Handler {
    Arc::new(move |_| reply.clone())
}

/// An HTTP/1.1 server on 127.0.0.1 (keep-alive unless the client asks to close). Stopping it closes the
/// listener and every open connection, like a killed process.
pub(crate) struct HttpServer {
    pub(crate) addr: SocketAddr,
    handler: Arc<Mutex<Handler>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub(crate) async fn start(handler: Handler) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), handler, None).await
    }

    pub(crate) async fn start_tls(handler: Handler, tls: tokio_rustls::TlsAcceptor) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), handler, Some(tls)).await
    }

    async fn start_at(
        addr: SocketAddr,
        handler: Handler,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let mut s = Self::new(addr, handler, tls);
        s.listen().await;
        s
    }

    /// Serves on `listener`, already bound (in another network namespace, say). Needs a
    /// tokio runtime.
    pub(crate) async fn start_on(listener: std::net::TcpListener, handler: Handler) -> Self {
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let mut s = Self::new(listener.local_addr().unwrap(), handler, None);
        s.serve_on(listener);
        s
    }

    fn new(addr: SocketAddr, handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        Self {
            addr,
            handler: Arc::new(Mutex::new(handler)),
            tls,
            requests: Arc::default(),
            connections: Arc::default(),
            task: None,
        }
    }

    async fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind test server");
        self.addr = listener.local_addr().unwrap();
        self.serve_on(listener);
    }

    fn serve_on(&mut self, listener: TcpListener) {
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
    pub(crate) fn set(&self, handler: Handler) {
        *self.handler.lock().unwrap() = handler;
    }

    /// Closes the listener and every connection; the port refuses connections.
    pub(crate) fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.listen().await;
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
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
        let reply = match reply {
            Reply::Delayed(after, status, body) => {
                tokio::time::sleep(after).await;
                Reply::Status(status, body)
            }
            other => other,
        };
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
            Reply::Close | Reply::Delayed(..) => {}
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
pub(crate) async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A CA generated for the test, and server certificates it signs.
pub(crate) struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub(crate) pem: String,
}

impl TestCa {
    pub(crate) fn new() -> Self {
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
    pub(crate) fn write(&self, path: &std::path::Path) {
        std::fs::write(path, &self.pem).unwrap();
    }

    /// A TLS acceptor with a certificate for `names` signed by this CA.
    pub(crate) fn acceptor(&self, names: &[&str]) -> tokio_rustls::TlsAcceptor {
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
pub(crate) async fn wait_for(
    limit: Duration,
    mut f: impl AsyncFnMut() -> bool,
) -> Option<Duration> {
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

/// A TCP connection to `addr` works.
pub(crate) async fn reachable(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).await.is_ok()
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
