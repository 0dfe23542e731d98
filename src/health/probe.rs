//! Is a target alive right now? One HTTP, HTTPS or TCP check.
//!
//! HTTP(S) goes through reqwest on rustls (ring), HTTP/1.1 only, with no system proxy and
//! no redirects followed (a 3xx is judged against `expected_status` like any status). Each
//! probe opens a new connection and sends `Connection: close`: a probe must show that a new
//! client can connect, which a pooled connection would hide. The connection goes to the
//! target's address and port; the Host header and TLS SNI (and the name the certificate is
//! checked against) come from `host` when it is set. `timeout` bounds the whole probe —
//! connect, TLS, response headers and body — so a peer that accepts and never answers, or
//! trickles bytes, fails at `timeout`.
//!
//! TLS: by default the system's trust store; `ca_file` trusts only the certificates in that
//! PEM file; `insecure_skip_verify` accepts any certificate (the handshake signature is
//! still checked).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::{Protocol, TlsSpec};
use crate::model::ProbeTarget;

/// At most this much of a response body is read (and searched for `body_contains`).
pub const MAX_BODY: usize = 64 * 1024;

const USER_AGENT: &str = concat!("signpost-probe/", env!("CARGO_PKG_VERSION"));

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    /// Time from the start of the probe until it succeeded or failed.
    pub rtt: Duration,
    /// Why it failed, in a few words ("connection refused", "timeout after 1s (no
    /// response)", "status 503 not in 200-299", "TLS: …").
    pub reason: Option<String>,
}

/// Something that can probe a target. [`Prober`] is the real one; the scheduler is generic
/// so that its timing can be tested with paused time.
pub trait Check: Send + Sync + 'static {
    /// Per-target work done once, not on every probe (clients, URLs, headers).
    type Prepared: Send + Sync + 'static;

    fn prepare(&self, target: &ProbeTarget) -> Self::Prepared;

    fn check(
        &self,
        target: &ProbeTarget,
        prepared: &Self::Prepared,
    ) -> impl Future<Output = ProbeOutcome> + Send;
}

/// Runs probes. Holds one HTTP client per distinct TLS setup and `host` (clients are built
/// on first use and kept for the prober's life), so rustls configurations and trust stores
/// are loaded once.
#[derive(Default)]
pub struct Prober {
    clients: Mutex<HashMap<ClientKey, Result<reqwest::Client, String>>>,
    tls: Mutex<HashMap<TlsSpec, Result<rustls::ClientConfig, String>>>,
}

/// What makes two targets need different clients: TLS trust, and the host name that is
/// pinned to the target's address (reqwest resolves names per client).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientKey {
    tls: TlsSpec,
    pinned: Option<(String, SocketAddr)>,
}

/// An HTTP(S) probe ready to send; `Err` holds why it cannot be (a bad header, an
/// unreadable `ca_file`), reported as the failure reason of every probe.
pub type PreparedHttp = Result<HttpProbe, String>;

/// The parts of an HTTP(S) probe that stay the same from probe to probe.
#[derive(Clone, Debug)]
pub struct HttpProbe {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
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
            Ok(HttpProbe {
                client: self.client(t)?,
                url: url(t)?,
                headers: headers(t)?,
            })
        })())
    }

    fn client(&self, t: &ProbeTarget) -> Result<reqwest::Client, String> {
        let key = ClientKey {
            tls: if t.protocol == Protocol::Https {
                t.tls.clone()
            } else {
                TlsSpec::default()
            },
            pinned: t
                .host
                .as_ref()
                .map(|h| (h.to_ascii_lowercase(), SocketAddr::new(t.addr, t.port))),
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        let built = self.build_client(&key);
        clients.insert(key, built.clone());
        built
    }

    fn build_client(&self, key: &ClientKey) -> Result<reqwest::Client, String> {
        let tls = {
            let mut cache = self.tls.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entry(key.tls.clone())
                .or_insert_with(|| tls_config(&key.tls))
                .clone()?
        };
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .tls_backend_preconfigured(tls);
        if let Some((host, addr)) = &key.pinned {
            b = b.resolve(host, *addr);
        }
        b.build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", describe(&e)))
    }
}

/// One probe of `target` (`http` is its prepared request, `None` for tcp), bounded by its
/// timeout from start to end.
async fn run(target: &ProbeTarget, http: Option<&PreparedHttp>) -> ProbeOutcome {
    let start = Instant::now();
    let phase = AtomicU8::new(PHASE_RESPONSE);
    let work = async {
        match http {
            None => tcp(target).await,
            Some(Err(reason)) => Err(reason.clone()),
            Some(Ok(probe)) => http_probe(target, probe, &phase).await,
        }
    };
    let result = tokio::time::timeout(target.timeout, work).await;
    let rtt = start.elapsed();
    let reason = match result {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(_) => {
            let what = match (target.protocol, phase.load(Ordering::Relaxed)) {
                (Protocol::Tcp, _) => "connect",
                (_, PHASE_BODY) => "body incomplete",
                _ => "no response",
            };
            Some(format!(
                "timeout after {} ({what})",
                humantime::format_duration(target.timeout)
            ))
        }
    };
    ProbeOutcome {
        ok: reason.is_none(),
        rtt,
        reason,
    }
}

async fn http_probe(t: &ProbeTarget, p: &HttpProbe, phase: &AtomicU8) -> Result<(), String> {
    let request = p.client.get(p.url.clone()).headers(p.headers.clone());
    let mut resp = request.send().await.map_err(|e| describe(&e))?;
    phase.store(PHASE_BODY, Ordering::Relaxed);
    let status = resp.status().as_u16();
    if !status_expected(&t.expected_status, status) {
        return Err(format!(
            "status {status} not in {}",
            ranges(&t.expected_status)
        ));
    }
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("body: {}", describe(&e))),
        }
    }
    if let Some(needle) = &t.body_contains
        && !contains(&body, needle.as_bytes())
    {
        let scope = if body.len() >= MAX_BODY {
            " (in its first 64 KiB)"
        } else {
            ""
        };
        return Err(format!("body does not contain {needle:?}{scope}"));
    }
    Ok(())
}

async fn tcp(t: &ProbeTarget) -> Result<(), String> {
    TcpStream::connect(SocketAddr::new(t.addr, t.port))
        .await
        .map(drop)
        .map_err(|e| io_reason(&e))
}

/// `http://192.0.2.10:80/healthz`, or with `host`: `https://app.corp.example:443/healthz`
/// (the client pins that name to the target's address).
fn url(t: &ProbeTarget) -> Result<reqwest::Url, String> {
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
    reqwest::Url::parse(&text).map_err(|e| format!("invalid probe URL {text:?}: {e}"))
}

fn headers(t: &ProbeTarget) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    if let Some(h) = &t.host {
        let v = HeaderValue::from_str(h)
            .map_err(|_| format!("host {h:?} is not a valid Host header"))?;
        map.insert(HOST, v);
    }
    map.insert(CONNECTION, HeaderValue::from_static("close"));
    for (k, v) in &t.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("header name {k:?} is not valid"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| format!("header {k}: value {v:?} is not valid"))?;
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

/// A short reason for an HTTP client error: the TLS or socket error underneath when there
/// is one, else the innermost message.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut innermost = e.to_string();
    let mut socket = None;
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return format!("TLS: {tls}");
        }
        if let Some(ioe) = err.downcast_ref::<io::Error>() {
            if socket.is_none() && ioe.kind() != io::ErrorKind::Other {
                socket = Some(io_reason(ioe));
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
    socket.unwrap_or(innermost)
}

fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::UnexpectedEof => "connection closed before the response was complete".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        K::AddrNotAvailable => "address not available".into(),
        _ => e.to_string(),
    }
}

/// The rustls configuration for one `tls = { ... }` setting.
fn tls_config(spec: &TlsSpec) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let mut config = if spec.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
            .with_no_client_auth()
    } else if let Some(path) = &spec.ca_file {
        builder
            .with_root_certificates(load_roots(path)?)
            .with_no_client_auth()
    } else {
        let verifier = rustls_platform_verifier::Verifier::new(provider)
            .map_err(|e| format!("TLS: cannot use the system trust store: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Every certificate in the PEM file at `path`, as the only trusted roots.
pub fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let at = path.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("TLS: cannot read ca_file {at}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("TLS: ca_file {at}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("TLS: ca_file {at}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("TLS: ca_file {at} holds no PEM certificate"));
    }
    Ok(roots)
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
            tls: TlsSpec::default(),
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
        assert_eq!(h[CONNECTION], "close");
        let mut t = target(Protocol::Http, None, "/");
        t.headers = vec![("Bad Name".into(), "x".into())];
        assert!(headers(&t).unwrap_err().contains("\"Bad Name\""));
    }

    #[test]
    fn unreadable_ca_file_is_a_clear_tls_reason() {
        let spec = TlsSpec {
            ca_file: Some("/nonexistent/ca.pem".into()),
            insecure_skip_verify: false,
        };
        let err = tls_config(&spec).unwrap_err();
        assert!(
            err.starts_with("TLS: cannot read ca_file /nonexistent/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = load_roots(&empty).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
