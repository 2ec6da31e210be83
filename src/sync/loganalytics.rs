//! Log Analytics query API over CommonSecurityLog (CEF from proxies and firewalls),
//! summarised in KQL per day × host × device × account with byte counts.
use reqwest::Method;

use super::config::SyncConfig;
use super::error::SyncError;
use super::http::{ApiKind, Call, HttpCore, decode_error};
use super::hunting::{Answer, TRAFFIC_COLUMNS, WindowRows, traffic_row};
use super::wire;
use super::{SourceKind, iso, path_segment};

pub fn kql_traffic(start: i64, end: i64) -> String {
    let (s, e) = (iso(start), iso(end));
    format!(
        "CommonSecurityLog\n\
         | where TimeGenerated >= datetime({s}) and TimeGenerated < datetime({e})\n\
         | extend Host = tolower(iff(isnotempty(DestinationHostName), DestinationHostName, tostring(parse_url(RequestURL).Host)))\n\
         | where isnotempty(Host)\n\
         | extend DeviceName = tolower(iff(isnotempty(SourceHostName), SourceHostName, SourceIP)), Account = tolower(SourceUserName)\n\
         | summarize Connections = count(), BytesUp = sum(SentBytes), BytesDown = sum(ReceivedBytes) by Day = startofday(TimeGenerated), Host, DeviceName, Account"
    )
}

/// Runs one query; the raw answer, decoded row by row by the caller (answers reach 500,000
/// rows, never held as a `Value`).
async fn run_query(cfg: &SyncConfig, http: &HttpCore, kql: &str, start: i64, end: i64) -> Result<Vec<u8>, SyncError> {
    let ws = cfg
        .log_analytics_workspace
        .as_deref()
        .ok_or_else(|| SyncError::Config("log_analytics_workspace is not set".into()))?;
    let body = serde_json::json!({
        "query": kql,
        "timespan": format!("{}/{}", iso(start), iso(end)),
    });
    let body = http
        .body(Call {
            api: ApiKind::LogAnalytics,
            scope: &cfg.endpoints.log_analytics_scope,
            permission: SourceKind::LogAnalyticsTraffic.permission(),
            method: Method::POST,
            url: format!(
                "{}/v1/workspaces/{}/query",
                cfg.endpoints.log_analytics.trim_end_matches('/'),
                path_segment(ws)
            ),
            body: Some(&body),
            accept_404: false,
        })
        .await?;
    Ok(body.unwrap_or_default())
}

pub(crate) async fn query_traffic(
    cfg: &SyncConfig,
    http: &HttpCore,
    start: i64,
    end: i64,
) -> Result<Answer, SyncError> {
    let body = run_query(cfg, http, &kql_traffic(start, end), start, end).await?;
    let m = wire::la_table(&body, &TRAFFIC_COLUMNS, |r| traffic_row(SourceKind::LogAnalyticsTraffic, r))
        .map_err(|e| decode_error(ApiKind::LogAnalytics, &e))?;
    Ok(Answer { raw_rows: m.objects, rows: WindowRows::Traffic(m.rows) })
}

pub(crate) async fn probe(cfg: &SyncConfig, http: &HttpCore, now: i64) -> Result<(), SyncError> {
    let body = run_query(cfg, http, "CommonSecurityLog | take 1", now - 3600, now).await?;
    // Still decoded, so an answer that is not JSON fails the check as it would fail a sync.
    wire::la_table(&body, &[], |_| None::<()>).map(|_| ()).map_err(|e| decode_error(ApiKind::LogAnalytics, &e))
}
