//! The app and user summaries the views read, rebuilt from the roll-ups in one pass each.
//!
//! In SQL these were five passes over `app_user` (one per period, through correlated counts) and
//! a join that looked every `app_user` row up through its by-user index: 165 ms of a 1 M-line
//! Squid import's 1 s. Streaming the roll-ups in primary-key order and summing in memory reads
//! each row once.
use super::packed::{Keyed, Span, Unpack};
use super::schema::UsageTables;
use super::write::FastMap;
use super::{Result, Store, StoreError};
use crate::domain::{Day, Period, Tag};
use rusqlite::params;

const PERIODS: usize = Period::PRESETS.len();

/// Below this effective score an app counts as high-risk in a user's `risky_up`.
const RISKY_SCORE: f64 = 3.5;

/// One app's sums for each preset period.
#[derive(Default)]
struct AppSums {
    users: [i64; PERIODS],
    devices: [i64; PERIODS],
    bytes_up: [i64; PERIODS],
    bytes_down: [i64; PERIODS],
    transactions: [i64; PERIODS],
    /// First and last day with traffic in the period; None = no traffic in it.
    span: [Option<(i64, i64)>; PERIODS],
}

/// One user's (or device's) sums over all apps.
#[derive(Default)]
struct OwnerSums {
    apps: i64,
    bytes_up: i64,
    bytes_down: i64,
    unsanctioned_up: i64,
    risky_up: i64,
    last_day: Option<i64>,
}

/// Whether uploads to an app count as unsanctioned, and as high-risk.
#[derive(Default, Clone, Copy)]
struct AppClass {
    unsanctioned: bool,
    risky: bool,
}

/// What one pass over an app roll-up (`app_user` or `app_device`) adds up: each owner's sums
/// over its apps, and each app's count of known owners active in each period.
#[derive(Default)]
struct UsagePass {
    owners: FastMap<i64, OwnerSums>,
    active: FastMap<i64, [i64; PERIODS]>,
}

impl Store {
    /// `app_summary`, `user_summary` (alerts and score zero: `refresh_user_alerts` fills those
    /// in) and `device_summary`, from one read of each roll-up. The caller owns the transaction.
    pub(super) fn rebuild_summaries(&self, latest: Day) -> Result<()> {
        let cuts: [i64; PERIODS] = Period::PRESETS.map(|p| i64::from(p.cutoff(latest).0));
        let classes = self.app_classes()?;
        let users = self.usage_pass(UsageTables::USER, &cuts, &classes)?;
        // Device summaries keep no unsanctioned or high-risk uploads: no class to look up per row.
        let devices = self.usage_pass(UsageTables::DEVICE, &cuts, &FastMap::default())?;
        self.rebuild_app_summary(&cuts, &users.active, &devices.active)?;
        self.write_user_summary(&users.owners)?;
        self.write_device_summary(&devices.owners)
    }

    fn app_classes(&self) -> Result<FastMap<i64, AppClass>> {
        let mut classes = FastMap::default();
        let mut st = self.conn.prepare("SELECT id, tag, score FROM apps")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let unsanctioned = r.get::<_, i64>(1)? == Tag::Unsanctioned.to_i64();
            let risky = r.get::<_, Option<f64>>(2)?.is_some_and(|s| s < RISKY_SCORE);
            classes.insert(r.get(0)?, AppClass { unsanctioned, risky });
        }
        Ok(classes)
    }

    /// Reads a roll-up's packed rows by app once, for both the owners' sums and the apps' owner
    /// counts. Decoding the blobs here rather than through `usage_of` spares SQLite one row per
    /// app × owner (153,351 for a 1 M-line log).
    fn usage_pass(&self, t: UsageTables, cuts: &[i64; PERIODS], classes: &FastMap<i64, AppClass>) -> Result<UsagePass> {
        let mut pass = UsagePass::default();
        let mut st = self.conn.prepare(&format!("SELECT app_id, {} FROM {}", t.owners, t.by_app))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let app: i64 = r.get(0)?;
            let class = classes.get(&app).copied().unwrap_or_default();
            let blob = r.get_ref(1)?.as_blob().map_err(|e| StoreError::Invalid(format!("app {app}'s usage: {e}")))?;
            for entry in Unpack::<Span>::new(blob) {
                let Keyed { id: owner, v } = entry.map_err(|e| StoreError::Invalid(e.to_string()))?;
                pass.add(app, owner, &v, class, cuts);
            }
        }
        Ok(pass)
    }
}

impl UsagePass {
    fn add(&mut self, app: i64, owner: i64, v: &Span, class: AppClass, cuts: &[i64; PERIODS]) {
        let (up, down, last) = (super::i(v.bytes_up), super::i(v.bytes_down), i64::from(v.last));
        let o = self.owners.entry(owner).or_default();
        o.apps += 1;
        o.bytes_up = o.bytes_up.saturating_add(up);
        o.bytes_down = o.bytes_down.saturating_add(down);
        if class.unsanctioned {
            o.unsanctioned_up = o.unsanctioned_up.saturating_add(up);
        }
        if class.risky {
            o.risky_up = o.risky_up.saturating_add(up);
        }
        o.last_day = Some(o.last_day.map_or(last, |l| l.max(last)));
        if owner != 0 {
            let counts = self.active.entry(app).or_default();
            for (i, cut) in cuts.iter().enumerate() {
                counts[i] += i64::from(last >= *cut);
            }
        }
    }
}

impl Store {
    /// `app_summary` for every preset period, with the apps' active user and device counts.
    fn rebuild_app_summary(
        &self,
        cuts: &[i64; PERIODS],
        users: &FastMap<i64, [i64; PERIODS]>,
        devices: &FastMap<i64, [i64; PERIODS]>,
    ) -> Result<()> {
        let mut apps: FastMap<i64, AppSums> = FastMap::default();
        let mut st = self.conn.prepare("SELECT app_id, day, bytes_up, bytes_down, transactions FROM app_day")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (day, up, down, tx): (i64, i64, i64, i64) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let a = apps.entry(r.get(0)?).or_default();
            for (i, cut) in cuts.iter().enumerate() {
                if day >= *cut {
                    a.bytes_up[i] = a.bytes_up[i].saturating_add(up);
                    a.bytes_down[i] = a.bytes_down[i].saturating_add(down);
                    a.transactions[i] = a.transactions[i].saturating_add(tx);
                    a.span[i] = Some(a.span[i].map_or((day, day), |(f, l)| (f.min(day), l.max(day))));
                }
            }
        }
        drop(rows);
        for (id, a) in &mut apps {
            a.users = users.get(id).copied().unwrap_or_default();
            a.devices = devices.get(id).copied().unwrap_or_default();
        }
        self.conn.execute("DELETE FROM app_summary", [])?;
        let mut ins = self.conn.prepare_cached(
            "INSERT INTO app_summary(period, app_id, users, devices, bytes_up, bytes_down, transactions, first_day, last_day)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (app, a) in &apps {
            for (i, p) in Period::PRESETS.iter().enumerate() {
                let Some((first, last)) = a.span[i] else { continue };
                ins.execute(params![
                    p.days,
                    app,
                    a.users[i],
                    a.devices[i],
                    a.bytes_up[i],
                    a.bytes_down[i],
                    a.transactions[i],
                    first,
                    last
                ])?;
            }
        }
        Ok(())
    }

    /// One `user_summary` row per known user, idle ones included.
    fn write_user_summary(&self, users: &FastMap<i64, OwnerSums>) -> Result<()> {
        let devices =
            self.counts_by_id("SELECT user_id, count(DISTINCT device_id) FROM user_devices GROUP BY user_id")?;
        self.conn.execute("DELETE FROM user_summary", [])?;
        let mut ins = self.conn.prepare_cached(
            "INSERT INTO user_summary(user_id, devices, apps, bytes_up, bytes_down, unsanctioned_up, risky_up, alerts, score, last_day)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8)",
        )?;
        self.for_each_known("SELECT id FROM users WHERE id != 0", users, |id, u| {
            ins.execute(params![
                id,
                devices.get(&id).copied().unwrap_or(0),
                u.apps,
                u.bytes_up,
                u.bytes_down,
                u.unsanctioned_up,
                u.risky_up,
                u.last_day
            ])?;
            Ok(())
        })
    }

    /// One `device_summary` row per known device, idle ones included.
    fn write_device_summary(&self, devices: &FastMap<i64, OwnerSums>) -> Result<()> {
        let users =
            self.counts_by_id("SELECT device_id, count(DISTINCT user_id) FROM user_devices GROUP BY device_id")?;
        self.conn.execute("DELETE FROM device_summary", [])?;
        let mut ins = self.conn.prepare_cached(
            "INSERT INTO device_summary(device_id, users, apps, bytes_up, bytes_down, last_day)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        self.for_each_known("SELECT id FROM devices WHERE id != 0", devices, |id, d| {
            ins.execute(params![
                id,
                users.get(&id).copied().unwrap_or(0),
                d.apps,
                d.bytes_up,
                d.bytes_down,
                d.last_day
            ])?;
            Ok(())
        })
    }

    /// Calls `f` for every id `ids_sql` lists, with its sums (zero for an owner without any).
    fn for_each_known(
        &self,
        ids_sql: &str,
        sums: &FastMap<i64, OwnerSums>,
        mut f: impl FnMut(i64, &OwnerSums) -> Result<()>,
    ) -> Result<()> {
        let mut ids = self.conn.prepare(ids_sql)?;
        let mut rows = ids.query([])?;
        let none = OwnerSums::default();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            f(id, sums.get(&id).unwrap_or(&none))?;
        }
        Ok(())
    }

    /// An `(id, count)` query's rows as a map, for the summaries' per-owner counts.
    fn counts_by_id(&self, sql: &str) -> Result<FastMap<i64, i64>> {
        let mut counts = FastMap::default();
        let mut st = self.conn.prepare(sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            counts.insert(r.get(0)?, r.get(1)?);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::demo::{DemoOptions, generate};

    /// The one-pass summaries hold exactly what the SQL definitions they replaced computed,
    /// on demo data with an unsanctioned app, high-risk apps, shared devices and idle users.
    #[test]
    fn one_pass_summaries_equal_their_sql_definitions() {
        let s = Store::open_in_memory().unwrap();
        generate(&s, Catalog::builtin(), &DemoOptions { users: 80, days: 40, ..Default::default() }).unwrap();
        s.intern_user("idle@example.com").unwrap();
        // Three well-used apps scored high-risk, so `risky_up` is exercised too.
        s.conn
            .execute(
                "UPDATE apps SET risk_override = 2.0
                 WHERE id IN (SELECT app_id FROM app_user GROUP BY app_id ORDER BY sum(bytes_up) DESC LIMIT 3)",
                [],
            )
            .unwrap();
        s.refresh_summaries().unwrap();
        let latest = s.latest_day().unwrap().unwrap();
        let mut want_apps = Vec::new();
        for p in Period::PRESETS {
            let cut = p.cutoff(latest).0;
            want_apps.extend(s.dump_rows(
                &format!(
                    "SELECT {days}, d.app_id,
                       (SELECT count(*) FROM app_user u WHERE u.app_id = d.app_id AND u.last_day >= {cut} AND u.user_id != 0),
                       (SELECT count(*) FROM app_device v WHERE v.app_id = d.app_id AND v.last_day >= {cut} AND v.device_id != 0),
                       sum(d.bytes_up), sum(d.bytes_down), sum(d.transactions), min(d.day), max(d.day)
                     FROM app_day d WHERE d.day >= {cut} GROUP BY d.app_id",
                    days = p.days
                ),
            ));
        }
        want_apps.sort();
        let mut got_apps = s.dump_rows("SELECT * FROM app_summary");
        got_apps.sort();
        assert!(want_apps.len() > 100, "{}", want_apps.len());
        assert_eq!(got_apps, want_apps);

        let want_users = s.dump_rows(
            "SELECT u.id,
               (SELECT count(DISTINCT device_id) FROM user_devices e WHERE e.user_id = u.id),
               count(au.app_id), coalesce(sum(au.bytes_up), 0), coalesce(sum(au.bytes_down), 0),
               coalesce(sum(CASE WHEN a.tag = 2 THEN au.bytes_up END), 0),
               coalesce(sum(CASE WHEN a.score < 3.5 THEN au.bytes_up END), 0), max(au.last_day)
             FROM users u LEFT JOIN app_user au ON au.user_id = u.id LEFT JOIN apps a ON a.id = au.app_id
             WHERE u.id != 0 GROUP BY u.id ORDER BY u.id",
        );
        let got_users = s.dump_rows(
            "SELECT user_id, devices, apps, bytes_up, bytes_down, unsanctioned_up, risky_up, last_day
             FROM user_summary ORDER BY user_id",
        );
        assert_eq!(got_users, want_users);
        let count = |cond: &str| -> i64 {
            s.conn.query_row(&format!("SELECT count(*) FROM user_summary WHERE {cond}"), [], |r| r.get(0)).unwrap()
        };
        assert!(count("unsanctioned_up > 0") > 0 && count("risky_up > 0") > 0, "exercises both upload kinds");
        assert_eq!(count("last_day IS NULL AND apps = 0"), 1, "the idle user");

        let want_devices = s.dump_rows(
            "SELECT d.id, (SELECT count(DISTINCT user_id) FROM user_devices e WHERE e.device_id = d.id),
               count(ad.app_id), coalesce(sum(ad.bytes_up), 0), coalesce(sum(ad.bytes_down), 0), max(ad.last_day)
             FROM devices d LEFT JOIN app_device ad ON ad.device_id = d.id
             WHERE d.id != 0 GROUP BY d.id ORDER BY d.id",
        );
        assert!(want_devices.len() > 50, "{}", want_devices.len());
        assert_eq!(s.dump_rows("SELECT * FROM device_summary ORDER BY device_id"), want_devices);
    }
}
