//! A loopback fake Microsoft tenant: token endpoint plus every API the sync layer calls,
//! serving deterministic synthetic data and injectable faults. A tiny HTTP/1.1 server on a
//! tokio `TcpListener` (request line, headers, Content-Length bodies, keep-alive).
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::config::{PacingConfig, SourcesConfig, SyncConfig};
use super::iso;

/// How a 429 announces its wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    /// An HTTP date this many seconds in the future.
    HttpDate {
        secs_from_now: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 429, with or without a Retry-After header.
    TooManyRequests(Option<RetryAfter>),
    /// Revokes every token issued so far, so the request (and any other holding one) gets 401.
    ExpireTokens,
    /// 401 whatever the token.
    Unauthorized,
    Forbidden,
    ServerError(u16),
    /// Answers normally after this delay.
    Slow(Duration),
    /// Lists answer as empty (MDE machines: 404).
    Empty,
}

/// Applies `kind` to requests whose path contains `path_contains`, `times` times (None = always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: Option<u32>,
}

impl FaultRule {
    pub fn new(path_contains: &str, kind: FaultKind, times: Option<u32>) -> FaultRule {
        FaultRule { path_contains: path_contains.to_string(), kind, times }
    }
}

#[derive(Debug, Clone)]
pub struct FakeTenantOptions {
    pub users: u32,
    pub devices: u32,
    /// Days of traffic/logon history, ending on the day of `now_unix`.
    pub days: u32,
    pub seed: u64,
    /// Items per Graph page (nextLink paging).
    pub page_size: u32,
    pub faults: Vec<FaultRule>,
    /// 0 = random free port.
    pub port: u16,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime_secs: u64,
    /// Rows at which hunting answers are cut, like the real 100,000-row limit.
    pub hunting_row_limit: u32,
    pub log_analytics_row_limit: u32,
    /// Distinct host contacts per device per day.
    pub hosts_per_device_day: u32,
    pub streams: u32,
    pub apps_per_stream: u32,
    pub alerts: u32,
    /// Anchor of the synthetic history (defaults to the real clock at start).
    pub now_unix: Option<i64>,
}

impl Default for FakeTenantOptions {
    fn default() -> Self {
        FakeTenantOptions {
            users: 50,
            devices: 40,
            days: 3,
            seed: 7,
            page_size: 25,
            faults: Vec::new(),
            port: 0,
            tenant: "contoso-tenant".into(),
            client_id: "00000000-aaaa-bbbb-cccc-000000000001".into(),
            client_secret: "fake-tenant-secret".into(),
            token_lifetime_secs: 3599,
            hunting_row_limit: 100_000,
            log_analytics_row_limit: 500_000,
            hosts_per_device_day: 2,
            streams: 2,
            apps_per_stream: 40,
            alerts: 25,
            now_unix: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FakeTenantError {
    #[error("fake tenant cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path with query, percent-decoded.
    pub path: String,
    pub body: String,
    pub status: u16,
    pub at: Instant,
}

struct IssuedToken {
    scope: String,
    expires: Instant,
}

struct Shared {
    opts: FakeTenantOptions,
    base_url: String,
    now_unix: i64,
    faults: Mutex<Vec<FaultRule>>,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    all_tokens: Mutex<Vec<String>>,
    token_counter: Mutex<u64>,
    /// The most recent [`MAX_RECORDED`] requests.
    log: Mutex<std::collections::VecDeque<RecordedRequest>>,
    indicators: Mutex<Vec<Value>>,
    indicator_seq: Mutex<u64>,
}

/// Running fake tenant; shuts down on drop.
pub struct FakeTenantHandle {
    base_url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeTenantHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for FakeTenantHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTenantHandle").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl FakeTenantHandle {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// The instant the synthetic history ends at (use as `SyncConfig::as_of_unix`).
    pub fn now_unix(&self) -> i64 {
        self.shared.now_unix
    }
    pub fn options(&self) -> &FakeTenantOptions {
        &self.shared.opts
    }
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }
    pub fn clear_requests(&self) {
        if let Ok(mut l) = self.shared.log.lock() {
            l.clear();
        }
    }
    pub fn add_fault(&self, rule: FaultRule) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.push(rule);
        }
    }
    pub fn clear_faults(&self) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.clear();
        }
    }
    /// Every access token ever issued, revoked ones included (for leak checks in tests).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.all_tokens.lock().map(|t| t.clone()).unwrap_or_default()
    }
    pub fn tokens_issued(&self) -> u64 {
        self.shared.token_counter.lock().map(|c| *c).unwrap_or(0)
    }
    pub fn indicators(&self) -> Vec<Value> {
        self.shared.indicators.lock().map(|i| i.clone()).unwrap_or_default()
    }
    /// A config pointing every endpoint here, with test pacing, every source enabled and the
    /// secret read from `secret_file` (which must be mode 0600).
    pub fn sync_config(&self, secret_file: &Path) -> SyncConfig {
        let o = &self.shared.opts;
        let mut cfg = SyncConfig::for_base_url(&self.base_url, &o.tenant, &o.client_id);
        cfg.secret_file = Some(secret_file.to_path_buf());
        cfg.sources = SourcesConfig::all();
        cfg.pacing = PacingConfig::fast();
        cfg.log_analytics_workspace = Some("fake-workspace".into());
        cfg.as_of_unix = Some(self.shared.now_unix);
        cfg.windows.hunting_lookback_days = o.days.clamp(1, 30);
        cfg.windows.log_analytics_lookback_days = o.days.max(1);
        cfg
    }
}

/// Starts the fake tenant on 127.0.0.1 (given or random port). Needs a tokio runtime.
pub async fn serve_fake_tenant(opts: FakeTenantOptions) -> Result<FakeTenantHandle, FakeTenantError> {
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|source| FakeTenantError::Bind { port: opts.port, source })?;
    let port = listener.local_addr().map_err(|source| FakeTenantError::Bind { port: opts.port, source })?.port();
    let base_url = format!("http://127.0.0.1:{port}");
    let shared = Arc::new(Shared {
        now_unix: opts.now_unix.unwrap_or_else(|| chrono::Utc::now().timestamp()),
        faults: Mutex::new(opts.faults.clone()),
        opts,
        base_url: base_url.clone(),
        tokens: Mutex::new(HashMap::new()),
        all_tokens: Mutex::new(Vec::new()),
        token_counter: Mutex::new(0),
        log: Mutex::new(std::collections::VecDeque::new()),
        indicators: Mutex::new(Vec::new()),
        indicator_seq: Mutex::new(0),
    });
    let st = shared.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                acc = listener.accept() => match acc {
                    Ok((sock, _)) => {
                        let _ = sock.set_nodelay(true);
                        conns.spawn(serve_conn(sock, st.clone()));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    Ok(FakeTenantHandle { base_url, shared, task })
}

// ------------------------------------------------------------------ HTTP/1.1 plumbing

struct Request {
    method: String,
    path: String,
    /// Path plus decoded query, what fault rules match against.
    full: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// Serialized twice, first only to count the bytes: the body is then allocated once at
    /// its exact size instead of doubling its way there (answers reach tens of MB, and rows are
    /// generated as they are written).
    fn json(status: u16, v: &impl serde::Serialize) -> Response {
        let mut counter = ByteCounter(0);
        let body = match serde_json::to_writer(&mut counter, v) {
            Ok(()) => {
                let mut body = Vec::with_capacity(counter.0);
                serde_json::to_writer(&mut body, v).map(|()| body).unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        Response { status, headers: Vec::new(), body }
    }
    fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(status, &json!({"error": {"code": code, "message": message, "target": "fake-correlation-id"}}))
    }
}

/// Counts what would be written.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const MAX_HEAD: usize = 64 * 1024;
/// Tests inspect a few hundred requests; a 100,000-machine benchmark must not keep them all.
pub const MAX_RECORDED: usize = 20_000;
const MAX_BODY: usize = 32 * 1024 * 1024;
const SMALL_BODY: usize = 64 * 1024;

async fn serve_conn(mut sock: TcpStream, st: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let head_end = loop {
            if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break p;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        };
        let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or_default().split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if len > MAX_BODY {
            return;
        }
        let body_start = head_end + 4;
        while buf.len() < body_start + len {
            let mut chunk = vec![0u8; (body_start + len - buf.len()).min(64 * 1024)];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        let body = buf.get(body_start..body_start + len).unwrap_or_default().to_vec();
        buf.drain(..body_start + len);
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let path = percent_decode(raw_path, false);
        let full =
            if raw_query.is_empty() { path.clone() } else { format!("{path}?{}", percent_decode(raw_query, true)) };
        let req = Request { method, path, full, query: parse_form(raw_query), headers, body };
        let close = req.headers.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let resp = handle(&st, &req).await;
        if let Ok(mut log) = st.log.lock() {
            if log.len() >= MAX_RECORDED {
                log.pop_front();
            }
            log.push_back(RecordedRequest {
                method: req.method.clone(),
                path: req.full.clone(),
                body: String::from_utf8_lossy(req.body.get(..4096).unwrap_or(&req.body)).into_owned(),
                status: resp.status,
                at: Instant::now(),
            });
        }
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            resp.status,
            reason(resp.status),
            resp.body.len()
        );
        for (k, v) in &resp.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(if close { "Connection: close\r\n\r\n" } else { "\r\n" });
        // Small answers go out in one write (one segment, with nodelay); large ones are not
        // copied behind their head (answers reach tens of MB).
        let sent = if resp.body.len() <= SMALL_BODY {
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&resp.body);
            sock.write_all(&bytes).await
        } else {
            match sock.write_all(out.as_bytes()).await {
                Ok(()) => sock.write_all(&resp.body).await,
                Err(e) => Err(e),
            }
        };
        if sent.is_err() || close {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'%') => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            Some(b'+') if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
            None => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

// ------------------------------------------------------------------ routing

/// Which token audience each API prefix wants.
fn audience_for(path: &str) -> Option<&'static str> {
    if path.starts_with("/mde/") {
        Some("securitycenter")
    } else if path.starts_with("/graph/") {
        Some("graph.microsoft.com")
    } else if path.starts_with("/la/") {
        Some("loganalytics")
    } else if path.starts_with("/mdca/") {
        Some("05a65629-4c1b-48c1-a78b-804c4abdd4af")
    } else {
        None
    }
}

fn take_fault(st: &Shared, path: &str) -> Option<FaultKind> {
    let mut faults = st.faults.lock().ok()?;
    let pos = faults.iter().position(|f| path.contains(&f.path_contains) && f.times != Some(0))?;
    let rule = faults.get_mut(pos)?;
    if let Some(t) = rule.times.as_mut() {
        *t -= 1;
    }
    Some(rule.kind.clone())
}

async fn handle(st: &Shared, req: &Request) -> Response {
    let mut empty = false;
    if let Some(fault) = take_fault(st, &req.full) {
        match fault {
            FaultKind::TooManyRequests(ra) => {
                let mut r = Response::error(429, "TooManyRequests", "API call quota exceeded");
                match ra {
                    Some(RetryAfter::Seconds(s)) => r.headers.push(("Retry-After".into(), s.to_string())),
                    Some(RetryAfter::HttpDate { secs_from_now }) => {
                        let at = chrono::Utc::now() + chrono::Duration::seconds(secs_from_now as i64);
                        r.headers.push(("Retry-After".into(), at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()));
                    }
                    None => {}
                }
                return r;
            }
            FaultKind::ExpireTokens => {
                if let Ok(mut t) = st.tokens.lock() {
                    t.clear();
                }
            }
            FaultKind::Unauthorized => {
                return Response::error(401, "Unauthorized", "Authorization header is invalid or expired");
            }
            FaultKind::Forbidden => {
                return Response::error(403, "Forbidden", "The application does not have the required roles");
            }
            FaultKind::ServerError(code) => {
                return Response::error(code, "InternalServerError", "Something went wrong, retry the operation");
            }
            FaultKind::Slow(d) => tokio::time::sleep(d).await,
            FaultKind::Empty => empty = true,
        }
    }
    if req.method == "POST" && req.path.ends_with("/oauth2/v2.0/token") {
        return token_endpoint(st, req);
    }
    let Some(aud) = audience_for(&req.path) else {
        return Response::error(404, "NotFound", "no such endpoint");
    };
    if let Err(r) = check_token(st, req, aud) {
        return r;
    }
    route(st, req, empty)
}

fn token_endpoint(st: &Shared, req: &Request) -> Response {
    let o = &st.opts;
    let tenant = req.path.trim_start_matches('/').split('/').next().unwrap_or_default();
    if tenant != o.tenant {
        return Response::json(
            400,
            &json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}),
        );
    }
    let form = parse_form(&String::from_utf8_lossy(&req.body));
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "client_credentials" {
        return Response::json(400, &json!({"error": "unsupported_grant_type", "error_description": "AADSTS70003"}));
    }
    if get("client_id") != o.client_id {
        return Response::json(
            400,
            &json!({"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found in the directory."}),
        );
    }
    if get("client_secret") != o.client_secret {
        return Response::json(
            401,
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        );
    }
    let scope = get("scope").to_string();
    let n = match st.token_counter.lock() {
        Ok(mut c) => {
            *c += 1;
            *c
        }
        Err(_) => 0,
    };
    let token = format!("fake.{:016x}.{n}", mix(o.seed ^ n.wrapping_mul(31)));
    if let Ok(mut all) = st.all_tokens.lock() {
        all.push(token.clone());
    }
    if let Ok(mut t) = st.tokens.lock() {
        t.insert(
            token.clone(),
            IssuedToken { scope, expires: Instant::now() + Duration::from_secs(o.token_lifetime_secs) },
        );
    }
    Response::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": o.token_lifetime_secs, "ext_expires_in": 0, "access_token": token}),
    )
}

fn check_token(st: &Shared, req: &Request, aud: &str) -> Result<(), Response> {
    let bearer = req.headers.get("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or_default();
    let tokens = st.tokens.lock().map_err(|_| Response::error(500, "InternalServerError", "lock"))?;
    match tokens.get(bearer) {
        Some(t) if t.expires > Instant::now() && t.scope.contains(aud) => Ok(()),
        Some(t) if t.expires > Instant::now() => {
            Err(Response::error(401, "Unauthorized", "token audience does not match this API"))
        }
        _ => Err(Response::error(401, "Unauthorized", "Authorization header is invalid or expired")),
    }
}

fn route(st: &Shared, req: &Request, empty: bool) -> Response {
    let p = req.path.as_str();
    let m = req.method.as_str();
    if m == "GET" && p == "/mde/api/machines" {
        return machines(st, req, empty);
    }
    if m == "GET"
        && let Some(id) = p.strip_prefix("/mde/api/machines/").and_then(|r| r.strip_suffix("/logonusers"))
    {
        return logon_users(st, id, empty);
    }
    if p == "/mde/api/indicators" && m == "GET" {
        return list_indicators(st, req);
    }
    if p == "/mde/api/indicators" && m == "POST" {
        return post_indicator(st, req);
    }
    if m == "DELETE"
        && let Some(id) = p.strip_prefix("/mde/api/indicators/")
    {
        return delete_indicator(st, id);
    }
    if m == "POST" && p == "/graph/v1.0/security/runHuntingQuery" {
        return hunting(st, req, empty);
    }
    if m == "GET" && p == "/graph/v1.0/identityProtection/riskyUsers" {
        return risky_users(st, req, empty);
    }
    let streams = "/graph/beta/security/dataDiscovery/cloudAppDiscovery/uploadedStreams";
    if m == "GET" && p == streams {
        return uploaded_streams(st, req, empty);
    }
    if m == "GET"
        && let Some(rest) = p.strip_prefix(streams).and_then(|r| r.strip_prefix('/'))
        && let Some((stream, tail)) = rest.split_once('/')
        && tail.starts_with("aggregatedAppsDetails(period=duration'")
    {
        return discovered_apps(st, req, stream, empty);
    }
    if m == "POST" && p.starts_with("/la/v1/workspaces/") && p.ends_with("/query") {
        return log_analytics(st, req, empty);
    }
    if (m == "POST" || m == "GET") && (p == "/mdca/api/v1/alerts/" || p == "/mdca/api/v1/alerts") {
        return alerts(st, req, empty);
    }
    Response::error(404, "ResourceNotFound", "no such resource")
}

// ------------------------------------------------------------------ synthetic data

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn h(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |acc, p| mix(acc ^ p.wrapping_mul(0x0000_0100_0000_01B3)))
}

/// Looks random, but the last 8 hex digits carry the index (masked), so 100,000 machines need
/// no id table to be served.
fn device_id(seed: u64, i: u32) -> String {
    let n = u64::from(i);
    format!("{:016x}{:016x}{:08x}", h(seed, &[1, n]), h(seed, &[2, n]), i ^ (h(seed, &[3]) as u32))
}

fn device_index(st: &Shared, id: &str) -> Option<u32> {
    let tail = id.get(32..).filter(|t| t.len() == 8)?;
    let i = u32::from_str_radix(tail, 16).ok()? ^ (h(st.opts.seed, &[3]) as u32);
    (i < st.opts.devices && device_id(st.opts.seed, i) == id).then_some(i)
}

fn device_name(i: u32) -> String {
    format!("dev-{i:06}.contoso.example")
}

fn upn(u: u32) -> String {
    format!("user{u:06}@contoso.example")
}

const OS: [&str; 4] = ["Windows11", "Windows10", "macOS", "Linux"];
const RISK: [&str; 5] = ["None", "Informational", "Low", "Medium", "High"];
const EXPOSURE: [&str; 4] = ["None", "Low", "Medium", "High"];
const HOSTS: [&str; 24] = [
    "www.dropbox.com",
    "drive.google.com",
    "wetransfer.com",
    "mega.nz",
    "chat.openai.com",
    "claude.ai",
    "gemini.google.com",
    "www.box.com",
    "slack.com",
    "discord.com",
    "web.whatsapp.com",
    "telegram.org",
    "pastebin.com",
    "github.com",
    "gitlab.com",
    "www.notion.so",
    "trello.com",
    "zoom.us",
    "teams.microsoft.com",
    "outlook.office365.com",
    "sharepoint.com",
    "onedrive.live.com",
    "www.deepl.com",
    "translate.google.com",
];
const CATEGORIES: [&str; 6] =
    ["cloudStorage", "generativeAi", "collaboration", "webemail", "codeHosting", "socialNetwork"];

fn host_name(i: u64) -> String {
    let n = HOSTS.len() as u64;
    match HOSTS.get(i as usize) {
        Some(h) => (*h).to_string(),
        None => format!("app{}.saas{}.example", i - n, (i - n) % 17),
    }
}

const HOST_POOL: u64 = 200;

fn primary_user(st: &Shared, d: u32) -> u32 {
    d % st.opts.users.max(1)
}

fn days_range(st: &Shared) -> (i64, i64) {
    let today = st.now_unix.div_euclid(86_400);
    (today - i64::from(st.opts.days.max(1)) + 1, today)
}

fn pick<'a>(items: &'a [&'a str], x: u64) -> &'a str {
    items.get((x % items.len() as u64) as usize).copied().unwrap_or_default()
}

/// An MDE machine as the API lists it (typed: a 10,000-machine page is never a `Value` tree).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Machine {
    id: String,
    computer_dns_name: String,
    first_seen: String,
    last_seen: String,
    os_platform: &'static str,
    version: &'static str,
    os_architecture: &'static str,
    last_ip_address: String,
    health_status: &'static str,
    onboarding_status: &'static str,
    rbac_group_id: u64,
    rbac_group_name: String,
    risk_score: &'static str,
    exposure_level: &'static str,
    device_value: &'static str,
    aad_device_id: Option<String>,
    is_aad_joined: bool,
    machine_tags: Vec<&'static str>,
}

fn machine(st: &Shared, i: u32) -> Machine {
    let s = st.opts.seed;
    let x = h(s, &[10, u64::from(i)]);
    Machine {
        id: device_id(s, i),
        computer_dns_name: device_name(i),
        first_seen: iso(st.now_unix - 86_400 * 90 + (x % 86_400) as i64),
        last_seen: iso(st.now_unix - (x % 7200) as i64),
        os_platform: pick(&OS, x),
        version: "22H2",
        os_architecture: "64-bit",
        last_ip_address: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        health_status: "Active",
        onboarding_status: "onboarded",
        rbac_group_id: 140 + (x % 3),
        rbac_group_name: format!("group-{}", x % 3),
        risk_score: pick(&RISK, x >> 8),
        exposure_level: pick(&EXPOSURE, x >> 16),
        device_value: "Normal",
        aad_device_id: None,
        is_aad_joined: true,
        machine_tags: if x.is_multiple_of(5) { vec!["VIP"] } else { Vec::new() },
    }
}

fn q_u64(req: &Request, key: &str) -> Option<u64> {
    req.query.get(key).and_then(|v| v.parse().ok())
}

fn machines(st: &Shared, req: &Request, empty: bool) -> Response {
    let total = if empty { 0 } else { st.opts.devices };
    if total == 0 {
        return Response::error(404, "ResourceNotFound", "No recent machines found");
    }
    let top = q_u64(req, "$top").unwrap_or(10_000).clamp(1, 10_000);
    let skip = q_u64(req, "$skip").unwrap_or(0);
    let end = (skip + top).min(u64::from(total));
    #[derive(serde::Serialize)]
    struct Page<R> {
        #[serde(rename = "@odata.context")]
        context: &'static str,
        value: R,
    }
    let value = LazySeq(|| (skip..end).map(|i| machine(st, i as u32)));
    Response::json(200, &Page { context: "https://api.security.microsoft.com/api/$metadata#Machines", value })
}

fn logon_users(st: &Shared, id: &str, empty: bool) -> Response {
    let Some(d) = device_index(st, id) else {
        return Response::error(404, "ResourceNotFound", "Machine was not found");
    };
    let users = st.opts.users.max(1);
    let mut us = vec![primary_user(st, d)];
    let second = (d.wrapping_mul(7).wrapping_add(3)) % users;
    if second != us[0] {
        us.push(second);
    }
    let value: Vec<Value> = if empty {
        Vec::new()
    } else {
        us.iter()
            .map(|&u| {
                json!({
                    "id": format!("contoso\\user{u:06}"),
                    "accountName": format!("user{u:06}"),
                    "accountDomain": "contoso",
                    "firstSeen": iso(st.now_unix - 86_400 * 30),
                    "lastSeen": iso(st.now_unix - 3600),
                    "logonTypes": "Interactive",
                    "isDomainAdmin": false,
                    "isOnlyNetworkUser": false,
                })
            })
            .collect()
    };
    Response::json(200, &json!({"value": value}))
}

/// Parses the `start/end` timespan the client sends.
fn parse_timespan(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    Some((super::parse_time(a)?, super::parse_time(b)?))
}

#[derive(Default)]
struct Agg {
    connections: u64,
    up: u64,
    down: u64,
    first: i64,
    last: i64,
}

/// Traffic of one device to one host on one day; names are rendered only for rows served.
struct TrafficKey {
    day: i64,
    host: u64,
    device: u32,
}

impl TrafficKey {
    fn names(&self, st: &Shared) -> (String, String, String) {
        (host_name(self.host), device_name(self.device), upn(primary_user(st, self.device)))
    }
}

/// Traffic events in `[start, end)`, aggregated per day × host × device × account, in a
/// stable order (so a truncated answer is deterministic). Rows are made as they are served,
/// one device at a time: an answer cut at the row limit never builds the rows past it.
fn traffic(st: &Shared, start: i64, end: i64, salt: u64) -> impl Iterator<Item = (TrafficKey, Agg)> + '_ {
    let (d0, d1) = days_range(st);
    let (from, to) = (start.div_euclid(86_400).max(d0), (end - 1).div_euclid(86_400).min(d1));
    let s = st.opts.seed ^ salt;
    let per_day = move |day: i64| (0..st.opts.devices).map(move |d| (day, d));
    (from..=to).flat_map(per_day).flat_map(move |(day, d)| {
        // A device's contacts of the day, per host (a handful: a linear search is cheapest).
        let mut hosts: Vec<(u64, Agg)> = Vec::new();
        for j in 0..st.opts.hosts_per_device_day {
            let x = h(s, &[20, day as u64, u64::from(d), u64::from(j)]);
            let ts = day * 86_400 + (x % 86_400) as i64;
            if ts < start || ts >= end {
                continue;
            }
            let host = (x >> 20) % HOST_POOL;
            let pos = match hosts.iter().position(|(hh, _)| *hh == host) {
                Some(p) => p,
                None => {
                    hosts.push((host, Agg::default()));
                    hosts.len() - 1
                }
            };
            let Some((_, a)) = hosts.get_mut(pos) else { continue };
            let c = 1 + (x >> 40) % 20;
            if a.connections == 0 {
                a.first = ts;
            }
            a.connections += c;
            a.up += c * (500 + (x >> 8) % 5000);
            a.down += c * (2000 + (x >> 16) % 50_000);
            a.last = a.last.max(ts);
        }
        hosts.sort_unstable_by_key(|(host, _)| *host);
        hosts.into_iter().map(move |(host, a)| (TrafficKey { day, host, device: d }, a))
    })
}

/// Serializes what the closure's iterator yields as a JSON array, without collecting it:
/// answers reach 100,000–500,000 rows.
struct LazySeq<F>(F);

impl<F, I> serde::Serialize for LazySeq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: serde::Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct HuntingTrafficRow {
    day: String,
    host: String,
    device_name: String,
    account: String,
    connections: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct HuntingLogonRow {
    account: String,
    device_name: String,
    logon_count: u64,
    first_seen: String,
    last_seen: String,
    logon_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    account_upn: Option<String>,
    /// DeviceLogonEvents has the column (null here); IdentityLogonEvents does not.
    #[serde(rename = "DeviceId", skip_serializing_if = "Option::is_none")]
    device_id: Option<Option<String>>,
}

#[derive(serde::Serialize)]
struct HuntingAnswer<R> {
    #[serde(rename = "@odata.context")]
    context: &'static str,
    schema: [(); 0],
    results: R,
}

const HUNTING_CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.security.huntingQueryResults";

fn hunting_answer(results: impl serde::Serialize) -> Response {
    Response::json(200, &HuntingAnswer { context: HUNTING_CONTEXT, schema: [], results })
}

/// Logon events in `[start, end)`: one per device per day (device logons) or per user per day
/// (identity logons), aggregated per account × device, made as they are served (one account ×
/// device at a time, in index order).
fn logons(st: &Shared, start: i64, end: i64, identity: bool) -> impl Iterator<Item = ((String, String), Agg)> + '_ {
    let (d0, d1) = days_range(st);
    let (from, to) = (start.div_euclid(86_400).max(d0), (end - 1).div_euclid(86_400).min(d1));
    let (n, salt) = if identity { (st.opts.users, 31) } else { (st.opts.devices, 30) };
    (0..n).filter_map(move |k| {
        let mut a = Agg::default();
        for day in from..=to {
            let x = h(st.opts.seed, &[salt, day as u64, u64::from(k)]);
            let ts = day * 86_400 + (x % 86_400) as i64;
            if ts < start || ts >= end {
                continue;
            }
            if a.connections == 0 || ts < a.first {
                a.first = ts;
            }
            a.connections += 1;
            a.last = a.last.max(ts);
        }
        if a.connections == 0 {
            return None;
        }
        let (u, d) = if identity { (k, k % st.opts.devices.max(1)) } else { (primary_user(st, k), k) };
        let account = if identity { upn(u) } else { format!("contoso\\user{u:06}") };
        Some(((account, device_name(d)), a))
    })
}

fn hunting(st: &Shared, req: &Request, empty: bool) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::error(400, "BadRequest", "body is not JSON");
    };
    let query = body.get("Query").and_then(|q| q.as_str()).unwrap_or_default();
    let Some((start, end)) = body.get("Timespan").and_then(|t| t.as_str()).and_then(parse_timespan) else {
        return Response::error(400, "BadRequest", "Timespan start/end required by the fake");
    };
    let limit = st.opts.hunting_row_limit as usize;
    if empty || query.contains("take 1") {
        // Probes and empty mode.
        hunting_answer([(); 0])
    } else if query.starts_with("DeviceNetworkEvents") {
        hunting_answer(LazySeq(|| {
            traffic(st, start, end, 0).take(limit).map(|(k, a)| {
                let (host, device_name, account) = k.names(st);
                HuntingTrafficRow { day: iso(k.day * 86_400), host, device_name, account, connections: a.connections }
            })
        }))
    } else if query.starts_with("DeviceLogonEvents") || query.starts_with("IdentityLogonEvents") {
        let identity = query.starts_with("Identity");
        hunting_answer(LazySeq(|| {
            logons(st, start, end, identity).take(limit).map(|((acct, dev), a)| HuntingLogonRow {
                account_upn: identity.then(|| acct.clone()),
                device_id: (!identity).then_some(None),
                account: acct,
                device_name: dev,
                logon_count: a.connections,
                first_seen: iso(a.first),
                last_seen: iso(a.last),
                logon_types: ["Interactive"],
            })
        }))
    } else {
        Response::error(400, "BadRequest", "the fake does not know this table")
    }
}

fn log_analytics(st: &Shared, req: &Request, empty: bool) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::error(400, "BadRequest", "body is not JSON");
    };
    let Some((start, end)) = body.get("timespan").and_then(|t| t.as_str()).and_then(parse_timespan) else {
        return Response::error(400, "BadRequest", "timespan start/end required by the fake");
    };
    let query = body.get("query").and_then(|q| q.as_str()).unwrap_or_default();
    let limit = st.opts.log_analytics_row_limit as usize;
    let no_rows = empty || query.contains("take 1");
    let rows = LazySeq(|| {
        traffic(st, start, end, 0x1a).take(if no_rows { 0 } else { limit }).map(|(k, a)| {
            let (host, dev, acct) = k.names(st);
            (iso(k.day * 86_400), host, dev, acct, a.connections, a.up, a.down)
        })
    });
    let columns = json!([
        {"name": "Day", "type": "datetime"}, {"name": "Host", "type": "string"},
        {"name": "DeviceName", "type": "string"}, {"name": "Account", "type": "string"},
        {"name": "Connections", "type": "long"}, {"name": "BytesUp", "type": "long"},
        {"name": "BytesDown", "type": "long"}
    ]);
    #[derive(serde::Serialize)]
    struct Table<R> {
        name: &'static str,
        columns: Value,
        rows: R,
    }
    #[derive(serde::Serialize)]
    struct Answer<R> {
        tables: [Table<R>; 1],
    }
    Response::json(200, &Answer { tables: [Table { name: "PrimaryResult", columns, rows }] })
}

/// A Graph-style page of `total` items from `make`, with `$skiptoken` paging.
fn graph_page(st: &Shared, req: &Request, total: u64, make: impl Fn(u64) -> Value) -> Response {
    let skip = req.query.get("$skiptoken").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let size = q_u64(req, "$top").unwrap_or(u64::from(st.opts.page_size)).clamp(1, u64::from(st.opts.page_size.max(1)));
    let end = (skip + size).min(total);
    let value: Vec<Value> = (skip..end).map(make).collect();
    let mut body = json!({"value": value});
    if end < total
        && let Some(o) = body.as_object_mut()
    {
        let path = req.path.replace(' ', "%20");
        o.insert("@odata.nextLink".into(), format!("{}{path}?$skiptoken={end}", st.base_url).into());
    }
    Response::json(200, &body)
}

fn risky_index(k: u64) -> u32 {
    (k * 10 + 3) as u32
}

fn risky_users(st: &Shared, req: &Request, empty: bool) -> Response {
    let users = u64::from(st.opts.users);
    let total = if empty || users < 4 { 0 } else { (users - 4) / 10 + 1 };
    graph_page(st, req, total, |k| {
        let u = risky_index(k);
        let x = h(st.opts.seed, &[40, u64::from(u)]);
        json!({
            "id": format!("{:08x}-0000-4000-8000-{:012x}", x as u32, u),
            "isDeleted": false,
            "isProcessing": false,
            "riskLastUpdatedDateTime": iso(st.now_unix - (x % 604_800) as i64),
            "riskLevel": pick(&["low", "medium", "high"], x),
            "riskState": pick(&["atRisk", "confirmedCompromised", "remediated"], x >> 8),
            "riskDetail": "none",
            "userDisplayName": format!("User {u}"),
            "userPrincipalName": upn(u),
        })
    })
}

fn stream_id(k: u64) -> String {
    format!("stream-{k:02}")
}

fn uploaded_streams(st: &Shared, req: &Request, empty: bool) -> Response {
    let total = if empty { 0 } else { u64::from(st.opts.streams) };
    graph_page(st, req, total, |k| {
        json!({"id": stream_id(k), "displayName": format!("Stream {k}"), "isSnapshotReport": false,
            "createdDateTime": iso(st.now_unix - 86_400 * 100)})
    })
}

fn discovered_apps(st: &Shared, req: &Request, stream: &str, empty: bool) -> Response {
    let known = (0..u64::from(st.opts.streams)).any(|k| stream_id(k) == stream);
    if !known {
        return Response::error(404, "ResourceNotFound", "stream not found");
    }
    let total = if empty { 0 } else { u64::from(st.opts.apps_per_stream) };
    let sid = stream.to_string();
    graph_page(st, req, total, |k| {
        let x = h(st.opts.seed, &[50, k]) ^ h(st.opts.seed, &[51, sid.len() as u64]);
        let tags: Vec<&str> = match x % 4 {
            1 => vec!["Sanctioned"],
            2 => vec!["Unsanctioned"],
            3 => vec!["Monitored", "Custom-Review"],
            _ => Vec::new(),
        };
        json!({
            "id": format!("{}", 10_000 + k),
            "displayName": host_name(k).trim_start_matches("www.").to_string(),
            "category": pick(&CATEGORIES, x >> 4),
            "domains": [host_name(k)],
            "riskScore": (x >> 8) % 11,
            "tags": tags,
            "userCount": 1 + (x >> 12) % 500,
            "ipAddressCount": 1 + (x >> 20) % 300,
            "transactionCount": 10 + (x >> 24) % 100_000,
            "uploadNetworkTrafficInBytes": (x >> 28) % 1_000_000_000,
            "downloadNetworkTrafficInBytes": (x >> 30) % 5_000_000_000_u64,
            "lastSeenDateTime": iso(st.now_unix - (x % 86_400) as i64),
        })
    })
}

fn alerts(st: &Shared, req: &Request, empty: bool) -> Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let num = |k: &str| body.get(k).and_then(|v| v.as_u64()).or_else(|| q_u64(req, k));
    let skip = num("skip").unwrap_or(0);
    let limit = num("limit").unwrap_or(100).clamp(1, 100);
    let total = if empty { 0 } else { u64::from(st.opts.alerts) };
    let end = (skip + limit).min(total);
    let data: Vec<Value> = (skip..end)
        .map(|k| {
            let x = h(st.opts.seed, &[60, k]);
            let u = (x % u64::from(st.opts.users.max(1))) as u32;
            json!({
                "_id": format!("{:024x}", u128::from(x) << 32 | u128::from(k)),
                "timestamp": (st.now_unix - 86_400 * 7 + (k as i64) * 600) * 1000,
                "title": format!("Discovery alert {k}: new risky app used"),
                "description": "",
                "severityValue": x % 4,
                "statusValue": 0,
                "resolutionStatusValue": if x.is_multiple_of(3) { 2 } else { 0 },
                "stories": [4],
                "entities": [
                    {"id": upn(u), "label": upn(u), "type": "account"},
                    {"id": 10_000 + (x >> 8) % 40, "label": host_name((x >> 8) % 40), "type": "service"}
                ],
                "URL": format!("https://contoso.portal.cloudappsecurity.com/#/alerts/{k}"),
            })
        })
        .collect();
    Response::json(
        200,
        &json!({"data": data, "hasNext": end < total, "total": total, "max": 100, "moreThanTotal": false}),
    )
}

// ------------------------------------------------------------------ indicators

/// `field eq 'value'` clauses joined by `or` (each clause may `and` several).
fn filter_matches(filter: &str, item: &Value) -> bool {
    filter.split(" or ").any(|clause| {
        clause.split(" and ").all(|cond| {
            let Some((field, value)) = cond.split_once(" eq ") else {
                return false;
            };
            let want = value.trim().trim_matches('\'').replace("''", "'");
            item.get(field.trim()).and_then(|v| v.as_str()).is_some_and(|v| v.eq_ignore_ascii_case(&want))
        })
    })
}

fn list_indicators(st: &Shared, req: &Request) -> Response {
    let all = st.indicators.lock().map(|i| i.clone()).unwrap_or_default();
    let filtered: Vec<Value> = match req.query.get("$filter") {
        Some(f) => all.into_iter().filter(|i| filter_matches(f, i)).collect(),
        None => all,
    };
    let skip = q_u64(req, "$skip").unwrap_or(0) as usize;
    let top = q_u64(req, "$top").unwrap_or(10_000).clamp(1, 10_000) as usize;
    let value: Vec<Value> = filtered.into_iter().skip(skip).take(top).collect();
    Response::json(
        200,
        &json!({"@odata.context": "https://api.security.microsoft.com/api/$metadata#Indicators", "value": value}),
    )
}

fn post_indicator(st: &Shared, req: &Request) -> Response {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::error(400, "InvalidRequestBody", "body must be a JSON object");
    };
    for f in ["indicatorValue", "indicatorType", "action", "title", "description"] {
        if body.get(f).and_then(|v| v.as_str()).is_none_or(str::is_empty) {
            return Response::error(400, "MissingRequiredParameter", &format!("{f} is required"));
        }
    }
    let Ok(mut list) = st.indicators.lock() else {
        return Response::error(500, "InternalServerError", "lock");
    };
    let key = |v: &Value| {
        (
            v.get("indicatorType").and_then(|x| x.as_str()).unwrap_or_default().to_ascii_lowercase(),
            v.get("indicatorValue").and_then(|x| x.as_str()).unwrap_or_default().to_ascii_lowercase(),
        )
    };
    let new_key = key(&Value::Object(body.clone()));
    if let Some(existing) = list.iter_mut().find(|i| key(i) == new_key) {
        // Submit-or-update: same type and value updates in place.
        let id = existing.get("id").cloned().unwrap_or(Value::Null);
        body.insert("id".into(), id);
        *existing = Value::Object(body);
        return Response::json(200, existing);
    }
    let id = match st.indicator_seq.lock() {
        Ok(mut s) => {
            *s += 1;
            *s
        }
        Err(_) => 0,
    };
    body.insert("id".into(), id.to_string().into());
    body.insert("creationTimeDateTimeUtc".into(), iso(chrono::Utc::now().timestamp()).into());
    let v = Value::Object(body);
    list.push(v.clone());
    Response::json(200, &v)
}

fn delete_indicator(st: &Shared, id: &str) -> Response {
    let Ok(mut list) = st.indicators.lock() else {
        return Response::error(500, "InternalServerError", "lock");
    };
    let before = list.len();
    list.retain(|i| i.get("id").and_then(|v| v.as_str()) != Some(id));
    if list.len() == before {
        return Response::error(404, "NotFound", "Indicator not found");
    }
    Response { status: 204, headers: Vec::new(), body: Vec::new() }
}
