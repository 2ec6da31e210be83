//! Defender for Endpoint: machines, logon users, and the URL/domain indicator push path.
use futures_util::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::config::SyncConfig;
use super::error::SyncError;
use super::http::{ApiKind, Call, HttpCore, decode_error, with_query};
use super::wire::{self, Mapped, Row};
use super::{Run, SourceKind, SyncedDevice, SyncedLogon, j_str, path_segment};

#[derive(Deserialize)]
struct ODataPage {
    #[serde(default)]
    value: Vec<serde_json::Value>,
}

fn machines_url(cfg: &SyncConfig, top: u32, skip: u64) -> Result<String, SyncError> {
    with_query(
        &format!("{}/api/machines", cfg.endpoints.mde.trim_end_matches('/')),
        &[("$top", &top.to_string()), ("$skip", &skip.to_string())],
    )
}

const MACHINE_COLUMNS: [&str; 14] = [
    "id",
    "computerDnsName",
    "osPlatform",
    "version",
    "riskScore",
    "exposureLevel",
    "healthStatus",
    "firstSeen",
    "lastSeen",
    "lastIpAddress",
    "aadDeviceId",
    "machineTags",
    "rbacGroupName",
    "rbacGroupId",
];

fn device_from(r: &Row<'_>) -> Option<SyncedDevice> {
    let id = r.string("id")?;
    Some(SyncedDevice {
        name: r.string("computerDnsName").unwrap_or_else(|| id.clone()),
        os_platform: r.string("osPlatform"),
        os_version: r.string("version"),
        risk_score: r.string("riskScore"),
        exposure_level: r.string("exposureLevel"),
        health_status: r.string("healthStatus"),
        first_seen_unix: r.time("firstSeen"),
        last_seen_unix: r.time("lastSeen"),
        last_ip: r.string("lastIpAddress"),
        aad_device_id: r.string("aadDeviceId"),
        tags: r.list("machineTags").map(|a| a.iter().map(|t| t.to_string()).collect()).unwrap_or_default(),
        device_group: r.string("rbacGroupName"),
        device_group_id: r.string("rbacGroupId"),
        id,
    })
}

/// An MDE list page (`{"value": [...]}`), rows mapped as read; `elements` counts every entry
/// (the paging test), mapped or not.
async fn odata_rows<T>(
    http: &HttpCore,
    call: Call<'_>,
    columns: &'static [&'static str],
    map: impl Fn(&Row<'_>) -> Option<T>,
) -> Result<Mapped<T>, SyncError> {
    let body = http.body(call).await?.unwrap_or_default();
    wire::object_array(&body, &["value"], columns, true, |r| map(r)).map_err(|e| decode_error(ApiKind::Mde, &e))
}

/// One `$top/$skip` page of machines; MDE's 404 ("no recent machines") is an empty page.
async fn machines_page<T>(
    cfg: &SyncConfig,
    http: &HttpCore,
    permission: &str,
    top: u32,
    skip: u64,
    map: impl Fn(&Row<'_>) -> Option<T>,
) -> Result<Mapped<T>, SyncError> {
    let call = Call {
        api: ApiKind::Mde,
        scope: &cfg.endpoints.mde_scope,
        permission,
        method: Method::GET,
        url: machines_url(cfg, top, skip)?,
        body: None,
        accept_404: true,
    };
    odata_rows(http, call, &MACHINE_COLUMNS, map).await
}

fn page_size(cfg: &SyncConfig) -> u32 {
    cfg.windows.mde_page_size.clamp(1, 10_000)
}

pub(crate) async fn sync_devices(run: &mut Run<'_>) -> Result<(), SyncError> {
    let top = page_size(run.cfg);
    let mut skip: u64 = run.unfinished_cursor().and_then(|c| c.parse().ok()).unwrap_or(0);
    loop {
        let page = machines_page(run.cfg, run.http, SourceKind::Devices.permission(), top, skip, device_from).await?;
        let fetched = page.elements;
        let devices = page.rows;
        skip += fetched as u64;
        // MDE shows no nextLink; a short page is the end.
        let done = fetched < top as usize;
        let wm = run.mark(None, (!done).then(|| skip.to_string()));
        run.sink.devices(&devices, &wm)?;
        run.page_done(devices.len(), format!("{skip} machines"));
        if done {
            return Ok(());
        }
    }
}

#[derive(Debug, Clone)]
struct MachineRef {
    id: String,
    name: String,
}

/// One call per machine, several in flight, committed in batches of whole machines: resumes
/// after the last machine id committed.
pub(crate) async fn sync_logon_users(run: &mut Run<'_>) -> Result<(), SyncError> {
    let top = page_size(run.cfg);
    let perm = SourceKind::LogonUsers.permission();
    let mut machines = Vec::new();
    let mut skip = 0u64;
    loop {
        let page = machines_page(run.cfg, run.http, perm, top, skip, |r| {
            Some(MachineRef { id: r.string("id")?, name: r.string("computerDnsName").unwrap_or_default() })
        })
        .await?;
        skip += page.elements as u64;
        let short = page.elements < top as usize;
        machines.extend(page.rows);
        if short {
            break;
        }
    }
    // Sorted so "after the last committed id" is a stable resume point.
    machines.sort_by(|a, b| a.id.cmp(&b.id));
    machines.dedup_by(|a, b| a.id == b.id);
    let after = run.unfinished_cursor();
    let start = after.as_deref().map_or(0, |a| machines.partition_point(|m| m.id.as_str() <= a));
    let total = machines.len();
    if start >= total {
        let wm = run.mark(None, None);
        run.sink.logons(&[], &wm)?;
        run.page_done(0, "no machines".into());
        return Ok(());
    }
    let (cfg, http) = (run.cfg, run.http);
    let batch = cfg.windows.mde_logon_batch.clamp(1, 100_000) as usize;
    let in_flight = cfg.pacing.mde_concurrency.clamp(1, 64) as usize;
    // `buffered` keeps machine order, so a batch is always a contiguous run of the sorted list
    // and its last id is a resume point with nothing uncommitted before it.
    let mut replies = futures_util::stream::iter(machines.iter().skip(start))
        .map(|m| async move { (m, machine_logons(cfg, http, perm, m).await) })
        .buffered(in_flight);
    let mut pending: Vec<SyncedLogon> = Vec::new();
    let (mut in_batch, mut done) = (0usize, start);
    while let Some((m, logons)) = replies.next().await {
        pending.extend(logons?);
        in_batch += 1;
        done += 1;
        let last = done == total;
        if in_batch < batch && !last {
            continue;
        }
        let wm = run.mark(None, (!last).then(|| m.id.clone()));
        run.sink.logons(&pending, &wm)?;
        run.page_done(pending.len(), format!("{done}/{total} machines"));
        pending.clear();
        in_batch = 0;
    }
    Ok(())
}

/// One machine's logon users; 404 (machine gone since the list was read) is no users.
async fn machine_logons(
    cfg: &SyncConfig,
    http: &HttpCore,
    permission: &str,
    m: &MachineRef,
) -> Result<Vec<SyncedLogon>, SyncError> {
    let url = format!("{}/api/machines/{}/logonusers", cfg.endpoints.mde.trim_end_matches('/'), path_segment(&m.id));
    let call = Call {
        api: ApiKind::Mde,
        scope: &cfg.endpoints.mde_scope,
        permission,
        method: Method::GET,
        url,
        body: None,
        accept_404: true,
    };
    let page = odata_rows(http, call, &LOGON_USER_COLUMNS, |u| {
        let name = u.string("accountName")?;
        let account = match u.string("accountDomain") {
            Some(d) => format!("{d}\\{name}"),
            None => name,
        }
        .to_lowercase();
        Some(SyncedLogon {
            source: SourceKind::LogonUsers,
            account,
            upn: None,
            device_name: m.name.clone(),
            device_id: Some(m.id.clone()),
            first_seen_unix: u.time("firstSeen"),
            last_seen_unix: u.time("lastSeen"),
            logon_count: None,
            logon_types: u.string("logonTypes"),
        })
    })
    .await?;
    Ok(page.rows)
}

const LOGON_USER_COLUMNS: [&str; 5] = ["accountName", "accountDomain", "firstSeen", "lastSeen", "logonTypes"];

pub(crate) async fn probe(cfg: &SyncConfig, http: &HttpCore, source: SourceKind) -> Result<(), SyncError> {
    machines_page(cfg, http, source.permission(), 1, 0, |_| None::<()>).await.map(|_| ())
}

// ---------------------------------------------------------------- indicators (push path)

/// Indicator types this console writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndicatorKind {
    DomainName,
    Url,
}

/// `Warn` is honoured for Defender for Cloud Apps-style URL/domain indicators only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndicatorAction {
    Block,
    Warn,
}

/// What to make sure exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorRequest {
    pub value: String,
    pub kind: IndicatorKind,
    pub action: IndicatorAction,
    pub title: String,
    pub description: String,
    pub severity: crate::domain::Severity,
    /// Device groups; empty = all devices.
    pub rbac_group_names: Vec<String>,
    pub generate_alert: bool,
    pub expiration_unix: Option<i64>,
    pub educate_url: Option<String>,
}

/// An indicator as MDE lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub id: String,
    pub value: String,
    pub kind: String,
    pub action: String,
    pub title: String,
    pub rbac_group_names: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureReport {
    pub created: Vec<Indicator>,
    pub already_present: Vec<Indicator>,
}

/// Writes MDE custom URL/domain indicators. Needs `Ti.ReadWrite.All` (or `Ti.ReadWrite`,
/// which only sees the app's own indicators).
#[derive(Debug)]
pub struct IndicatorClient {
    http: HttpCore,
    base: String,
    scope: String,
    page_size: u32,
}

const TI_PERMISSION: &str = "Ti.ReadWrite.All";

fn odata_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn indicator_from(v: &serde_json::Value) -> Option<Indicator> {
    Some(Indicator {
        id: j_str(v, "id")?,
        value: j_str(v, "indicatorValue")?,
        kind: j_str(v, "indicatorType").unwrap_or_default(),
        action: j_str(v, "action").unwrap_or_default(),
        title: j_str(v, "title").unwrap_or_default(),
        rbac_group_names: match v.get("rbacGroupNames") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(serde_json::Value::String(s)) => {
                s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
            }
            _ => Vec::new(),
        },
    })
}

fn kind_str(k: IndicatorKind) -> &'static str {
    match k {
        IndicatorKind::DomainName => "DomainName",
        IndicatorKind::Url => "Url",
    }
}

fn action_str(a: IndicatorAction) -> &'static str {
    match a {
        IndicatorAction::Block => "Block",
        IndicatorAction::Warn => "Warn",
    }
}

impl IndicatorClient {
    pub fn new(cfg: &SyncConfig) -> Result<IndicatorClient, SyncError> {
        Ok(IndicatorClient {
            http: HttpCore::new(cfg)?,
            base: format!("{}/api/indicators", cfg.endpoints.mde.trim_end_matches('/')),
            scope: cfg.endpoints.mde_scope.clone(),
            page_size: page_size(cfg),
        })
    }

    fn call<'a>(&'a self, method: Method, url: String, body: Option<&'a serde_json::Value>) -> Call<'a> {
        Call { api: ApiKind::Mde, scope: &self.scope, permission: TI_PERMISSION, method, url, body, accept_404: true }
    }

    /// Lists indicators, optionally with an OData `$filter`, following `$skip` pages.
    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<Indicator>, SyncError> {
        let mut out = Vec::new();
        let mut skip = 0u64;
        loop {
            let top = self.page_size.to_string();
            let skip_s = skip.to_string();
            let mut params = vec![("$top", top.as_str()), ("$skip", skip_s.as_str())];
            if let Some(f) = filter {
                params.push(("$filter", f));
            }
            let url = with_query(&self.base, &params)?;
            let page: Option<ODataPage> = self.http.json(self.call(Method::GET, url, None)).await?;
            let raw = page.map(|p| p.value).unwrap_or_default();
            skip += raw.len() as u64;
            out.extend(raw.iter().filter_map(indicator_from));
            if raw.len() < self.page_size as usize {
                return Ok(out);
            }
        }
    }

    /// Submits one indicator (MDE upserts on type + value).
    pub async fn create(&self, req: &IndicatorRequest) -> Result<Indicator, SyncError> {
        let mut body = serde_json::json!({
            "indicatorValue": req.value,
            "indicatorType": kind_str(req.kind),
            "action": action_str(req.action),
            "title": req.title,
            "description": req.description,
            "severity": req.severity.as_str(),
            "rbacGroupNames": req.rbac_group_names,
            "generateAlert": req.generate_alert,
            "application": "shadowscope",
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(t) = req.expiration_unix {
                obj.insert("expirationTime".into(), super::iso(t).into());
            }
            if let Some(u) = &req.educate_url {
                obj.insert("educateUrl".into(), u.clone().into());
            }
        }
        let v: Option<serde_json::Value> =
            self.http.json(self.call(Method::POST, self.base.clone(), Some(&body))).await?;
        v.as_ref().and_then(indicator_from).ok_or_else(|| SyncError::Decode {
            api: ApiKind::Mde.name().into(),
            detail: "indicator create answered without an indicator id".into(),
        })
    }

    /// Deletes by id; `Ok(false)` when it was already gone (404).
    pub async fn delete(&self, id: &str) -> Result<bool, SyncError> {
        let url = format!("{}/{}", self.base, path_segment(id));
        let reply = self.http.send(self.call(Method::DELETE, url, None)).await?;
        Ok(reply.status != 404)
    }

    /// Idempotent push: lists the URL/domain indicators first and creates only those whose
    /// (type, value, action) is missing; rerunning creates nothing.
    pub async fn ensure(&self, wanted: &[IndicatorRequest]) -> Result<EnsureReport, SyncError> {
        let filter = "indicatorType eq 'DomainName' or indicatorType eq 'Url'";
        let existing = self.list(Some(filter)).await?;
        let mut report = EnsureReport::default();
        for req in wanted {
            let hit = existing.iter().chain(report.created.iter()).find(|i| {
                i.kind.eq_ignore_ascii_case(kind_str(req.kind))
                    && i.value.eq_ignore_ascii_case(&req.value)
                    && i.action.eq_ignore_ascii_case(action_str(req.action))
            });
            match hit {
                Some(i) => report.already_present.push(i.clone()),
                None => {
                    let created = self.create(req).await?;
                    report.created.push(created);
                }
            }
        }
        Ok(report)
    }

    /// Indicators whose value equals `value` (OData-quoted).
    pub async fn find(&self, value: &str) -> Result<Vec<Indicator>, SyncError> {
        self.list(Some(&format!("indicatorValue eq {}", odata_quote(value)))).await
    }

    pub fn api_stats(&self) -> std::collections::HashMap<ApiKind, super::ApiStats> {
        self.http.stats()
    }
}
