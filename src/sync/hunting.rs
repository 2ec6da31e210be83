//! Advanced Hunting through Graph `runHuntingQuery`, and the time-window driver shared with
//! Log Analytics. Summaries run in Defender's engine; windows halve while an answer reaches
//! the row limit (a full answer may be truncated) and grow back after each success.
use reqwest::Method;

use super::config::SyncConfig;
use super::error::SyncError;
use super::http::{ApiKind, Call, HttpCore, decode_error};
use super::wire::{self, Cell, Row};
use super::{Run, SourceKind, SyncedLogon, SyncedTraffic, iso};
use crate::domain::Day;

/// Rows of one window, already mapped.
pub(crate) enum WindowRows {
    Traffic(Vec<SyncedTraffic>),
    Logons(Vec<SyncedLogon>),
}

impl WindowRows {
    fn len(&self) -> usize {
        match self {
            WindowRows::Traffic(v) => v.len(),
            WindowRows::Logons(v) => v.len(),
        }
    }
}

/// Raw row count of an answer (before mapping drops malformed rows), used for the limit test.
pub(crate) struct Answer {
    pub raw_rows: usize,
    pub rows: WindowRows,
}

struct WindowPlan {
    lookback_days: u32,
    window_secs: i64,
    row_limit: u32,
}

fn plan(cfg: &SyncConfig, source: SourceKind) -> WindowPlan {
    let w = &cfg.windows;
    if source == SourceKind::LogAnalyticsTraffic {
        WindowPlan {
            lookback_days: w.log_analytics_lookback_days,
            window_secs: i64::from(w.log_analytics_window_hours.max(1)) * 3600,
            row_limit: w.log_analytics_row_limit.max(1),
        }
    } else {
        WindowPlan {
            // Advanced Hunting keeps 30 days.
            lookback_days: w.hunting_lookback_days.min(30),
            window_secs: i64::from(w.hunting_window_hours.max(1)) * 3600,
            row_limit: w.hunting_row_limit.max(1),
        }
    }
}

pub(crate) async fn sync_windows(run: &mut Run<'_>) -> Result<(), SyncError> {
    let p = plan(run.cfg, run.source);
    let now = run.now_unix;
    let oldest = now - i64::from(p.lookback_days) * 86_400;
    let mut start = run.stored_until().unwrap_or(oldest).max(oldest);
    let min_secs = i64::from(run.cfg.windows.min_window_seconds.max(1));
    let mut size = p.window_secs.max(min_secs);
    while start < now {
        let end = (start + size).min(now);
        let answer = query(run.cfg, run.http, run.source, start, end).await?;
        if answer.raw_rows >= p.row_limit as usize {
            let span = end - start;
            if span <= min_secs {
                return Err(SyncError::WindowTooDense {
                    api: run.source.api().name().into(),
                    start: iso(start),
                    window_secs: span,
                    limit: p.row_limit,
                });
            }
            size = (span / 2).max(min_secs);
            tracing::info!(
                source = run.source.name(),
                rows = answer.raw_rows,
                new_window_secs = size,
                "window hit the row limit, halving"
            );
            continue;
        }
        let wm = run.mark(Some(end), None);
        let n = answer.rows.len();
        match &answer.rows {
            WindowRows::Traffic(t) => run.sink.traffic(t, &wm)?,
            WindowRows::Logons(l) => run.sink.logons(l, &wm)?,
        }
        run.page_done(n, format!("{} .. {}", iso(start), iso(end)));
        start = end;
        // Grow back only when twice the window would likely still fit: a dense tenant would
        // otherwise alternate between a truncated (wasted) answer and a good one.
        if answer.raw_rows.saturating_mul(2) < p.row_limit as usize {
            size = (size * 2).min(p.window_secs.max(min_secs));
        }
    }
    Ok(())
}

async fn query(
    cfg: &SyncConfig,
    http: &HttpCore,
    source: SourceKind,
    start: i64,
    end: i64,
) -> Result<Answer, SyncError> {
    if source == SourceKind::LogAnalyticsTraffic {
        return super::loganalytics::query_traffic(cfg, http, start, end).await;
    }
    let kql = kql_for(source, start, end);
    let body = run_hunting(cfg, http, &kql, start, end).await?.unwrap_or_default();
    let decode = |e: serde_json::Error| decode_error(ApiKind::Hunting, &e);
    Ok(match source {
        SourceKind::HuntingTraffic => {
            let m = wire::object_array(&body, &RESULTS_KEYS, &TRAFFIC_COLUMNS, false, |r| traffic_row(source, r))
                .map_err(decode)?;
            Answer { raw_rows: m.objects, rows: WindowRows::Traffic(m.rows) }
        }
        _ => {
            let m = wire::object_array(&body, &RESULTS_KEYS, &LOGON_COLUMNS, false, |r| logon_row(source, r))
                .map_err(decode)?;
            Answer { raw_rows: m.objects, rows: WindowRows::Logons(m.rows) }
        }
    })
}

/// The docs show both `results` and `Results`; the first wins when both are present.
const RESULTS_KEYS: [&str; 2] = ["results", "Results"];
/// Columns a traffic row is read from (hunting and Log Analytics alike).
pub(crate) const TRAFFIC_COLUMNS: [&str; 7] =
    ["Day", "Host", "DeviceName", "Account", "Connections", "BytesUp", "BytesDown"];
const LOGON_COLUMNS: [&str; 8] =
    ["Account", "AccountUpn", "DeviceName", "DeviceId", "FirstSeen", "LastSeen", "LogonCount", "LogonTypes"];

/// KQL per source. Bounds are in the query itself as well as in `Timespan`, so the window is
/// half-open `[start, end)` whatever the service does with the timespan's end.
pub fn kql_for(source: SourceKind, start: i64, end: i64) -> String {
    let (s, e) = (iso(start), iso(end));
    match source {
        SourceKind::HuntingDeviceLogons => format!(
            "DeviceLogonEvents\n\
             | where Timestamp >= datetime({s}) and Timestamp < datetime({e})\n\
             | where ActionType == \"LogonSuccess\" and isnotempty(AccountName)\n\
             | extend Account = tolower(iff(isempty(AccountDomain), AccountName, strcat(AccountDomain, \"\\\\\", AccountName)))\n\
             | summarize LogonCount = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp), LogonTypes = make_set(LogonType, 8) by Account, DeviceName, DeviceId"
        ),
        SourceKind::HuntingIdentityLogons => format!(
            "IdentityLogonEvents\n\
             | where Timestamp >= datetime({s}) and Timestamp < datetime({e})\n\
             | where ActionType == \"LogonSuccess\" and isnotempty(DeviceName)\n\
             | extend Account = tolower(iff(isnotempty(AccountUpn), AccountUpn, strcat(AccountDomain, \"\\\\\", AccountName)))\n\
             | summarize LogonCount = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp), LogonTypes = make_set(LogonType, 8) by Account, AccountUpn, DeviceName"
        ),
        _ => format!(
            "DeviceNetworkEvents\n\
             | where Timestamp >= datetime({s}) and Timestamp < datetime({e})\n\
             | where isnotempty(RemoteUrl)\n\
             | extend Host = tolower(iff(RemoteUrl contains \"://\", tostring(parse_url(RemoteUrl).Host), tostring(split(RemoteUrl, \"/\")[0])))\n\
             | where isnotempty(Host)\n\
             | extend Account = tolower(iff(isnotempty(InitiatingProcessAccountUpn), InitiatingProcessAccountUpn, strcat(InitiatingProcessAccountDomain, \"\\\\\", InitiatingProcessAccountName)))\n\
             | summarize Connections = count() by Day = startofday(Timestamp), Host, DeviceName, Account"
        ),
    }
}

/// Runs one query; the raw answer, decoded row by row by the caller (answers reach 100,000
/// rows, never held as a `Value`).
async fn run_hunting(
    cfg: &SyncConfig,
    http: &HttpCore,
    kql: &str,
    start: i64,
    end: i64,
) -> Result<Option<Vec<u8>>, SyncError> {
    let body = serde_json::json!({
        "Query": kql,
        "Timespan": format!("{}/{}", iso(start), iso(end)),
    });
    http.body(Call {
        api: ApiKind::Hunting,
        scope: &cfg.endpoints.graph_scope,
        permission: SourceKind::HuntingTraffic.permission(),
        method: Method::POST,
        url: format!("{}/v1.0/security/runHuntingQuery", cfg.endpoints.graph.trim_end_matches('/')),
        body: Some(&body),
        accept_404: false,
    })
    .await
}

fn clean_host(h: &str) -> Option<String> {
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|x| !x.trim().is_empty() && x != "\\")
}

pub(crate) fn traffic_row(source: SourceKind, r: &Row<'_>) -> Option<SyncedTraffic> {
    let day = r.time("Day")?;
    Some(SyncedTraffic {
        source,
        day: Day::from_unix(day),
        remote_host: clean_host(&r.string("Host")?)?,
        device: r.string("DeviceName").unwrap_or_default().to_ascii_lowercase(),
        account: nonempty(r.string("Account")),
        connections: r.u64("Connections").unwrap_or(0),
        bytes_up: r.u64("BytesUp"),
        bytes_down: r.u64("BytesDown"),
    })
}

fn logon_row(source: SourceKind, r: &Row<'_>) -> Option<SyncedLogon> {
    let account = nonempty(r.string("Account"))?;
    let logon_types = match (r.list("LogonTypes"), r.get("LogonTypes")) {
        (Some(parts), _) => (!parts.is_empty()).then(|| parts.join(",")),
        (None, Some(Cell::Str(s))) if !s.is_empty() => Some(s.to_string()),
        _ => None,
    };
    Some(SyncedLogon {
        source,
        upn: nonempty(r.string("AccountUpn")).map(|u| u.to_lowercase()),
        account,
        device_name: r.string("DeviceName")?.to_ascii_lowercase(),
        device_id: r.string("DeviceId"),
        first_seen_unix: r.time("FirstSeen"),
        last_seen_unix: r.time("LastSeen"),
        logon_count: r.u64("LogonCount"),
        logon_types,
    })
}

pub(crate) async fn probe(cfg: &SyncConfig, http: &HttpCore, source: SourceKind) -> Result<(), SyncError> {
    let now = chrono::Utc::now().timestamp();
    if source == SourceKind::LogAnalyticsTraffic {
        return super::loganalytics::probe(cfg, http, now).await;
    }
    let table = match source {
        SourceKind::HuntingDeviceLogons => "DeviceLogonEvents",
        SourceKind::HuntingIdentityLogons => "IdentityLogonEvents",
        _ => "DeviceNetworkEvents",
    };
    let body = run_hunting(cfg, http, &format!("{table} | take 1"), now - 3600, now).await?.unwrap_or_default();
    // Still decoded, so an answer that is not JSON fails the check as it would fail a sync.
    wire::object_array(&body, &RESULTS_KEYS, &[], false, |_| None::<()>)
        .map(|_| ())
        .map_err(|e| decode_error(ApiKind::Hunting, &e))
}
