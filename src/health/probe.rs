//! Is a target alive right now? One HTTP, HTTPS or TCP check.
//!
//! HTTP(S) goes through reqwest on rustls (ring), HTTP/1.1 only, with no system proxy and
//! no redirects followed (a 3xx is judged against `expected_status` like any status). The
//! connection goes to the target's address and port; the Host header and TLS SNI (and the
//! name the certificate is checked against) come from `host` when it is set. `timeout`
//! bounds the whole probe — connect, TLS, response headers and body — so a peer that
//! accepts and never answers, or trickles bytes, fails at `timeout`.
//!
//! Connections: with `reuse_connection` (the default) a probe goes over an idle connection
//! that an earlier probe to the same address, port, host and TLS settings left open, so a
//! steady probe costs one request, not a TCP (and TLS) handshake. So that this never
//! hides an ingress that stopped taking new clients for long, or fails a healthy one:
//! - no connection is used for more than [`ProberOptions::max_connection_age`] (a minute):
//!   after that, probes open new ones;
//! - a probe whose reused connection fails before a response (closed or reset by the
//!   peer) is sent again at once on a new connection, and only that result counts;
//! - a probe whose reused connection has not answered after half the `timeout` also tries
//!   a new connection; whichever answers first counts, and it fails only when neither
//!   answers in `timeout`.
//!
//! With `reuse_connection = false` every probe opens a new connection and sends
//! `Connection: close`.
//!
//! TLS: by default the system's trust store; `ca_file` trusts only the certificates in that
//! PEM file; `insecure_skip_verify` accepts any certificate (the handshake signature is
//! still checked).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::base::{Protocol, TlsError, load_roots};
use crate::config::TlsSpec;
use crate::model::ProbeTarget;

/// At most this much of a response body is read (and searched for `body_contains`).
pub(crate) const MAX_BODY: usize = 64 * 1024;

const USER_AGENT: &str = concat!("signpost-probe/", env!("CARGO_PKG_VERSION"));

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    /// Time from the start of the probe until it succeeded or failed.
    pub rtt: Duration,
    /// Why it failed, in a few words ("connection refused", "timeout after 1s (no
    /// response)", "status 503 not in 200-299", "TLS: …"): the text of a `ProbeError`.
    pub reason: Option<String>,
    /// The probe was not made: this host is out of file descriptors, socket buffers or
    /// memory ([`is_local_error`]). It says nothing of the target, so it leaves the
    /// target's status as it was.
    pub local: bool,
}

/// Why a probe failed. The text is the failure reason operators see (status API, status
/// page, `signpost status`), so it stays short and says what the target did.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    /// The probe cannot be sent at all; every probe of the target fails the same way
    /// until the config is fixed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Connecting, the TLS handshake or sending the request failed before a response.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// Nothing (or not all of it) came back within the monitor's `timeout`.
    #[error("timeout after {} ({waiting})", humantime::format_duration(*.after))]
    Timeout { after: Duration, waiting: Waiting },
    /// The response status is not one of `expected_status`.
    #[error("status {status} not in {}", ranges(.expected))]
    Status {
        status: u16,
        expected: Vec<(u16, u16)>,
    },
    /// The response body broke off.
    #[error("body: {0}")]
    Body(ConnectionError),
    /// The body (its first [`MAX_BODY`] bytes, `truncated` when there was more) lacks
    /// `body_contains`.
    #[error(
        "body does not contain {needle:?}{}",
        if *.truncated { " (in its first 64 KiB)" } else { "" }
    )]
    BodyMissing { needle: String, truncated: bool },
}

/// What a probe that timed out was still waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Waiting {
    /// A TCP probe's connection.
    #[error("connect")]
    Connect,
    /// The response headers (the connection, TLS and request included).
    #[error("no response")]
    Response,
    /// The rest of the body.
    #[error("body incomplete")]
    Body,
}

/// A connection or request that failed underneath the HTTP client: the TLS or socket
/// error when there is one, else the client's innermost message.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// This host could not make the connection ([`is_local_error`]).
    #[error("not probed, this host is short of resources: {0}")]
    Local(String),
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    /// "connection refused", "connection reset", …, or the system's words for rarer
    /// errors.
    #[error("{}", socket_reason(*.kind, .message))]
    Socket {
        kind: io::ErrorKind,
        message: String,
    },
    /// e.g. "connection closed before message completed".
    #[error("{0}")]
    Http(String),
}

/// Why a target's HTTP(S) probe cannot be set up. The config check rejects most of these
/// before signpost starts; one that slips through (a `ca_file` removed since) is every
/// probe's failure reason until it is fixed.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("host {0:?} is not a valid Host header")]
    HostHeader(String),
    #[error("header name {0:?} is not valid")]
    HeaderName(String),
    #[error("header {name}: value {value:?} is not valid")]
    HeaderValue { name: String, value: String },
    #[error("invalid probe URL {url:?}: {source}")]
    Url { url: String, source: UrlError },
    /// rustls refused the protocol versions (a build without TLS 1.2 and 1.3).
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    #[error("TLS: cannot use the system trust store: {0}")]
    SystemRoots(rustls::Error),
    /// The monitor's `tls.ca_file` cannot be read or holds no certificate.
    #[error(transparent)]
    CaFile(Arc<TlsError>),
    #[error("cannot set up the HTTP client: {0}")]
    Client(ConnectionError),
}

/// Why a URL does not parse (the `url` crate's `ParseError`, reached through reqwest).
pub(crate) type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// Something that can probe a target. [`Prober`] is the real one; the scheduler is generic
/// so that its timing can be tested with paused time.
pub(crate) trait Check: Send + Sync + 'static {
    /// Per-target work done once, not on every probe (clients, URLs, headers).
    type Prepared: Send + Sync + 'static;

    fn prepare(&self, target: &ProbeTarget) -> Self::Prepared;

    fn check(
        &self,
        target: &ProbeTarget,
        prepared: &Self::Prepared,
    ) -> impl Future<Output = ProbeOutcome> + Send;
}

/// How the prober treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProberOptions {
    /// A kept-alive connection is used for probes for at most this long (then it is
    /// closed once idle, and probes open a new one). Default 60 s.
    pub max_connection_age: Duration,
}

impl Default for ProberOptions {
    fn default() -> Self {
        Self {
            max_connection_age: Duration::from_secs(60),
        }
    }
}

/// Idle kept-alive connections held per address, port and host.
const MAX_IDLE_PER_HOST: usize = 32;

/// Runs probes. Holds one HTTP client per distinct TLS setup and `host` (clients are built
/// on first use and kept for the prober's life), so rustls configurations and trust stores
/// are loaded once; clients that keep connections alive are replaced every
/// `max_connection_age`, which closes their connections.
#[derive(Default)]
pub struct Prober {
    options: ProberOptions,
    clients: Mutex<HashMap<ClientKey, Result<reqwest::Client, SetupError>>>,
    pools: Mutex<HashMap<ClientKey, Result<Arc<Pool>, SetupError>>>,
    tls: Mutex<HashMap<TlsSpec, Result<rustls::ClientConfig, SetupError>>>,
}

/// What makes two targets need different clients: TLS trust, and the host name that is
/// pinned to the target's address (reqwest resolves names per client).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientKey {
    tls: TlsSpec,
    pinned: Option<(String, SocketAddr)>,
}

/// A client that keeps connections alive, rebuilt when it is older than the maximum
/// connection age: the old one's idle connections close when the last probe using it ends.
#[derive(Debug)]
pub(crate) struct Pool {
    key: ClientKey,
    tls: rustls::ClientConfig,
    max_age: Duration,
    current: Mutex<(reqwest::Client, Instant)>,
}

impl Pool {
    fn new(
        key: ClientKey,
        tls: rustls::ClientConfig,
        max_age: Duration,
    ) -> Result<Self, SetupError> {
        let client = build_client(&key, tls.clone(), Some(max_age))?;
        Ok(Self {
            key,
            tls,
            max_age,
            current: Mutex::new((client, Instant::now())),
        })
    }

    /// The client to probe with now.
    fn client(&self) -> reqwest::Client {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.1.elapsed() >= self.max_age {
            // Building the same client again cannot fail where it succeeded before; if it
            // somehow does, keep the old one rather than fail probes.
            if let Ok(fresh) = build_client(&self.key, self.tls.clone(), Some(self.max_age)) {
                *current = (fresh, Instant::now());
            }
        }
        current.0.clone()
    }
}

/// An HTTP(S) probe ready to send; `Err` holds why it cannot be (a bad header, an
/// unreadable `ca_file`), reported as the failure reason of every probe.
pub(crate) type PreparedHttp = Result<HttpProbe, SetupError>;

/// The parts of an HTTP(S) probe that stay the same from probe to probe.
#[derive(Clone, Debug)]
pub(crate) struct HttpProbe {
    /// Opens a new connection for every request.
    fresh: reqwest::Client,
    /// Keeps connections alive (`reuse_connection`).
    pool: Option<Arc<Pool>>,
    url: reqwest::Url,
    /// For a kept-alive connection.
    headers: HeaderMap,
    /// For a new connection: the same plus `Connection: close`.
    close_headers: HeaderMap,
}

impl Check for Prober {
    type Prepared = Option<PreparedHttp>;

    fn prepare(&self, target: &ProbeTarget) -> Self::Prepared {
        self.prepare_http(target)
    }

    fn check(
        &self,
        target: &ProbeTarget,
        prepared: &Self::Prepared,
    ) -> impl Future<Output = ProbeOutcome> + Send {
        run(target, prepared.as_ref())
    }
}

const PHASE_RESPONSE: u8 = 0;
const PHASE_BODY: u8 = 1;

impl Prober {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_options(options: ProberOptions) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// Probes `target` once; never takes longer than its `timeout` (plus scheduling). The
    /// scheduler prepares each target once instead ([`Check`]).
    pub async fn probe(&self, target: &ProbeTarget) -> ProbeOutcome {
        let prepared = self.prepare_http(target);
        run(target, prepared.as_ref()).await
    }

    /// `None` for a tcp target.
    fn prepare_http(&self, t: &ProbeTarget) -> Option<PreparedHttp> {
        if t.protocol == Protocol::Tcp {
            return None;
        }
        Some((|| {
            let key = client_key(t);
            let headers = headers(t)?;
            let mut close_headers = headers.clone();
            close_headers.insert(CONNECTION, HeaderValue::from_static("close"));
            Ok(HttpProbe {
                fresh: self.client(&key)?,
                pool: if t.reuse_connection {
                    Some(self.pool(&key)?)
                } else {
                    None
                },
                url: url(t)?,
                headers,
                close_headers,
            })
        })())
    }

    fn tls(&self, spec: &TlsSpec) -> Result<rustls::ClientConfig, SetupError> {
        let mut cache = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(spec.clone())
            .or_insert_with(|| tls_config(spec))
            .clone()
    }

    fn client(&self, key: &ClientKey) -> Result<reqwest::Client, SetupError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(key) {
            return c.clone();
        }
        let built = self
            .tls(&key.tls)
            .and_then(|tls| build_client(key, tls, None));
        clients.insert(key.clone(), built.clone());
        built
    }

    fn pool(&self, key: &ClientKey) -> Result<Arc<Pool>, SetupError> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools.get(key) {
            return p.clone();
        }
        let built = self.tls(&key.tls).and_then(|tls| {
            Pool::new(key.clone(), tls, self.options.max_connection_age).map(Arc::new)
        });
        pools.insert(key.clone(), built.clone());
        built
    }
}

fn client_key(t: &ProbeTarget) -> ClientKey {
    ClientKey {
        tls: if t.protocol == Protocol::Https {
            t.tls.clone()
        } else {
            TlsSpec::default()
        },
        pinned: t
            .host
            .as_ref()
            .map(|h| (h.to_ascii_lowercase(), SocketAddr::new(t.addr, t.port))),
    }
}

/// A client for `key`: one that opens a new connection per request, or (`keep_alive`
/// = the maximum connection age) one that keeps idle connections for reuse.
fn build_client(
    key: &ClientKey,
    tls: rustls::ClientConfig,
    keep_alive: Option<Duration>,
) -> Result<reqwest::Client, SetupError> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .tcp_nodelay(true)
        .user_agent(USER_AGENT)
        .tls_backend_preconfigured(tls);
    b = match keep_alive {
        None => b.pool_max_idle_per_host(0),
        Some(age) => b
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_idle_timeout(age),
    };
    if let Some((host, addr)) = &key.pinned {
        b = b.resolve(host, *addr);
    }
    b.build().map_err(|e| SetupError::Client(describe(&e)))
}

/// One probe of `target` (`http` is its prepared request, `None` for tcp), bounded by its
/// timeout from start to end.
async fn run(target: &ProbeTarget, http: Option<&PreparedHttp>) -> ProbeOutcome {
    let start = Instant::now();
    let phase = AtomicU8::new(PHASE_RESPONSE);
    let work = async {
        match http {
            None => tcp(target).await.map_err(ProbeError::from),
            Some(Err(setup)) => Err(ProbeError::Setup(setup.clone())),
            Some(Ok(probe)) => http_probe(target, probe, &phase).await,
        }
    };
    let result = tokio::time::timeout(target.timeout, work).await;
    let rtt = start.elapsed();
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(ProbeError::Timeout {
            after: target.timeout,
            waiting: match (target.protocol, phase.load(Ordering::Relaxed)) {
                (Protocol::Tcp, _) => Waiting::Connect,
                (_, PHASE_BODY) => Waiting::Body,
                _ => Waiting::Response,
            },
        }),
    };
    let local = matches!(
        error,
        Some(ProbeError::Connection(ConnectionError::Local(_)))
    );
    ProbeOutcome {
        ok: error.is_none(),
        rtt,
        reason: error.map(|e| e.to_string()),
        local,
    }
}

async fn http_probe(t: &ProbeTarget, p: &HttpProbe, phase: &AtomicU8) -> Result<(), ProbeError> {
    let mut resp = match &p.pool {
        None => send(&p.fresh, &p.url, &p.close_headers).await?,
        Some(pool) => reused_or_new(t, p, &pool.client()).await?,
    };
    phase.store(PHASE_BODY, Ordering::Relaxed);
    let status = resp.status().as_u16();
    if !status_expected(&t.expected_status, status) {
        return Err(ProbeError::Status {
            status,
            expected: t.expected_status.clone(),
        });
    }
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => return Err(ProbeError::Body(describe(&e))),
        }
    }
    if let Some(needle) = &t.body_contains
        && !contains(&body, needle.as_bytes())
    {
        return Err(ProbeError::BodyMissing {
            needle: needle.clone(),
            truncated: body.len() >= MAX_BODY,
        });
    }
    Ok(())
}

async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &HeaderMap,
) -> Result<reqwest::Response, ConnectionError> {
    client
        .get(url.clone())
        .headers(headers.clone())
        .send()
        .await
        .map_err(|e| describe(&e))
}

/// The response to a request over a kept-alive connection of `pooled` (or a new one when
/// none is idle), falling back to a new connection when that fails before a response, or
/// racing one against it when it is silent for half the timeout (see the module docs).
async fn reused_or_new(
    t: &ProbeTarget,
    p: &HttpProbe,
    pooled: &reqwest::Client,
) -> Result<reqwest::Response, ConnectionError> {
    let reused = send(pooled, &p.url, &p.headers);
    tokio::pin!(reused);
    let hedge = tokio::time::sleep(t.timeout / 2);
    tokio::pin!(hedge);
    tokio::select! {
        biased;
        r = &mut reused => {
            return match r {
                Ok(resp) => Ok(resp),
                Err(_) => send(&p.fresh, &p.url, &p.close_headers).await,
            };
        }
        _ = &mut hedge => {}
    }
    let new = send(&p.fresh, &p.url, &p.close_headers);
    tokio::pin!(new);
    tokio::select! {
        r = &mut reused => match r {
            Ok(resp) => Ok(resp),
            Err(_) => new.await,
        },
        r = &mut new => match r {
            Ok(resp) => Ok(resp),
            Err(e) => reused.await.map_err(|_| e),
        },
    }
}

async fn tcp(t: &ProbeTarget) -> Result<(), ConnectionError> {
    TcpStream::connect(SocketAddr::new(t.addr, t.port))
        .await
        .map(drop)
        .map_err(|e| socket_error(&e))
}

/// `http://192.0.2.10:80/healthz`, or with `host`: `https://app.corp.example:443/healthz`
/// (the client pins that name to the target's address).
fn url(t: &ProbeTarget) -> Result<reqwest::Url, SetupError> {
    let scheme = if t.protocol == Protocol::Https {
        "https"
    } else {
        "http"
    };
    let host = match &t.host {
        Some(h) => h.clone(),
        None => match t.addr {
            std::net::IpAddr::V4(a) => a.to_string(),
            std::net::IpAddr::V6(a) => format!("[{a}]"),
        },
    };
    let slash = if t.path.starts_with('/') { "" } else { "/" };
    let text = format!("{scheme}://{host}:{}{slash}{}", t.port, t.path);
    reqwest::Url::parse(&text).map_err(|source| SetupError::Url { url: text, source })
}

fn headers(t: &ProbeTarget) -> Result<HeaderMap, SetupError> {
    let mut map = HeaderMap::new();
    if let Some(h) = &t.host {
        let v = HeaderValue::from_str(h).map_err(|_| SetupError::HostHeader(h.clone()))?;
        map.insert(HOST, v);
    }
    for (k, v) in &t.headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| SetupError::HeaderName(k.clone()))?;
        let value = HeaderValue::from_str(v).map_err(|_| SetupError::HeaderValue {
            name: k.clone(),
            value: v.clone(),
        })?;
        map.insert(name, value);
    }
    Ok(map)
}

fn status_expected(ranges: &[(u16, u16)], status: u16) -> bool {
    if ranges.is_empty() {
        return (200..=299).contains(&status);
    }
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
}

/// `200-299`, `200-299, 301`.
fn ranges(ranges: &[(u16, u16)]) -> String {
    if ranges.is_empty() {
        return "200-299".into();
    }
    let mut s = String::new();
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if lo == hi {
            let _ = write!(s, "{lo}");
        } else {
            let _ = write!(s, "{lo}-{hi}");
        }
    }
    s
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// What went wrong underneath an HTTP client error: the TLS or socket error when there is
/// one, else the innermost message.
fn describe(e: &(dyn std::error::Error + 'static)) -> ConnectionError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut innermost = e.to_string();
    let mut socket = None;
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return ConnectionError::Tls(tls.clone());
        }
        if let Some(ioe) = err.downcast_ref::<io::Error>() {
            if is_local_error(ioe) {
                return ConnectionError::Local(ioe.to_string());
            }
            if socket.is_none() && ioe.kind() != io::ErrorKind::Other {
                socket = Some(socket_error(ioe));
            }
            // An io::Error's source() skips the error it wraps; look at that one too.
            if let Some(inner) = ioe.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        innermost = err.to_string();
        cur = err.source();
    }
    socket.unwrap_or(ConnectionError::Http(innermost))
}

fn socket_error(e: &io::Error) -> ConnectionError {
    if is_local_error(e) {
        return ConnectionError::Local(e.to_string());
    }
    ConnectionError::Socket {
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// Whether creating or connecting a socket failed because of this host, not the target:
/// out of file descriptors (EMFILE for the process, ENFILE for the system), socket
/// buffers (ENOBUFS) or memory (ENOMEM). Such a probe is not a failure of the endpoint.
pub fn is_local_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    ) || e.kind() == io::ErrorKind::OutOfMemory
}

/// Short words for the common socket errors, else the system's `message`.
fn socket_reason(kind: io::ErrorKind, message: &str) -> &str {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::UnexpectedEof => "connection closed before the response was complete",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::AddrNotAvailable => "address not available",
        _ => message,
    }
}

/// The rustls configuration for one `tls = { ... }` setting.
fn tls_config(spec: &TlsSpec) -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(SetupError::Tls)?;
    let mut config = if spec.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
            .with_no_client_auth()
    } else if let Some(path) = &spec.ca_file {
        builder
            .with_root_certificates(load_roots(path).map_err(|e| SetupError::CaFile(Arc::new(e)))?)
            .with_no_client_auth()
    } else {
        let verifier =
            rustls_platform_verifier::Verifier::new(provider).map_err(SetupError::SystemRoots)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `insecure_skip_verify`: any certificate, any name. The handshake signature is still
/// verified so that the session is at least bound to the presented key.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_and_their_text() {
        let r = [(200, 299), (301, 301)];
        assert!(status_expected(&r, 200));
        assert!(status_expected(&r, 301));
        assert!(!status_expected(&r, 302));
        assert!(!status_expected(&r, 503));
        assert!(status_expected(&[], 204));
        assert!(!status_expected(&[], 404));
        assert_eq!(ranges(&r), "200-299, 301");
        assert_eq!(ranges(&[]), "200-299");
    }

    #[test]
    fn failure_reasons_read_as_before() {
        let cases: [(ProbeError, &str); 7] = [
            (
                ProbeError::Timeout {
                    after: Duration::from_millis(800),
                    waiting: Waiting::Body,
                },
                "timeout after 800ms (body incomplete)",
            ),
            (
                ProbeError::Status {
                    status: 503,
                    expected: vec![(200, 299), (301, 301)],
                },
                "status 503 not in 200-299, 301",
            ),
            (
                ProbeError::BodyMissing {
                    needle: "ok".into(),
                    truncated: true,
                },
                "body does not contain \"ok\" (in its first 64 KiB)",
            ),
            (
                socket_error(&io::Error::from(io::ErrorKind::ConnectionRefused)).into(),
                "connection refused",
            ),
            (
                ProbeError::Body(socket_error(&io::Error::other("odd"))),
                "body: odd",
            ),
            (
                ConnectionError::Tls(rustls::Error::HandshakeNotComplete).into(),
                "TLS: handshake not complete",
            ),
            (
                SetupError::HeaderValue {
                    name: "X-Probe".into(),
                    value: "a\nb".into(),
                }
                .into(),
                "header X-Probe: value \"a\\nb\" is not valid",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text, "{error:?}");
        }
    }

    #[test]
    fn local_errors_are_told_from_failures_of_the_target() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(is_local_error(&e), "{e}");
            assert!(matches!(socket_error(&e), ConnectionError::Local(_)), "{e}");
            // Found under the HTTP client's own errors too.
            let wrapped = io::Error::other(io::Error::from_raw_os_error(errno));
            let d = describe(&wrapped);
            assert!(matches!(d, ConnectionError::Local(_)), "{d:?}");
        }
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(
            ProbeError::from(socket_error(&e)).to_string(),
            format!("not probed, this host is short of resources: {e}")
        );
        for errno in [
            libc::ECONNREFUSED,
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::EADDRNOTAVAIL,
            libc::ECONNRESET,
        ] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(!is_local_error(&e), "{e}");
            assert!(
                matches!(socket_error(&e), ConnectionError::Socket { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn body_search() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"status: bad\n", b"ok"));
        assert!(contains(b"", b""));
        assert!(!contains(b"o", b"ok"));
    }

    fn target(protocol: Protocol, host: Option<&str>, path: &str) -> ProbeTarget {
        ProbeTarget {
            addr: "192.0.2.10".parse().unwrap(),
            port: 8443,
            protocol,
            path: path.into(),
            host: host.map(Into::into),
            headers: vec![("X-Probe".into(), "1".into())],
            expected_status: vec![(200, 299)],
            body_contains: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            tolerated_failures: 0,
            rise: 1,
            retry_interval: Duration::from_secs(1),
            tls: TlsSpec::default(),
            reuse_connection: true,
        }
    }

    #[test]
    fn urls_carry_the_host_when_set_else_the_address() {
        let t = target(Protocol::Https, Some("app.corp.example"), "/healthz");
        assert_eq!(
            url(&t).unwrap().as_str(),
            "https://app.corp.example:8443/healthz"
        );
        let t = target(Protocol::Http, None, "healthz");
        assert_eq!(url(&t).unwrap().as_str(), "http://192.0.2.10:8443/healthz");
        let mut t = target(Protocol::Http, None, "/");
        t.addr = "2001:db8::1".parse().unwrap();
        assert_eq!(url(&t).unwrap().as_str(), "http://[2001:db8::1]:8443/");
    }

    #[test]
    fn headers_set_host_and_custom_values_and_reject_bad_ones() {
        let t = target(Protocol::Http, Some("app.corp.example"), "/");
        let h = headers(&t).unwrap();
        assert_eq!(h[HOST], "app.corp.example");
        assert_eq!(h["x-probe"], "1");
        assert!(h.get(CONNECTION).is_none(), "set per connection kind");
        let mut t = target(Protocol::Http, None, "/");
        t.headers = vec![("Bad Name".into(), "x".into())];
        let err = headers(&t).unwrap_err();
        assert!(
            matches!(&err, SetupError::HeaderName(n) if n == "Bad Name"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "header name \"Bad Name\" is not valid");
    }

    #[test]
    fn unreadable_ca_file_is_a_clear_tls_reason() {
        let spec = TlsSpec {
            ca_file: Some("/nonexistent/ca.pem".into()),
            insecure_skip_verify: false,
        };
        let err = tls_config(&spec).unwrap_err().to_string();
        assert!(
            err.starts_with("TLS: cannot read ca_file /nonexistent/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = load_roots(&empty).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
