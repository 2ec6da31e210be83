//! Built-in Cloud Discovery alert policies over plain data the lead fills from the cache, and
//! the merge that turns a repeated trigger into an update of the open alert instead of a new
//! one (MDCA raises a fresh alert per trigger; an analyst wants one per user×app).
use crate::domain::{AlertId, AppId, Day, DeviceId, IdentityRisk, RiskScore, Severity, Tag, UNKNOWN_DEVICE, UserId};
use crate::sanitize::display_safe_truncated;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyKind {
    UnsanctionedAppUsed,
    NewHighRiskApp,
    AnomalousUpload,
    RiskyUserRiskyApp,
    NewGenerativeAiApp,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::UnsanctionedAppUsed,
        PolicyKind::NewHighRiskApp,
        PolicyKind::AnomalousUpload,
        PolicyKind::RiskyUserRiskyApp,
        PolicyKind::NewGenerativeAiApp,
    ];
    /// Stable id (dedup keys, CEF signature id, config).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::UnsanctionedAppUsed => "unsanctioned-app-used",
            PolicyKind::NewHighRiskApp => "new-high-risk-app",
            PolicyKind::AnomalousUpload => "anomalous-upload",
            PolicyKind::RiskyUserRiskyApp => "risky-user-risky-app",
            PolicyKind::NewGenerativeAiApp => "new-generative-ai-app",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            PolicyKind::UnsanctionedAppUsed => "Unsanctioned app used",
            PolicyKind::NewHighRiskApp => "New high-risk app discovered",
            PolicyKind::AnomalousUpload => "Anomalous upload to a cloud app",
            PolicyKind::RiskyUserRiskyApp => "High-risk user on a risky app",
            PolicyKind::NewGenerativeAiApp => "New generative AI app discovered",
        }
    }
    pub fn parse(s: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyApp {
    pub id: AppId,
    pub name: String,
    /// Display label of the catalog category.
    pub category: String,
    pub risk: RiskScore,
    pub tag: Tag,
    /// Day the current tag was set; use before it broke no rule. None = always had it.
    pub tag_since: Option<Day>,
    pub first_seen: Day,
    pub is_generative_ai: bool,
}

/// Traffic of one user to one app on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageFact {
    pub user: UserId,
    pub app: AppId,
    pub day: Day,
    pub upload_bytes: u64,
    pub devices: Vec<DeviceId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUser {
    pub id: UserId,
    pub upn: String,
    pub identity_risk: IdentityRisk,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySeverities {
    pub global: Severity,
    pub per_policy: HashMap<PolicyKind, Severity>,
}

impl PolicySeverities {
    pub fn for_kind(&self, kind: PolicyKind) -> Severity {
        self.per_policy.get(&kind).copied().unwrap_or(self.global)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// Usage in the last `lookback_days` days (ending at `now`) is evaluated.
    pub lookback_days: i32,
    /// "New" apps: first seen within this many days (ending at `now`).
    pub new_app_days: i32,
    /// High risk: score at or below this (MDCA scale, 10 = safest).
    pub high_risk_max_score: f32,
    /// Days of history before a day that form its upload baseline.
    pub baseline_days: i32,
    pub sigma: f64,
    /// An upload never alerts below this, whatever the baseline.
    pub upload_floor_bytes: u64,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            lookback_days: 7,
            new_app_days: 7,
            high_risk_max_score: 3.0,
            baseline_days: 30,
            sigma: 3.0,
            upload_floor_bytes: 100 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyInput {
    pub apps: Vec<PolicyApp>,
    pub usage: Vec<UsageFact>,
    pub users: Vec<PolicyUser>,
    pub severities: PolicySeverities,
    pub settings: PolicySettings,
    /// Names for the devices in `usage`, so descriptions read "from LAPTOP-7" not "device 7".
    pub device_names: HashMap<DeviceId, String>,
}

/// (policy, user, app): one open alert per key. App-level policies have no user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DedupKey {
    pub policy: PolicyKind,
    pub user: Option<UserId>,
    pub app: AppId,
}

impl fmt::Display for DedupKey {
    /// `policy:user:app`, `-` for no user; stable, safe to store as a unique column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.user {
            Some(u) => write!(f, "{}:{}:{}", self.policy, u, self.app),
            None => write!(f, "{}:-:{}", self.policy, self.app),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCandidate {
    pub key: DedupKey,
    pub severity: Severity,
    /// Display-safe.
    pub title: String,
    /// Display-safe.
    pub description: String,
    pub upn: Option<String>,
    pub app_name: String,
    pub devices: Vec<DeviceId>,
    /// Days on which the policy fired, ascending, unique; never empty.
    pub trigger_days: Vec<Day>,
}

impl AlertCandidate {
    pub fn first_seen(&self) -> Option<Day> {
        self.trigger_days.first().copied()
    }
    pub fn last_seen(&self) -> Option<Day> {
        self.trigger_days.last().copied()
    }
}

/// Evaluates every policy for the window ending at `now`. Output is sorted by key.
pub fn evaluate(input: &PolicyInput, now: Day) -> Vec<AlertCandidate> {
    let ctx = Ctx::new(input, now);
    let mut out = Vec::new();
    ctx.unsanctioned_used(&mut out);
    ctx.new_apps(&mut out);
    ctx.anomalous_upload(&mut out);
    ctx.risky_user_risky_app(&mut out);
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Usage of one user×app inside the window.
#[derive(Default)]
struct PairUsage {
    days: BTreeSet<Day>,
    devices: BTreeSet<DeviceId>,
}

struct Ctx<'a> {
    input: &'a PolicyInput,
    now: Day,
    apps: HashMap<AppId, &'a PolicyApp>,
    users: HashMap<UserId, &'a PolicyUser>,
    pairs: BTreeMap<(UserId, AppId), PairUsage>,
}

impl<'a> Ctx<'a> {
    fn new(input: &'a PolicyInput, now: Day) -> Ctx<'a> {
        let start = Day(now.0.saturating_sub(input.settings.lookback_days.max(1) - 1));
        let mut pairs: BTreeMap<(UserId, AppId), PairUsage> = BTreeMap::new();
        for f in &input.usage {
            if f.day < start || f.day > now {
                continue;
            }
            let p = pairs.entry((f.user, f.app)).or_default();
            p.days.insert(f.day);
            p.devices.extend(f.devices.iter().filter(|d| **d != UNKNOWN_DEVICE));
        }
        Ctx {
            input,
            now,
            apps: input.apps.iter().map(|a| (a.id, a)).collect(),
            users: input.users.iter().map(|u| (u.id, u)).collect(),
            pairs,
        }
    }

    fn upn(&self, user: UserId) -> String {
        self.users.get(&user).map(|u| display_safe_truncated(&u.upn, 120)).unwrap_or_else(|| format!("user #{user}"))
    }

    fn candidate(
        &self,
        policy: PolicyKind,
        user: Option<UserId>,
        app: &PolicyApp,
        description: String,
        devices: Vec<DeviceId>,
        trigger_days: Vec<Day>,
    ) -> AlertCandidate {
        let app_name = display_safe_truncated(&app.name, 80);
        AlertCandidate {
            key: DedupKey { policy, user, app: app.id },
            severity: self.input.severities.for_kind(policy),
            title: format!("{}: {app_name}", policy.title()),
            description,
            upn: user.map(|u| self.upn(u)),
            app_name,
            devices,
            trigger_days,
        }
    }

    /// Days of a pair's use that broke the Unsanctioned tag: those on or after it was set.
    fn days_unsanctioned(app: &PolicyApp, usage: &PairUsage) -> Vec<Day> {
        if app.tag != Tag::Unsanctioned {
            return Vec::new();
        }
        usage.days.iter().copied().filter(|d| app.tag_since.is_none_or(|s| *d >= s)).collect()
    }

    fn unsanctioned_used(&self, out: &mut Vec<AlertCandidate>) {
        for ((user, app_id), usage) in &self.pairs {
            let Some(app) = self.apps.get(app_id) else {
                continue;
            };
            let days = Self::days_unsanctioned(app, usage);
            if days.is_empty() {
                continue;
            }
            let devices: Vec<DeviceId> = usage.devices.iter().copied().collect();
            let device_text = if devices.is_empty() {
                "no known device".to_owned()
            } else {
                let names: Vec<String> = devices
                    .iter()
                    .map(|d| match self.input.device_names.get(d) {
                        Some(n) => display_safe_truncated(n, 40),
                        None => format!("device #{d}"),
                    })
                    .collect();
                names.join(", ")
            };
            let description = format!(
                "{} used unsanctioned app {} on {} day(s) from {device_text}.",
                self.upn(*user),
                display_safe_truncated(&app.name, 80),
                days.len()
            );
            out.push(self.candidate(PolicyKind::UnsanctionedAppUsed, Some(*user), app, description, devices, days));
        }
    }

    fn is_new(&self, app: &PolicyApp) -> bool {
        let age = self.now.0.saturating_sub(app.first_seen.0);
        (0..self.input.settings.new_app_days.max(1)).contains(&age)
    }

    fn is_high_risk(&self, app: &PolicyApp) -> bool {
        app.risk.0 <= self.input.settings.high_risk_max_score
    }

    fn new_apps(&self, out: &mut Vec<AlertCandidate>) {
        let mut apps: Vec<&&PolicyApp> = self.apps.values().collect();
        apps.sort_by_key(|a| a.id);
        for app in apps {
            // A sanctioned app was already reviewed; alerting on it is noise.
            if app.tag == Tag::Sanctioned || !self.is_new(app) {
                continue;
            }
            let name = display_safe_truncated(&app.name, 80);
            if self.is_high_risk(app) {
                let description = format!(
                    "{name} ({}) was first seen on {} with risk score {}/10.",
                    display_safe_truncated(&app.category, 40),
                    app.first_seen,
                    app.risk
                );
                out.push(self.candidate(
                    PolicyKind::NewHighRiskApp,
                    None,
                    app,
                    description,
                    Vec::new(),
                    vec![app.first_seen],
                ));
            }
            if app.is_generative_ai || app.category.trim().eq_ignore_ascii_case("Generative AI") {
                let description = format!(
                    "Generative AI app {name} was first seen on {} (risk score {}/10).",
                    app.first_seen, app.risk
                );
                out.push(self.candidate(
                    PolicyKind::NewGenerativeAiApp,
                    None,
                    app,
                    description,
                    Vec::new(),
                    vec![app.first_seen],
                ));
            }
        }
    }

    fn anomalous_upload(&self, out: &mut Vec<AlertCandidate>) {
        let s = &self.input.settings;
        let start = Day(self.now.0.saturating_sub(s.lookback_days.max(1) - 1));
        // Full history per pair (the baseline reaches before the window).
        let mut series: BTreeMap<(UserId, AppId), BTreeMap<Day, u64>> = BTreeMap::new();
        let mut devices: BTreeMap<(UserId, AppId), BTreeSet<DeviceId>> = BTreeMap::new();
        for f in &self.input.usage {
            if f.day > self.now {
                continue;
            }
            let e = series.entry((f.user, f.app)).or_default().entry(f.day).or_default();
            *e = e.saturating_add(f.upload_bytes);
            if f.day >= start {
                devices.entry((f.user, f.app)).or_default().extend(f.devices.iter().filter(|d| **d != UNKNOWN_DEVICE));
            }
        }
        for ((user, app_id), days) in &series {
            let Some(app) = self.apps.get(app_id) else {
                continue;
            };
            let Some(first_day) = days.keys().next().copied() else {
                continue;
            };
            let mut hits: Vec<(Day, u64, u64)> = Vec::new();
            for (&day, &bytes) in days.range(start..=self.now) {
                let threshold = upload_threshold(days, first_day, day, s);
                if bytes > threshold {
                    hits.push((day, bytes, threshold));
                }
            }
            let Some(&(last_day, bytes, threshold)) = hits.last() else {
                continue;
            };
            let description = format!(
                "{} uploaded {} to {} on {last_day}, above the threshold of {} (baseline mean + {}σ over up to {} days, floor {}).",
                self.upn(*user),
                human_bytes(bytes),
                display_safe_truncated(&app.name, 80),
                human_bytes(threshold),
                s.sigma,
                s.baseline_days,
                human_bytes(s.upload_floor_bytes)
            );
            let devs = devices.get(&(*user, *app_id)).map(|d| d.iter().copied().collect()).unwrap_or_default();
            out.push(self.candidate(
                PolicyKind::AnomalousUpload,
                Some(*user),
                app,
                description,
                devs,
                hits.iter().map(|h| h.0).collect(),
            ));
        }
    }

    fn risky_user_risky_app(&self, out: &mut Vec<AlertCandidate>) {
        for ((user, app_id), usage) in &self.pairs {
            let Some(u) = self.users.get(user) else {
                continue;
            };
            let Some(app) = self.apps.get(app_id) else {
                continue;
            };
            if u.identity_risk != IdentityRisk::High || app.tag == Tag::Sanctioned {
                continue;
            }
            let why = if !Self::days_unsanctioned(app, usage).is_empty() {
                "unsanctioned".to_owned()
            } else if self.is_high_risk(app) {
                format!("high-risk (score {}/10)", app.risk)
            } else {
                continue;
            };
            let description = format!(
                "{} (identity risk high) used {why} app {}.",
                self.upn(*user),
                display_safe_truncated(&app.name, 80)
            );
            out.push(self.candidate(
                PolicyKind::RiskyUserRiskyApp,
                Some(*user),
                app,
                description,
                usage.devices.iter().copied().collect(),
                usage.days.iter().copied().collect(),
            ));
        }
    }
}

/// `max(mean + σ·k, floor)` over the `baseline_days` days before `day`, counting days without
/// upload as 0 but never reaching before the pair's first observed day (so a brand-new pair is
/// judged by the floor alone, not by a month of invented zeros).
fn upload_threshold(days: &BTreeMap<Day, u64>, first_day: Day, day: Day, s: &PolicySettings) -> u64 {
    let from = Day(day.0.saturating_sub(s.baseline_days.max(1)).max(first_day.0));
    let n = day.0.saturating_sub(from.0);
    if n <= 0 {
        return s.upload_floor_bytes;
    }
    let n_f = f64::from(n);
    let values: Vec<f64> = (from.0..day.0).map(|d| days.get(&Day(d)).copied().unwrap_or(0) as f64).collect();
    let mean = values.iter().sum::<f64>() / n_f;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n_f;
    let stat = mean + s.sigma * var.sqrt();
    let stat = if stat.is_finite() && stat > 0.0 { stat.min(u64::MAX as f64) as u64 } else { 0 };
    stat.max(s.upload_floor_bytes)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 { format!("{b} B") } else { format!("{v:.1} {name}") }
}

/// An alert still open in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    pub id: AlertId,
    pub key: DedupKey,
    pub count: u64,
    pub first_seen: Day,
    pub last_seen: Day,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    /// No open alert for the key: create one with `count` = number of trigger days.
    New(AlertCandidate),
    /// The open alert fired again on later days.
    Update {
        id: AlertId,
        key: DedupKey,
        /// New total.
        count: u64,
        last_seen: Day,
        severity: Severity,
        description: String,
        devices: Vec<DeviceId>,
    },
}

/// Folds candidates into open alerts. Only trigger days after the open alert's `last_seen`
/// count, so evaluating the same data twice changes nothing, and a later trigger bumps
/// `count` and `last_seen` of the one open alert for its key.
pub fn merge(existing_open: &[OpenAlert], candidates: &[AlertCandidate]) -> Vec<AlertChange> {
    let open: HashMap<&DedupKey, &OpenAlert> = existing_open.iter().map(|a| (&a.key, a)).collect();
    let mut out = Vec::new();
    for c in candidates {
        let Some(last) = c.last_seen() else { continue };
        match open.get(&c.key) {
            None => out.push(AlertChange::New(c.clone())),
            Some(a) => {
                let fresh = c.trigger_days.iter().filter(|d| **d > a.last_seen).count() as u64;
                if fresh == 0 {
                    continue;
                }
                out.push(AlertChange::Update {
                    id: a.id,
                    key: c.key.clone(),
                    count: a.count.saturating_add(fresh),
                    last_seen: last.max(a.last_seen),
                    severity: c.severity,
                    description: c.description.clone(),
                    devices: c.devices.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;
    const NOW: Day = Day(20_000);

    fn app(id: i64, name: &str, risk: f32, tag: Tag, first_seen: i32, gen_ai: bool) -> PolicyApp {
        PolicyApp {
            id: AppId(id),
            name: name.into(),
            category: if gen_ai { "Generative AI" } else { "Cloud storage" }.into(),
            risk: RiskScore(risk),
            tag,
            tag_since: None,
            first_seen: Day(first_seen),
            is_generative_ai: gen_ai,
        }
    }

    fn fact(user: i64, app: i64, day: i32, upload: u64, devices: &[i64]) -> UsageFact {
        UsageFact {
            user: UserId(user),
            app: AppId(app),
            day: Day(day),
            upload_bytes: upload,
            devices: devices.iter().map(|d| DeviceId(*d)).collect(),
        }
    }

    fn user(id: i64, upn: &str, risk: IdentityRisk) -> PolicyUser {
        PolicyUser { id: UserId(id), upn: upn.into(), identity_risk: risk }
    }

    fn input(apps: Vec<PolicyApp>, usage: Vec<UsageFact>, users: Vec<PolicyUser>) -> PolicyInput {
        PolicyInput {
            apps,
            usage,
            users,
            severities: PolicySeverities {
                global: Severity::Medium,
                per_policy: HashMap::from([(PolicyKind::AnomalousUpload, Severity::High)]),
            },
            settings: PolicySettings::default(),
            device_names: HashMap::new(),
        }
    }

    fn of(kind: PolicyKind, c: &[AlertCandidate]) -> Vec<AlertCandidate> {
        c.iter().filter(|a| a.key.policy == kind).cloned().collect()
    }

    #[test]
    fn unsanctioned_app_used_names_user_and_devices() {
        let mut i = input(
            vec![app(1, "MEGA", 5.0, Tag::Unsanctioned, 100, false), app(2, "Box", 9.0, Tag::None, 100, false)],
            vec![
                fact(7, 1, 20_000, 10, &[3, 0, 4]),
                fact(7, 1, 19_999, 10, &[3]),
                fact(7, 2, 20_000, 10, &[3]),
                fact(8, 1, 19_000, 10, &[5]), // outside the window
            ],
            vec![user(7, "alice@contoso.com", IdentityRisk::None)],
        );
        i.device_names.insert(DeviceId(3), "LAPTOP-3".into());
        let c = of(PolicyKind::UnsanctionedAppUsed, &evaluate(&i, NOW));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key.to_string(), "unsanctioned-app-used:7:1");
        assert_eq!(c[0].devices, vec![DeviceId(3), DeviceId(4)]);
        assert_eq!(c[0].trigger_days, vec![Day(19_999), Day(20_000)]);
        assert_eq!(c[0].upn.as_deref(), Some("alice@contoso.com"));
        assert!(c[0].description.contains("from LAPTOP-3, device #4"), "{}", c[0].description);
        assert_eq!(c[0].severity, Severity::Medium);
    }

    #[test]
    fn new_high_risk_app() {
        let i = input(
            vec![
                app(1, "Sketchy", 2.0, Tag::None, 19_998, false),
                app(2, "OldSketchy", 2.0, Tag::None, 19_000, false),
                app(3, "NewSafe", 8.0, Tag::None, 19_999, false),
                app(4, "NewSanctioned", 1.0, Tag::Sanctioned, 19_999, false),
                app(5, "Edge", 3.0, Tag::None, 19_994, false),
                app(6, "TooOld", 3.0, Tag::None, 19_993, false),
            ],
            vec![],
            vec![],
        );
        let c = of(PolicyKind::NewHighRiskApp, &evaluate(&i, NOW));
        let ids: Vec<i64> = c.iter().map(|a| a.key.app.0).collect();
        assert_eq!(ids, vec![1, 5]);
        assert_eq!(c[0].key.user, None);
        assert_eq!(c[0].key.to_string(), "new-high-risk-app:-:1");
    }

    #[test]
    fn new_generative_ai_app() {
        let mut by_category = app(3, "Claude", 7.0, Tag::None, 19_999, false);
        by_category.category = "generative ai".into();
        let i = input(
            vec![
                app(1, "ChatGPT", 7.0, Tag::None, 20_000, true),
                app(2, "OldAI", 7.0, Tag::None, 19_000, true),
                by_category,
                app(4, "Box", 7.0, Tag::None, 20_000, false),
            ],
            vec![],
            vec![],
        );
        let ids: Vec<i64> =
            of(PolicyKind::NewGenerativeAiApp, &evaluate(&i, NOW)).iter().map(|a| a.key.app.0).collect();
        assert_eq!(ids, vec![1, 3]);
    }

    #[test]
    fn anomalous_upload_above_baseline_and_floor() {
        // 20 days of ~10 MB, then 400 MB today: anomalous. A second user uploads 400 MB
        // daily: 400 MB is their normal. A third uploads 90 MB once: under the floor.
        let mut usage = Vec::new();
        for d in 19_980..20_000 {
            usage.push(fact(1, 1, d, 10 * MB + u64::try_from(d % 3).unwrap() * MB, &[1]));
            usage.push(fact(2, 1, d, 400 * MB, &[2]));
        }
        usage.push(fact(1, 1, 20_000, 400 * MB, &[1, 9]));
        usage.push(fact(2, 1, 20_000, 400 * MB, &[2]));
        usage.push(fact(3, 1, 20_000, 90 * MB, &[3]));
        let i = input(vec![app(1, "Dropbox", 8.0, Tag::None, 100, false)], usage, vec![]);
        let c = of(PolicyKind::AnomalousUpload, &evaluate(&i, NOW));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key.user, Some(UserId(1)));
        assert_eq!(c[0].trigger_days, vec![NOW]);
        assert_eq!(c[0].severity, Severity::High, "per-policy override");
        assert_eq!(c[0].devices, vec![DeviceId(1), DeviceId(9)]);
        assert!(c[0].description.contains("400.0 MB"), "{}", c[0].description);
    }

    #[test]
    fn first_upload_is_judged_by_the_floor() {
        let i = input(
            vec![app(1, "WeTransfer", 6.0, Tag::None, 100, false)],
            vec![fact(1, 1, 20_000, 101 * MB, &[]), fact(2, 1, 20_000, 99 * MB, &[])],
            vec![],
        );
        let c = of(PolicyKind::AnomalousUpload, &evaluate(&i, NOW));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key.user, Some(UserId(1)));
    }

    #[test]
    fn risky_user_on_risky_app() {
        let i = input(
            vec![
                app(1, "MEGA", 6.0, Tag::Unsanctioned, 100, false),
                app(2, "Sketchy", 2.0, Tag::None, 100, false),
                app(3, "Box", 9.0, Tag::None, 100, false),
                app(4, "RiskySanctioned", 2.0, Tag::Sanctioned, 100, false),
            ],
            vec![
                fact(1, 1, 20_000, 0, &[]),
                fact(1, 2, 20_000, 0, &[]),
                fact(1, 3, 20_000, 0, &[]),
                fact(1, 4, 20_000, 0, &[]),
                fact(2, 1, 20_000, 0, &[]),
            ],
            vec![user(1, "bob@contoso.com", IdentityRisk::High), user(2, "carol@contoso.com", IdentityRisk::Medium)],
        );
        let c = of(PolicyKind::RiskyUserRiskyApp, &evaluate(&i, NOW));
        let keys: Vec<String> = c.iter().map(|a| a.key.to_string()).collect();
        assert_eq!(keys, vec!["risky-user-risky-app:1:1", "risky-user-risky-app:1:2"]);
    }

    #[test]
    fn hostile_names_are_display_safe() {
        let i = input(
            vec![app(1, "Evil\n\u{202e}App", 1.0, Tag::Unsanctioned, 20_000, true)],
            vec![fact(1, 1, 20_000, 0, &[])],
            vec![user(1, "x\u{1b}[2J@y", IdentityRisk::High)],
        );
        for c in evaluate(&i, NOW) {
            for s in [&c.title, &c.description, &c.app_name] {
                assert!(!s.chars().any(crate::sanitize::is_unsafe), "{s:?}");
            }
        }
    }

    #[test]
    fn merge_creates_then_updates_count_and_is_idempotent() {
        let mut usage = vec![fact(1, 1, 19_999, 0, &[1])];
        let mut i = input(vec![app(1, "MEGA", 5.0, Tag::Unsanctioned, 100, false)], usage.clone(), vec![]);
        let day1 = evaluate(&i, Day(19_999));
        let changes = merge(&[], &day1);
        let AlertChange::New(c) = &changes[0] else { panic!("{changes:?}") };
        let open = OpenAlert {
            id: AlertId(42),
            key: c.key.clone(),
            count: c.trigger_days.len() as u64,
            first_seen: c.first_seen().unwrap(),
            last_seen: c.last_seen().unwrap(),
        };
        // Same data again: nothing.
        assert!(merge(std::slice::from_ref(&open), &evaluate(&i, Day(19_999))).is_empty());
        // Usage again the next day: the same alert is updated.
        usage.push(fact(1, 1, 20_000, 0, &[1, 2]));
        i.usage = usage;
        let changes = merge(std::slice::from_ref(&open), &evaluate(&i, NOW));
        assert_eq!(
            changes,
            vec![AlertChange::Update {
                id: AlertId(42),
                key: open.key.clone(),
                count: 2,
                last_seen: NOW,
                severity: Severity::Medium,
                description: "user #1 used unsanctioned app MEGA on 2 day(s) from device #1, device #2.".into(),
                devices: vec![DeviceId(1), DeviceId(2)],
            }]
        );
        // A different key is new even with an open alert around.
        let other = DedupKey { policy: PolicyKind::NewHighRiskApp, user: None, app: AppId(1) };
        assert_ne!(other, open.key);
    }

    #[test]
    fn use_before_the_unsanctioned_tag_raises_nothing() {
        let mut mega = app(1, "MEGA", 5.0, Tag::Unsanctioned, 100, false);
        mega.tag_since = Some(Day(20_000));
        let i = input(
            vec![mega],
            vec![fact(7, 1, 19_998, 10, &[3]), fact(7, 1, 19_999, 10, &[3]), fact(8, 1, 19_999, 10, &[3])],
            vec![user(7, "alice@contoso.com", IdentityRisk::High)],
        );
        assert!(evaluate(&i, NOW).is_empty(), "{:?}", evaluate(&i, NOW));
        let mut i = i;
        i.usage.push(fact(7, 1, 20_000, 10, &[3]));
        let c = evaluate(&i, NOW);
        let kinds: Vec<(PolicyKind, Vec<Day>)> = c.iter().map(|c| (c.key.policy, c.trigger_days.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (PolicyKind::UnsanctionedAppUsed, vec![Day(20_000)]),
                // The risky-user policy sees the whole window once the rule is broken.
                (PolicyKind::RiskyUserRiskyApp, vec![Day(19_998), Day(19_999), Day(20_000)]),
            ]
        );
    }

    #[test]
    fn severity_falls_back_to_global() {
        let s = PolicySeverities { global: Severity::Low, per_policy: HashMap::new() };
        for k in PolicyKind::ALL {
            assert_eq!(s.for_kind(k), Severity::Low);
            assert_eq!(PolicyKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn threshold_uses_mean_plus_sigma() {
        let s = PolicySettings { upload_floor_bytes: 0, baseline_days: 4, ..PolicySettings::default() };
        let days: BTreeMap<Day, u64> = [(Day(1), 10), (Day(2), 20), (Day(3), 10), (Day(4), 20)].into();
        // mean 15, σ 5 → 30.
        assert_eq!(upload_threshold(&days, Day(1), Day(5), &s), 30);
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * MB / 2), "1.5 MB");
    }
}
