//! Sync configuration (TOML) and client-secret loading.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::error::SyncError;
use secrecy::SecretString;

/// Everything the sync layer needs. Unknown keys are rejected so a typo in a TOML file
/// fails loudly instead of silently disabling a source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Entra ID tenant id (GUID) or verified domain.
    pub tenant: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    /// Name of the environment variable holding the client secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Path of a file (mode 0600 or stricter) holding the client secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub endpoints: Endpoints,
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub windows: WindowConfig,
    #[serde(default)]
    pub pacing: PacingConfig,
    /// Log Analytics workspace id for the CommonSecurityLog source.
    #[serde(default)]
    pub log_analytics_workspace: Option<String>,
    /// Discovery stream ids for discovered apps; empty = every uploaded stream Graph lists.
    #[serde(default)]
    pub discovery_streams: Vec<String>,
    /// Sync up to this instant (unix seconds) instead of "now": replays and reproducible tests.
    #[serde(default)]
    pub as_of_unix: Option<i64>,
}

impl SyncConfig {
    /// Parses TOML, with a message naming the offending key.
    pub fn from_toml(text: &str) -> Result<SyncConfig, SyncError> {
        toml::from_str(text).map_err(|e| SyncError::Config(e.to_string()))
    }

    /// Minimal config for `tenant`/`client_id` with every endpoint rooted at `base` (the fake tenant).
    pub fn for_base_url(base: &str, tenant: &str, client_id: &str) -> SyncConfig {
        SyncConfig {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            secret_env: None,
            secret_file: None,
            endpoints: Endpoints::rooted_at(base),
            sources: SourcesConfig::default(),
            windows: WindowConfig::default(),
            pacing: PacingConfig::default(),
            log_analytics_workspace: None,
            discovery_streams: Vec::new(),
            as_of_unix: None,
        }
    }

    /// Reads the client secret from the configured env var or file.
    pub fn load_secret(&self) -> Result<SecretString, SyncError> {
        match (&self.secret_env, &self.secret_file) {
            (Some(_), Some(_)) => {
                Err(SyncError::Secret("both secret_env and secret_file are set; keep exactly one".into()))
            }
            (None, None) => Err(SyncError::Secret(
                "neither secret_env nor secret_file is set; name an environment variable or a 0600 file".into(),
            )),
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_string())),
                Ok(_) => Err(SyncError::Secret(format!("environment variable {var} is empty"))),
                Err(_) => Err(SyncError::Secret(format!("environment variable {var} is not set (or not valid UTF-8)"))),
            },
            (None, Some(path)) => read_secret_file(path),
        }
    }
}

fn read_secret_file(path: &std::path::Path) -> Result<SecretString, SyncError> {
    let shown = crate::sanitize::display_safe(&path.to_string_lossy()).into_owned();
    let meta =
        std::fs::metadata(path).map_err(|e| SyncError::Secret(format!("cannot read secret file {shown}: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SyncError::Secret(format!(
                "secret file {shown} has mode {mode:03o}, readable by group or others; run `chmod 600 {shown}`"
            )));
        }
    }
    if !meta.is_file() {
        return Err(SyncError::Secret(format!("secret file {shown} is not a regular file")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SyncError::Secret(format!("cannot read secret file {shown}: {e}")))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SyncError::Secret(format!("secret file {shown} is empty")));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

/// Base URLs and token scopes. Defaults are the public cloud; override for national clouds or
/// point everything at the fake tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoints {
    pub login: String,
    pub mde: String,
    pub mde_scope: String,
    pub graph: String,
    pub graph_scope: String,
    pub log_analytics: String,
    pub log_analytics_scope: String,
    /// Tenant-specific portal API root, e.g. `https://contoso.us2.portal.cloudappsecurity.com`.
    pub mdca: Option<String>,
    pub mdca_scope: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            login: "https://login.microsoftonline.com".into(),
            mde: "https://api.security.microsoft.com".into(),
            mde_scope: "https://api.securitycenter.microsoft.com/.default".into(),
            graph: "https://graph.microsoft.com".into(),
            graph_scope: "https://graph.microsoft.com/.default".into(),
            log_analytics: "https://api.loganalytics.io".into(),
            log_analytics_scope: "https://api.loganalytics.io/.default".into(),
            mdca: None,
            mdca_scope: "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default".into(),
        }
    }
}

impl Endpoints {
    /// The fake tenant's layout: one host, one path prefix per API.
    pub fn rooted_at(base: &str) -> Endpoints {
        let b = base.trim_end_matches('/');
        Endpoints {
            login: b.to_string(),
            mde: format!("{b}/mde"),
            graph: format!("{b}/graph"),
            log_analytics: format!("{b}/la"),
            mdca: Some(format!("{b}/mdca")),
            ..Endpoints::default()
        }
    }

    pub(crate) fn all_loopback(&self) -> bool {
        let hosts = [&self.login, &self.mde, &self.graph, &self.log_analytics];
        hosts.iter().all(|u| is_loopback_url(u)) && self.mdca.as_deref().is_none_or(is_loopback_url)
    }
}

fn is_loopback_url(u: &str) -> bool {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

/// Which sources run. Sources that need extra configuration default to off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub devices: bool,
    /// One MDE call per device: 100,000 devices cost ~67 h at 1,500 calls/h, so off by default;
    /// hunting logons give the same edges in a few queries.
    pub logon_users: bool,
    pub hunting_traffic: bool,
    pub hunting_device_logons: bool,
    pub hunting_identity_logons: bool,
    pub log_analytics_traffic: bool,
    pub risky_users: bool,
    pub discovered_apps: bool,
    pub mdca_alerts: bool,
    /// Push the governance outbox (MDE indicators, needs `Ti.ReadWrite.All`) after each sync.
    pub indicators: bool,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            devices: true,
            logon_users: false,
            hunting_traffic: true,
            hunting_device_logons: true,
            hunting_identity_logons: true,
            log_analytics_traffic: false,
            risky_users: true,
            discovered_apps: true,
            mdca_alerts: false,
            indicators: false,
        }
    }
}

impl SourcesConfig {
    pub fn all() -> SourcesConfig {
        SourcesConfig {
            devices: true,
            logon_users: true,
            hunting_traffic: true,
            hunting_device_logons: true,
            hunting_identity_logons: true,
            log_analytics_traffic: true,
            risky_users: true,
            discovered_apps: true,
            mdca_alerts: true,
            indicators: true,
        }
    }
    pub fn none() -> SourcesConfig {
        SourcesConfig {
            devices: false,
            logon_users: false,
            hunting_traffic: false,
            hunting_device_logons: false,
            hunting_identity_logons: false,
            log_analytics_traffic: false,
            risky_users: false,
            discovered_apps: false,
            mdca_alerts: false,
            indicators: false,
        }
    }
}

/// Page and window sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// `$top` for MDE lists (documented max 10,000).
    pub mde_page_size: u32,
    /// `limit` for MDCA lists (documented max 100).
    pub mdca_page_size: u32,
    /// Machines whose logon users share one transaction (and one watermark naming the last
    /// of them): per-machine commits dominated large syncs.
    pub mde_logon_batch: u32,
    /// First hunting window; halved while an answer reaches the row limit.
    pub hunting_window_hours: u32,
    /// How far back the first sync reaches (Advanced Hunting keeps 30 days).
    pub hunting_lookback_days: u32,
    /// Rows at which an answer is assumed truncated (documented API limit 100,000).
    pub hunting_row_limit: u32,
    pub log_analytics_window_hours: u32,
    pub log_analytics_lookback_days: u32,
    /// Log Analytics query API truncates at 500,000 rows (UNCONFIRMED for every workspace tier).
    pub log_analytics_row_limit: u32,
    /// Splitting stops here; a window this small that still hits the limit is an error.
    pub min_window_seconds: u32,
    /// Discovered-apps aggregation period: P7D, P30D or P90D.
    pub discovered_apps_period: String,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            mde_page_size: 10_000,
            mdca_page_size: 100,
            mde_logon_batch: 256,
            hunting_window_hours: 24,
            hunting_lookback_days: 30,
            hunting_row_limit: 100_000,
            log_analytics_window_hours: 24,
            log_analytics_lookback_days: 30,
            log_analytics_row_limit: 500_000,
            min_window_seconds: 60,
            discovered_apps_period: "P30D".into(),
        }
    }
}

/// Rate limiting, retries and timeouts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PacingConfig {
    /// Apply the documented per-API quotas client-side (token buckets).
    pub enforce_quotas: bool,
    /// Minimum gap between Identity Protection calls (documented 1 request/s per tenant).
    pub risky_users_interval_ms: u64,
    /// First backoff step for 5xx / 429 without Retry-After; doubles per attempt, with jitter.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Retries per request after the first attempt (429, 5xx, timeouts).
    pub max_retries: u32,
    /// Retry-After values above this are capped, so a bogus header cannot stall a sync for hours.
    pub max_retry_after_secs: u64,
    pub request_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Logon-user requests (one per machine) in flight at once. The MDE quota still applies
    /// through the token bucket when `enforce_quotas` is on; this only hides the latency.
    pub mde_concurrency: u32,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            enforce_quotas: true,
            risky_users_interval_ms: 1_000,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            max_retries: 5,
            max_retry_after_secs: 300,
            request_timeout_secs: 210,
            connect_timeout_secs: 15,
            mde_concurrency: 8,
        }
    }
}

impl PacingConfig {
    /// Pacing for loopback tests: no quotas, millisecond backoff, short timeouts.
    pub fn fast() -> PacingConfig {
        PacingConfig {
            enforce_quotas: false,
            risky_users_interval_ms: 0,
            backoff_base_ms: 5,
            backoff_max_ms: 50,
            max_retries: 3,
            max_retry_after_secs: 5,
            request_timeout_secs: 5,
            connect_timeout_secs: 2,
            mde_concurrency: 8,
        }
    }
}
