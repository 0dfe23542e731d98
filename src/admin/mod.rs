//! The admin HTTP/1.1 server (hyper): JSON API, `/metrics`, `/healthz`, `/readyz`, and the
//! status page. Mutating calls need `Authorization: Bearer <token>` when a token is
//! configured; each is sent to the publisher as a [`Command`] and audited there.

pub mod client;
pub mod cluster;
pub mod doc;
pub mod page;
pub mod status;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::HumanDuration;
use crate::drain::DrainError;
use crate::publisher::Command as WriterCommand;
use crate::snapshot::Shared;

pub use crate::drain::DrainTarget;

/// An error the API reports as JSON with an HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Requests from the API to the controller: drains and undrains go on to the writer
/// (the publisher) unchanged; reloads are loaded by the controller itself.
#[derive(Debug)]
pub enum Command {
    Writer(WriterCommand),
    Reload {
        caller: String,
        reply: oneshot::Sender<Result<ReloadDone, ReloadError>>,
    },
}

/// A reload that took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadDone {
    pub generation: u64,
    /// What happened, with the settings that need a restart, if any.
    pub message: String,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the new config has errors; still serving generation {serving}:\n{problems}")]
    Rejected { serving: u64, problems: String },
    #[error("reload task failed: {0}")]
    Task(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl ReloadError {
    fn status(&self) -> u16 {
        match self {
            ReloadError::Rejected { .. } => 422,
            ReloadError::Task(_) => 500,
            ReloadError::ShuttingDown => 503,
        }
    }
}

fn drain_status(e: &DrainError) -> u16 {
    match e {
        DrainError::UnknownSite { .. }
        | DrainError::UnknownProfile(_)
        | DrainError::UnknownEndpoint { .. } => 404,
        DrainError::Save { .. } => 500,
        DrainError::ShuttingDown => 503,
    }
}

/// What the admin server needs.
pub struct AdminState {
    pub snapshot: Shared,
    pub commands: mpsc::Sender<Command>,
    /// The bearer token, replaced when a reload reads a changed token file.
    pub token: Arc<arc_swap::ArcSwapOption<String>>,
    pub metrics: PrometheusHandle,
    /// The cluster and how its health views combine, when this instance is one of
    /// several.
    pub cluster: Option<(Arc<crate::cluster::Cluster>, crate::cluster::HealthMode)>,
}

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "admin accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "admin connection error");
            }
        });
    }
}

/// Why the admin listener's token settings cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "admin.listen = \"{0}\" is reachable from other hosts but admin.token_file is not set; \
         set admin.token_file to a file holding a bearer token, or listen on 127.0.0.1"
    )]
    Exposed(SocketAddr),
    #[error("cannot read admin.token_file {} ({source})", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("admin.token_file {} is empty; put a long random token in it", path.display())]
    Empty { path: std::path::PathBuf },
}

/// The status document, naming this instance by its cluster node name when it has one.
fn status_doc(state: &AdminState) -> doc::StatusDoc {
    let mut d = doc::StatusDoc::build(&state.snapshot.load());
    if let (Some((c, _)), Some(i)) = (&state.cluster, d.instance.as_mut()) {
        i.name = c.node();
    }
    if state.cluster.is_some() {
        d.cluster = Some(cluster_doc(state));
    }
    d
}

fn cluster_doc(state: &AdminState) -> cluster::ClusterDoc {
    let c = state.cluster.as_ref().map(|(c, mode)| (c.as_ref(), *mode));
    cluster::cluster_doc(&state.snapshot.load(), c)
}

/// Checks that a non-loopback listener has a token (DESIGN: refuse to start otherwise).
pub fn check_listen(addr: SocketAddr, token: Option<&str>) -> Result<(), TokenError> {
    if !is_loopback(addr.ip()) && token.is_none() {
        return Err(TokenError::Exposed(addr));
    }
    Ok(())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Reads a token file: the first line, trimmed; empty is an error.
pub fn read_token(path: &std::path::Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(token)
}

type Resp = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec_pretty(body).unwrap_or_default(),
    )));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: u16, message: impl Into<String>) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(
        status,
        &json!({ "error": message.into(), "status": status.as_u16() }),
    )
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ramp: Option<String>,
}

const MAX_BODY: usize = 64 * 1024;

async fn handle(state: &AdminState, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();

    // Read-only routes.
    match (&method, segs.as_slice()) {
        (&Method::GET, []) => {
            return text(
                StatusCode::OK,
                "text/html; charset=utf-8",
                page::render(&status_doc(state)),
            );
        }
        (&Method::GET, ["healthz"]) => return text(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, ["readyz"]) => {
            // Zones are loaded before the server starts; ready once every target has a result.
            return if state.snapshot.load().health.first_round_complete {
                text(StatusCode::OK, "text/plain", "ready\n")
            } else {
                error(503, "not ready: the first probe round has not finished")
            };
        }
        (&Method::GET, ["metrics"]) => {
            let mut page = state.metrics.render();
            crate::metrics::render_queries(&mut page);
            crate::metrics::render_endpoints(&state.snapshot.load(), &mut page);
            crate::metrics::render_process(&mut page);
            cluster::render_metrics(&cluster_doc(state), &mut page);
            return text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                page,
            );
        }
        (&Method::GET, ["api", "v1", "status"]) => {
            return json_response(StatusCode::OK, &status_doc(state));
        }
        (&Method::GET, ["api", "v1", "cluster"]) => {
            return json_response(StatusCode::OK, &json!(cluster_doc(state)));
        }
        (&Method::GET, ["api", "v1", "explain"]) => {
            let snap = state.snapshot.load();
            return match status::explain(&snap, &query) {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(e) => error(e.status, e.message),
            };
        }
        _ => {}
    }

    // Mutating routes.
    let target = match (&method, segs.as_slice()) {
        (&Method::POST, ["api", "v1", "sites", site, action @ ("drain" | "undrain")]) => {
            Some((DrainTarget::Site((*site).to_owned()), *action))
        }
        (
            &Method::POST,
            [
                "api",
                "v1",
                "profiles",
                profile,
                "endpoints",
                endpoint,
                action @ ("drain" | "undrain"),
            ],
        ) => Some((
            DrainTarget::Endpoint {
                profile: (*profile).to_owned(),
                endpoint: (*endpoint).to_owned(),
            },
            *action,
        )),
        (&Method::POST, ["api", "v1", "reload"]) => None,
        (_, ["api", "v1", ..]) | (_, ["metrics" | "healthz" | "readyz"]) | (_, []) => {
            return if is_known_path(&segs) {
                error(405, format!("{method} is not allowed on {path}"))
            } else {
                error(404, format!("no such API path: {path}"))
            };
        }
        _ => return error(404, format!("not found: {path}")),
    };

    if let Err(e) = authorize(state, &req) {
        info!(%peer, %path, "admin call refused: {}", e.message);
        return error(e.status, e.message);
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(413, format!("request body larger than {MAX_BODY} bytes")),
    };
    let caller = peer.to_string();
    let Some((target, action)) = target else {
        let (tx, rx) = oneshot::channel();
        if state
            .commands
            .send(Command::Reload { caller, reply: tx })
            .await
            .is_err()
        {
            return error(503, "the server is shutting down");
        }
        return match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(Ok(done))) => json_response(
                StatusCode::OK,
                &json!({ "message": done.message, "generation": done.generation }),
            ),
            Ok(Ok(Err(e))) => error(e.status(), e.to_string()),
            _ => error(503, "the server did not answer the reload in time"),
        };
    };
    let (tx, rx) = oneshot::channel();
    let cmd = match action {
        "drain" => {
            let b: DrainBody = if body.iter().all(u8::is_ascii_whitespace) {
                DrainBody::default()
            } else {
                match serde_json::from_slice(&body) {
                    Ok(b) => b,
                    Err(e) => {
                        return error(
                            400,
                            format!(
                                "body must be JSON like {{\"reason\": \"maintenance\", \"ramp\": \"5m\"}}: {e}"
                            ),
                        );
                    }
                }
            };
            let ramp = match b.ramp.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Duration::ZERO,
                Some(r) => match HumanDuration::parse(r) {
                    Ok(d) if d.0 <= Duration::from_secs(7 * 86400) => d.0,
                    Ok(_) => return error(400, "ramp: at most 7 days"),
                    Err(e) => return error(400, format!("ramp: {e}")),
                },
            };
            let reason = b.reason.unwrap_or_default();
            if reason.len() > 1024 {
                return error(400, "reason: at most 1024 bytes");
            }
            WriterCommand::Drain {
                target,
                reason,
                ramp,
                caller,
                reply: tx,
            }
        }
        _ => WriterCommand::Undrain {
            target,
            caller,
            reply: tx,
        },
    };
    if state.commands.send(Command::Writer(cmd)).await.is_err() {
        return error(503, "the server is shutting down");
    }
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(Ok(done))) => json_response(
            StatusCode::OK,
            &json!({ "message": done.message, "drains_active": done.drains_active }),
        ),
        Ok(Ok(Err(e))) => error(drain_status(&e), e.to_string()),
        _ => error(503, "the server did not answer the command in time"),
    }
}

fn is_known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        [] | ["metrics" | "healthz" | "readyz"]
            | ["api", "v1", "status" | "explain" | "reload" | "cluster"]
            | ["api", "v1", "sites", _, "drain" | "undrain"]
            | [
                "api",
                "v1",
                "profiles",
                _,
                "endpoints",
                _,
                "drain" | "undrain"
            ]
    )
}

fn authorize(state: &AdminState, req: &Request<Incoming>) -> Result<(), ApiError> {
    let token = state.token.load();
    let Some(token) = token.as_deref() else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        None => Err(ApiError::new(
            401,
            "missing bearer token: send Authorization: Bearer <token>",
        )),
        Some(g) if bool::from(g.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(401, "wrong bearer token")),
    }
}

/// Decodes `%XX` escapes in one path segment or query value (`+` is a space in queries).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses `a=1&b=2` into pairs (values percent-decoded, `+` as space).
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_paths_and_queries() {
        assert_eq!(percent_decode("app.gslb.example"), "app.gslb.example");
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
        assert_eq!(
            query_pairs("name=app.gslb.example&type=A&client=10.1.2.3"),
            vec![
                ("name".into(), "app.gslb.example".into()),
                ("type".into(), "A".into()),
                ("client".into(), "10.1.2.3".into())
            ]
        );
    }

    #[test]
    fn non_loopback_needs_a_token() {
        assert!(check_listen("127.0.0.1:8053".parse().unwrap(), None).is_ok());
        assert!(check_listen("[::1]:8053".parse().unwrap(), None).is_ok());
        let e = check_listen("0.0.0.0:8053".parse().unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin.token_file"), "{e}");
        assert!(check_listen("0.0.0.0:8053".parse().unwrap(), Some("t")).is_ok());
    }
}
