//! The admin HTTP/1.1 server (hyper): JSON API, `/metrics`, `/healthz`, `/readyz`, and the
//! status page. Mutating calls need `Authorization: Bearer <token>` when a token is
//! configured; each is sent to the publisher as a [`Command`] and audited there.

pub mod client;
pub mod cluster;
pub mod conns;
pub mod doc;
pub mod guard;
pub mod page;
pub mod status;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::HeaderMap;
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
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{debug, info};

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
    /// The listener's limits and the host names it answers to.
    pub options: AdminOptions,
}

/// `[admin]` settings the server applies (besides `listen` and the token).
#[derive(Clone, Debug)]
pub struct AdminOptions {
    /// `admin.allowed_hosts`.
    pub allowed_hosts: Vec<guard::AllowedHost>,
    /// `admin.max_connections`.
    pub max_connections: usize,
    /// `admin.request_timeout`.
    pub request_timeout: Duration,
}

impl Default for AdminOptions {
    fn default() -> Self {
        Self::from_spec(&crate::config::AdminSpec::default())
    }
}

impl AdminOptions {
    /// The options of a checked `[admin]` table (entries that do not parse, which `check`
    /// reports, are left out).
    pub fn from_spec(spec: &crate::config::AdminSpec) -> Self {
        Self {
            allowed_hosts: spec
                .allowed_hosts
                .iter()
                .filter_map(|h| guard::AllowedHost::parse(h).ok())
                .collect(),
            max_connections: spec.max_connections.max(1),
            request_timeout: spec.request_timeout.0,
        }
    }
}

/// Status documents, pages and metrics built at once, off the runtime's threads (each is
/// proportional to the config; a large one takes a while).
const HEAVY_AT_ONCE: usize = 2;
/// Profiles in one `GET /api/v1/status` answer, unless `limit` asks for fewer (the most).
pub const API_LIMIT: usize = 1000;
/// Profiles on one page of the status page, unless `limit` says otherwise.
pub const PAGE_LIMIT: usize = 100;
/// How long after its deadline a connection is closed (time to send a 408).
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// The most bytes of request head a connection may buffer.
const MAX_HEAD: usize = 64 * 1024;

/// The running server: its state, connection slots and the gate for heavy documents.
struct Server {
    state: Arc<AdminState>,
    slots: Arc<conns::Slots>,
    heavy: Semaphore,
}

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    let opts = state.options.clone();
    let server = Arc::new(Server {
        slots: conns::Slots::new(opts.max_connections, opts.request_timeout),
        heavy: Semaphore::new(HEAVY_AT_ONCE),
        state,
    });
    loop {
        let (stream, peer) = crate::base::net::accept(&listener, "admin").await;
        // While every slot is busy, this connection waits for one and later ones wait in
        // the listen backlog.
        let (held, how) = server.slots.admit().await;
        if how == conns::Admitted::Evicted {
            debug!(%peer, "admin connections full: closed the one waiting longest");
        }
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| listener.local_addr().unwrap_or(peer));
        let server = server.clone();
        tokio::spawn(async move {
            let slot = held.slot.clone();
            let svc = {
                let (server, slot) = (server.clone(), slot.clone());
                service_fn(move |req| {
                    let (server, slot) = (server.clone(), slot.clone());
                    async move {
                        let mut r = handle(&server, req, peer, local, &slot).await;
                        guard::secure_headers(r.headers_mut());
                        slot.waiting();
                        Ok::<_, Infallible>(r)
                    }
                })
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(opts.request_timeout)
                .max_header_size(MAX_HEAD)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            loop {
                // A moment past the deadline, so a 408 for a late body is sent first.
                let wake = slot
                    .deadline()
                    .unwrap_or_else(|| std::time::Instant::now() + opts.request_timeout)
                    + CLOSE_GRACE;
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            debug!(%peer, error = %e, "admin connection error");
                        }
                        break;
                    }
                    _ = slot.evicted() => {
                        debug!(%peer, "admin connection closed: a newer one took its slot");
                        break;
                    }
                    _ = tokio::time::sleep_until(wake.into()) => {
                        if slot.deadline().is_some_and(|d| d + CLOSE_GRACE <= std::time::Instant::now()) {
                            debug!(%peer, "admin connection closed: nothing from the client within admin.request_timeout");
                            break;
                        }
                    }
                }
            }
            drop(held);
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

/// The status document of the profiles `sel` picks, naming this instance by its cluster
/// node name when it has one; a failed reload's details only for `authenticated` callers
/// (or when no token is configured).
fn status_doc(state: &AdminState, sel: &doc::Selection, authenticated: bool) -> doc::StatusDoc {
    let mut d = doc::StatusDoc::build_selected(&state.snapshot.load(), sel);
    if let (Some((c, _)), Some(i)) = (&state.cluster, d.instance.as_mut()) {
        i.name = c.node();
    }
    if state.cluster.is_some() {
        let mut c = cluster_doc(state);
        if *sel != doc::Selection::All {
            // The cluster's view of the endpoints on this page.
            let names: std::collections::HashSet<&str> =
                d.profiles.iter().map(|p| p.name.as_str()).collect();
            c.endpoints.retain(|e| names.contains(e.profile.as_str()));
        }
        d.cluster = Some(c);
    }
    if !authenticated
        && state.token.load().is_some()
        && let Some(r) = d.last_reload.as_mut()
    {
        r.hide_details();
    }
    d
}

/// The profiles a status request asks for: `?profile=NAME`, or `?offset=&limit=`
/// (`limit` at most [`API_LIMIT`], `default_limit` when not given). Also returns the
/// profile filter as given.
fn selection(
    snap: &crate::snapshot::Snapshot,
    query: &str,
    default_limit: usize,
) -> Result<(doc::Selection, Option<String>), ApiError> {
    let mut offset = 0;
    let mut limit = default_limit;
    let mut profile = None;
    let number = |k: &str, v: &str| {
        v.parse::<usize>().map_err(|_| {
            ApiError::new(
                400,
                format!("{k}: {v:?} is not a number, e.g. ?offset=1000&limit={API_LIMIT}"),
            )
        })
    };
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "profile" => profile = Some(v),
            "offset" => offset = number("offset", &v)?,
            "limit" => {
                limit = number("limit", &v)?;
                if limit == 0 {
                    return Err(ApiError::new(400, "limit: at least 1"));
                }
                limit = limit.min(API_LIMIT);
            }
            other => {
                return Err(ApiError::new(
                    400,
                    format!("unknown parameter {other:?}; use profile, or offset and limit"),
                ));
            }
        }
    }
    match profile {
        Some(name) => match snap.model.profile(&name) {
            Some((i, _)) => Ok((doc::Selection::One(i as usize), Some(name))),
            None => Err(ApiError::new(
                404,
                format!(
                    "no profile named {name:?}; GET /api/v1/status lists them (a page at a time)"
                ),
            )),
        },
        None => Ok((doc::Selection::Page { offset, limit }, None)),
    }
}

/// The page's context: the profiles in all-down fallback (over every page).
fn page_context(state: &AdminState, filter: Option<String>) -> page::PageContext {
    let snap = state.snapshot.load();
    let mut ctx = page::PageContext {
        filter,
        ..Default::default()
    };
    for (pi, p) in snap.model.profiles.iter().enumerate() {
        if crate::policy::all_down_fallback(&snap, pi as u32) {
            if ctx.fallback.len() < page::FALLBACK_LISTED {
                ctx.fallback.push((
                    p.key.clone(),
                    p.name.to_string(),
                    doc::all_down_text(p.all_down).to_owned(),
                ));
            } else {
                ctx.fallback_more += 1;
            }
        }
    }
    ctx
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

impl Server {
    /// Builds an answer on a blocking thread, at most [`HEAVY_AT_ONCE`] at a time, so a
    /// large config's document does not hold up DNS over TCP on the runtime's threads.
    /// While it waits for its turn the connection counts as waiting (closed after
    /// `request_timeout`, or first when the slots are full): queued reads cannot keep
    /// every slot busy.
    async fn heavy(
        &self,
        slot: &conns::Slot,
        build: impl FnOnce(&AdminState) -> Resp + Send + 'static,
    ) -> Resp {
        slot.waiting();
        let Ok(_permit) = self.heavy.acquire().await else {
            return error(503, "the server is shutting down");
        };
        slot.busy();
        let state = self.state.clone();
        match tokio::task::spawn_blocking(move || build(&state)).await {
            Ok(r) => r,
            Err(e) => error(500, format!("building the answer failed: {e}")),
        }
    }
}

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

async fn handle(
    server: &Arc<Server>,
    req: Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
    slot: &conns::Slot,
) -> Resp {
    let state = &*server.state;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    if let Err(e) = guard::check_host(req.headers(), local, &state.options.allowed_hosts) {
        info!(%peer, %path, "admin request refused: {}", e.message);
        return error(e.status, e.message);
    }
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    // Reads send the token only to see a failed reload's details.
    let authenticated = authorize(state, req.headers()).is_ok();

    // Read-only routes.
    match (&method, segs.as_slice()) {
        (&Method::GET, []) => {
            slot.busy();
            let snap = state.snapshot.load();
            let (sel, filter) = match selection(&snap, &query, PAGE_LIMIT) {
                Ok(s) => s,
                Err(e) => return error(e.status, e.message),
            };
            return server
                .heavy(slot, move |state| {
                    let doc = status_doc(state, &sel, authenticated);
                    let ctx = page_context(state, filter);
                    text(
                        StatusCode::OK,
                        "text/html; charset=utf-8",
                        page::render(&doc, &ctx),
                    )
                })
                .await;
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
            slot.busy();
            return server
                .heavy(slot, |state| {
                    let mut page = state.metrics.render();
                    crate::metrics::render_queries(&mut page);
                    crate::metrics::render_endpoints(&state.snapshot.load(), &mut page);
                    crate::metrics::render_process(&mut page);
                    cluster::render_metrics(&cluster_doc(state), &mut page);
                    text(
                        StatusCode::OK,
                        "text/plain; version=0.0.4; charset=utf-8",
                        page,
                    )
                })
                .await;
        }
        (&Method::GET, ["api", "v1", "status"]) => {
            slot.busy();
            let snap = state.snapshot.load();
            let sel = match selection(&snap, &query, API_LIMIT) {
                Ok((sel, _)) => sel,
                Err(e) => return error(e.status, e.message),
            };
            return server
                .heavy(slot, move |state| {
                    json_response(StatusCode::OK, &status_doc(state, &sel, authenticated))
                })
                .await;
        }
        (&Method::GET, ["api", "v1", "cluster"]) => {
            slot.busy();
            return server
                .heavy(slot, |state| {
                    json_response(StatusCode::OK, &json!(cluster_doc(state)))
                })
                .await;
        }
        (&Method::GET, ["api", "v1", "explain"]) => {
            slot.busy();
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

    if let Err(e) = guard::check_origin(req.headers()) {
        info!(%peer, %path, "admin call refused: {}", e.message);
        return error(e.status, e.message);
    }
    if let Err(e) = authorize(state, req.headers()) {
        info!(%peer, %path, "admin call refused: {}", e.message);
        return error(e.status, e.message);
    }
    if let Err(e) = guard::check_json(req.headers()) {
        info!(%peer, %path, "admin call refused: {}", e.message);
        return error(e.status, e.message);
    }
    // The body must arrive within the connection's time (admin.request_timeout).
    let left = slot.deadline().map_or(Duration::ZERO, |d| {
        d.saturating_duration_since(std::time::Instant::now())
    });
    let body =
        match tokio::time::timeout(left, Limited::new(req.into_body(), MAX_BODY).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => return error(413, format!("request body larger than {MAX_BODY} bytes")),
            Err(_) => {
                info!(%peer, %path, "admin call refused: the body did not arrive in time");
                return error(
                    408,
                    format!(
                        "the request body did not arrive within admin.request_timeout ({})",
                        humantime::format_duration(state.options.request_timeout)
                    ),
                );
            }
        };
    slot.busy();
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

fn authorize(state: &AdminState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = state.token.load();
    let Some(token) = token.as_deref() else {
        return Ok(());
    };
    let given = headers
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
