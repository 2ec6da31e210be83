//! Governance decisions applied to the cache: a tag change writes the tag, its audit entry and
//! the indicator operations in one transaction; alert policies run over the cache and fold
//! their findings into the alerts table; block lists and SIEM exports are read from it.
//! The pure rules live beside this file; here they meet the store.
use super::alert_export::{self, AlertRecord};
use super::blocklist::{self, BlockedApp, BlocklistFormat, RenderOptions, RenderedBlocklist};
use super::indicators::{AppForEnforcement, IndicatorAction, ScopedProfile, plan_indicators};
use super::policy::{self, AlertChange, PolicyInput, PolicyKind, PolicySettings};
use crate::catalog::Catalog;
use crate::domain::{AlertId, AppId, DeviceId, Severity, Tag};
use crate::store::governance::{AlertStatus, ExportRow};
use crate::store::{Result, Store, StoreError};
use std::collections::BTreeSet;

/// Who acts, and when (the clock is read by the caller).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub now: i64,
}

/// One app whose tag was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    pub app: AppId,
    pub old: Tag,
    pub new: Tag,
    /// Indicator operations queued for the pusher.
    pub queued: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertRun {
    pub new: usize,
    pub updated: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagOutcome {
    pub changes: Vec<TagChange>,
    pub alerts: AlertRun,
}

impl TagOutcome {
    pub fn changed(&self) -> usize {
        self.changes.iter().filter(|c| c.old != c.new).count()
    }
    pub fn queued(&self) -> usize {
        self.changes.iter().map(|c| c.queued).sum()
    }
}

/// The domains a tag enforces on: the catalog's `domain:` / `full:` entries for a catalog app,
/// the registrable domain an unknown app is keyed by. Keyword and regexp rules cannot become an
/// indicator or a block-list line and are left out.
pub fn enforcement_domains(store: &Store, catalog: &Catalog, app: AppId) -> Result<AppForEnforcement> {
    let (key, name, unknown) = store.app_identity(app)?;
    let mut domains: BTreeSet<String> = BTreeSet::new();
    if unknown {
        domains.insert(key);
    } else if let Some(idx) = catalog.find_by_id(&key) {
        for d in &catalog.get(idx).domains {
            match d.split_once(':') {
                None => {
                    domains.insert(d.clone());
                }
                Some(("full" | "domain", v)) => {
                    domains.insert(v.to_owned());
                }
                Some(_) => {}
            }
        }
    }
    if domains.is_empty() {
        // An app the catalog no longer knows still has the hosts it was seen on.
        domains.extend(store.observed_domains(app)?);
    }
    Ok(AppForEnforcement { app_id: app, name, domains: domains.into_iter().collect() })
}

/// What a tag would do, for the confirmation prompt: domains and the device groups in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPreview {
    pub domains: usize,
    /// "all devices", "groups A, B" or "no device group (nothing is enforced)".
    pub scope: String,
}

pub fn preview_tag(store: &Store, catalog: &Catalog, apps: &[AppId], profile: Option<&str>) -> Result<TagPreview> {
    let mut domains = 0;
    for a in apps {
        domains += enforcement_domains(store, catalog, *a)?.domains.len();
    }
    let profile = match profile {
        Some(name) => Some(store.profile(name)?.ok_or_else(|| no_profile(name))?),
        None => None,
    };
    let scope = match super::indicators::resolve_scope(profile.as_ref(), &store.device_groups()?) {
        super::indicators::DeviceScope::AllDevices => "all devices".to_owned(),
        super::indicators::DeviceScope::Groups(g) => format!("device groups {}", g.join(", ")),
        super::indicators::DeviceScope::Nowhere => "no device group (nothing is enforced)".to_owned(),
    };
    Ok(TagPreview { domains, scope })
}

fn no_profile(name: &str) -> StoreError {
    StoreError::Invalid(format!("no scoped profile named {}", crate::sanitize::display_safe(name)))
}

/// What every app of one tagging action shares.
pub struct TagContext<'a> {
    pub catalog: &'a Catalog,
    pub profile: Option<&'a ScopedProfile>,
    pub groups: &'a [String],
    pub severity: Severity,
    pub reason: &'a str,
    pub actor: Actor<'a>,
}

/// One app's tag, audit entry and indicator operations; the caller owns the transaction.
pub fn tag_app_tx(s: &Store, ctx: &TagContext<'_>, app: AppId, tag: Tag) -> Result<TagChange> {
    let old_profile = s.app_tag_profile(app)?;
    let profile_name = ctx.profile.map(|p| p.name.as_str());
    let (old, _) = s.set_tag_tx(app, tag, profile_name, ctx.actor.name, ctx.reason, ctx.actor.now)?;
    let mut queued = 0;
    if old != tag || old_profile.as_deref() != profile_name {
        let target = enforcement_domains(s, ctx.catalog, app)?;
        for op in plan_indicators(&target, old, tag, ctx.profile, ctx.groups, ctx.severity) {
            s.enqueue_indicator(app, &op, ctx.actor.now)?;
            queued += 1;
        }
    }
    Ok(TagChange { app, old, new: tag, queued })
}

/// Tags apps: tag + audit + indicator operations per app in one transaction, then the alert
/// policies that depend on tags are re-run for those apps.
pub fn tag_apps(
    store: &Store,
    catalog: &Catalog,
    apps: &[AppId],
    tag: Tag,
    profile: Option<&str>,
    reason: &str,
    actor: Actor<'_>,
) -> Result<TagOutcome> {
    let scoped = match profile {
        Some(name) => Some(store.profile(name)?.ok_or_else(|| no_profile(name))?),
        None => None,
    };
    let groups = store.device_groups()?;
    let severity = store.global_severity()?;
    let changes = store.in_transaction(|s| {
        let ctx = TagContext { catalog, profile: scoped.as_ref(), groups: &groups, severity, reason, actor };
        apps.iter().map(|app| tag_app_tx(s, &ctx, *app, tag)).collect::<Result<Vec<_>>>()
    })?;
    store.refresh_summaries()?;
    let alerts = evaluate_alerts(store, Some(apps))?;
    Ok(TagOutcome { changes, alerts })
}

/// Runs the built-in policies over the cache (all apps, or only `apps`) and folds the result
/// into the alerts table: new alerts, and repeat triggers bumping the open one.
pub fn evaluate_alerts(store: &Store, apps: Option<&[AppId]>) -> Result<AlertRun> {
    let Some(latest) = store.latest_day()? else {
        return Ok(AlertRun::default());
    };
    let settings = PolicySettings::default();
    let history_from = crate::domain::Day(latest.0 - settings.lookback_days - settings.baseline_days);
    let usage = match apps {
        Some(apps) => store.usage_facts(history_from, Some(apps))?,
        None => {
            let window_from = crate::domain::Day(latest.0 - settings.lookback_days + 1);
            store.policy_usage(window_from, history_from, settings.upload_floor_bytes)?
        }
    };
    let devices: BTreeSet<DeviceId> = usage.iter().flat_map(|u| u.devices.iter().copied()).collect();
    let devices: Vec<DeviceId> = devices.into_iter().collect();
    let input = PolicyInput {
        apps: store.policy_apps()?,
        usage,
        users: store.policy_users()?,
        severities: store.policy_severities()?,
        settings,
        device_names: store.device_names(&devices)?,
    };
    let candidates = policy::evaluate(&input, latest);
    let changes = policy::merge(&store.open_policy_alerts()?, &candidates);
    let mut run = AlertRun::default();
    if changes.is_empty() {
        return Ok(run);
    }
    store.in_transaction(|s| {
        for c in &changes {
            match c {
                AlertChange::New(a) => {
                    s.insert_alert(a)?;
                    run.new += 1;
                }
                AlertChange::Update { id, count, last_seen, severity, description, devices, .. } => {
                    s.bump_alert(*id, *count, *last_seen, *severity, description, devices)?;
                    run.updated += 1;
                }
            }
        }
        Ok(())
    })?;
    // Open-alert counts feed the user summaries (nothing else there changed).
    store.refresh_user_alerts()?;
    Ok(run)
}

/// Which severity setting to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeverityScope {
    Global,
    Policy(PolicyKind),
}

impl SeverityScope {
    pub fn key(self) -> String {
        match self {
            SeverityScope::Global => "severity.global".to_owned(),
            SeverityScope::Policy(k) => format!("severity.{}", k.as_str()),
        }
    }
    /// `global` or a policy id.
    pub fn parse(s: &str) -> Option<SeverityScope> {
        if s.trim().eq_ignore_ascii_case("global") {
            Some(SeverityScope::Global)
        } else {
            PolicyKind::parse(s).map(SeverityScope::Policy)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityOutcome {
    pub old: Option<Severity>,
    pub relabelled: usize,
    /// Indicator upserts re-queued with the new global severity.
    pub requeued: usize,
}

/// Sets a severity (audited), re-labels the open alerts it governs and, for the global one,
/// re-queues the indicators of every enforcing app so MDE shows the new severity too.
pub fn set_severity(
    store: &Store,
    catalog: &Catalog,
    scope: SeverityScope,
    sev: Severity,
    actor: Actor<'_>,
) -> Result<SeverityOutcome> {
    let old = store.set_severity(&scope.key(), sev, actor.name, actor.now)?;
    let relabelled = store.relabel_open_alerts(&store.policy_severities()?)?;
    let mut requeued = 0;
    if scope == SeverityScope::Global && old != Some(sev) {
        let groups = store.device_groups()?;
        store.in_transaction(|s| {
            for tag in [Tag::Unsanctioned, Tag::Monitored] {
                for (app, ..) in s.apps_with_tag(tag)? {
                    let profile = match s.app_tag_profile(app)? {
                        Some(p) => s.profile(&p)?,
                        None => None,
                    };
                    let target = enforcement_domains(s, catalog, app)?;
                    for op in plan_indicators(&target, tag, tag, profile.as_ref(), &groups, sev) {
                        s.enqueue_indicator(app, &op, actor.now)?;
                        requeued += 1;
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(SeverityOutcome { old, relabelled, requeued })
}

pub fn set_alert_status(store: &Store, id: AlertId, status: AlertStatus, actor: Actor<'_>) -> Result<AlertStatus> {
    let old = store.set_alert_status(id, status, actor.name, actor.now)?;
    store.refresh_user_alerts()?;
    Ok(old)
}

/// The unsanctioned apps' domains in an appliance's block-list format.
pub fn blocklist(store: &Store, catalog: &Catalog, format: BlocklistFormat) -> Result<RenderedBlocklist> {
    let mut apps = Vec::new();
    for (id, ..) in store.apps_with_tag(Tag::Unsanctioned)? {
        let t = enforcement_domains(store, catalog, id)?;
        apps.push(BlockedApp { name: t.name, domains: t.domains });
    }
    let opts = RenderOptions {
        mde_action: IndicatorAction::Block,
        mde_severity: store.global_severity()?,
        ..RenderOptions::default()
    };
    Ok(blocklist::render_report(format, &apps, &opts))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    Json,
    Cef,
}

impl AlertFormat {
    pub fn parse(s: &str) -> Option<AlertFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" | "jsonl" => Some(AlertFormat::Json),
            "cef" => Some(AlertFormat::Cef),
            _ => None,
        }
    }
}

/// Alerts for a SIEM. By default only what changed since the last export (new alerts and
/// repeat triggers, which MDCA's own SIEM agent never sends), then marked as exported.
pub fn export_alerts(store: &Store, format: AlertFormat, all: bool, now: i64) -> Result<(String, usize)> {
    let rows = store.alerts_for_export(all)?;
    let text = render_rows(&rows, format, now);
    store.mark_alerts_exported(&rows)?;
    Ok((text, rows.len()))
}

/// The same records without moving the export mark (read-only sessions).
pub fn render_alerts(store: &Store, format: AlertFormat, all: bool, now: i64) -> Result<(String, usize)> {
    let rows = store.alerts_for_export(all)?;
    Ok((render_rows(&rows, format, now), rows.len()))
}

fn render_rows(rows: &[ExportRow], format: AlertFormat, now: i64) -> String {
    let records: Vec<AlertRecord> = rows.iter().map(|r| AlertRecord { exported_at: now, ..r.record.clone() }).collect();
    match format {
        AlertFormat::Json => alert_export::to_json_lines(&records),
        AlertFormat::Cef => alert_export::to_cef_lines(&records),
    }
}
