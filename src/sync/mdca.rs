//! Defender for Cloud Apps: discovered apps through Graph beta (`aggregatedAppsDetails`) and
//! alerts through the portal API (`/api/v1/alerts/`, skip/limit/hasNext).
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::config::SyncConfig;
use super::error::SyncError;
use super::graph::{GraphPage, checked_next};
use super::http::{ApiKind, Call, HttpCore};
use super::{AlertEntity, DiscoveredApp, MdcaAlert, Run, SourceKind, j_i64, j_str, j_time, j_u64, path_segment};
use crate::domain::{Severity, Tag};

fn streams_url(cfg: &SyncConfig) -> String {
    format!(
        "{}/beta/security/dataDiscovery/cloudAppDiscovery/uploadedStreams",
        cfg.endpoints.graph.trim_end_matches('/')
    )
}

fn apps_url(cfg: &SyncConfig, stream: &str) -> String {
    let period = match cfg.windows.discovered_apps_period.as_str() {
        p @ ("P7D" | "P30D" | "P90D") => p,
        _ => "P30D",
    };
    format!("{}/{}/aggregatedAppsDetails(period=duration'{period}')", streams_url(cfg), path_segment(stream))
}

fn graph_call<'a>(cfg: &'a SyncConfig, url: String) -> Call<'a> {
    Call {
        api: ApiKind::Graph,
        scope: &cfg.endpoints.graph_scope,
        permission: SourceKind::DiscoveredApps.permission(),
        method: Method::GET,
        url,
        body: None,
        accept_404: false,
    }
}

async fn stream_ids(cfg: &SyncConfig, http: &HttpCore) -> Result<Vec<String>, SyncError> {
    if !cfg.discovery_streams.is_empty() {
        return Ok(cfg.discovery_streams.clone());
    }
    let mut ids = Vec::new();
    let mut url = Some(streams_url(cfg));
    while let Some(u) = url {
        let page: Option<GraphPage> = http.json(graph_call(cfg, u)).await?;
        let (value, next) = page.map(|p| (p.value, p.next_link)).unwrap_or_default();
        ids.extend(value.iter().filter_map(|s| j_str(s, "id")));
        url = checked_next(cfg, next)?;
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Resume position: a stream and, within it, the next page link.
#[derive(Debug, Serialize, Deserialize)]
struct AppsCursor {
    stream: String,
    next: Option<String>,
}

/// Sanction state from `tags[]`; custom tags stay in `tags`.
fn sanction_tag(tags: &[String]) -> Tag {
    for t in tags {
        match t.to_ascii_lowercase().as_str() {
            "unsanctioned" => return Tag::Unsanctioned,
            "sanctioned" => return Tag::Sanctioned,
            "monitored" => return Tag::Monitored,
            _ => {}
        }
    }
    Tag::None
}

fn str_list(v: &serde_json::Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn app_from(stream: &str, v: &serde_json::Value) -> Option<DiscoveredApp> {
    let tags = str_list(v, "tags");
    Some(DiscoveredApp {
        stream_id: stream.to_string(),
        id: j_str(v, "id")?,
        name: j_str(v, "displayName").unwrap_or_default(),
        category: j_str(v, "category"),
        risk_score: j_i64(v, "riskScore"),
        tag: sanction_tag(&tags),
        tags,
        domains: str_list(v, "domains"),
        users: j_u64(v, "userCount").unwrap_or(0),
        ip_addresses: j_u64(v, "ipAddressCount").unwrap_or(0),
        devices: j_u64(v, "deviceCount"),
        transactions: j_u64(v, "transactionCount").unwrap_or(0),
        upload_bytes: j_u64(v, "uploadNetworkTrafficInBytes").unwrap_or(0),
        download_bytes: j_u64(v, "downloadNetworkTrafficInBytes").unwrap_or(0),
        last_seen_unix: j_time(v, "lastSeenDateTime"),
    })
}

pub(crate) async fn sync_discovered_apps(run: &mut Run<'_>) -> Result<(), SyncError> {
    let streams = stream_ids(run.cfg, run.http).await?;
    let resume: Option<AppsCursor> = run.unfinished_cursor().and_then(|c| serde_json::from_str(&c).ok());
    let first = resume.as_ref().map_or(0, |r| streams.partition_point(|s| s < &r.stream));
    if first >= streams.len() {
        let wm = run.mark(None, None);
        run.sink.discovered_apps(&[], &wm)?;
        run.page_done(0, "no discovery streams".into());
        return Ok(());
    }
    for (i, stream) in streams.iter().enumerate().skip(first) {
        let resumed_link = resume.as_ref().filter(|r| &r.stream == stream).and_then(|r| r.next.clone());
        let mut url = resumed_link.unwrap_or_else(|| apps_url(run.cfg, stream));
        loop {
            let page: Option<GraphPage> = run.http.json(graph_call(run.cfg, url)).await?;
            let (value, next) = page.map(|p| (p.value, p.next_link)).unwrap_or_default();
            let apps: Vec<DiscoveredApp> = value.iter().filter_map(|a| app_from(stream, a)).collect();
            let next = checked_next(run.cfg, next)?;
            let cursor = match (&next, streams.get(i + 1)) {
                (Some(n), _) => Some(AppsCursor { stream: stream.clone(), next: Some(n.clone()) }),
                (None, Some(s)) => Some(AppsCursor { stream: s.clone(), next: None }),
                (None, None) => None,
            };
            let cursor = cursor.and_then(|c| serde_json::to_string(&c).ok());
            let wm = run.mark(None, cursor);
            run.sink.discovered_apps(&apps, &wm)?;
            run.page_done(apps.len(), format!("stream {}", crate::sanitize::display_safe(stream)));
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
    }
    Ok(())
}

fn alerts_url(base: &str) -> String {
    format!("{}/api/v1/alerts/", base.trim_end_matches('/'))
}

/// MDCA `severityValue`: 0 LOW, 1 MEDIUM, 2 HIGH, 3 INFORMATIONAL.
fn alert_severity(v: i64) -> Severity {
    match v {
        0 => Severity::Low,
        2 => Severity::High,
        3 => Severity::Informational,
        _ => Severity::Medium,
    }
}

fn alert_from(v: &serde_json::Value) -> Option<MdcaAlert> {
    let id = j_str(v, "_id").or_else(|| j_str(v, "id"))?;
    Some(MdcaAlert {
        id,
        title: j_str(v, "title").unwrap_or_default(),
        severity: alert_severity(j_i64(v, "severityValue").unwrap_or(1)),
        // Epoch milliseconds.
        timestamp_unix: j_i64(v, "timestamp").map_or(0, |ms| ms.div_euclid(1000)),
        is_open: j_i64(v, "resolutionStatusValue").map(|r| r == 0),
        stories: v
            .get("stories")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
            .unwrap_or_default(),
        entities: v
            .get("entities")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .map(|e| AlertEntity {
                        id: j_str(e, "id").unwrap_or_default(),
                        label: j_str(e, "label").unwrap_or_default(),
                        kind: j_str(e, "type").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        url: j_str(v, "URL"),
    })
}

#[derive(Deserialize)]
struct AlertsPage {
    #[serde(default)]
    data: Vec<serde_json::Value>,
    #[serde(rename = "hasNext", default)]
    has_next: bool,
}

async fn alerts_page(
    cfg: &SyncConfig,
    http: &HttpCore,
    base: &str,
    skip: u64,
    limit: u32,
) -> Result<AlertsPage, SyncError> {
    // Oldest first, so alerts raised during a sync land after the resume offset.
    let body = serde_json::json!({
        "skip": skip, "limit": limit, "sortField": "date", "sortDirection": "asc",
    });
    let page: Option<AlertsPage> = http
        .json(Call {
            api: ApiKind::Mdca,
            scope: &cfg.endpoints.mdca_scope,
            permission: SourceKind::MdcaAlerts.permission(),
            method: Method::POST,
            url: alerts_url(base),
            body: Some(&body),
            accept_404: false,
        })
        .await?;
    Ok(page.unwrap_or(AlertsPage { data: Vec::new(), has_next: false }))
}

pub(crate) async fn sync_alerts(run: &mut Run<'_>) -> Result<(), SyncError> {
    let base = run.cfg.endpoints.mdca.clone().ok_or_else(|| SyncError::Config("endpoints.mdca is not set".into()))?;
    let limit = run.cfg.windows.mdca_page_size.clamp(1, 100);
    let mut skip: u64 = run.unfinished_cursor().and_then(|c| c.parse().ok()).unwrap_or(0);
    loop {
        let page = alerts_page(run.cfg, run.http, &base, skip, limit).await?;
        skip += page.data.len() as u64;
        let alerts: Vec<MdcaAlert> = page.data.iter().filter_map(alert_from).collect();
        // An empty page with hasNext would loop forever.
        let more = page.has_next && !page.data.is_empty();
        let wm = run.mark(None, more.then(|| skip.to_string()));
        run.sink.mdca_alerts(&alerts, &wm)?;
        run.page_done(alerts.len(), format!("{skip} alerts"));
        if !more {
            return Ok(());
        }
    }
}

pub(crate) async fn probe(cfg: &SyncConfig, http: &HttpCore, source: SourceKind) -> Result<(), SyncError> {
    if source == SourceKind::MdcaAlerts {
        let base = cfg.endpoints.mdca.clone().ok_or_else(|| SyncError::Config("endpoints.mdca is not set".into()))?;
        return alerts_page(cfg, http, &base, 0, 1).await.map(|_| ());
    }
    stream_ids(cfg, http).await.map(|_| ())
}
