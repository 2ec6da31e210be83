//! Sync layer: pulls devices, logons, traffic aggregates, risky users, discovered apps and
//! alerts from Microsoft Defender / Entra APIs into a [`SyncSink`] (the SQLite store), and
//! pushes MDE URL/domain indicators. A loopback fake tenant ([`fake_tenant`]) speaks the same
//! HTTP for tests and benchmarks.
//!
//! Resume model: every sink call carries a [`Watermark`] and must be committed atomically with
//! its page. Windowed sources (hunting, Log Analytics) resume after `until_unix`; paged
//! snapshot sources resume at `cursor` while `complete` is false and start a fresh pass once
//! a pass completed. Traffic and hunting-logon rows are additive per key: disjoint windows
//! may both carry a row for the same day × host × device × account, and the sink sums them.
pub mod auth;
pub mod config;
pub mod error;
pub mod fake_tenant;
pub mod graph;
pub mod http;
pub mod hunting;
pub mod loganalytics;
pub mod mdca;
pub mod mde;
pub mod memory_sink;
pub mod push;
pub mod run;
mod wire;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::domain::{Day, IdentityRisk, Severity, Tag};
pub use config::{Endpoints, PacingConfig, SourcesConfig, SyncConfig, WindowConfig};
pub use error::{SinkError, SyncError};
pub use http::{ApiKind, ApiStats};
pub use mde::{EnsureReport, Indicator, IndicatorAction, IndicatorClient, IndicatorKind, IndicatorRequest};

/// Where a row came from; also the key of the per-source watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SourceKind {
    Devices,
    LogonUsers,
    HuntingTraffic,
    HuntingDeviceLogons,
    HuntingIdentityLogons,
    LogAnalyticsTraffic,
    RiskyUsers,
    DiscoveredApps,
    MdcaAlerts,
}

impl SourceKind {
    pub const ALL: [SourceKind; 9] = [
        SourceKind::Devices,
        SourceKind::LogonUsers,
        SourceKind::HuntingTraffic,
        SourceKind::HuntingDeviceLogons,
        SourceKind::HuntingIdentityLogons,
        SourceKind::LogAnalyticsTraffic,
        SourceKind::RiskyUsers,
        SourceKind::DiscoveredApps,
        SourceKind::MdcaAlerts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Devices => "MDE devices",
            SourceKind::LogonUsers => "MDE logon users",
            SourceKind::HuntingTraffic => "hunting: DeviceNetworkEvents",
            SourceKind::HuntingDeviceLogons => "hunting: DeviceLogonEvents",
            SourceKind::HuntingIdentityLogons => "hunting: IdentityLogonEvents",
            SourceKind::LogAnalyticsTraffic => "Log Analytics: CommonSecurityLog",
            SourceKind::RiskyUsers => "Entra risky users",
            SourceKind::DiscoveredApps => "MDCA discovered apps",
            SourceKind::MdcaAlerts => "MDCA alerts",
        }
    }

    pub fn api(self) -> ApiKind {
        match self {
            SourceKind::Devices | SourceKind::LogonUsers => ApiKind::Mde,
            SourceKind::HuntingTraffic | SourceKind::HuntingDeviceLogons | SourceKind::HuntingIdentityLogons => {
                ApiKind::Hunting
            }
            SourceKind::LogAnalyticsTraffic => ApiKind::LogAnalytics,
            SourceKind::RiskyUsers => ApiKind::IdentityProtection,
            SourceKind::DiscoveredApps => ApiKind::Graph,
            SourceKind::MdcaAlerts => ApiKind::Mdca,
        }
    }

    /// The application permission the source needs (named in 403 errors).
    pub fn permission(self) -> &'static str {
        match self {
            SourceKind::Devices => "Machine.Read.All",
            SourceKind::LogonUsers => "User.Read.All",
            SourceKind::HuntingTraffic | SourceKind::HuntingDeviceLogons | SourceKind::HuntingIdentityLogons => {
                "ThreatHunting.Read.All"
            }
            SourceKind::LogAnalyticsTraffic => "Data.Read (Log Analytics API)",
            SourceKind::RiskyUsers => "IdentityRiskyUser.Read.All",
            SourceKind::DiscoveredApps => "CloudApp-Discovery.Read.All",
            SourceKind::MdcaAlerts => "Investigation.read",
        }
    }

    fn enabled(self, s: &SourcesConfig) -> bool {
        match self {
            SourceKind::Devices => s.devices,
            SourceKind::LogonUsers => s.logon_users,
            SourceKind::HuntingTraffic => s.hunting_traffic,
            SourceKind::HuntingDeviceLogons => s.hunting_device_logons,
            SourceKind::HuntingIdentityLogons => s.hunting_identity_logons,
            SourceKind::LogAnalyticsTraffic => s.log_analytics_traffic,
            SourceKind::RiskyUsers => s.risky_users,
            SourceKind::DiscoveredApps => s.discovered_apps,
            SourceKind::MdcaAlerts => s.mdca_alerts,
        }
    }

    /// Why an enabled source cannot run with this config, if it cannot.
    fn missing_config(self, cfg: &SyncConfig) -> Option<&'static str> {
        match self {
            SourceKind::LogAnalyticsTraffic if cfg.log_analytics_workspace.is_none() => {
                Some("log_analytics_workspace is not set")
            }
            SourceKind::MdcaAlerts if cfg.endpoints.mdca.is_none() => {
                Some("endpoints.mdca (the tenant's portal API URL) is not set")
            }
            _ => None,
        }
    }
}

/// Resume point of one source, committed with each page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub source: SourceKind,
    /// Windowed sources: everything before this instant (unix seconds) is committed.
    pub until_unix: Option<i64>,
    /// Paged sources: opaque position of the next page; `None` once the pass completed.
    pub cursor: Option<String>,
    /// True when this page ended a full pass.
    pub complete: bool,
    /// When the page was fetched (unix seconds).
    pub synced_at_unix: i64,
}

/// An MDE machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncedDevice {
    pub id: String,
    pub name: String,
    pub os_platform: Option<String>,
    pub os_version: Option<String>,
    /// None, Informational, Low, Medium, High.
    pub risk_score: Option<String>,
    /// None, Low, Medium, High.
    pub exposure_level: Option<String>,
    pub health_status: Option<String>,
    pub first_seen_unix: Option<i64>,
    pub last_seen_unix: Option<i64>,
    pub last_ip: Option<String>,
    pub aad_device_id: Option<String>,
    pub tags: Vec<String>,
    pub device_group: Option<String>,
    pub device_group_id: Option<String>,
}

/// A user ↔ device edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedLogon {
    pub source: SourceKind,
    /// UPN when the source has one, else `domain\name` (lower-cased).
    pub account: String,
    pub upn: Option<String>,
    pub device_name: String,
    pub device_id: Option<String>,
    pub first_seen_unix: Option<i64>,
    pub last_seen_unix: Option<i64>,
    /// Logons in this page's window (hunting; additive across windows). None from MDE lists.
    pub logon_count: Option<u64>,
    pub logon_types: Option<String>,
}

/// Connections from one device/account to one host on one day, within one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedTraffic {
    pub source: SourceKind,
    pub day: Day,
    pub remote_host: String,
    pub device: String,
    pub account: Option<String>,
    pub connections: u64,
    /// DeviceNetworkEvents has no byte counts; CommonSecurityLog does.
    pub bytes_up: Option<u64>,
    pub bytes_down: Option<u64>,
}

/// An Entra ID Protection risky user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskyUser {
    pub id: String,
    pub upn: String,
    pub display_name: Option<String>,
    pub risk: IdentityRisk,
    /// Raw riskLevel (low, medium, high, hidden, none, ...).
    pub risk_level: String,
    pub risk_state: String,
    pub risk_detail: String,
    pub last_updated_unix: Option<i64>,
    pub is_deleted: bool,
}

/// An app seen by Cloud Discovery in one stream over the aggregation period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveredApp {
    pub stream_id: String,
    pub id: String,
    pub name: String,
    pub category: Option<String>,
    /// 0–10, higher is more trustworthy.
    pub risk_score: Option<i64>,
    /// Sanction tag, when MDCA reports one.
    pub tag: Tag,
    pub tags: Vec<String>,
    pub domains: Vec<String>,
    pub users: u64,
    pub ip_addresses: u64,
    pub devices: Option<u64>,
    pub transactions: u64,
    pub upload_bytes: u64,
    pub download_bytes: u64,
    pub last_seen_unix: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEntity {
    pub id: String,
    pub label: String,
    pub kind: String,
}

/// A Defender for Cloud Apps alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdcaAlert {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub timestamp_unix: i64,
    pub is_open: Option<bool>,
    pub stories: Vec<i64>,
    pub entities: Vec<AlertEntity>,
    pub url: Option<String>,
}

/// Implemented by the store; one call per API page, each committed atomically together with
/// its watermark.
pub trait SyncSink {
    fn devices(&mut self, page: &[SyncedDevice], watermark: &Watermark) -> Result<(), SinkError>;
    fn logons(&mut self, page: &[SyncedLogon], watermark: &Watermark) -> Result<(), SinkError>;
    fn traffic(&mut self, page: &[SyncedTraffic], watermark: &Watermark) -> Result<(), SinkError>;
    fn risky_users(&mut self, page: &[RiskyUser], watermark: &Watermark) -> Result<(), SinkError>;
    fn discovered_apps(&mut self, page: &[DiscoveredApp], watermark: &Watermark) -> Result<(), SinkError>;
    fn mdca_alerts(&mut self, page: &[MdcaAlert], watermark: &Watermark) -> Result<(), SinkError>;
    fn watermark(&self, source: SourceKind) -> Option<Watermark>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressPhase {
    Started,
    Page,
    Finished,
    Skipped,
    Failed,
}

/// Reported after every committed page and at source start/end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    pub source: SourceKind,
    pub phase: ProgressPhase,
    pub rows: u64,
    pub pages: u64,
    pub note: String,
}

#[derive(Debug, Clone)]
pub enum SourceOutcome {
    Completed,
    Skipped { reason: String },
    Failed { error: SyncError },
}

#[derive(Debug, Clone)]
pub struct SourceReport {
    pub source: SourceKind,
    pub outcome: SourceOutcome,
    pub rows: u64,
    pub pages: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub sources: Vec<SourceReport>,
    pub api_stats: BTreeMap<ApiKind, ApiStats>,
    pub elapsed: Duration,
    /// Set when the run could not start (config, secret).
    pub fatal: Option<SyncError>,
}

impl SyncReport {
    pub fn rows(&self, source: SourceKind) -> u64 {
        self.sources.iter().filter(|s| s.source == source).map(|s| s.rows).sum()
    }
    pub fn total_rows(&self) -> u64 {
        self.sources.iter().map(|s| s.rows).sum()
    }
    pub fn errors(&self) -> Vec<&SyncError> {
        self.fatal
            .iter()
            .chain(self.sources.iter().filter_map(|s| match &s.outcome {
                SourceOutcome::Failed { error } => Some(error),
                _ => None,
            }))
            .collect()
    }
    pub fn error_for(&self, source: SourceKind) -> Option<&SyncError> {
        self.sources.iter().find_map(|s| match &s.outcome {
            SourceOutcome::Failed { error } if s.source == source => Some(error),
            _ => None,
        })
    }
    pub fn is_ok(&self) -> bool {
        self.errors().is_empty()
    }
    /// Least time the same calls would take under the documented quotas.
    pub fn documented_quota_time(&self) -> Duration {
        self.api_stats.iter().map(|(api, st)| api.documented_quota_time(st.requests)).sum()
    }
}

/// State of one source's run, handed to the source implementations.
pub(crate) struct Run<'a> {
    pub cfg: &'a SyncConfig,
    pub http: &'a http::HttpCore,
    pub sink: &'a mut dyn SyncSink,
    progress: &'a dyn Fn(SyncProgress),
    pub source: SourceKind,
    pub now_unix: i64,
    rows: u64,
    pages: u64,
}

impl Run<'_> {
    /// The stored watermark if the last pass of a paged source was interrupted.
    pub(crate) fn unfinished_cursor(&self) -> Option<String> {
        self.sink.watermark(self.source).filter(|w| !w.complete).and_then(|w| w.cursor)
    }

    pub(crate) fn stored_until(&self) -> Option<i64> {
        self.sink.watermark(self.source).and_then(|w| w.until_unix)
    }

    pub(crate) fn mark(&self, until_unix: Option<i64>, cursor: Option<String>) -> Watermark {
        Watermark { source: self.source, until_unix, complete: cursor.is_none(), cursor, synced_at_unix: self.now_unix }
    }

    pub(crate) fn page_done(&mut self, rows: usize, note: String) {
        self.rows += rows as u64;
        self.pages += 1;
        (self.progress)(SyncProgress {
            source: self.source,
            phase: ProgressPhase::Page,
            rows: self.rows,
            pages: self.pages,
            note,
        });
    }
}

fn now_unix(cfg: &SyncConfig) -> i64 {
    cfg.as_of_unix.unwrap_or_else(|| chrono::Utc::now().timestamp())
}

async fn run_source(run: &mut Run<'_>) -> Result<(), SyncError> {
    match run.source {
        SourceKind::Devices => mde::sync_devices(run).await,
        SourceKind::LogonUsers => mde::sync_logon_users(run).await,
        SourceKind::HuntingTraffic
        | SourceKind::HuntingDeviceLogons
        | SourceKind::HuntingIdentityLogons
        | SourceKind::LogAnalyticsTraffic => hunting::sync_windows(run).await,
        SourceKind::RiskyUsers => graph::sync_risky_users(run).await,
        SourceKind::DiscoveredApps => mdca::sync_discovered_apps(run).await,
        SourceKind::MdcaAlerts => mdca::sync_alerts(run).await,
    }
}

/// Runs every enabled source in turn. A failing source is reported and the next one runs;
/// a sink failure stops the run (the cache is unusable). Never panics, never returns early
/// without a report.
pub async fn run_sync(cfg: &SyncConfig, sink: &mut dyn SyncSink, progress: &dyn Fn(SyncProgress)) -> SyncReport {
    let started = Instant::now();
    let mut report = SyncReport::default();
    let http = match http::HttpCore::new(cfg) {
        Ok(h) => h,
        Err(e) => {
            report.fatal = Some(e);
            report.elapsed = started.elapsed();
            return report;
        }
    };
    let now = now_unix(cfg);
    let mut stop = false;
    for source in SourceKind::ALL {
        if !source.enabled(&cfg.sources) {
            continue;
        }
        let t0 = Instant::now();
        let skip_reason = if stop {
            Some("an earlier failure stopped the run".to_string())
        } else {
            source.missing_config(cfg).map(str::to_string)
        };
        if let Some(reason) = skip_reason {
            progress(SyncProgress { source, phase: ProgressPhase::Skipped, rows: 0, pages: 0, note: reason.clone() });
            report.sources.push(SourceReport {
                source,
                outcome: SourceOutcome::Skipped { reason },
                rows: 0,
                pages: 0,
                elapsed: t0.elapsed(),
            });
            continue;
        }
        progress(SyncProgress { source, phase: ProgressPhase::Started, rows: 0, pages: 0, note: String::new() });
        let mut run = Run { cfg, http: &http, sink: &mut *sink, progress, source, now_unix: now, rows: 0, pages: 0 };
        let result = run_source(&mut run).await;
        let (rows, pages) = (run.rows, run.pages);
        let outcome = match result {
            Ok(()) => {
                progress(SyncProgress { source, phase: ProgressPhase::Finished, rows, pages, note: String::new() });
                SourceOutcome::Completed
            }
            Err(error) => {
                tracing::warn!(source = source.name(), %error, "source failed");
                progress(SyncProgress { source, phase: ProgressPhase::Failed, rows, pages, note: error.to_string() });
                stop = error.stops_run();
                SourceOutcome::Failed { error }
            }
        };
        report.sources.push(SourceReport { source, outcome, rows, pages, elapsed: t0.elapsed() });
    }
    report.api_stats = http.stats().into_iter().collect();
    report.elapsed = started.elapsed();
    report
}

#[derive(Debug, Clone)]
pub enum CheckStatus {
    /// Token issued and a one-row probe succeeded.
    Ok,
    Skipped(String),
    Failed(SyncError),
}

/// Token + permission probe for one enabled source.
#[derive(Debug, Clone)]
pub struct SourceCheck {
    pub source: SourceKind,
    pub permission: &'static str,
    pub status: CheckStatus,
}

/// Acquires a token per enabled source and makes one minimal call, so missing consents show
/// up before a long sync.
pub async fn check_config(cfg: &SyncConfig) -> Vec<SourceCheck> {
    let http = match http::HttpCore::new(cfg) {
        Ok(h) => h,
        Err(e) => {
            return SourceKind::ALL
                .iter()
                .filter(|s| s.enabled(&cfg.sources))
                .map(|&source| SourceCheck {
                    source,
                    permission: source.permission(),
                    status: CheckStatus::Failed(e.clone()),
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    for source in SourceKind::ALL {
        if !source.enabled(&cfg.sources) {
            continue;
        }
        let status = if let Some(reason) = source.missing_config(cfg) {
            CheckStatus::Skipped(reason.to_string())
        } else {
            match probe(cfg, &http, source).await {
                Ok(()) => CheckStatus::Ok,
                Err(e) => CheckStatus::Failed(e),
            }
        };
        out.push(SourceCheck { source, permission: source.permission(), status });
    }
    out
}

async fn probe(cfg: &SyncConfig, http: &http::HttpCore, source: SourceKind) -> Result<(), SyncError> {
    match source {
        SourceKind::Devices | SourceKind::LogonUsers => mde::probe(cfg, http, source).await,
        SourceKind::HuntingTraffic
        | SourceKind::HuntingDeviceLogons
        | SourceKind::HuntingIdentityLogons
        | SourceKind::LogAnalyticsTraffic => hunting::probe(cfg, http, source).await,
        SourceKind::RiskyUsers => graph::probe(cfg, http).await,
        SourceKind::DiscoveredApps | SourceKind::MdcaAlerts => mdca::probe(cfg, http, source).await,
    }
}

// ---- small JSON helpers shared by the sources ----

/// A JSON object, owned as a `Value` or as a bare map (hunting rows), read without copying.
pub(crate) trait JsonFields {
    fn field(&self, key: &str) -> Option<&serde_json::Value>;
}

impl JsonFields for serde_json::Value {
    fn field(&self, key: &str) -> Option<&serde_json::Value> {
        self.get(key)
    }
}

impl JsonFields for serde_json::Map<String, serde_json::Value> {
    fn field(&self, key: &str) -> Option<&serde_json::Value> {
        self.get(key)
    }
}

pub(crate) fn j_str(v: &impl JsonFields, key: &str) -> Option<String> {
    match v.field(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn j_u64(v: &impl JsonFields, key: &str) -> Option<u64> {
    match v.field(key)? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn j_i64(v: &impl JsonFields, key: &str) -> Option<i64> {
    match v.field(key)? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// ISO 8601 / RFC 3339 timestamp → unix seconds.
pub(crate) fn j_time(v: &impl JsonFields, key: &str) -> Option<i64> {
    let s = v.field(key)?.as_str()?;
    parse_time(s)
}

pub(crate) fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    // Graph sometimes omits the zone ("2024-01-01T00:00:00"): it is UTC.
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc().timestamp())
}

pub(crate) fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Percent-encodes one path segment.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
