//! The cache side of governance: scoped profiles, the indicator outbox (producer side), the
//! inputs of the alert policies, and alert rows (create, bump, relabel, resolve, export marks).
//! Decisions are made in `crate::actions`; this file only reads and writes rows.
use super::packed::Unpack;
use super::write::{Counters, FastMap, FastSet};
use super::{Result, Store, StoreError, i, u};
use crate::actions::alert_export::{AlertEvent, AlertRecord};
use crate::actions::indicators::{OutboxOp, ScopedProfile};
use crate::actions::policy::{AlertCandidate, DedupKey, OpenAlert, PolicyApp, PolicyKind, PolicyUser, UsageFact};
use crate::domain::{AlertId, AppId, Day, DeviceId, IdentityRisk, RiskScore, Severity, Tag, UserId};
use crate::store::outbox::OutboxCounts;
use rusqlite::{OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Alert lifecycle states an analyst can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Resolved,
    Dismissed,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Dismissed => "dismissed",
        }
    }
    pub fn parse(s: &str) -> Option<AlertStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" | "reopen" => Some(AlertStatus::Open),
            "resolved" | "resolve" => Some(AlertStatus::Resolved),
            "dismissed" | "dismiss" => Some(AlertStatus::Dismissed),
            _ => None,
        }
    }
}

/// One alert as a SIEM export needs it, with the versions that say whether it changed since
/// the last export. `record.event` follows from them; `record.exported_at` is the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub record: AlertRecord,
    pub version: u64,
    pub exported_version: u64,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect()
}

fn device_list(ids: &[DeviceId]) -> String {
    ids.iter().map(|d| d.0.to_string()).collect::<Vec<_>>().join(",")
}

fn parse_device_list(s: &str) -> Vec<DeviceId> {
    s.split(',').filter_map(|x| x.trim().parse().ok()).map(DeviceId).collect()
}

fn usage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageFact> {
    Ok(UsageFact {
        day: Day(r.get(0)?),
        user: UserId(r.get(1)?),
        app: AppId(r.get(2)?),
        upload_bytes: u(r.get(3)?),
        devices: parse_device_list(&r.get::<_, Option<String>>(4)?.unwrap_or_default()),
    })
}

/// Day × user × app upload sums and the devices they came from, as the policies read them.
#[derive(Default)]
struct UsageSums {
    sums: BTreeMap<(i32, i64, i64), UploadSum>,
}

#[derive(Default)]
struct UploadSum {
    upload: u64,
    devices: BTreeSet<i64>,
}

impl UsageSums {
    fn add(&mut self, day: i32, user: i64, app: i64, device: i64, up: u64) {
        let s = self.sums.entry((day, user, app)).or_default();
        s.upload = s.upload.saturating_add(up);
        s.devices.insert(device);
    }

    /// Adds the facts of one packed row whose domain's app `keep` accepts.
    fn add_row(
        &mut self,
        day: i32,
        user: i64,
        device: i64,
        facts: &mut dyn Iterator<Item = Result<(i64, u64)>>,
        app_of: &FastMap<i64, i64>,
        keep: impl Fn(i64) -> bool,
    ) -> Result<()> {
        for fact in facts {
            let (domain, up) = fact?;
            let Some(&app) = app_of.get(&domain) else { continue };
            if keep(app) {
                self.add(day, user, app, device, up);
            }
        }
        Ok(())
    }

    fn into_facts(self) -> Vec<UsageFact> {
        let fact = |((day, user, app), s): ((i32, i64, i64), UploadSum)| UsageFact {
            day: Day(day),
            user: UserId(user),
            app: AppId(app),
            upload_bytes: s.upload,
            devices: s.devices.into_iter().map(DeviceId).collect(),
        };
        self.sums.into_iter().map(fact).collect()
    }
}

impl Store {
    // ---- scoped profiles ----

    pub fn profiles(&self) -> Result<Vec<ScopedProfile>> {
        let mut st =
            self.conn.prepare_cached("SELECT name, include_groups, exclude_groups FROM profiles ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(ScopedProfile {
                name: r.get(0)?,
                include_groups: split_list(&r.get::<_, String>(1)?),
                exclude_groups: split_list(&r.get::<_, String>(2)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn profile(&self, name: &str) -> Result<Option<ScopedProfile>> {
        Ok(self.profiles()?.into_iter().find(|p| p.name.eq_ignore_ascii_case(name)))
    }

    /// Creates or replaces a profile, audited.
    pub fn save_profile(&self, p: &ScopedProfile, actor: &str, ts: i64) -> Result<()> {
        if p.name.trim().is_empty() {
            return Err(StoreError::Invalid("a profile needs a name".into()));
        }
        self.in_transaction(|s| {
            let old = s.profile(&p.name)?;
            s.conn.execute(
                "INSERT INTO profiles(name, include_groups, exclude_groups) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET include_groups = excluded.include_groups,
                   exclude_groups = excluded.exclude_groups",
                params![p.name, p.include_groups.join(","), p.exclude_groups.join(",")],
            )?;
            let show = |p: &ScopedProfile| {
                format!("include [{}] exclude [{}]", p.include_groups.join(", "), p.exclude_groups.join(", "))
            };
            s.append_audit(ts, actor, "profile", &p.name, &old.as_ref().map(show).unwrap_or_default(), &show(p), "")?;
            Ok(())
        })
    }

    /// Device groups known to the cache (from MDE machines and the demo), sorted.
    pub fn device_groups(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT device_group FROM devices WHERE device_group IS NOT NULL AND device_group != ''
             ORDER BY device_group",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    // ---- tagging and the outbox (producer side; the pusher lives in store::outbox) ----

    /// Key, display name and unknown flag of an app.
    pub fn app_identity(&self, app: AppId) -> Result<(String, String, bool)> {
        self.conn
            .query_row("SELECT key, name, unknown FROM apps WHERE id = ?1", [app.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))
            })
            .optional()?
            .ok_or_else(|| StoreError::Invalid(format!("no app with id {app}")))
    }

    /// Sets the tag and writes its audit entry; the caller owns the transaction. Returns the old
    /// tag and the audit entry id.
    pub fn set_tag_tx(
        &self,
        app: AppId,
        tag: Tag,
        profile: Option<&str>,
        actor: &str,
        reason: &str,
        ts: i64,
    ) -> Result<(Tag, i64)> {
        let old = self.app_tag(app)?;
        let old_profile = self.app_tag_profile(app)?;
        let (key, _, _) = self.app_identity(app)?;
        self.conn.execute(
            "UPDATE apps SET tag = ?2, tag_profile = ?3,
               tag_since = CASE WHEN tag = ?2 THEN tag_since ELSE ?4 END WHERE id = ?1",
            params![app.0, tag.to_i64(), profile, ts],
        )?;
        let detail =
            serde_json::json!({ "app_id": app.0, "profile": profile, "old_profile": old_profile, "reason": reason })
                .to_string();
        let audit = self.append_audit(ts, actor, "tag", &key, old.as_str(), tag.as_str(), &detail)?;
        Ok((old, audit))
    }

    pub fn app_tag_profile(&self, app: AppId) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT tag_profile FROM apps WHERE id = ?1", [app.0], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Queues one indicator operation for the pusher.
    pub fn enqueue_indicator(&self, app: AppId, op: &OutboxOp, ts: i64) -> Result<()> {
        let (kind, value) = match op {
            OutboxOp::Upsert(spec) => ("upsert", spec.indicator_value.as_str()),
            OutboxOp::Delete { indicator_value, .. } => ("delete", indicator_value.as_str()),
        };
        let payload = serde_json::to_string(op).map_err(|e| StoreError::Invalid(format!("outbox payload: {e}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO outbox(app_id, op, indicator_value, payload, status, created, updated)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            )?
            .execute(params![app.0, kind, value, payload, ts])?;
        Ok(())
    }

    /// Operations queued after row `after`, in order, with their row ids (tests, diagnostics).
    pub fn outbox_since(&self, after: i64) -> Result<Vec<(i64, OutboxOp)>> {
        let mut st = self.conn.prepare_cached("SELECT id, payload FROM outbox WHERE id > ?1 ORDER BY id")?;
        let rows = st.query_map([after], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, payload) = row?;
            let op = serde_json::from_str(&payload)
                .map_err(|e| StoreError::Invalid(format!("outbox row {id} does not parse: {e}")))?;
            out.push((id, op));
        }
        Ok(out)
    }

    /// Outbox rows of one app, newest first: (op, indicator value, status, last error).
    pub fn outbox_of_app(&self, app: AppId) -> Result<Vec<OutboxEntry>> {
        let mut st = self.conn.prepare_cached(
            "SELECT op, indicator_value, status, coalesce(last_error, ''), updated FROM outbox
             WHERE app_id = ?1 ORDER BY id DESC LIMIT 200",
        )?;
        let rows = st.query_map([app.0], |r| {
            Ok(OutboxEntry { op: r.get(0)?, value: r.get(1)?, status: r.get(2)?, error: r.get(3)?, updated: r.get(4)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Totals over each indicator value's latest operation.
    pub fn outbox_totals(&self) -> Result<OutboxCounts> {
        let mut st = self.conn.prepare_cached(
            "SELECT o.status, count(*) FROM outbox o
             WHERE o.id = (SELECT max(id) FROM outbox p WHERE p.indicator_value = o.indicator_value)
             GROUP BY o.status",
        )?;
        let mut t = OutboxCounts::default();
        for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (status, n) = row?;
            t.add(&status, n);
        }
        Ok(t)
    }

    /// Domains the catalog does not know but the cache saw for an app (unknown apps are keyed by
    /// their registrable domain, so this is how they get enforced).
    pub fn observed_domains(&self, app: AppId) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached("SELECT name FROM domains WHERE app_id = ?1 ORDER BY name")?;
        let rows = st.query_map([app.0], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Apps tagged `tag`, ordered by name: (id, key, name, unknown).
    pub fn apps_with_tag(&self, tag: Tag) -> Result<Vec<(AppId, String, String, bool)>> {
        let mut st =
            self.conn.prepare_cached("SELECT id, key, name, unknown FROM apps WHERE tag = ?1 ORDER BY name")?;
        let rows =
            st.query_map([tag.to_i64()], |r| Ok((AppId(r.get(0)?), r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    // ---- custom labels ----

    /// Adds (or removes) a free label on an app, audited (action `label`, old → new). Returns
    /// false when nothing changed.
    pub fn set_label(&self, app: AppId, label: &str, add: bool, actor: &str, ts: i64) -> Result<bool> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 40 || label.chars().any(char::is_control) {
            return Err(StoreError::Invalid("a label is 1–40 printable characters".into()));
        }
        self.in_transaction(|s| {
            let (key, _, _) = s.app_identity(app)?;
            let changed = if add {
                s.conn
                    .execute("INSERT OR IGNORE INTO app_labels(app_id, label) VALUES (?1, ?2)", params![app.0, label])?
            } else {
                s.conn.execute("DELETE FROM app_labels WHERE app_id = ?1 AND label = ?2", params![app.0, label])?
            } > 0;
            if changed {
                let (old, new) = if add { ("", label) } else { (label, "") };
                let detail = serde_json::json!({ "app_id": app.0 }).to_string();
                s.append_audit(ts, actor, "label", &key, old, new, &detail)?;
            }
            Ok(changed)
        })
    }

    pub fn labels_of_app(&self, app: AppId) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached("SELECT label FROM app_labels WHERE app_id = ?1 ORDER BY label")?;
        let rows = st.query_map([app.0], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    // ---- severities ----

    pub fn global_severity(&self) -> Result<Severity> {
        Ok(self.severity_setting("severity.global")?.unwrap_or_default())
    }

    /// Severity per policy: its own setting, else the global one.
    pub fn policy_severities(&self) -> Result<crate::actions::policy::PolicySeverities> {
        let mut per_policy = HashMap::new();
        for k in PolicyKind::ALL {
            if let Some(s) = self.severity_setting(&format!("severity.{}", k.as_str()))? {
                per_policy.insert(k, s);
            }
        }
        Ok(crate::actions::policy::PolicySeverities { global: self.global_severity()?, per_policy })
    }

    // ---- policy inputs ----

    /// Every app with traffic, with the first day it was seen.
    pub fn policy_apps(&self) -> Result<Vec<PolicyApp>> {
        let mut st = self.conn.prepare_cached(
            "SELECT a.id, a.name, a.category, a.score, a.tag, s.first_day, a.tag_since FROM apps a
             JOIN app_summary s ON s.app_id = a.id AND s.period = 0",
        )?;
        let rows = st.query_map([], |r| {
            let category: String = r.get(2)?;
            Ok(PolicyApp {
                id: AppId(r.get(0)?),
                name: r.get(1)?,
                is_generative_ai: category.eq_ignore_ascii_case("Generative AI"),
                category,
                risk: RiskScore(r.get::<_, f64>(3)? as f32),
                tag: Tag::from_i64(r.get(4)?),
                tag_since: r.get::<_, Option<i64>>(6)?.map(Day::from_unix),
                first_seen: Day(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn policy_users(&self) -> Result<Vec<PolicyUser>> {
        let mut st = self.conn.prepare_cached("SELECT id, upn, identity_risk FROM users WHERE id != 0")?;
        let rows = st.query_map([], |r| {
            Ok(PolicyUser { id: UserId(r.get(0)?), upn: r.get(1)?, identity_risk: IdentityRisk::from_i64(r.get(2)?) })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Per user × app × day from `from` on: upload bytes and the devices used. `apps` narrows
    /// the scan to some apps (a tag change re-evaluates only what it can affect).
    pub fn usage_facts(&self, from: Day, apps: Option<&[AppId]>) -> Result<Vec<UsageFact>> {
        let base = "SELECT t.day, t.user_id, d.app_id, sum(t.bytes_up), group_concat(DISTINCT t.device_id)
             FROM traffic_daily t JOIN domains d ON d.id = t.domain_id
             WHERE t.day >= ?1 AND t.user_id != 0";
        let map = usage_row;
        let mut out = Vec::new();
        match apps {
            None => {
                let mut st = self.conn.prepare(&format!("{base} GROUP BY t.day, t.user_id, d.app_id"))?;
                for row in st.query_map([from.0], map)? {
                    out.push(row?);
                }
            }
            Some(apps) => {
                // Per app through the domain index: each app's domains are few, the days a range.
                let mut st = self.conn.prepare_cached(&format!(
                    "{base} AND t.domain_id IN (SELECT id FROM domains WHERE app_id = ?2)
                     GROUP BY t.day, t.user_id, d.app_id"
                ))?;
                for a in apps {
                    for row in st.query_map(params![from.0, a.0], map)? {
                        out.push(row?);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Only the usage the policies can fire on, so a 50,000-user cache is not loaded whole:
    /// in the window, pairs on an Unsanctioned app, of a high-risk user, or with a day's upload
    /// above `floor`; and for those last ones (anomalous-upload candidates) their whole history
    /// from `history_from`, which their baseline needs. Read from the packed rows here rather
    /// than through `traffic_daily`: a row decodes only when its user and day (a high-risk user,
    /// a day's upload above the floor) or some Unsanctioned app can make it count, where the
    /// SQL joined every fact of the window to its domain (27 ms of a 1 M-line import).
    pub fn policy_usage(&self, window_from: Day, history_from: Day, floor: u64) -> Result<Vec<UsageFact>> {
        let ids = |sql: &str, p: &[i64]| -> Result<FastSet<i64>> {
            let mut st = self.conn.prepare(sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(p), |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        let unsanctioned = ids("SELECT id FROM apps WHERE tag = ?1", &[Tag::Unsanctioned.to_i64()])?;
        let risky = ids("SELECT id FROM users WHERE identity_risk = ?1", &[IdentityRisk::High.to_i64()])?;
        let heavy_days: FastSet<(i64, i64)> = self
            .pairs(
                "SELECT user_id, day FROM user_day WHERE day >= ?1 AND bytes_up > ?2",
                params![window_from.0, i(floor)],
            )?
            .into_iter()
            .collect();
        if unsanctioned.is_empty() && risky.is_empty() && heavy_days.is_empty() {
            // No row can count: no scan, no domain map.
            return Ok(Vec::new());
        }
        let app_of: FastMap<i64, i64> = self.pairs("SELECT id, app_id FROM domains", [])?.into_iter().collect();
        let mut window = UsageSums::default();
        self.scan_packed(window_from, |day, user, device, facts| {
            if user == 0 {
                return Ok(());
            }
            let whole_row = risky.contains(&user) || heavy_days.contains(&(user, i64::from(day)));
            if !whole_row && unsanctioned.is_empty() {
                return Ok(());
            }
            window.add_row(day, user, device, facts, &app_of, |app| whole_row || unsanctioned.contains(&app))
        })?;
        window
            .sums
            .retain(|&(_, user, app), sum| sum.upload > floor || unsanctioned.contains(&app) || risky.contains(&user));
        let heavy: FastSet<(i64, i64)> =
            window.sums.iter().filter(|(_, sum)| sum.upload > floor).map(|(&(_, user, app), _)| (user, app)).collect();
        window.sums.retain(|&(_, user, app), _| !heavy.contains(&(user, app)));
        let mut out = window.into_facts();
        if heavy.is_empty() {
            return Ok(out);
        }
        let heavy_users: FastSet<i64> = heavy.iter().map(|&(user, _)| user).collect();
        let mut history = UsageSums::default();
        self.scan_packed(history_from, |day, user, device, facts| {
            if !heavy_users.contains(&user) {
                return Ok(());
            }
            history.add_row(day, user, device, facts, &app_of, |app| heavy.contains(&(user, app)))
        })?;
        out.extend(history.into_facts());
        Ok(out)
    }

    /// Every `(a, b)` row of a two-integer query.
    fn pairs(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<(i64, i64)>> {
        let mut st = self.conn.prepare(sql)?;
        let rows = st.query_map(p, |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Calls `f(day, user, device, facts)` for each packed fact row from day `from` on, `facts`
    /// yielding each destination's domain and upload (a corrupt blob as an error).
    fn scan_packed(
        &self,
        from: Day,
        mut f: impl FnMut(i32, i64, i64, &mut dyn Iterator<Item = Result<(i64, u64)>>) -> Result<()>,
    ) -> Result<()> {
        let mut st = self.conn.prepare_cached(
            "SELECT day, user_id, device_id, facts FROM traffic_packed WHERE day >= ?1 ORDER BY day, user_id, device_id",
        )?;
        let mut rows = st.query([from.0])?;
        while let Some(r) = rows.next()? {
            let (day, user, device): (i32, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let blob = r.get_ref(3)?.as_blob().map_err(|e| StoreError::Invalid(format!("packed facts: {e}")))?;
            let mut facts = Unpack::<Counters>::new(blob)
                .map(|e| e.map(|e| (e.id, e.v.bytes_up)).map_err(|e| StoreError::Invalid(e.to_string())));
            f(day, user, device, &mut facts)?;
        }
        Ok(())
    }

    pub fn device_names(&self, ids: &[DeviceId]) -> Result<HashMap<DeviceId, String>> {
        let mut st = self.conn.prepare_cached("SELECT name FROM devices WHERE id = ?1")?;
        let mut out = HashMap::new();
        for id in ids {
            if let Some(n) = st.query_row([id.0], |r| r.get::<_, String>(0)).optional()? {
                out.insert(*id, n);
            }
        }
        Ok(out)
    }

    // ---- alerts ----

    /// Open alerts raised by the built-in policies (MDCA's own alerts are not merged).
    pub fn open_policy_alerts(&self) -> Result<Vec<OpenAlert>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, policy, user_id, app_id, count, first_seen, last_seen FROM alerts
             WHERE status = 'open' AND app_id IS NOT NULL",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, policy, user, app, count, first, last) = row?;
            let Some(policy) = PolicyKind::parse(&policy) else { continue };
            out.push(OpenAlert {
                id: AlertId(id),
                key: DedupKey { policy, user: user.map(UserId), app: AppId(app) },
                count: u(count),
                first_seen: Day::from_unix(first),
                last_seen: Day::from_unix(last),
            });
        }
        Ok(out)
    }

    pub fn insert_alert(&self, c: &AlertCandidate) -> Result<AlertId> {
        let (Some(first), Some(last)) = (c.first_seen(), c.last_seen()) else {
            return Err(StoreError::Invalid("an alert needs at least one trigger day".into()));
        };
        self.conn
            .prepare_cached(
                "INSERT INTO alerts(policy, dedup_key, title, severity, status, user_id, device_id, app_id, evidence,
                   count, first_seen, last_seen, devices)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                c.key.policy.as_str(),
                c.key.to_string(),
                c.title,
                c.severity.to_i64(),
                c.key.user.map(|u| u.0),
                c.devices.first().map(|d| d.0),
                c.key.app.0,
                c.description,
                c.trigger_days.len() as i64,
                first.start_unix(),
                last.start_unix(),
                device_list(&c.devices),
            ])?;
        Ok(AlertId(self.conn.last_insert_rowid()))
    }

    /// A repeat trigger of an open alert: new count and last seen, and a new version so the
    /// next SIEM export sends it again.
    #[allow(clippy::too_many_arguments)]
    pub fn bump_alert(
        &self,
        id: AlertId,
        count: u64,
        last_seen: Day,
        severity: Severity,
        evidence: &str,
        devices: &[DeviceId],
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE alerts SET count = ?2, last_seen = max(last_seen, ?3), severity = ?4, evidence = ?5,
                   devices = ?6, device_id = coalesce(?7, device_id), version = version + 1 WHERE id = ?1",
            )?
            .execute(params![
                id.0,
                i(count),
                last_seen.start_unix(),
                severity.to_i64(),
                evidence,
                device_list(devices),
                devices.first().map(|d| d.0)
            ])?;
        Ok(())
    }

    /// Re-labels the open alerts of the policies whose severity changed. Returns how many.
    pub fn relabel_open_alerts(&self, severities: &crate::actions::policy::PolicySeverities) -> Result<usize> {
        let mut n = 0;
        for k in PolicyKind::ALL {
            n += self.conn.execute(
                "UPDATE alerts SET severity = ?2, version = version + 1
                 WHERE status = 'open' AND policy = ?1 AND severity != ?2",
                params![k.as_str(), severities.for_kind(k).to_i64()],
            )?;
        }
        Ok(n)
    }

    /// Resolves, dismisses or re-opens an alert, audited. Re-opening fails when another alert
    /// for the same key is already open.
    pub fn set_alert_status(&self, id: AlertId, status: AlertStatus, actor: &str, ts: i64) -> Result<AlertStatus> {
        self.in_transaction(|s| {
            let (old, title): (String, String) = s
                .conn
                .query_row("SELECT status, title FROM alerts WHERE id = ?1", [id.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or_else(|| StoreError::Invalid(format!("no alert with id {}", id.0)))?;
            let old = AlertStatus::parse(&old).unwrap_or(AlertStatus::Open);
            s.conn.execute(
                "UPDATE alerts SET status = ?2, version = version + 1 WHERE id = ?1",
                params![id.0, status.as_str()],
            )?;
            let detail = serde_json::json!({ "alert_id": id.0, "title": title }).to_string();
            s.append_audit(ts, actor, "alert", &format!("alert:{}", id.0), old.as_str(), status.as_str(), &detail)?;
            Ok(old)
        })
    }

    /// Policy alerts for a SIEM: those changed since the last export, or all of them.
    pub fn alerts_for_export(&self, all: bool) -> Result<Vec<ExportRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT l.id, l.policy, l.dedup_key, l.title, l.evidence, l.severity, l.user_id, u.upn, l.app_id,
               coalesce(a.name, ''), l.devices, l.count, l.first_seen, l.last_seen, l.version, l.exported_version
             FROM alerts l LEFT JOIN users u ON u.id = l.user_id LEFT JOIN apps a ON a.id = l.app_id
             WHERE l.app_id IS NOT NULL AND (?1 OR l.version > l.exported_version) ORDER BY l.id",
        )?;
        let rows = st.query_map([all], |r| {
            let exported_version = u(r.get(15)?);
            Ok((
                r.get::<_, String>(1)?,
                ExportRow {
                    record: AlertRecord {
                        id: AlertId(r.get(0)?),
                        event: if exported_version == 0 { AlertEvent::New } else { AlertEvent::Update },
                        key: r.get(2)?,
                        policy: PolicyKind::UnsanctionedAppUsed,
                        title: r.get(3)?,
                        description: r.get(4)?,
                        severity: Severity::from_i64(r.get(5)?),
                        user: r.get::<_, Option<i64>>(6)?.map(UserId),
                        upn: r.get(7)?,
                        app: AppId(r.get(8)?),
                        app_name: r.get(9)?,
                        devices: parse_device_list(&r.get::<_, String>(10)?),
                        count: u(r.get(11)?),
                        first_seen: Day::from_unix(r.get(12)?),
                        last_seen: Day::from_unix(r.get(13)?),
                        exported_at: 0,
                    },
                    version: u(r.get(14)?),
                    exported_version,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (policy, mut e) = row?;
            // MDCA's own alerts (policy "mdca") are not ours to re-export.
            let Some(policy) = PolicyKind::parse(&policy) else { continue };
            e.record.policy = policy;
            out.push(e);
        }
        Ok(out)
    }

    pub fn mark_alerts_exported(&self, rows: &[ExportRow]) -> Result<()> {
        self.in_transaction(|s| {
            let mut st = s.conn.prepare_cached("UPDATE alerts SET exported_version = ?2 WHERE id = ?1")?;
            for r in rows {
                st.execute(params![r.record.id.0, i(r.version)])?;
            }
            Ok(())
        })
    }
}

/// One outbox row as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub op: String,
    pub value: String,
    pub status: String,
    pub error: String,
    pub updated: i64,
}
