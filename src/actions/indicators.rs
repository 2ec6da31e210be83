//! Tag transition → MDE custom network indicator operations (an outbox the lead pushes), and
//! the reconcile step that makes re-pushing after a crash idempotent.
//!
//! Mirrors what MDCA's own MDE integration does (docs §2.5): Unsanctioned apps become domain
//! indicators with action `Block`, Monitored apps become `Warn`, removing the tag removes them,
//! and a scoped profile restricts the indicators to device groups.
use crate::actions::normalize_domain;
use crate::domain::{AppId, Severity, Tag};
use crate::sanitize::display_safe_truncated;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// MDE `indicatorType` for every indicator this module writes.
pub const INDICATOR_TYPE_DOMAIN: &str = "DomainName";

/// Title MDCA gives the alert/indicator for a blocked Unsanctioned app (seen verbatim as the
/// MDE alert title "Unsanctioned cloud app access was blocked").
pub const TITLE_BLOCK: &str = "Unsanctioned cloud app access was blocked";

/// Title for the Monitored ("warn") indicator. UNCONFIRMED: no primary source gives MDCA's
/// exact wording for the warn alert; this follows the lead's brief.
pub const TITLE_WARN: &str = "Connection to a risky cloud application was detected";

/// Every description this module writes starts with this, so reconcile can tell the
/// indicators it owns from ones an admin or MDCA created.
pub const MANAGED_PREFIX: &str = "[shadowscope]";

/// The app whose tag changed, with the domains the catalog maps to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppForEnforcement {
    pub app_id: AppId,
    pub name: String,
    pub domains: Vec<String>,
}

/// An MDCA "scoped profile": the device groups an Unsanctioned/Monitored tag applies to.
///
/// MDE indicators only know an allow-list of groups (`rbacGroupNames`, empty = all devices), so
/// an Exclude profile ("all but Finance-Kiosks") is expanded against the tenant's known device
/// groups: `rbacGroupNames = all_groups − exclude_groups`. Consequences the caller must handle:
/// a device group created later is *not* covered until the plan is rebuilt (re-run reconcile
/// when the group list changes), and an exclusion that leaves no group means "enforce
/// nowhere" — never "all devices", which is what an empty list would say to MDE.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopedProfile {
    pub name: String,
    pub include_groups: Vec<String>,
    pub exclude_groups: Vec<String>,
}

/// Where an indicator applies once a profile is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceScope {
    /// `rbacGroupNames` empty.
    AllDevices,
    /// Exactly these groups (sorted, unique, never empty).
    Groups(Vec<String>),
    /// The profile excludes every known group: no indicator may exist.
    Nowhere,
}

/// Resolves a profile to MDE device groups. Group names compare case-insensitively (MDE
/// device group names are case-insensitive in the portal); the spelling from `all_groups`
/// wins for exclude profiles, the profile's own spelling for include profiles.
pub fn resolve_scope(profile: Option<&ScopedProfile>, all_groups: &[String]) -> DeviceScope {
    let Some(p) = profile else {
        return DeviceScope::AllDevices;
    };
    let excluded: BTreeSet<String> =
        p.exclude_groups.iter().map(|g| g.trim().to_lowercase()).filter(|g| !g.is_empty()).collect();
    let base: Vec<&String> = if p.include_groups.iter().any(|g| !g.trim().is_empty()) {
        p.include_groups.iter().collect()
    } else if excluded.is_empty() {
        return DeviceScope::AllDevices;
    } else {
        all_groups.iter().collect()
    };
    let mut seen = BTreeSet::new();
    let mut groups: Vec<String> = base
        .into_iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .filter(|g| !excluded.contains(&g.to_lowercase()))
        .filter(|g| seen.insert(g.to_lowercase()))
        .map(str::to_owned)
        .collect();
    groups.sort_by_key(|g| g.to_lowercase());
    if groups.is_empty() { DeviceScope::Nowhere } else { DeviceScope::Groups(groups) }
}

/// MDE indicator action used for sanction tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndicatorAction {
    Block,
    /// "Warn (Defender for Cloud Apps only)": the user may bypass.
    Warn,
}

impl IndicatorAction {
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorAction::Block => "Block",
            IndicatorAction::Warn => "Warn",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            IndicatorAction::Block => TITLE_BLOCK,
            IndicatorAction::Warn => TITLE_WARN,
        }
    }
    /// The indicator a tag calls for; `None` for tags that must have no indicator.
    pub fn for_tag(tag: Tag) -> Option<IndicatorAction> {
        match tag {
            Tag::Unsanctioned => Some(IndicatorAction::Block),
            Tag::Monitored => Some(IndicatorAction::Warn),
            Tag::None | Tag::Sanctioned => None,
        }
    }
}

/// One indicator as `POST /api/indicators` wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorSpec {
    pub indicator_value: String,
    pub indicator_type: String,
    pub action: IndicatorAction,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// Empty = all devices.
    pub rbac_group_names: Vec<String>,
    pub generate_alert: bool,
    pub application: String,
    pub expiration_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl IndicatorSpec {
    /// Body for `POST /api/indicators` (field names from post-ti-indicator.md).
    /// `rbacGroupNames` is always sent, as a JSON array like the doc's sample, so that moving
    /// an indicator from scoped back to "all devices" clears the old scope on upsert.
    pub fn to_api_json(&self) -> Value {
        let mut body = json!({
            "indicatorValue": self.indicator_value,
            "indicatorType": self.indicator_type,
            "action": self.action.as_str(),
            "title": self.title,
            "description": self.description,
            "severity": self.severity.as_str(),
            "rbacGroupNames": self.rbac_group_names,
            "generateAlert": self.generate_alert,
            "application": self.application,
        });
        if let (Some(t), Some(obj)) = (self.expiration_time, body.as_object_mut()) {
            obj.insert("expirationTime".into(), Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
        }
        body
    }

    pub fn key(&self) -> IndicatorKey {
        IndicatorKey::new(&self.indicator_type, &self.indicator_value)
    }
}

/// (type, value), case-insensitive: MDE upserts on it (UNCONFIRMED exact key, docs §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorKey {
    pub indicator_type: String,
    pub indicator_value: String,
}

impl IndicatorKey {
    pub fn new(indicator_type: &str, indicator_value: &str) -> IndicatorKey {
        IndicatorKey {
            indicator_type: indicator_type.trim().to_ascii_lowercase(),
            indicator_value: indicator_value.trim().trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

/// One outbox entry for the MDE pusher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxOp {
    Upsert(IndicatorSpec),
    /// The pusher looks the id up (`$filter=indicatorValue eq '...'`) and deletes it; a 404 is
    /// success.
    Delete {
        indicator_value: String,
        indicator_type: String,
    },
}

fn valid_domains(app: &AppForEnforcement) -> Vec<String> {
    let set: BTreeSet<String> = app.domains.iter().filter_map(|d| normalize_domain(d).ok()).collect();
    set.into_iter().collect()
}

fn describe(app: &AppForEnforcement, action: IndicatorAction, domain: &str) -> String {
    let name = display_safe_truncated(&app.name, 80);
    let verb = match action {
        IndicatorAction::Block => "Unsanctioned: access is blocked",
        IndicatorAction::Warn => "Monitored: users are warned and may bypass",
    };
    format!("{MANAGED_PREFIX} {name} (app {}, domain {domain}) is {verb} by network protection.", app.app_id)
}

/// Builds the desired indicators for `app` under `tag` (empty when the tag calls for none or
/// the scope resolves to no device group). Invalid domains are skipped: they could never be
/// a valid `DomainName` indicator.
pub fn desired_indicators(
    app: &AppForEnforcement,
    tag: Tag,
    profile: Option<&ScopedProfile>,
    all_groups: &[String],
    severity: Severity,
) -> Vec<IndicatorSpec> {
    let Some(action) = IndicatorAction::for_tag(tag) else {
        return Vec::new();
    };
    let rbac_group_names = match resolve_scope(profile, all_groups) {
        DeviceScope::AllDevices => Vec::new(),
        DeviceScope::Groups(g) => g,
        DeviceScope::Nowhere => return Vec::new(),
    };
    valid_domains(app)
        .into_iter()
        .map(|domain| IndicatorSpec {
            description: describe(app, action, &domain),
            indicator_value: domain,
            indicator_type: INDICATOR_TYPE_DOMAIN.to_owned(),
            action,
            title: action.title().to_owned(),
            severity,
            rbac_group_names: rbac_group_names.clone(),
            generate_alert: true,
            application: display_safe_truncated(&app.name, 80),
            expiration_time: None,
        })
        .collect()
}

/// The outbox operations for a tag change `old → new`.
///
/// * new tag Unsanctioned / Monitored → one `Upsert` per app domain (`Block` / `Warn`). A
///   Monitored → Unsanctioned change is an upsert on the same (type, value), which MDE applies
///   as an update; no delete-then-create window without enforcement.
/// * new tag None / Sanctioned after an enforcing tag → one `Delete` per domain.
/// * a scope that resolves to no group → `Delete`s if the old tag may have left indicators.
/// * no enforcing tag before or after → nothing.
pub fn plan_indicators(
    app: &AppForEnforcement,
    old: Tag,
    new: Tag,
    profile: Option<&ScopedProfile>,
    all_groups: &[String],
    severity: Severity,
) -> Vec<OutboxOp> {
    let desired = desired_indicators(app, new, profile, all_groups, severity);
    if !desired.is_empty() {
        return desired.into_iter().map(OutboxOp::Upsert).collect();
    }
    // Deleting is also right when old == new (e.g. a re-plan after the profile came to exclude
    // every group): the previous push under that same tag may have created indicators.
    if IndicatorAction::for_tag(old).is_none() && IndicatorAction::for_tag(new).is_none() {
        return Vec::new();
    }
    valid_domains(app)
        .into_iter()
        .map(|d| OutboxOp::Delete { indicator_value: d, indicator_type: INDICATOR_TYPE_DOMAIN.to_owned() })
        .collect()
}

/// An indicator as `GET /api/indicators` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExistingIndicator {
    pub id: String,
    pub indicator_value: String,
    pub indicator_type: String,
    pub action: String,
    pub title: String,
    pub description: String,
    pub severity: Option<Severity>,
    pub rbac_group_names: Vec<String>,
    pub generate_alert: bool,
    pub application: String,
}

impl ExistingIndicator {
    /// Reads one element of the `value` array; `None` without an id, value or type. The id is
    /// a string in the docs' samples but accepted as a number too.
    pub fn from_api_json(v: &Value) -> Option<ExistingIndicator> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let id = match v.get("id")? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let indicator_value = v.get("indicatorValue")?.as_str()?.to_owned();
        let indicator_type = v.get("indicatorType")?.as_str()?.to_owned();
        let rbac_group_names = match v.get("rbacGroupNames") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(s)) => {
                s.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        let generate_alert = match v.get("generateAlert") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Some(ExistingIndicator {
            id,
            indicator_value,
            indicator_type,
            action: s("action"),
            title: s("title"),
            description: s("description"),
            severity: v.get("severity").and_then(Value::as_str).and_then(Severity::parse),
            rbac_group_names,
            generate_alert,
            application: s("application"),
        })
    }

    pub fn key(&self) -> IndicatorKey {
        IndicatorKey::new(&self.indicator_type, &self.indicator_value)
    }

    /// Written by this module (see [`MANAGED_PREFIX`]).
    pub fn is_managed(&self) -> bool {
        self.description.starts_with(MANAGED_PREFIX)
    }

    fn matches(&self, spec: &IndicatorSpec) -> bool {
        let groups = |g: &[String]| -> BTreeSet<String> { g.iter().map(|x| x.trim().to_lowercase()).collect() };
        self.action.eq_ignore_ascii_case(spec.action.as_str())
            && self.title == spec.title
            && self.description == spec.description
            && self.severity == Some(spec.severity)
            && self.generate_alert == spec.generate_alert
            && groups(&self.rbac_group_names) == groups(&spec.rbac_group_names)
    }
}

/// An existing indicator to overwrite with `spec` (by upsert on its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorUpdate {
    pub id: String,
    pub spec: IndicatorSpec,
}

/// An existing indicator to delete by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorDelete {
    pub id: String,
    pub indicator_value: String,
    pub indicator_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcilePlan {
    pub create: Vec<IndicatorSpec>,
    pub update: Vec<IndicatorUpdate>,
    pub delete: Vec<IndicatorDelete>,
}

impl ReconcilePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Compares the full desired set (every enforced app, from the cache) with what MDE lists and
/// returns the smallest plan that makes MDE match. Run after a crash between push and commit,
/// or whenever the device-group list changes; applying the plan and reconciling again yields
/// an empty plan, so re-pushing never duplicates.
///
/// * desired key absent → create; present but different → update the first (lowest id);
/// * duplicates of a desired key → the managed extras are deleted;
/// * managed indicators with no desired key → deleted; unmanaged ones are left alone (they are
///   an admin's or MDCA's, and MDCA re-creates its own anyway).
pub fn reconcile(desired: &[IndicatorSpec], existing: &[ExistingIndicator]) -> ReconcilePlan {
    let mut by_key: HashMap<IndicatorKey, Vec<&ExistingIndicator>> = HashMap::new();
    for e in existing {
        by_key.entry(e.key()).or_default().push(e);
    }
    for list in by_key.values_mut() {
        list.sort_by(|a, b| id_order(&a.id, &b.id));
    }
    let mut plan = ReconcilePlan::default();
    let mut wanted = BTreeSet::new();
    let mut seen_desired = BTreeSet::new();
    for spec in desired {
        let key = spec.key();
        // Two specs for one key would make the pusher flap between them; first wins.
        if !seen_desired.insert(key.clone()) {
            continue;
        }
        wanted.insert(key.clone());
        match by_key.get(&key).and_then(|l| l.first()) {
            None => plan.create.push(spec.clone()),
            Some(e) if e.matches(spec) => {}
            Some(e) => plan.update.push(IndicatorUpdate { id: e.id.clone(), spec: spec.clone() }),
        }
    }
    let mut keys: Vec<&IndicatorKey> = by_key.keys().collect();
    keys.sort();
    for key in keys {
        let Some(list) = by_key.get(key) else {
            continue;
        };
        let skip = usize::from(wanted.contains(key));
        for e in list.iter().skip(skip).filter(|e| e.is_managed()) {
            plan.delete.push(IndicatorDelete {
                id: e.id.clone(),
                indicator_value: e.indicator_value.clone(),
                indicator_type: e.indicator_type.clone(),
            });
        }
    }
    plan
}

/// Numeric ids ("995") sort numerically so "the oldest" is stable; others lexically.
fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropbox() -> AppForEnforcement {
        AppForEnforcement {
            app_id: AppId(11161),
            name: "Dropbox".into(),
            domains: vec!["dropbox.com".into(), "DropboxAPI.com".into(), "dropbox.com".into(), "bad domain;x".into()],
        }
    }

    fn groups() -> Vec<String> {
        ["Finance-Kiosks", "Engineering", "Sales"].map(String::from).to_vec()
    }

    fn upserts(ops: &[OutboxOp]) -> Vec<&IndicatorSpec> {
        ops.iter()
            .filter_map(|o| match o {
                OutboxOp::Upsert(s) => Some(s),
                OutboxOp::Delete { .. } => None,
            })
            .collect()
    }

    fn deletes(ops: &[OutboxOp]) -> Vec<(&str, &str)> {
        ops.iter()
            .filter_map(|o| match o {
                OutboxOp::Delete { indicator_value, indicator_type } => {
                    Some((indicator_value.as_str(), indicator_type.as_str()))
                }
                OutboxOp::Upsert(_) => None,
            })
            .collect()
    }

    #[test]
    fn unsanction_blocks_each_domain_everywhere() {
        let ops = plan_indicators(&dropbox(), Tag::None, Tag::Unsanctioned, None, &groups(), Severity::High);
        assert_eq!(ops.len(), 2);
        let ups = upserts(&ops);
        assert_eq!(ups[0].indicator_value, "dropbox.com");
        assert_eq!(ups[1].indicator_value, "dropboxapi.com");
        for s in ups {
            assert_eq!(s.indicator_type, "DomainName");
            assert_eq!(s.action, IndicatorAction::Block);
            assert_eq!(s.title, "Unsanctioned cloud app access was blocked");
            assert_eq!(s.severity, Severity::High);
            assert!(s.rbac_group_names.is_empty());
            assert!(s.generate_alert);
            assert_eq!(s.application, "Dropbox");
            assert!(s.description.starts_with(MANAGED_PREFIX));
        }
    }

    #[test]
    fn monitor_warns() {
        let ops = plan_indicators(&dropbox(), Tag::None, Tag::Monitored, None, &[], Severity::Low);
        let ups = upserts(&ops);
        assert_eq!(ups.len(), 2);
        assert!(
            ups.iter()
                .all(|s| s.action == IndicatorAction::Warn && s.title == TITLE_WARN && s.severity == Severity::Low)
        );
    }

    #[test]
    fn monitored_to_unsanctioned_upserts_block_without_delete() {
        let ops = plan_indicators(&dropbox(), Tag::Monitored, Tag::Unsanctioned, None, &[], Severity::Medium);
        assert!(deletes(&ops).is_empty());
        assert!(upserts(&ops).iter().all(|s| s.action == IndicatorAction::Block));
    }

    #[test]
    fn untag_and_sanction_delete_every_domain() {
        for (old, new) in
            [(Tag::Unsanctioned, Tag::None), (Tag::Unsanctioned, Tag::Sanctioned), (Tag::Monitored, Tag::None)]
        {
            let ops = plan_indicators(&dropbox(), old, new, None, &[], Severity::Medium);
            assert_eq!(
                deletes(&ops),
                vec![("dropbox.com", "DomainName"), ("dropboxapi.com", "DomainName")],
                "{old:?} -> {new:?}"
            );
        }
    }

    #[test]
    fn non_enforcing_transitions_do_nothing() {
        for (old, new) in [(Tag::None, Tag::Sanctioned), (Tag::Sanctioned, Tag::None), (Tag::None, Tag::None)] {
            assert!(plan_indicators(&dropbox(), old, new, None, &[], Severity::Medium).is_empty());
        }
    }

    #[test]
    fn include_profile_scopes_to_its_groups() {
        let p = ScopedProfile {
            name: "kiosks".into(),
            include_groups: vec!["Sales".into(), "Finance-Kiosks".into(), "sales".into()],
            exclude_groups: vec![],
        };
        let ops = plan_indicators(&dropbox(), Tag::None, Tag::Unsanctioned, Some(&p), &groups(), Severity::Medium);
        for s in upserts(&ops) {
            assert_eq!(s.rbac_group_names, vec!["Finance-Kiosks", "Sales"]);
        }
    }

    #[test]
    fn exclude_profile_expands_against_known_groups() {
        let p = ScopedProfile {
            name: "all but kiosks".into(),
            include_groups: vec![],
            exclude_groups: vec!["finance-kiosks".into()],
        };
        let ops = plan_indicators(&dropbox(), Tag::None, Tag::Unsanctioned, Some(&p), &groups(), Severity::Medium);
        let ups = upserts(&ops);
        assert_eq!(ups.len(), 2);
        for s in ups {
            assert_eq!(s.rbac_group_names, vec!["Engineering", "Sales"]);
        }
        let body = upserts(&ops)[0].to_api_json();
        assert_eq!(body["rbacGroupNames"], json!(["Engineering", "Sales"]));
    }

    #[test]
    fn exclude_everything_never_widens_to_all_devices() {
        let p = ScopedProfile { name: "nothing".into(), include_groups: vec![], exclude_groups: groups() };
        assert_eq!(resolve_scope(Some(&p), &groups()), DeviceScope::Nowhere);
        // Unknown group list: also nowhere, never "all devices".
        assert_eq!(resolve_scope(Some(&p), &[]), DeviceScope::Nowhere);
        let ops =
            plan_indicators(&dropbox(), Tag::Unsanctioned, Tag::Unsanctioned, Some(&p), &groups(), Severity::Medium);
        assert_eq!(deletes(&ops).len(), 2);
        let ops = plan_indicators(&dropbox(), Tag::None, Tag::Unsanctioned, Some(&p), &groups(), Severity::Medium);
        assert!(upserts(&ops).is_empty());
    }

    #[test]
    fn include_minus_exclude() {
        let p = ScopedProfile {
            name: "mixed".into(),
            include_groups: vec!["Sales".into(), "Engineering".into()],
            exclude_groups: vec!["Engineering".into()],
        };
        assert_eq!(resolve_scope(Some(&p), &groups()), DeviceScope::Groups(vec!["Sales".into()]));
        let empty = ScopedProfile::default();
        assert_eq!(resolve_scope(Some(&empty), &groups()), DeviceScope::AllDevices);
    }

    #[test]
    fn api_json_uses_documented_field_names() {
        let ops = plan_indicators(&dropbox(), Tag::None, Tag::Unsanctioned, None, &[], Severity::High);
        let mut spec = upserts(&ops)[0].clone();
        let body = spec.to_api_json();
        assert_eq!(body["indicatorValue"], "dropbox.com");
        assert_eq!(body["indicatorType"], "DomainName");
        assert_eq!(body["action"], "Block");
        assert_eq!(body["severity"], "High");
        assert_eq!(body["generateAlert"], true);
        assert_eq!(body["rbacGroupNames"], json!([]));
        assert_eq!(body["title"], TITLE_BLOCK);
        assert_eq!(body["application"], "Dropbox");
        assert!(body.get("expirationTime").is_none());
        spec.expiration_time = chrono::DateTime::from_timestamp(1_767_225_600, 0);
        assert_eq!(spec.to_api_json()["expirationTime"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn hostile_app_name_is_sanitized_in_text_fields() {
        let app = AppForEnforcement {
            app_id: AppId(1),
            name: "Evil\n\u{202e}App".into(),
            domains: vec!["evil-app.example".into()],
        };
        let ops = plan_indicators(&app, Tag::None, Tag::Unsanctioned, None, &[], Severity::Medium);
        let s = upserts(&ops)[0];
        assert!(!s.description.contains('\n') && !s.application.contains('\u{202e}'));
    }

    fn as_existing(spec: &IndicatorSpec, id: &str) -> ExistingIndicator {
        ExistingIndicator {
            id: id.into(),
            indicator_value: spec.indicator_value.clone(),
            indicator_type: spec.indicator_type.clone(),
            action: spec.action.as_str().into(),
            title: spec.title.clone(),
            description: spec.description.clone(),
            severity: Some(spec.severity),
            rbac_group_names: spec.rbac_group_names.clone(),
            generate_alert: spec.generate_alert,
            application: spec.application.clone(),
        }
    }

    /// Applies a plan to a simulated MDE store, the way the pusher would.
    fn apply(existing: &mut Vec<ExistingIndicator>, plan: &ReconcilePlan, next_id: &mut u64) {
        existing.retain(|e| !plan.delete.iter().any(|d| d.id == e.id));
        for u in &plan.update {
            if let Some(e) = existing.iter_mut().find(|e| e.id == u.id) {
                *e = as_existing(&u.spec, &u.id);
            }
        }
        for c in &plan.create {
            *next_id += 1;
            existing.push(as_existing(c, &next_id.to_string()));
        }
    }

    #[test]
    fn reconcile_is_idempotent_after_crash() {
        let desired = desired_indicators(&dropbox(), Tag::Unsanctioned, None, &[], Severity::High);
        // Crash after pushing only the first indicator, plus a stale one of ours, a stale one of
        // an admin, a duplicate of ours, and one with the wrong action.
        let mut existing = vec![
            as_existing(&desired[0], "10"),
            as_existing(&desired[0], "12"),
            ExistingIndicator {
                id: "11".into(),
                indicator_value: "mega.nz".into(),
                indicator_type: "DomainName".into(),
                description: format!("{MANAGED_PREFIX} Mega"),
                ..Default::default()
            },
            ExistingIndicator {
                id: "13".into(),
                indicator_value: "admin.example".into(),
                indicator_type: "DomainName".into(),
                description: "made by hand".into(),
                ..Default::default()
            },
        ];
        let mut warn = as_existing(&desired[1], "14");
        warn.action = "Warn".into();
        existing.push(warn);

        let plan = reconcile(&desired, &existing);
        assert!(plan.create.is_empty());
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].id, "14");
        let mut del: Vec<&str> = plan.delete.iter().map(|d| d.id.as_str()).collect();
        del.sort();
        assert_eq!(del, vec!["11", "12"]);

        let mut next = 100;
        apply(&mut existing, &plan, &mut next);
        assert!(reconcile(&desired, &existing).is_empty());
        // Re-pushing the same desired set again changes nothing.
        let again = reconcile(&desired, &existing);
        apply(&mut existing, &again, &mut next);
        assert_eq!(existing.len(), 3);
    }

    #[test]
    fn reconcile_creates_missing_and_matches_case_insensitively() {
        let desired = desired_indicators(&dropbox(), Tag::Monitored, None, &[], Severity::Low);
        let mut upper = as_existing(&desired[0], "7");
        upper.indicator_value = "DROPBOX.COM".into();
        upper.indicator_type = "domainname".into();
        let plan = reconcile(&desired, &[upper]);
        assert_eq!(plan.create.len(), 1);
        assert_eq!(plan.create[0].indicator_value, "dropboxapi.com");
        assert!(plan.update.is_empty() && plan.delete.is_empty());
    }

    #[test]
    fn existing_parses_api_listing() {
        let v = json!({
            "id": 995, "indicatorValue": "dropbox.com", "indicatorType": "DomainName",
            "action": "Block", "severity": "High", "rbacGroupNames": "A, B",
            "generateAlert": "True", "title": "t", "description": "[shadowscope] x"
        });
        let e = ExistingIndicator::from_api_json(&v).unwrap();
        assert_eq!(e.id, "995");
        assert_eq!(e.rbac_group_names, vec!["A", "B"]);
        assert!(e.generate_alert && e.is_managed());
        assert_eq!(e.severity, Some(Severity::High));
        assert!(ExistingIndicator::from_api_json(&json!({"id": "1"})).is_none());
    }
}
