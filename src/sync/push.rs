//! Pushes the governance outbox to MDE custom indicators.
//!
//! Idempotence: creates go through `POST /api/indicators`, which MDE applies as
//! submit-or-update on (type, value), so a crash after MDE accepted a row but before the row
//! was marked only repeats an update. Deletes look the value up in a list taken at the start
//! of the push; an absent indicator is success.
use std::collections::HashMap;

use super::mde::{IndicatorAction as ApiAction, IndicatorClient, IndicatorKind, IndicatorRequest};
use super::{Indicator, SyncError};
use crate::actions::indicators::{IndicatorAction, IndicatorKey, IndicatorSpec, OutboxOp};
use crate::store::{Store, StoreError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub pushed: u64,
    pub failed: u64,
    pub superseded: u64,
    /// One line per failed row: indicator value and what went wrong (no secrets).
    pub errors: Vec<String>,
}

impl PushReport {
    pub fn is_ok(&self) -> bool {
        self.failed == 0 && self.errors.is_empty()
    }
}

fn request_of(spec: &IndicatorSpec) -> Result<IndicatorRequest, String> {
    let kind = match spec.indicator_type.trim().to_ascii_lowercase().as_str() {
        "domainname" => IndicatorKind::DomainName,
        "url" => IndicatorKind::Url,
        other => return Err(format!("indicator type {other:?} is not a URL/domain indicator")),
    };
    Ok(IndicatorRequest {
        value: spec.indicator_value.clone(),
        kind,
        action: match spec.action {
            IndicatorAction::Block => ApiAction::Block,
            IndicatorAction::Warn => ApiAction::Warn,
        },
        title: spec.title.clone(),
        description: spec.description.clone(),
        severity: spec.severity,
        rbac_group_names: spec.rbac_group_names.clone(),
        generate_alert: spec.generate_alert,
        expiration_unix: spec.expiration_time.map(|t| t.timestamp()),
        educate_url: None,
    })
}

fn op_key(op: &OutboxOp) -> IndicatorKey {
    match op {
        OutboxOp::Upsert(s) => s.key(),
        OutboxOp::Delete { indicator_value, indicator_type } => IndicatorKey::new(indicator_type, indicator_value),
    }
}

async fn apply(
    client: &IndicatorClient,
    op: &OutboxOp,
    existing: &Result<Vec<Indicator>, SyncError>,
) -> Result<(), String> {
    match op {
        OutboxOp::Upsert(spec) => {
            let req = request_of(spec)?;
            client.create(&req).await.map(|_| ()).map_err(|e| e.to_string())
        }
        OutboxOp::Delete { .. } => {
            let existing = existing.as_ref().map_err(|e| e.to_string())?;
            let key = op_key(op);
            for i in existing.iter().filter(|i| IndicatorKey::new(&i.kind, &i.value) == key) {
                client.delete(&i.id).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}

/// Pushes every pending/failed outbox row, latest row per indicator value only.
pub async fn push_outbox(store: &Store, client: &IndicatorClient, now_unix: i64) -> PushReport {
    let mut report = PushReport::default();
    let rows = match store.supersede_stale_outbox().and_then(|n| {
        report.superseded += n;
        store.pending_outbox()
    }) {
        Ok(r) => r,
        Err(e) => {
            report.errors.push(format!("cannot read the outbox: {e}"));
            return report;
        }
    };
    if rows.is_empty() {
        return report;
    }
    // Rows were already coalesced in SQL by raw value; this catches values that differ only
    // in ways MDE ignores (case, trailing dot).
    let mut latest: HashMap<IndicatorKey, i64> = HashMap::new();
    for r in &rows {
        let e = latest.entry(op_key(&r.op)).or_insert(r.id);
        *e = (*e).max(r.id);
    }
    let needs_list = rows.iter().any(|r| matches!(r.op, OutboxOp::Delete { .. }));
    let existing = if needs_list {
        client.list(Some("indicatorType eq 'DomainName' or indicatorType eq 'Url'")).await
    } else {
        Ok(Vec::new())
    };
    let mark = |res: Result<(), StoreError>, report: &mut PushReport| {
        if let Err(e) = res {
            report.errors.push(format!("cannot update the outbox: {e}"));
        }
    };
    for r in &rows {
        if latest.get(&op_key(&r.op)) != Some(&r.id) {
            mark(store.mark_outbox_superseded(r.id), &mut report);
            report.superseded += 1;
            continue;
        }
        match apply(client, &r.op, &existing).await {
            Ok(()) => {
                mark(store.mark_outbox_pushed(r.id, now_unix), &mut report);
                report.pushed += 1;
            }
            Err(e) => {
                let shown = crate::store::outbox::redact_error(&e);
                mark(store.mark_outbox_failed(r.id, &shown, now_unix), &mut report);
                report.failed += 1;
                report.errors.push(format!("{}: {shown}", crate::sanitize::display_safe(&r.indicator_value)));
            }
        }
    }
    report
}
