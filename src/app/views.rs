//! Pure builders: typed rows from the cache → the tables and facts a view shows. The runtime
//! runs the queries and hands the rows here; nothing here touches SQLite.
use super::table::{Cell, Row, Table, col, human_bytes};
use super::{Dashboard, Item, Route, ViewData};
use crate::actions::indicators::ScopedProfile;
use crate::catalog::RiskBreakdown;
use crate::domain::{AlertId, Day, IdentityRisk, RiskLevel, Severity, Tag};
use crate::store::audit::AuditEntry;
use crate::store::governance::OutboxEntry;
use crate::store::outbox::OutboxCounts;
use crate::store::queries::{AlertRow, AppRow, Capped, DayPoint, DeviceRow, DomainRow, EdgeRow, UsageRow, UserRow};
use crate::store::sync_sink::SyncState;

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

pub fn apps_table(rows: &[AppRow], title: &str) -> Table {
    Table {
        title: title.into(),
        columns: vec![
            col("App", 22, 0, false),
            col("Category", 15, 2, false),
            col("Risk", 8, 0, true),
            col("Tag", 8, 0, false),
            col("Users", 6, 1, true),
            col("Devices", 7, 4, true),
            col("Traffic", 9, 3, true),
            col("Upload", 9, 1, true),
            col("Trans.", 8, 5, true),
            col("First seen", 10, 6, false),
            col("Last seen", 10, 5, false),
            col("Trend", 14, 4, true),
            col("MDCA", 12, 6, false),
        ],
        rows: rows
            .iter()
            .map(|a| Row {
                cells: vec![
                    text(&a.name),
                    text(&a.category),
                    Cell::Risk(a.score),
                    Cell::Tag(a.tag),
                    Cell::Num(a.users as i64),
                    Cell::Num(a.devices as i64),
                    Cell::Bytes(a.bytes_up + a.bytes_down),
                    Cell::Bytes(a.bytes_up),
                    Cell::Num(a.transactions as i64),
                    Cell::Day(a.first_day),
                    Cell::Day(a.last_day),
                    Cell::Spark(a.trend.clone()),
                    text(&match (a.mdca_score, a.mdca_tag.as_deref()) {
                        (None, None) => "-".to_string(),
                        _ => mdca_fact(a),
                    }),
                ],
                target: Some(Route::App(a.id)),
                key: format!("{} {} {} {}", a.name, a.category, a.key, a.labels),
                item: None,
            })
            .collect(),
        default_sort: Some((7, true)),
    }
}

pub fn users_table(rows: &[UserRow]) -> Table {
    Table {
        title: "Users".into(),
        columns: vec![
            col("User", 30, 0, false),
            col("Risk", 11, 0, true),
            col("Department", 11, 4, false),
            col("Devices", 7, 1, true),
            col("Apps", 5, 2, true),
            col("Upload", 9, 3, true),
            col("Unsanct. up", 11, 1, true),
            col("Alerts", 6, 2, true),
            col("Last seen", 10, 5, false),
        ],
        rows: rows
            .iter()
            .map(|u| Row {
                cells: vec![
                    text(&u.upn),
                    Cell::UserRisk(u.score, u.identity_risk),
                    text(&u.department),
                    Cell::Num(u.devices as i64),
                    Cell::Num(u.apps as i64),
                    Cell::Bytes(u.bytes_up),
                    Cell::Bytes(u.unsanctioned_up),
                    Cell::Num(u.alerts as i64),
                    Cell::Day(u.last_day),
                ],
                target: Some(Route::User(u.id)),
                key: format!("{} {} {}", u.upn, u.display_name, u.department),
                item: None,
            })
            .collect(),
        default_sort: Some((1, true)),
    }
}

pub fn devices_table(rows: &[DeviceRow]) -> Table {
    Table {
        title: "Devices".into(),
        columns: vec![
            col("Device", 18, 0, false),
            col("OS", 12, 2, false),
            col("Group", 11, 3, false),
            col("Exposure", 8, 4, false),
            col("Users", 6, 0, true),
            col("Apps", 5, 1, true),
            col("Upload", 9, 2, true),
            col("Last seen", 10, 3, false),
        ],
        rows: rows
            .iter()
            .map(|d| Row {
                cells: vec![
                    text(&d.name),
                    text(&d.os),
                    text(&d.group),
                    text(&d.exposure),
                    Cell::Num(d.users as i64),
                    Cell::Num(d.apps as i64),
                    Cell::Bytes(d.bytes_up),
                    Cell::Day(d.last_day),
                ],
                target: Some(Route::Device(d.id)),
                key: format!("{} {} {}", d.name, d.os, d.group),
                item: None,
            })
            .collect(),
        default_sort: Some((4, true)),
    }
}

fn day_of(ts: i64) -> Option<Day> {
    Some(Day::from_unix(ts))
}

/// Devices of a user (each opens the device).
pub fn edges_as_devices(rows: &[EdgeRow]) -> Table {
    Table {
        title: "Devices".into(),
        columns: vec![
            col("Device", 18, 0, false),
            col("Source", 12, 2, false),
            col("Logons", 6, 1, true),
            col("First seen", 10, 3, false),
            col("Last seen", 10, 1, false),
        ],
        rows: rows
            .iter()
            .map(|e| Row {
                cells: vec![
                    text(&e.device_name),
                    text(&e.sources),
                    Cell::Num(e.logons as i64),
                    Cell::Day(day_of(e.first_seen)),
                    Cell::Day(day_of(e.last_seen)),
                ],
                target: Some(Route::Device(e.device)),
                key: e.device_name.clone(),
                item: None,
            })
            .collect(),
        default_sort: Some((4, true)),
    }
}

/// Users of a device (each opens the user).
pub fn edges_as_users(rows: &[EdgeRow]) -> Table {
    Table {
        title: "Users".into(),
        columns: vec![
            col("User", 28, 0, false),
            col("Id. risk", 8, 0, false),
            col("Source", 12, 3, false),
            col("Logons", 6, 1, true),
            col("First seen", 10, 4, false),
            col("Last seen", 10, 2, false),
        ],
        rows: rows
            .iter()
            .map(|e| Row {
                cells: vec![
                    text(&e.upn),
                    text(e.identity_risk.as_str()),
                    text(&e.sources),
                    Cell::Num(e.logons as i64),
                    Cell::Day(day_of(e.first_seen)),
                    Cell::Day(day_of(e.last_seen)),
                ],
                target: Some(Route::User(e.user)),
                key: e.upn.clone(),
                item: None,
            })
            .collect(),
        default_sort: Some((5, true)),
    }
}

/// Apps used by a user or device.
pub fn usage_as_apps(rows: &[UsageRow], title: &str) -> Table {
    Table {
        title: title.into(),
        columns: vec![
            col("App", 22, 0, false),
            col("Category", 15, 3, false),
            col("Risk", 8, 0, true),
            col("Tag", 8, 0, false),
            col("Upload", 9, 1, true),
            col("Download", 9, 2, true),
            col("Trans.", 7, 4, true),
            col("Last seen", 10, 2, false),
        ],
        rows: rows
            .iter()
            .map(|r| Row {
                cells: vec![
                    text(&r.app_name),
                    text(&r.category),
                    Cell::Risk(r.score),
                    Cell::Tag(r.tag),
                    Cell::Bytes(r.bytes_up),
                    Cell::Bytes(r.bytes_down),
                    Cell::Num(r.transactions as i64),
                    Cell::Day(Some(r.last_day)),
                ],
                target: Some(Route::App(r.app)),
                key: format!("{} {}", r.app_name, r.category),
                item: None,
            })
            .collect(),
        default_sort: Some((4, true)),
    }
}

/// Users or devices of an app (`users` picks which the ids are).
pub fn usage_as_entities(rows: &[UsageRow], users: bool, total: u64) -> Table {
    let what = if users { "Users" } else { "Devices" };
    Table {
        title: if total > rows.len() as u64 {
            format!("{what}: top {} of {} by upload", group_thousands(rows.len() as u64), group_thousands(total))
        } else {
            what.into()
        },
        columns: vec![
            col(if users { "User" } else { "Device" }, 28, 0, false),
            col("Upload", 9, 0, true),
            col("Download", 9, 2, true),
            col("Trans.", 7, 3, true),
            col("First seen", 10, 4, false),
            col("Last seen", 10, 1, false),
        ],
        rows: rows
            .iter()
            .map(|r| Row {
                cells: vec![
                    text(&r.other_name),
                    Cell::Bytes(r.bytes_up),
                    Cell::Bytes(r.bytes_down),
                    Cell::Num(r.transactions as i64),
                    Cell::Day(Some(r.first_day)),
                    Cell::Day(Some(r.last_day)),
                ],
                target: Some(if users {
                    Route::User(crate::domain::UserId(r.other_id))
                } else {
                    Route::Device(crate::domain::DeviceId(r.other_id))
                }),
                key: r.other_name.clone(),
                item: None,
            })
            .collect(),
        default_sort: Some((1, true)),
    }
}

pub fn alerts_table(rows: &[AlertRow]) -> Table {
    Table {
        title: "Alerts".into(),
        columns: vec![
            col("Severity", 8, 0, true),
            col("Alert", 34, 0, false),
            col("User", 24, 1, false),
            col("App", 16, 1, false),
            col("Device", 14, 3, false),
            col("Count", 5, 2, true),
            col("Status", 9, 2, false),
            col("Last seen", 16, 4, false),
        ],
        rows: rows
            .iter()
            .map(|a| Row {
                cells: vec![
                    Cell::Sev(a.severity),
                    text(&a.title),
                    text(&a.upn),
                    text(&a.app_name),
                    text(&a.device_name),
                    Cell::Num(a.count as i64),
                    text(&a.status),
                    Cell::Time(a.last_seen),
                ],
                target: a.user.map(Route::User).or(a.app.map(Route::App)).or(a.device.map(Route::Device)),
                key: format!("{} {} {} {}", a.title, a.upn, a.app_name, a.policy),
                item: Some(Item::Alert(AlertId(a.id))),
            })
            .collect(),
        default_sort: None,
    }
}

pub fn audit_table(rows: &[AuditEntry]) -> Table {
    Table {
        title: "Audit log".into(),
        columns: vec![
            col("When", 16, 0, false),
            col("Who", 10, 1, false),
            col("Action", 9, 0, false),
            col("Target", 22, 0, false),
            col("Old", 12, 1, false),
            col("New", 12, 0, false),
            col("Detail", 30, 3, false),
        ],
        rows: rows
            .iter()
            .map(|e| Row {
                cells: vec![
                    Cell::Time(e.ts),
                    text(&e.actor),
                    text(&if e.undone_by.is_some() { format!("{} (undone)", e.action) } else { e.action.clone() }),
                    text(&e.target),
                    text(&e.old_value),
                    text(&e.new_value),
                    text(&e.detail),
                ],
                target: None,
                key: format!("{} {} {} {}", e.actor, e.action, e.target, e.new_value),
                item: Some(Item::Audit(e.id)),
            })
            .collect(),
        default_sort: None,
    }
}

fn series(points: &[DayPoint], up_only: bool) -> Vec<u64> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return Vec::new() };
    let mut out = vec![0; (last.day.0 - first.day.0 + 1).clamp(1, 400) as usize];
    for p in points {
        if let Some(slot) = out.get_mut((p.day.0 - first.day.0) as usize) {
            *slot = if up_only { p.bytes_up } else { p.bytes_up + p.bytes_down };
        }
    }
    out
}

fn totals(points: &[DayPoint]) -> (u64, u64) {
    points.iter().fold((0, 0), |(u, d), p| (u + p.bytes_up, d + p.bytes_down))
}

pub struct UserDetailRows<'a> {
    pub user: &'a UserRow,
    pub devices: &'a [EdgeRow],
    pub apps: &'a [UsageRow],
    pub alerts: &'a [AlertRow],
    pub timeline: &'a [DayPoint],
}

pub fn user_detail(r: UserDetailRows<'_>) -> ViewData {
    let u = r.user;
    ViewData {
        label: u.upn.clone(),
        facts: vec![
            ("User".into(), format!("{} ({})", u.upn, u.display_name)),
            ("Department".into(), u.department.clone()),
            ("Risk".into(), format!("{} / 100 · identity risk {}", u.score, u.identity_risk.as_str())),
            ("Devices · apps".into(), format!("{} · {}", r.devices.len(), r.apps.len())),
            ("Upload".into(), format!("{} (unsanctioned {})", human_bytes(u.bytes_up), human_bytes(u.unsanctioned_up))),
            ("Open alerts".into(), u.alerts.to_string()),
        ],
        notes: Vec::new(),
        trend: series(r.timeline, true),
        tables: vec![edges_as_devices(r.devices), usage_as_apps(r.apps, "Apps"), alerts_table(r.alerts)],
        dashboard: None,
    }
}

pub struct DeviceDetailRows<'a> {
    pub device: &'a DeviceRow,
    pub users: &'a [EdgeRow],
    pub apps: &'a [UsageRow],
    pub timeline: &'a [DayPoint],
}

pub fn device_detail(r: DeviceDetailRows<'_>) -> ViewData {
    let d = r.device;
    let risky = r.users.iter().filter(|e| e.identity_risk >= IdentityRisk::Medium).count();
    ViewData {
        label: d.name.clone(),
        facts: vec![
            ("Device".into(), d.name.clone()),
            ("OS · group".into(), format!("{} · {}", d.os, d.group)),
            ("Exposure".into(), d.exposure.clone()),
            ("Users".into(), format!("{} ({} with medium/high identity risk)", r.users.len(), risky)),
            ("Apps".into(), r.apps.len().to_string()),
            ("Upload".into(), human_bytes(d.bytes_up)),
        ],
        notes: Vec::new(),
        trend: series(r.timeline, true),
        tables: vec![edges_as_users(r.users), usage_as_apps(r.apps, "Apps")],
        dashboard: None,
    }
}

pub struct AppDetailRows<'a> {
    pub app: &'a AppRow,
    pub risk: Option<&'a RiskBreakdown>,
    pub domains: &'a [DomainRow],
    pub users: &'a Capped<UsageRow>,
    pub devices: &'a Capped<UsageRow>,
    pub trend: &'a [DayPoint],
    pub history: &'a [AuditEntry],
    pub alerts: &'a [AlertRow],
    pub tag_profile: Option<&'a str>,
    pub outbox: &'a [OutboxEntry],
}

fn risk_label(level: RiskLevel) -> &'static str {
    match level {
        RiskLevel::High => "HIGH risk",
        RiskLevel::Medium => "medium risk",
        RiskLevel::Low => "low risk",
    }
}

pub fn app_detail(r: AppDetailRows<'_>) -> ViewData {
    let a = r.app;
    let (up, down) = totals(r.trend);
    let mut notes = Vec::new();
    if let Some(risk) = r.risk {
        let parts: Vec<String> =
            risk.factors.iter().map(|f| format!("{:?} {}: {:+.1}", f.group, f.label, f.delta)).collect();
        notes.push(format!("Score {:.1} = {}", risk.score.0, parts.join(" · ")));
    }
    if a.overridden {
        notes.push(format!("Analyst override: {:.1}", a.score.0));
    }
    ViewData {
        label: a.name.clone(),
        facts: vec![
            ("App".into(), format!("{} ({})", a.name, a.vendor)),
            ("Category".into(), a.category.clone()),
            ("Risk".into(), format!("{:.0}/10 · {}", a.score.0, risk_label(a.score.level()))),
            ("Tag".into(), tag_fact(a, r.tag_profile)),
            ("MDE indicators".into(), outbox_summary(r.outbox)),
            ("Defender for Cloud Apps".into(), mdca_detail(a)),
            ("Users · devices".into(), format!("{} · {}", r.users.total, r.devices.total)),
            ("Traffic".into(), format!("up {} · down {}", human_bytes(up), human_bytes(down))),
        ],
        notes,
        trend: series(r.trend, false),
        tables: vec![
            usage_as_entities(&r.users.rows, true, r.users.total),
            usage_as_entities(&r.devices.rows, false, r.devices.total),
            Table {
                title: "Domains".into(),
                columns: vec![
                    col("Domain", 30, 0, false),
                    col("Upload", 9, 0, true),
                    col("Download", 9, 1, true),
                    col("Trans.", 8, 2, true),
                ],
                rows: r
                    .domains
                    .iter()
                    .map(|d| Row {
                        cells: vec![
                            text(&d.name),
                            Cell::Bytes(d.bytes_up),
                            Cell::Bytes(d.bytes_down),
                            Cell::Num(d.transactions as i64),
                        ],
                        target: None,
                        key: d.name.clone(),
                        item: None,
                    })
                    .collect(),
                default_sort: Some((1, true)),
            },
            Table { title: "Tag history".into(), ..audit_table(r.history) },
            Table { title: "App alerts".into(), ..alerts_table(r.alerts) },
            outbox_table(r.outbox),
        ],
        dashboard: None,
    }
}

/// MDCA's score and tag beside ours ("not synced" until a sync brought them).
fn mdca_fact(a: &AppRow) -> String {
    match (a.mdca_score, a.mdca_tag.as_deref()) {
        (None, None) => "not synced".into(),
        (score, tag) => {
            let score = score.map(|s| format!("{s:.0}/10")).unwrap_or_else(|| "no score".into());
            format!("{score} · {}", tag.filter(|t| !t.is_empty()).unwrap_or("untagged"))
        }
    }
}

/// The app page's MDCA line: score and tag, then what MDCA itself counted for the app (users and
/// traffic this cache may never have imported).
fn mdca_detail(a: &AppRow) -> String {
    let mut line = mdca_fact(a);
    if let Some(m) = a.mdca_usage {
        line.push_str(&format!(
            " · {} users · up {} · down {} · {} trans.",
            m.users,
            human_bytes(m.upload),
            human_bytes(m.download),
            m.transactions
        ));
        if let Some(ts) = m.last_seen_unix {
            line.push_str(&format!(" · last seen {}", Day::from_unix(ts)));
        }
    }
    line
}

/// "UNSANCT · profile no-kiosks · labels pilot, legal-review".
fn tag_fact(a: &AppRow, profile: Option<&str>) -> String {
    let mut t = a.tag.label().to_string();
    if let Some(p) = profile {
        t.push_str(&format!(" · profile {p}"));
    }
    if !a.labels.is_empty() {
        t.push_str(&format!(" · labels {}", a.labels));
    }
    t
}

/// 12345 → "12,345".
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "2 pending · 5 pushed · 1 failed", counting only each indicator's latest operation.
fn outbox_summary(rows: &[OutboxEntry]) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut c = OutboxCounts::default();
    for r in rows.iter().filter(|r| seen.insert(r.value.as_str())) {
        c.add(&r.status, 1);
    }
    if c == OutboxCounts::default() {
        return "none".into();
    }
    c.to_string()
}

fn outbox_table(rows: &[OutboxEntry]) -> Table {
    Table {
        title: "Indicator outbox".into(),
        columns: vec![
            col("Operation", 9, 0, false),
            col("Domain", 30, 0, false),
            col("Status", 10, 0, false),
            col("Updated", 16, 2, false),
            col("Error", 30, 1, false),
        ],
        rows: rows
            .iter()
            .map(|o| Row {
                cells: vec![text(&o.op), text(&o.value), text(&o.status), Cell::Time(o.updated), text(&o.error)],
                target: None,
                key: format!("{} {} {}", o.op, o.value, o.status),
                item: None,
            })
            .collect(),
        default_sort: None,
    }
}

/// A severity setting as the Settings view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeveritySetting {
    /// `global` or a policy id.
    pub scope: String,
    pub label: String,
    pub severity: Severity,
    /// True when the policy has no setting of its own and follows the global one.
    pub inherited: bool,
}

pub struct SettingsRows<'a> {
    pub severities: &'a [SeveritySetting],
    pub profiles: &'a [ScopedProfile],
    pub groups: &'a [String],
    pub outbox: OutboxCounts,
    pub sync: &'a [SyncState],
}

pub fn settings(r: SettingsRows<'_>) -> ViewData {
    let severity_rows = r
        .severities
        .iter()
        .map(|s| Row {
            cells: vec![
                text(&s.label),
                Cell::Sev(s.severity),
                text(if s.scope == "global" {
                    "alerts + MDE indicators"
                } else if s.inherited {
                    "follows global"
                } else {
                    "set for this policy"
                }),
            ],
            target: None,
            key: format!("{} {}", s.label, s.scope),
            item: Some(Item::Severity { scope: s.scope.clone(), current: s.severity }),
        })
        .collect();
    let profile_rows = r
        .profiles
        .iter()
        .map(|p| Row {
            cells: vec![text(&p.name), text(&p.include_groups.join(", ")), text(&p.exclude_groups.join(", "))],
            target: None,
            key: p.name.clone(),
            item: None,
        })
        .collect();
    let o = r.outbox;
    ViewData {
        label: "Settings".into(),
        facts: vec![
            ("MDE indicators".into(), o.to_string()),
            ("Device groups".into(), if r.groups.is_empty() { "none known".into() } else { r.groups.join(", ") }),
        ],
        notes: vec![
            "+/- change the selected severity · :severity [global|POLICY] LEVEL · :profile NAME include|exclude G1,G2 · :sync"
                .into(),
        ],
        trend: Vec::new(),
        tables: vec![
            Table {
                title: "Alert severity".into(),
                columns: vec![col("Setting", 44, 0, false), col("Severity", 8, 0, false), col("Applies", 24, 1, false)],
                rows: severity_rows,
                default_sort: None,
            },
            Table {
                title: "Scoped profiles".into(),
                columns: vec![col("Profile", 20, 0, false), col("Include", 30, 0, false), col("Exclude", 30, 0, false)],
                rows: profile_rows,
                default_sort: None,
            },
            Table {
                title: "Last sync".into(),
                columns: vec![col("Source", 22, 0, false), col("When", 16, 0, false), col("Error / what to do", 40, 1, false)],
                rows: r
                    .sync
                    .iter()
                    .map(|s| Row {
                        cells: vec![
                            text(&s.source),
                            s.last_run.map(Cell::Time).unwrap_or_else(|| text("never")),
                            text(s.last_error.as_deref().unwrap_or("ok")),
                        ],
                        target: None,
                        key: s.source.clone(),
                        item: None,
                    })
                    .collect(),
                default_sort: None,
            },
        ],
        dashboard: None,
    }
}

pub fn user_on_device(user: &UserRow, device: &DeviceRow, apps: &[UsageRow]) -> ViewData {
    ViewData {
        label: format!("{} @ {}", user.upn, device.name),
        facts: vec![
            ("User".into(), user.upn.clone()),
            ("Device".into(), device.name.clone()),
            ("Apps".into(), apps.len().to_string()),
            ("Upload".into(), human_bytes(apps.iter().map(|a| a.bytes_up).sum())),
        ],
        notes: Vec::new(),
        trend: Vec::new(),
        tables: vec![usage_as_apps(apps, "Apps of this user on this device")],
        dashboard: None,
    }
}

pub fn list_view(label: &str, table: Table) -> ViewData {
    ViewData { label: label.into(), tables: vec![table], ..Default::default() }
}

pub struct DashboardRows<'a> {
    pub apps: &'a [AppRow],
    pub users: &'a [UserRow],
    pub alerts: &'a [AlertRow],
    pub trend: &'a [DayPoint],
}

pub fn dashboard(r: DashboardRows<'_>) -> ViewData {
    let mut by_cat: std::collections::BTreeMap<String, u64> = Default::default();
    let mut by_risk = [0u64; 3];
    for a in r.apps {
        *by_cat.entry(a.category.clone()).or_default() += 1;
        by_risk[match a.score.level() {
            RiskLevel::High => 0,
            RiskLevel::Medium => 1,
            RiskLevel::Low => 2,
        }] += 1;
    }
    let mut by_category: Vec<(String, u64)> = by_cat.into_iter().collect();
    by_category.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut alerts_by_severity = [0u64; 4];
    for a in r.alerts.iter().filter(|a| a.status == "open") {
        alerts_by_severity[a.severity.to_i64().clamp(0, 3) as usize] += 1;
    }
    let mut risky: Vec<&UserRow> = r.users.iter().filter(|u| u.score > 0).collect();
    risky.sort_by(|a, b| b.score.cmp(&a.score).then(b.unsanctioned_up.cmp(&a.unsanctioned_up)));
    let risky: Vec<UserRow> = risky.into_iter().take(50).cloned().collect();
    let mut unsanct: Vec<AppRow> =
        r.apps.iter().filter(|a| a.tag == Tag::Unsanctioned || a.score.level() == RiskLevel::High).cloned().collect();
    unsanct.sort_by_key(|a| std::cmp::Reverse(a.bytes_up));
    unsanct.truncate(50);
    let (up, down) = totals(r.trend);
    let open: u64 = alerts_by_severity.iter().sum();
    ViewData {
        label: "Dashboard".into(),
        facts: vec![
            ("Apps discovered".into(), r.apps.len().to_string()),
            (
                "Users · high risk".into(),
                format!("{} · {}", r.users.len(), r.users.iter().filter(|u| u.score >= 50).count()),
            ),
            ("Traffic".into(), format!("up {} · down {}", human_bytes(up), human_bytes(down))),
            ("Open alerts".into(), format!("{open} ({} high)", alerts_by_severity[Severity::High.to_i64() as usize])),
        ],
        notes: Vec::new(),
        trend: series(r.trend, false),
        tables: vec![
            Table { title: "Top risky users".into(), default_sort: None, ..users_table(&risky) },
            Table { default_sort: None, ..apps_table(&unsanct, "Top unsanctioned / high-risk apps by upload") },
        ],
        dashboard: Some(Dashboard { by_category, by_risk, alerts_by_severity }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppId, RiskScore};

    #[test]
    fn a_capped_list_says_how_long_the_whole_list_is() {
        let row = |i: i64| UsageRow {
            app: AppId(1),
            app_name: "Microsoft".into(),
            category: "Collaboration".into(),
            score: RiskScore(9.0),
            tag: Tag::Sanctioned,
            other_id: i,
            other_name: format!("user{i}@contoso.com"),
            bytes_up: 1000 - i as u64,
            bytes_down: 0,
            transactions: 1,
            first_day: Day(1),
            last_day: Day(2),
        };
        let rows: Vec<UsageRow> = (0..3).map(row).collect();
        assert_eq!(usage_as_entities(&rows, true, 49_744).title, "Users: top 3 of 49,744 by upload");
        assert_eq!(usage_as_entities(&rows, false, 3).title, "Devices");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
    }

    /// The app page's MDCA line carries MDCA's own counts once a sync brought them, read back
    /// from the cache as the console reads it.
    #[test]
    fn app_page_shows_what_mdca_counted() {
        let store = crate::store::Store::open_in_memory().unwrap();
        let (_, app) = store.intern_host("www.dropbox.com", crate::catalog::Catalog::builtin()).unwrap();
        let row = |s: &crate::store::Store| s.app(app, crate::domain::Period::ALL).unwrap().unwrap();
        assert_eq!(mdca_detail(&row(&store)), "not synced");
        store
            .conn
            .execute(
                "UPDATE apps SET mdca_score = 8, mdca_tag = 'sanctioned', mdca_users = 1234, mdca_transactions = 56,
                    mdca_upload = 7000000, mdca_download = 9000, mdca_last_seen = 1764028800 WHERE id = ?1",
                [app.0],
            )
            .unwrap();
        assert_eq!(
            mdca_detail(&row(&store)),
            format!(
                "8/10 · sanctioned · 1234 users · up {} · down {} · 56 trans. · last seen {}",
                human_bytes(7_000_000),
                human_bytes(9000),
                Day::from_unix(1_764_028_800)
            )
        );
    }
}
