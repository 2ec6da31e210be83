//! Typed read models for the views. Each reads summaries or indexed roll-ups, never raw facts,
//! so even a 50,000-user cache answers in milliseconds.
use super::packed::{Keyed, PackError, Packer, Span, Unpack};
use super::schema::UsageTables;
use super::{Result, Store, StoreError, u};
use crate::domain::{AppId, Day, DeviceId, IdentityRisk, Period, RiskScore, Severity, Tag, UserId};
use rusqlite::{OptionalExtension, Row, params};
use std::cmp::Reverse;

#[derive(Debug, Clone, PartialEq)]
pub struct AppRow {
    pub id: AppId,
    pub key: String,
    pub name: String,
    pub vendor: String,
    pub category: String,
    pub unknown: bool,
    pub score: RiskScore,
    pub overridden: bool,
    pub tag: Tag,
    pub users: u64,
    pub devices: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub transactions: u64,
    pub first_day: Option<Day>,
    pub last_day: Option<Day>,
    /// Daily traffic (up + down) over the period's last days, oldest first.
    pub trend: Vec<u64>,
    /// Custom labels, comma-separated.
    pub labels: String,
    /// Defender for Cloud Apps' own view of the app, when synced: its score and tag.
    pub mdca_score: Option<f32>,
    pub mdca_tag: Option<String>,
    /// And its own counts, over the sync's discovery period.
    pub mdca_usage: Option<MdcaUsage>,
}

/// What Defender for Cloud Apps counted for a discovered app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdcaUsage {
    pub users: u64,
    pub transactions: u64,
    pub upload: u64,
    pub download: u64,
    pub last_seen_unix: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: UserId,
    pub upn: String,
    pub display_name: String,
    pub department: String,
    pub identity_risk: IdentityRisk,
    /// Local risk score 0–100, higher = riskier.
    pub score: u32,
    pub devices: u64,
    pub apps: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub unsanctioned_up: u64,
    pub alerts: u64,
    pub last_day: Option<Day>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub name: String,
    pub os: String,
    pub group: String,
    pub exposure: String,
    pub users: u64,
    pub apps: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub last_day: Option<Day>,
}

/// A user↔device edge seen from either side.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRow {
    pub user: UserId,
    pub upn: String,
    pub device: DeviceId,
    pub device_name: String,
    pub sources: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub logons: u64,
    pub identity_risk: IdentityRisk,
}

/// Usage of one app by one user or device.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub app: AppId,
    pub app_name: String,
    pub category: String,
    pub score: RiskScore,
    pub tag: Tag,
    pub other_id: i64,
    pub other_name: String,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub transactions: u64,
    pub first_day: Day,
    pub last_day: Day,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DayPoint {
    pub day: Day,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub transactions: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub policy: String,
    pub title: String,
    pub severity: Severity,
    pub status: String,
    pub user: Option<UserId>,
    pub upn: String,
    pub device: Option<DeviceId>,
    pub device_name: String,
    pub app: Option<AppId>,
    pub app_name: String,
    pub evidence: String,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Rows on a detail page are capped: an app used by 50,000 people would otherwise take a
/// quarter of a second to open (1,000 opens in ~14 ms). The page says how many there are in all.
pub const DETAIL_ROWS: usize = 1_000;

/// The first rows of a longer list, and the length of the whole list.
#[derive(Debug, Clone, PartialEq)]
pub struct Capped<T> {
    pub rows: Vec<T>,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DomainRow {
    pub name: String,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub transactions: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    pub users: u64,
    pub devices: u64,
    pub apps: u64,
    pub unknown_apps: u64,
    pub facts: u64,
    pub latest_day: Option<Day>,
}

fn day_opt(v: Option<i64>) -> Option<Day> {
    v.map(|d| Day(d as i32))
}

fn app_row(r: &Row<'_>) -> rusqlite::Result<AppRow> {
    Ok(AppRow {
        id: AppId(r.get(0)?),
        key: r.get(1)?,
        name: r.get(2)?,
        vendor: r.get(3)?,
        category: r.get(4)?,
        unknown: r.get::<_, i64>(5)? != 0,
        score: RiskScore(r.get::<_, f64>(6)? as f32),
        overridden: r.get::<_, Option<f64>>(7)?.is_some(),
        tag: Tag::from_i64(r.get(8)?),
        users: u(r.get(9)?),
        devices: u(r.get(10)?),
        bytes_up: u(r.get(11)?),
        bytes_down: u(r.get(12)?),
        transactions: u(r.get(13)?),
        first_day: day_opt(r.get(14)?),
        last_day: day_opt(r.get(15)?),
        trend: Vec::new(),
        labels: r.get::<_, Option<String>>(16)?.unwrap_or_default(),
        mdca_score: r.get::<_, Option<f64>>(17)?.map(|s| s as f32),
        mdca_tag: r.get(18)?,
        mdca_usage: match r.get::<_, Option<i64>>(19)? {
            None => None,
            Some(users) => Some(MdcaUsage {
                users: u(users),
                transactions: u(r.get::<_, Option<i64>>(20)?.unwrap_or(0)),
                upload: u(r.get::<_, Option<i64>>(21)?.unwrap_or(0)),
                download: u(r.get::<_, Option<i64>>(22)?.unwrap_or(0)),
                last_seen_unix: r.get(23)?,
            }),
        },
    })
}

const APP_COLUMNS: &str = "a.id, a.key, a.name, a.vendor, a.category, a.unknown, a.score, a.risk_override, a.tag,
    coalesce(s.users, 0), coalesce(s.devices, 0), coalesce(s.bytes_up, 0), coalesce(s.bytes_down, 0),
    coalesce(s.transactions, 0), f.first_day, f.last_day,
    (SELECT group_concat(label, ', ') FROM app_labels l WHERE l.app_id = a.id), a.mdca_score, a.mdca_tag,
    a.mdca_users, a.mdca_transactions, a.mdca_upload, a.mdca_download, a.mdca_last_seen";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: UserId(r.get(0)?),
        upn: r.get(1)?,
        display_name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        department: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        identity_risk: IdentityRisk::from_i64(r.get(4)?),
        score: r.get::<_, i64>(5)?.clamp(0, 100) as u32,
        devices: u(r.get(6)?),
        apps: u(r.get(7)?),
        bytes_up: u(r.get(8)?),
        bytes_down: u(r.get(9)?),
        unsanctioned_up: u(r.get(10)?),
        alerts: u(r.get(11)?),
        last_day: day_opt(r.get(12)?),
    })
}

const USER_COLUMNS: &str = "u.id, u.upn, u.display_name, u.department, u.identity_risk, coalesce(s.score, 0),
    coalesce(s.devices, 0), coalesce(s.apps, 0), coalesce(s.bytes_up, 0), coalesce(s.bytes_down, 0),
    coalesce(s.unsanctioned_up, 0), coalesce(s.alerts, 0), s.last_day";

fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: DeviceId(r.get(0)?),
        name: r.get(1)?,
        os: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        group: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        exposure: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        users: u(r.get(5)?),
        apps: u(r.get(6)?),
        bytes_up: u(r.get(7)?),
        bytes_down: u(r.get(8)?),
        last_day: day_opt(r.get(9)?),
    })
}

const DEVICE_COLUMNS: &str =
    "d.id, d.name, d.os, d.device_group, d.exposure, coalesce(s.users, 0), coalesce(s.apps, 0),
    coalesce(s.bytes_up, 0), coalesce(s.bytes_down, 0), s.last_day";

fn edge_row(r: &Row<'_>) -> rusqlite::Result<EdgeRow> {
    Ok(EdgeRow {
        user: UserId(r.get(0)?),
        upn: r.get(1)?,
        device: DeviceId(r.get(2)?),
        device_name: r.get(3)?,
        sources: r.get(4)?,
        first_seen: r.get(5)?,
        last_seen: r.get(6)?,
        logons: u(r.get(7)?),
        identity_risk: IdentityRisk::from_i64(r.get(8)?),
    })
}

const EDGE_SELECT: &str = "SELECT e.user_id, u.upn, e.device_id, d.name, group_concat(DISTINCT e.source),
    min(e.first_seen), max(e.last_seen), sum(e.logons), u.identity_risk
    FROM user_devices e JOIN users u ON u.id = e.user_id JOIN devices d ON d.id = e.device_id";

fn usage_row(r: &Row<'_>) -> rusqlite::Result<UsageRow> {
    Ok(UsageRow {
        app: AppId(r.get(0)?),
        app_name: r.get(1)?,
        category: r.get(2)?,
        score: RiskScore(r.get::<_, f64>(3)? as f32),
        tag: Tag::from_i64(r.get(4)?),
        other_id: r.get(5)?,
        other_name: r.get(6)?,
        bytes_up: u(r.get(7)?),
        bytes_down: u(r.get(8)?),
        transactions: u(r.get(9)?),
        first_day: Day(r.get(10)?),
        last_day: Day(r.get(11)?),
    })
}

/// Which side of an app roll-up a usage query reads.
#[derive(Debug, Clone, Copy)]
enum Side {
    User,
    Device,
}

impl Side {
    fn tables(self) -> UsageTables {
        match self {
            Side::User => UsageTables::USER,
            Side::Device => UsageTables::DEVICE,
        }
    }
    fn join(self) -> &'static str {
        match self {
            Side::User => "JOIN users o ON o.id = x.id",
            Side::Device => "JOIN devices o ON o.id = x.id",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Side::User => "o.upn",
            Side::Device => "o.name",
        }
    }
}

fn day_point(r: &Row<'_>) -> rusqlite::Result<DayPoint> {
    Ok(DayPoint { day: Day(r.get(0)?), bytes_up: u(r.get(1)?), bytes_down: u(r.get(2)?), transactions: u(r.get(3)?) })
}

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        policy: r.get(1)?,
        title: r.get(2)?,
        severity: Severity::from_i64(r.get(3)?),
        status: r.get(4)?,
        user: r.get::<_, Option<i64>>(5)?.map(UserId),
        upn: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        device: r.get::<_, Option<i64>>(7)?.map(DeviceId),
        device_name: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
        app: r.get::<_, Option<i64>>(9)?.map(AppId),
        app_name: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
        evidence: r.get(11)?,
        count: u(r.get(12)?),
        first_seen: r.get(13)?,
        last_seen: r.get(14)?,
    })
}

const ALERT_SELECT: &str =
    "SELECT l.id, l.policy, l.title, l.severity, l.status, l.user_id, u.upn, l.device_id, d.name,
    l.app_id, a.name, l.evidence, l.count, l.first_seen, l.last_seen
    FROM alerts l LEFT JOIN users u ON u.id = l.user_id LEFT JOIN devices d ON d.id = l.device_id
    LEFT JOIN apps a ON a.id = l.app_id";

impl Store {
    fn collect<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(p, f)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn counts(&self) -> Result<Counts> {
        Ok(Counts {
            users: u(self.conn.query_row("SELECT count(*) FROM users WHERE id != 0", [], |r| r.get(0))?),
            devices: u(self.conn.query_row("SELECT count(*) FROM devices WHERE id != 0", [], |r| r.get(0))?),
            apps: u(self.conn.query_row("SELECT count(*) FROM apps", [], |r| r.get(0))?),
            unknown_apps: u(self.conn.query_row("SELECT count(*) FROM apps WHERE unknown = 1", [], |r| r.get(0))?),
            facts: u(self.conn.query_row("SELECT count(*) FROM app_day", [], |r| r.get(0))?),
            latest_day: self.latest_day()?,
        })
    }

    /// Every app with traffic in the period (plus tagged apps), with its daily trend.
    pub fn apps(&self, period: Period) -> Result<Vec<AppRow>> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM apps a
             LEFT JOIN app_summary s ON s.app_id = a.id AND s.period = ?1
             LEFT JOIN app_summary f ON f.app_id = a.id AND f.period = 0
             WHERE s.app_id IS NOT NULL OR a.tag != 0 OR a.mdca_score IS NOT NULL"
        );
        let mut rows = self.collect(&sql, [period.days], app_row)?;
        let latest = self.latest_day()?.unwrap_or(Day(0));
        let trend_days = if period.days == 0 || period.days > 90 { 90 } else { period.days.max(7) };
        let from = Day(latest.0 - trend_days as i32 + 1);
        let mut index = std::collections::HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter_mut().enumerate() {
            r.trend = vec![0; trend_days as usize];
            index.insert(r.id.0, i);
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT app_id, day, bytes_up + bytes_down FROM app_day WHERE day >= ?1 AND day <= ?2")?;
        let mut q = st.query(params![from.0, latest.0])?;
        while let Some(r) = q.next()? {
            let (app, day, bytes): (i64, i32, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if let Some(&i) = index.get(&app)
                && let Some(slot) = rows[i].trend.get_mut((day - from.0) as usize)
            {
                *slot = u(bytes);
            }
        }
        Ok(rows)
    }

    pub fn app(&self, id: AppId, period: Period) -> Result<Option<AppRow>> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM apps a
             LEFT JOIN app_summary s ON s.app_id = a.id AND s.period = ?1
             LEFT JOIN app_summary f ON f.app_id = a.id AND f.period = 0
             WHERE a.id = ?2"
        );
        Ok(self.conn.query_row(&sql, params![period.days, id.0], app_row).optional()?)
    }

    pub fn app_by_key_or_name(&self, needle: &str) -> Result<Option<AppId>> {
        let n = needle.trim().to_ascii_lowercase();
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM apps WHERE lower(key) = ?1 OR lower(name) = ?1 OR key = 'unknown:' || ?1
                 UNION ALL SELECT app_id FROM domains WHERE name = ?1 LIMIT 1",
                [&n],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id.map(AppId))
    }

    pub fn users(&self) -> Result<Vec<UserRow>> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u LEFT JOIN user_summary s ON s.user_id = u.id WHERE u.id != 0");
        self.collect(&sql, [], user_row)
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u LEFT JOIN user_summary s ON s.user_id = u.id WHERE u.id = ?1");
        Ok(self.conn.query_row(&sql, [id.0], user_row).optional()?)
    }

    pub fn user_by_upn(&self, needle: &str) -> Result<Option<UserId>> {
        let n = needle.trim().to_ascii_lowercase();
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM users WHERE lower(upn) = ?1 OR lower(upn) LIKE ?1 || '@%' LIMIT 1", [&n], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(id.map(UserId))
    }

    pub fn devices(&self) -> Result<Vec<DeviceRow>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d LEFT JOIN device_summary s ON s.device_id = d.id WHERE d.id != 0"
        );
        self.collect(&sql, [], device_row)
    }

    pub fn device(&self, id: DeviceId) -> Result<Option<DeviceRow>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d LEFT JOIN device_summary s ON s.device_id = d.id WHERE d.id = ?1"
        );
        Ok(self.conn.query_row(&sql, [id.0], device_row).optional()?)
    }

    pub fn device_by_name(&self, needle: &str) -> Result<Option<DeviceId>> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM devices WHERE lower(name) = lower(?1) LIMIT 1", [needle.trim()], |r| r.get(0))
            .optional()?;
        Ok(id.map(DeviceId))
    }

    pub fn devices_of_user(&self, user: UserId) -> Result<Vec<EdgeRow>> {
        let sql = format!("{EDGE_SELECT} WHERE e.user_id = ?1 GROUP BY e.device_id ORDER BY max(e.last_seen) DESC");
        self.collect(&sql, [user.0], edge_row)
    }

    pub fn users_of_device(&self, device: DeviceId) -> Result<Vec<EdgeRow>> {
        let sql = format!("{EDGE_SELECT} WHERE e.device_id = ?1 GROUP BY e.user_id ORDER BY max(e.last_seen) DESC");
        self.collect(&sql, [device.0], edge_row)
    }

    /// The apps of one user / device, from its row of `user_app_packed` / `device_app_packed`.
    fn apps_of(&self, side: Side, owner: i64) -> Result<Vec<UsageRow>> {
        let UsageTables { owner_view: view, owner: col, .. } = side.tables();
        let sql = format!(
            "SELECT a.id, a.name, a.category, a.score, a.tag, x.{col}, '', x.bytes_up, x.bytes_down,
                    x.transactions, x.first_day, x.last_day
             FROM {view} x JOIN apps a ON a.id = x.app_id
             WHERE x.{col} = ?1
             ORDER BY x.bytes_up DESC, x.app_id"
        );
        self.collect(&sql, [owner], usage_row)
    }

    /// The users / devices of one app by upload, at most `limit`, and how many there are, from
    /// the app's row of `app_user_packed` / `app_device_packed`. The top entries are picked here
    /// and handed back to SQL as a blob of their own, so that names are joined to those rows
    /// only. Ranked in SQL through `usage_of` (and counted again for the total), opening an app
    /// used by 50,000 users took 31 ms at p99 in `bench_console`; this takes ~3 ms.
    fn owners_of(&self, side: Side, app: AppId, limit: usize) -> Result<Capped<UsageRow>> {
        let UsageTables { by_app: table, owners: blob, .. } = side.tables();
        let packed: Option<Vec<u8>> = self
            .conn
            .prepare_cached(&format!("SELECT {blob} FROM {table} WHERE app_id = ?1"))?
            .query_row([app.0], |r| r.get(0))
            .optional()?;
        let Some(packed) = packed else { return Ok(Capped { total: 0, rows: Vec::new() }) };
        let corrupt = |e: PackError| StoreError::Invalid(format!("app {}'s usage: {e}", app.0));
        let mut entries: Vec<Keyed<Span>> =
            Unpack::new(&packed).collect::<std::result::Result<_, _>>().map_err(corrupt)?;
        let total = entries.len() as u64;
        let rank = |e: &Keyed<Span>| (Reverse(e.v.bytes_up), e.id);
        if limit < entries.len() {
            entries.select_nth_unstable_by_key(limit, rank);
            entries.truncate(limit);
        }
        entries.sort_unstable_by_key(|e| e.id);
        let mut top = Vec::new();
        let mut packer = Packer::<Span>::new(&mut top);
        for e in &entries {
            packer.push(e.id, &e.v).map_err(corrupt)?;
        }
        let sql = format!(
            "SELECT a.id, a.name, a.category, a.score, a.tag, x.id, {name}, x.bytes_up, x.bytes_down,
                    x.transactions, x.first_day, x.last_day
             FROM usage_of(?2) x JOIN apps a ON a.id = ?1 {join}
             ORDER BY x.bytes_up DESC, x.id",
            name = side.name(),
            join = side.join()
        );
        Ok(Capped { total, rows: self.collect(&sql, params![app.0, top], usage_row)? })
    }

    pub fn apps_of_user(&self, user: UserId) -> Result<Vec<UsageRow>> {
        self.apps_of(Side::User, user.0)
    }

    pub fn apps_of_device(&self, device: DeviceId) -> Result<Vec<UsageRow>> {
        self.apps_of(Side::Device, device.0)
    }

    /// Cross-filter: apps one user used on one device (from the daily facts). The facts are
    /// packed per day × user × device, so the user's own days become primary-key seeks instead
    /// of a scan of every fact.
    pub fn apps_of_user_on_device(&self, user: UserId, device: DeviceId) -> Result<Vec<UsageRow>> {
        self.collect(
            "SELECT a.id, a.name, a.category, a.score, a.tag, ?2, '', sum(t.bytes_up), sum(t.bytes_down),
                    sum(t.transactions), min(t.day), max(t.day)
             FROM traffic_daily t JOIN domains dm ON dm.id = t.domain_id JOIN apps a ON a.id = dm.app_id
             WHERE t.day IN (SELECT day FROM user_day WHERE user_id = ?1)
               AND t.user_id = ?1 AND t.device_id = ?2
             GROUP BY a.id ORDER BY sum(t.bytes_up) DESC",
            params![user.0, device.0],
            usage_row,
        )
    }

    /// An app's users by upload, at most [`DETAIL_ROWS`] of them, with how many there are.
    pub fn users_of_app(&self, app: AppId) -> Result<Capped<UsageRow>> {
        self.owners_of(Side::User, app, DETAIL_ROWS)
    }

    pub fn devices_of_app(&self, app: AppId) -> Result<Capped<UsageRow>> {
        self.owners_of(Side::Device, app, DETAIL_ROWS)
    }

    pub fn domains_of_app(&self, app: AppId) -> Result<Vec<DomainRow>> {
        self.collect(
            "SELECT dm.name, coalesce(t.bytes_up, 0), coalesce(t.bytes_down, 0), coalesce(t.transactions, 0)
             FROM domains dm LEFT JOIN domain_total t ON t.domain_id = dm.id
             WHERE dm.app_id = ?1 ORDER BY 2 DESC, dm.name",
            [app.0],
            |r| {
                Ok(DomainRow {
                    name: r.get(0)?,
                    bytes_up: u(r.get(1)?),
                    bytes_down: u(r.get(2)?),
                    transactions: u(r.get(3)?),
                })
            },
        )
    }

    pub fn app_trend(&self, app: AppId) -> Result<Vec<DayPoint>> {
        self.collect(
            "SELECT day, bytes_up, bytes_down, transactions FROM app_day WHERE app_id = ?1 ORDER BY day",
            [app.0],
            day_point,
        )
    }

    pub fn user_timeline(&self, user: UserId) -> Result<Vec<DayPoint>> {
        self.collect(
            "SELECT day, bytes_up, bytes_down, transactions FROM user_day WHERE user_id = ?1 ORDER BY day",
            [user.0],
            day_point,
        )
    }

    pub fn device_timeline(&self, device: DeviceId) -> Result<Vec<DayPoint>> {
        self.collect(
            "SELECT day, bytes_up, bytes_down, transactions FROM device_day WHERE device_id = ?1 ORDER BY day",
            [device.0],
            day_point,
        )
    }

    /// Whole-cache daily totals (dashboard trend).
    pub fn total_trend(&self) -> Result<Vec<DayPoint>> {
        self.collect(
            "SELECT day, sum(bytes_up), sum(bytes_down), sum(transactions) FROM app_day GROUP BY day ORDER BY day",
            [],
            day_point,
        )
    }

    pub fn alerts(&self) -> Result<Vec<AlertRow>> {
        self.collect(
            &format!("{ALERT_SELECT} ORDER BY l.status = 'open' DESC, l.severity DESC, l.last_seen DESC"),
            [],
            alert_row,
        )
    }

    pub fn alerts_of_user(&self, user: UserId) -> Result<Vec<AlertRow>> {
        self.collect(&format!("{ALERT_SELECT} WHERE l.user_id = ?1 ORDER BY l.last_seen DESC"), [user.0], alert_row)
    }

    pub fn alerts_of_app(&self, app: AppId) -> Result<Vec<AlertRow>> {
        self.collect(&format!("{ALERT_SELECT} WHERE l.app_id = ?1 ORDER BY l.last_seen DESC"), [app.0], alert_row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::demo::{DemoOptions, generate};

    /// An app page lists the heaviest uploaders first, ties by user id, at most
    /// [`DETAIL_ROWS`], with the whole count; the user page lists the same pairs from its end.
    #[test]
    fn app_pages_pick_the_top_uploaders_from_the_packed_row() {
        use crate::store::write::{Counters, FactBatch, FactKey};
        let s = Store::open_in_memory().unwrap();
        s.begin().unwrap();
        let (domain, app) = s.intern_host("www.dropbox.com", Catalog::builtin()).unwrap();
        let (other_domain, other_app) = s.intern_host("mail.yahoo.com", Catalog::builtin()).unwrap();
        let device = s.intern_device("pc1").unwrap();
        let users = 1_500;
        let mut b = FactBatch::default();
        for n in 0..users {
            let user = s.intern_user(&format!("u{n}@x")).unwrap();
            // Uploads repeat every 700 users, so ties cross the cut at 1,000.
            let c = Counters { bytes_up: (n % 700) as u64 * 10, bytes_down: 1, transactions: 1, blocked: 0 };
            b.add_fact(FactKey { day: Day(100 + n % 3), app, domain, user, device }, &c);
            if n % 2 == 0 {
                b.add_fact(FactKey { day: Day(100), app: other_app, domain: other_domain, user, device }, &c);
            }
        }
        s.apply_batch(&b).unwrap();
        s.commit().unwrap();
        let page = s.users_of_app(app).unwrap();
        assert_eq!((page.rows.len(), page.total), (DETAIL_ROWS, users as u64));
        let all: Vec<(u64, i64)> = s
            .collect("SELECT bytes_up, user_id FROM app_user WHERE app_id = ?1 ORDER BY user_id", [app.0], |r| {
                Ok((u(r.get(0)?), r.get(1)?))
            })
            .unwrap();
        let mut want = all.clone();
        want.sort_by_key(|&(up, id)| (Reverse(up), id));
        want.truncate(DETAIL_ROWS);
        let got: Vec<(u64, i64)> = page.rows.iter().map(|r| (r.bytes_up, r.other_id)).collect();
        assert_eq!(got, want);
        assert!(page.rows.iter().all(|r| r.app == app && r.other_name.ends_with("@x")));
        let devices = s.devices_of_app(app).unwrap();
        assert_eq!((devices.rows.len(), devices.total), (1, 1));
        assert_eq!(devices.rows[0].bytes_up, all.iter().map(|(up, _)| up).sum::<u64>());
        // The third user interned (u2@x) used both apps: its page lists them from its own row.
        let apps: Vec<(AppId, u64)> =
            s.apps_of_user(UserId(all[2].1)).unwrap().iter().map(|r| (r.app, r.bytes_up)).collect();
        assert_eq!(apps.len(), 2, "{apps:?}");
        assert!(apps.iter().all(|(a, up)| (*a == app || *a == other_app) && *up == all[2].0));
    }

    #[test]
    fn cross_filter_seeks_find_exactly_what_a_scan_finds() {
        let s = Store::open_in_memory().unwrap();
        generate(&s, Catalog::builtin(), &DemoOptions { users: 60, days: 20, ..Default::default() }).unwrap();
        let pairs: Vec<(i64, i64)> = s
            .collect("SELECT DISTINCT user_id, device_id FROM traffic_daily WHERE user_id != 0 LIMIT 40", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(pairs.len() >= 20);
        for (u, d) in pairs {
            let fast = s.apps_of_user_on_device(UserId(u), DeviceId(d)).unwrap();
            let scan: Vec<(i64, i64)> = s
                .collect(
                    "SELECT dm.app_id, sum(t.bytes_up) FROM traffic_daily t JOIN domains dm ON dm.id = t.domain_id
                     WHERE t.user_id = ?1 AND t.device_id = ?2 GROUP BY dm.app_id ORDER BY sum(t.bytes_up) DESC",
                    params![u, d],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let got: Vec<(i64, i64)> = fast.iter().map(|r| (r.app.0, r.bytes_up as i64)).collect();
            assert!(!got.is_empty());
            assert_eq!(got, scan, "user {u} device {d}");
        }
    }
}
