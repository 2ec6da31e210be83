//! Log Analytics query API over CommonSecurityLog (CEF from proxies and firewalls),
//! summarised in KQL per day × host × device × account with byte counts.
use reqwest::Method;
use serde_json::{Map, Value};

use super::config::SyncConfig;
use super::error::SyncError;
use super::http::{ApiKind, Call, HttpCore};
use super::hunting::{Answer, WindowRows, traffic_row};
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

async fn run_query(
    cfg: &SyncConfig,
    http: &HttpCore,
    kql: &str,
    start: i64,
    end: i64,
) -> Result<Vec<Map<String, Value>>, SyncError> {
    let ws = cfg
        .log_analytics_workspace
        .as_deref()
        .ok_or_else(|| SyncError::Config("log_analytics_workspace is not set".into()))?;
    let body = serde_json::json!({
        "query": kql,
        "timespan": format!("{}/{}", iso(start), iso(end)),
    });
    let v: Option<Value> = http
        .json(Call {
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
    Ok(v.map(tables_to_rows).unwrap_or_default())
}

/// `{"tables":[{"columns":[{"name"}],"rows":[[...]]}]}` → objects keyed by column name.
fn tables_to_rows(mut v: Value) -> Vec<Map<String, Value>> {
    let Some(table) = v.get_mut("tables").and_then(|t| t.as_array_mut()).and_then(|t| t.first_mut()) else {
        return Vec::new();
    };
    let cols: Vec<String> = table
        .get("columns")
        .and_then(|c| c.as_array())
        .map(|c| c.iter().map(|x| x.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    // Cells are moved out, not cloned: answers reach 500,000 rows.
    let rows = match table.get_mut("rows") {
        Some(Value::Array(rows)) => std::mem::take(rows),
        _ => return Vec::new(),
    };
    rows.into_iter()
        .filter_map(|r| match r {
            Value::Array(cells) => Some(cols.iter().cloned().zip(cells).collect::<Map<String, Value>>()),
            _ => None,
        })
        .collect()
}

pub(crate) async fn query_traffic(
    cfg: &SyncConfig,
    http: &HttpCore,
    start: i64,
    end: i64,
) -> Result<Answer, SyncError> {
    let rows = run_query(cfg, http, &kql_traffic(start, end), start, end).await?;
    Ok(Answer {
        raw_rows: rows.len(),
        rows: WindowRows::Traffic(
            rows.iter().filter_map(|r| traffic_row(SourceKind::LogAnalyticsTraffic, r)).collect(),
        ),
    })
}

pub(crate) async fn probe(cfg: &SyncConfig, http: &HttpCore, now: i64) -> Result<(), SyncError> {
    run_query(cfg, http, "CommonSecurityLog | take 1", now - 3600, now).await.map(|_| ())
}
