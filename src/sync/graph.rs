//! Entra ID Protection risky users (Graph v1.0), paced to the documented 1 request/s per
//! tenant; 429s there carry no Retry-After, so the client's own backoff applies.
use reqwest::Method;
use serde::Deserialize;

use super::config::SyncConfig;
use super::error::SyncError;
use super::http::{ApiKind, Call, HttpCore};
use super::{RiskyUser, Run, SourceKind, j_str, j_time};
use crate::domain::IdentityRisk;

#[derive(Deserialize)]
pub(crate) struct GraphPage {
    #[serde(default)]
    pub value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

fn first_url(cfg: &SyncConfig) -> String {
    format!("{}/v1.0/identityProtection/riskyUsers", cfg.endpoints.graph.trim_end_matches('/'))
}

/// Follows `@odata.nextLink` only while it stays on the configured Graph host, so a
/// tampered response cannot send the bearer token elsewhere.
pub(crate) fn checked_next(cfg: &SyncConfig, link: Option<String>) -> Result<Option<String>, SyncError> {
    match link {
        None => Ok(None),
        Some(l) if same_origin(&l, &cfg.endpoints.graph) => Ok(Some(l)),
        Some(l) => Err(SyncError::Decode {
            api: ApiKind::Graph.name().into(),
            detail: format!(
                "@odata.nextLink points outside the configured Graph endpoint: {}",
                crate::sanitize::display_safe(&l)
            ),
        }),
    }
}

fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

pub(crate) fn risky_user_from(v: &serde_json::Value) -> Option<RiskyUser> {
    let level = j_str(v, "riskLevel").unwrap_or_else(|| "unknown".into());
    Some(RiskyUser {
        id: j_str(v, "id")?,
        upn: j_str(v, "userPrincipalName")?.to_lowercase(),
        display_name: j_str(v, "userDisplayName"),
        risk: IdentityRisk::parse(&level),
        risk_state: j_str(v, "riskState").unwrap_or_default(),
        risk_detail: j_str(v, "riskDetail").unwrap_or_default(),
        last_updated_unix: j_time(v, "riskLastUpdatedDateTime"),
        is_deleted: v.get("isDeleted").and_then(|b| b.as_bool()).unwrap_or(false),
        risk_level: level,
    })
}

pub(crate) async fn sync_risky_users(run: &mut Run<'_>) -> Result<(), SyncError> {
    let mut url = match run.unfinished_cursor() {
        Some(next) if same_origin(&next, &run.cfg.endpoints.graph) => next,
        _ => first_url(run.cfg),
    };
    loop {
        let page: Option<GraphPage> = run
            .http
            .json(Call {
                api: ApiKind::IdentityProtection,
                scope: &run.cfg.endpoints.graph_scope,
                permission: SourceKind::RiskyUsers.permission(),
                method: Method::GET,
                url,
                body: None,
                accept_404: false,
            })
            .await?;
        let (value, next) = page.map(|p| (p.value, p.next_link)).unwrap_or_default();
        let users: Vec<RiskyUser> = value.iter().filter_map(risky_user_from).collect();
        let next = checked_next(run.cfg, next)?;
        let wm = run.mark(None, next.clone());
        run.sink.risky_users(&users, &wm)?;
        run.page_done(users.len(), String::new());
        match next {
            Some(n) => url = n,
            None => return Ok(()),
        }
    }
}

pub(crate) async fn probe(cfg: &SyncConfig, http: &HttpCore) -> Result<(), SyncError> {
    let url = super::http::with_query(&first_url(cfg), &[("$top", "1")])?;
    http.send(Call {
        api: ApiKind::IdentityProtection,
        scope: &cfg.endpoints.graph_scope,
        permission: SourceKind::RiskyUsers.permission(),
        method: Method::GET,
        url,
        body: None,
        accept_404: false,
    })
    .await
    .map(|_| ())
}
