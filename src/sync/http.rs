//! Shared HTTP machinery: per-API token buckets, retries with Retry-After / exponential backoff
//! and jitter, 401 refresh-once, 403 → named permission.
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::auth::TokenProvider;
use super::config::{PacingConfig, SyncConfig};
use super::error::{SyncError, server_detail};

/// The API families, each with its own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApiKind {
    Mde,
    Hunting,
    Graph,
    IdentityProtection,
    LogAnalytics,
    Mdca,
}

/// One documented quota: `capacity` calls per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub capacity: f64,
    pub per_secs: f64,
}

impl ApiKind {
    pub fn name(self) -> &'static str {
        match self {
            ApiKind::Mde => "Defender for Endpoint API",
            ApiKind::Hunting => "Advanced Hunting (Graph runHuntingQuery)",
            ApiKind::Graph => "Microsoft Graph",
            ApiKind::IdentityProtection => "Graph Identity Protection",
            ApiKind::LogAnalytics => "Log Analytics query API",
            ApiKind::Mdca => "Defender for Cloud Apps API",
        }
    }

    /// Documented quotas (microsoft-apis.md). Identity Protection's 1 req/s is configurable
    /// and handled separately; Log Analytics' 200 per 30 s per user is UNCONFIRMED.
    pub fn documented_quotas(self) -> &'static [Quota] {
        const MDE: [Quota; 2] =
            [Quota { capacity: 100.0, per_secs: 60.0 }, Quota { capacity: 1500.0, per_secs: 3600.0 }];
        const HUNTING: [Quota; 1] = [Quota { capacity: 45.0, per_secs: 60.0 }];
        const IDP: [Quota; 1] = [Quota { capacity: 1.0, per_secs: 1.0 }];
        const LA: [Quota; 1] = [Quota { capacity: 200.0, per_secs: 30.0 }];
        const MDCA: [Quota; 1] = [Quota { capacity: 30.0, per_secs: 60.0 }];
        match self {
            ApiKind::Mde => &MDE,
            ApiKind::Hunting => &HUNTING,
            ApiKind::Graph => &[],
            ApiKind::IdentityProtection => &IDP,
            ApiKind::LogAnalytics => &LA,
            ApiKind::Mdca => &MDCA,
        }
    }

    /// Least wall time `requests` calls need under the documented quotas (buckets start full).
    pub fn documented_quota_time(self, requests: u64) -> Duration {
        let n = requests as f64;
        let secs = self
            .documented_quotas()
            .iter()
            .map(|q| ((n - q.capacity).max(0.0)) * q.per_secs / q.capacity)
            .fold(0.0_f64, f64::max);
        Duration::from_secs_f64(secs)
    }

    pub const ALL: [ApiKind; 6] = [
        ApiKind::Mde,
        ApiKind::Hunting,
        ApiKind::Graph,
        ApiKind::IdentityProtection,
        ApiKind::LogAnalytics,
        ApiKind::Mdca,
    ];
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

/// A set of token buckets that must all grant a token before a call goes out.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: Mutex<Vec<Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(quotas: &[Quota]) -> RateLimiter {
        let now = Instant::now();
        let buckets = quotas
            .iter()
            .filter(|q| q.capacity > 0.0 && q.per_secs > 0.0)
            .map(|q| Bucket { capacity: q.capacity, per_sec: q.capacity / q.per_secs, tokens: q.capacity, last: now })
            .collect();
        RateLimiter { buckets: Mutex::new(buckets) }
    }

    /// Takes one token from every bucket, sleeping until all have one.
    pub(crate) async fn acquire(&self) {
        loop {
            let wait = {
                let Ok(mut buckets) = self.buckets.lock() else {
                    return;
                };
                let now = Instant::now();
                for b in buckets.iter_mut() {
                    let dt = now.saturating_duration_since(b.last).as_secs_f64();
                    b.tokens = (b.tokens + dt * b.per_sec).min(b.capacity);
                    b.last = now;
                }
                if buckets.iter().all(|b| b.tokens >= 1.0) {
                    for b in buckets.iter_mut() {
                        b.tokens -= 1.0;
                    }
                    return;
                }
                buckets.iter().map(|b| ((1.0 - b.tokens).max(0.0)) / b.per_sec).fold(0.0_f64, f64::max)
            };
            tokio::time::sleep(Duration::from_secs_f64(wait.max(0.001))).await;
        }
    }
}

/// Calls and retries per API, for the report and the quota estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
}

/// A successful (or tolerated 404) answer.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One logical request.
pub(crate) struct Call<'a> {
    pub api: ApiKind,
    pub scope: &'a str,
    /// The documented application permission, named in the 403 message.
    pub permission: &'a str,
    pub method: Method,
    pub url: String,
    pub body: Option<&'a serde_json::Value>,
    /// MDE answers 404 for "nothing here"; the caller wants to see that, not an error.
    pub accept_404: bool,
}

pub(crate) struct HttpCore {
    client: reqwest::Client,
    pub(crate) auth: TokenProvider,
    pacing: PacingConfig,
    limiters: HashMap<ApiKind, RateLimiter>,
    stats: Mutex<HashMap<ApiKind, ApiStats>>,
}

impl std::fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCore").field("auth", &self.auth).field("pacing", &self.pacing).finish_non_exhaustive()
    }
}

static JITTER_STATE: AtomicU64 = AtomicU64::new(0);

/// xorshift64*: jitter only needs to de-synchronise clients, not be unpredictable.
fn jitter_unit() -> f64 {
    let mut x = JITTER_STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    JITTER_STATE.store(x, Ordering::Relaxed);
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// Exponential backoff with "equal jitter": half fixed, half random.
pub(crate) fn backoff_delay(pacing: &PacingConfig, attempt: u32) -> Duration {
    let exp = pacing
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(pacing.backoff_max_ms.max(pacing.backoff_base_ms));
    let half = exp as f64 / 2.0;
    Duration::from_millis((half + half * jitter_unit()) as u64)
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
        && f >= 0.0
    {
        return Some(Duration::from_secs_f64(f));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

impl HttpCore {
    pub(crate) fn new(cfg: &SyncConfig) -> Result<HttpCore, SyncError> {
        let secret = cfg.load_secret()?;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.pacing.request_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.pacing.connect_timeout_secs.max(1)))
            .user_agent(concat!("shadowscope/", env!("CARGO_PKG_VERSION")));
        if cfg.endpoints.all_loopback() {
            // A corporate HTTP(S)_PROXY must not swallow calls to the local fake tenant.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| SyncError::Config(format!("cannot build the HTTP client: {e}")))?;
        let auth = TokenProvider::new(client.clone(), &cfg.endpoints.login, &cfg.tenant, &cfg.client_id, secret);
        let mut limiters = HashMap::new();
        for api in ApiKind::ALL {
            let quotas: Vec<Quota> = if api == ApiKind::IdentityProtection {
                let ms = cfg.pacing.risky_users_interval_ms;
                if ms == 0 { Vec::new() } else { vec![Quota { capacity: 1.0, per_secs: ms as f64 / 1000.0 }] }
            } else if cfg.pacing.enforce_quotas {
                api.documented_quotas().to_vec()
            } else {
                Vec::new()
            };
            limiters.insert(api, RateLimiter::new(&quotas));
        }
        Ok(HttpCore { client, auth, pacing: cfg.pacing.clone(), limiters, stats: Mutex::new(HashMap::new()) })
    }

    pub(crate) fn stats(&self) -> HashMap<ApiKind, ApiStats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn bump(&self, api: ApiKind, f: impl FnOnce(&mut ApiStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(s.entry(api).or_default());
        }
    }

    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Reply, SyncError> {
        let api_name = call.api.name().to_string();
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            if let Some(l) = self.limiters.get(&call.api) {
                l.acquire().await;
            }
            let token = self.auth.token(call.scope).await?;
            let mut rb = self.client.request(call.method.clone(), &call.url).bearer_auth(token.expose_secret());
            if let Some(b) = call.body {
                rb = rb.json(b);
            }
            self.bump(call.api, |s| s.requests += 1);
            tracing::debug!(api = %api_name, method = %call.method, url = %call.url, attempt, "request");
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let detail = transport_detail(&e);
                    if attempt >= self.pacing.max_retries {
                        return Err(SyncError::Transport { api: api_name, attempts: attempt + 1, detail });
                    }
                    let d = backoff_delay(&self.pacing, attempt);
                    tracing::warn!(api = %api_name, %detail, delay_ms = d.as_millis() as u64, "transport error, retrying");
                    self.bump(call.api, |s| s.retries += 1);
                    tokio::time::sleep(d).await;
                    attempt += 1;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            let body = match read_body(resp).await {
                Ok(b) => b,
                Err(e) => {
                    let detail = transport_detail(&e);
                    if attempt >= self.pacing.max_retries {
                        return Err(SyncError::Transport { api: api_name, attempts: attempt + 1, detail });
                    }
                    self.bump(call.api, |s| s.retries += 1);
                    tokio::time::sleep(backoff_delay(&self.pacing, attempt)).await;
                    attempt += 1;
                    continue;
                }
            };
            tracing::debug!(api = %api_name, status, bytes = body.len(), "response");
            match status {
                200..=299 => return Ok(Reply { status, body }),
                404 if call.accept_404 => return Ok(Reply { status, body }),
                401 => {
                    if refreshed {
                        return Err(SyncError::Unauthorized { api: api_name, detail: server_detail(&body) });
                    }
                    tracing::info!(api = %api_name, "401: refreshing the token once");
                    self.auth.invalidate(call.scope).await;
                    refreshed = true;
                }
                403 => {
                    return Err(SyncError::PermissionDenied {
                        api: api_name,
                        permission: call.permission.to_string(),
                        detail: server_detail(&body),
                    });
                }
                429 | 500..=599 => {
                    if attempt >= self.pacing.max_retries {
                        return Err(if status == 429 {
                            SyncError::Throttled { api: api_name, attempts: attempt + 1 }
                        } else {
                            SyncError::Server {
                                api: api_name,
                                status,
                                attempts: attempt + 1,
                                detail: server_detail(&body),
                            }
                        });
                    }
                    let cap = Duration::from_secs(self.pacing.max_retry_after_secs);
                    let d = match retry_after {
                        Some(ra) => ra.min(cap),
                        None => backoff_delay(&self.pacing, attempt),
                    };
                    tracing::warn!(api = %api_name, status, delay_ms = d.as_millis() as u64, "retrying");
                    self.bump(call.api, |s| {
                        s.retries += 1;
                        if status == 429 {
                            s.throttled += 1;
                        }
                    });
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
                _ => {
                    return Err(SyncError::Http { api: api_name, status, detail: server_detail(&body) });
                }
            }
        }
    }

    pub(crate) async fn json<T: serde::de::DeserializeOwned>(&self, call: Call<'_>) -> Result<Option<T>, SyncError> {
        let api = call.api;
        let Some(body) = self.body(call).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&body).map(Some).map_err(|e| decode_error(api, &e))
    }

    /// The raw answer, `None` for a tolerated 404 or an empty body; for callers that decode
    /// rows straight from the bytes ([`super::wire`]).
    pub(crate) async fn body(&self, call: Call<'_>) -> Result<Option<Vec<u8>>, SyncError> {
        let reply = self.send(call).await?;
        Ok((reply.status != 404 && !reply.body.is_empty()).then_some(reply.body))
    }
}

pub(crate) fn decode_error(api: ApiKind, e: &serde_json::Error) -> SyncError {
    SyncError::Decode { api: api.name().to_string(), detail: e.to_string() }
}

/// Larger announced lengths are not trusted for the first allocation (the buffer still grows).
const MAX_PREALLOC: u64 = 64 * 1024 * 1024;

/// Reads the body chunk by chunk into one buffer sized from Content-Length: `bytes()` would
/// gather the chunks and copy them into a second buffer of the full size (answers reach tens
/// of MB).
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let cap = resp.content_length().unwrap_or(0).min(MAX_PREALLOC);
    let mut body = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    crate::sanitize::display_safe(&format!("{kind}: {e}")).into_owned()
}

/// Appends query parameters with proper encoding.
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> Result<String, SyncError> {
    let mut url = reqwest::Url::parse(base).map_err(|e| SyncError::Config(format!("bad URL {base}: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn quota_time_matches_documented_mde_limits() {
        // 1,600 calls: 100/min dominates (1,500 refills at 0.6 s = 900 s).
        let t = ApiKind::Mde.documented_quota_time(1_600);
        assert!((t.as_secs_f64() - 900.0).abs() < 1.0, "{t:?}");
        // 100,000 calls: 1,500/h dominates (98,500 refills at 2.4 s ≈ 65.7 h).
        let t = ApiKind::Mde.documented_quota_time(100_000);
        assert!((t.as_secs_f64() - 236_400.0).abs() < 1.0, "{t:?}");
        assert_eq!(ApiKind::Graph.documented_quota_time(1_000_000), Duration::ZERO);
    }

    #[tokio::test]
    async fn bucket_paces_after_capacity() {
        let l = RateLimiter::new(&[Quota { capacity: 2.0, per_secs: 0.1 }]);
        let t0 = Instant::now();
        for _ in 0..4 {
            l.acquire().await;
        }
        // Two free, then 2 more at 50 ms each.
        let el = t0.elapsed();
        assert!(el >= Duration::from_millis(90), "{el:?}");
        assert!(el < Duration::from_millis(500), "{el:?}");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = PacingConfig { backoff_base_ms: 100, backoff_max_ms: 1_000, ..PacingConfig::default() };
        let d0 = backoff_delay(&p, 0);
        assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
        let d9 = backoff_delay(&p, 9);
        assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1_000));
    }
}
