//! Brings the cache in line with a changed catalog (`catalog import`, `catalog reapply`):
//! every stored domain is identified again, domains whose app changed move, app rows follow
//! the catalog's names and scores, and the app roll-ups are rebuilt from `traffic_daily` — all
//! in one transaction, then the summaries. The analyst's tags, tag profiles and score
//! overrides are columns of the app rows, which are updated in place and never dropped while
//! they carry any of them.
use super::schema::UsageTables;
use super::{Result, Store};
use crate::catalog::{Catalog, Identified};
use crate::domain::AppId;
use rusqlite::params;
use std::collections::{HashMap, HashSet};

/// Moves listed in a [`ReapplyReport`]; the counts stay exact beyond it.
const MAX_LISTED_MOVES: usize = 200;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReapplyReport {
    /// Domains looked at (all of them).
    pub domains: u64,
    /// Domains now attributed to another app.
    pub moved: u64,
    /// App rows created (apps of the catalog not seen in the cache before, new unknown groups).
    pub apps_created: u64,
    /// Catalog apps whose catalog score changed.
    pub apps_rescored: u64,
    /// App rows dropped: left without domains and carrying nothing of the analyst's.
    pub apps_removed: u64,
    /// The roll-ups were rebuilt (only needed when a domain moved).
    pub rollups_rebuilt: bool,
    /// The first moves, for the report.
    pub moves: Vec<DomainMove>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainMove {
    pub domain: String,
    /// App keys (`dropbox`, `unknown:example.com`).
    pub from: String,
    pub to: String,
}

struct AppInfo {
    key: String,
    unknown: bool,
}

/// Where the catalog puts a stored domain name.
enum Target {
    /// A catalog app, by its id.
    Known(String),
    /// An unknown group, by registrable domain or appliance app name.
    Unknown(String),
}

/// Mirrors how imports attribute a destination (`Store::intern_host` and the pipeline's
/// `app:<appliance name>` keys), so that a reapply with an unchanged catalog moves nothing an
/// import attributed.
fn identify(name: &str, catalog: &Catalog) -> Target {
    if let Some(vendor) = name.strip_prefix("app:") {
        return match catalog.identify_vendor_app(vendor).and_then(|i| catalog.try_get(i)) {
            Some(app) => Target::Known(app.id.clone()),
            None => Target::Unknown(vendor.to_ascii_lowercase()),
        };
    }
    match catalog.identify_host(name) {
        Identified::App { idx, .. } => match catalog.try_get(idx) {
            Some(app) => Target::Known(app.id.clone()),
            None => Target::Unknown(crate::catalog::registrable_domain(name)),
        },
        Identified::Unknown { registrable } => Target::Unknown(registrable),
    }
}

impl Store {
    /// Re-identifies every stored domain with `catalog` and rebuilds what depends on it (see
    /// the module comment). Running it twice changes nothing the second time.
    pub fn reapply_catalog(&self, catalog: &Catalog) -> Result<ReapplyReport> {
        let report = self.in_transaction(|s| s.reapply_catalog_tx(catalog))?;
        self.refresh_summaries()?;
        Ok(report)
    }

    fn reapply_catalog_tx(&self, catalog: &Catalog) -> Result<ReapplyReport> {
        let mut report = ReapplyReport::default();
        let mut apps: HashMap<i64, AppInfo> = HashMap::new();
        let mut by_key: HashMap<String, i64> = HashMap::new();
        let mut old_scores: HashMap<i64, f64> = HashMap::new();
        {
            let mut st = self.conn.prepare("SELECT id, key, unknown, catalog_score FROM apps")?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? != 0, r.get::<_, f64>(3)?))
            })?;
            for row in rows {
                let (id, key, unknown, score) = row?;
                by_key.insert(key.clone(), id);
                old_scores.insert(id, score);
                apps.insert(id, AppInfo { key, unknown });
            }
        }

        // Catalog apps already in the cache take the catalog's name, category and score;
        // `ensure_catalog_app` keeps the override in front of the new catalog score.
        for (id, info) in &apps {
            if info.unknown {
                continue;
            }
            if let Some(app) = catalog.find_by_id(&info.key).and_then(|i| catalog.try_get(i)) {
                self.ensure_catalog_app(app)?;
                if old_scores.get(id).is_none_or(|s| (s - f64::from(app.risk.score.0)).abs() > 1e-6) {
                    report.apps_rescored += 1;
                }
            }
        }
        let unknown_score = f64::from(catalog.unknown_risk().score.0);
        self.conn.execute(
            "UPDATE apps SET catalog_score = ?1, score = coalesce(risk_override, ?1) WHERE unknown = 1",
            [unknown_score],
        )?;

        let domains: Vec<(i64, String, i64)> = {
            let mut st = self.conn.prepare("SELECT id, name, app_id FROM domains ORDER BY id")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?
        };
        report.domains = domains.len() as u64;
        let mut had_domains: HashSet<i64> = HashSet::new();
        let mut update = self.conn.prepare("UPDATE domains SET app_id = ?2 WHERE id = ?1")?;
        for (domain_id, name, current) in domains {
            had_domains.insert(current);
            let (cur_key, cur_unknown) = match apps.get(&current) {
                Some(a) => (Some(a.key.clone()), a.unknown),
                None => (None, true),
            };
            let wanted_key = match identify(&name, catalog) {
                Target::Known(id) => id,
                // A catalog app the catalog still has keeps domains it no longer claims
                // (attributed by an appliance app name, by MDCA's app list, by the demo): a
                // catalog change only ever adds rules, so nothing better is known.
                Target::Unknown(_)
                    if !cur_unknown && cur_key.as_deref().is_some_and(|k| catalog.find_by_id(k).is_some()) =>
                {
                    continue;
                }
                Target::Unknown(group) => format!("unknown:{group}"),
            };
            if cur_key.as_deref() == Some(wanted_key.as_str()) {
                continue;
            }
            let target = match by_key.get(&wanted_key) {
                Some(id) => AppId(*id),
                None => {
                    let id = match wanted_key.strip_prefix("unknown:") {
                        Some(group) => self.ensure_unknown_app(group, catalog)?,
                        None => match catalog.find_by_id(&wanted_key).and_then(|i| catalog.try_get(i)) {
                            Some(app) => self.ensure_catalog_app(app)?,
                            None => continue,
                        },
                    };
                    report.apps_created += 1;
                    by_key.insert(wanted_key.clone(), id.0);
                    apps.insert(id.0, AppInfo { key: wanted_key.clone(), unknown: wanted_key.starts_with("unknown:") });
                    id
                }
            };
            if target.0 == current {
                continue;
            }
            update.execute(params![domain_id, target.0])?;
            report.moved += 1;
            if report.moves.len() < MAX_LISTED_MOVES {
                report.moves.push(DomainMove {
                    domain: name,
                    from: cur_key.unwrap_or_else(|| "?".into()),
                    to: wanted_key,
                });
            }
        }
        drop(update);

        // Apps this run emptied go, unless they are unknown-to-the-catalog-no-more rows the
        // analyst or a sync left a mark on (tag, profile, override, alert, queued indicator,
        // MDCA's id). Catalog apps stay: they are the catalog's, and cost nothing empty.
        for id in had_domains {
            let Some(info) = apps.get(&id) else { continue };
            if !info.unknown && catalog.find_by_id(&info.key).is_some() {
                continue;
            }
            report.apps_removed += self.conn.execute(
                "DELETE FROM apps WHERE id = ?1 AND tag = 0 AND tag_profile IS NULL AND risk_override IS NULL
                   AND mdca_id IS NULL
                   AND NOT EXISTS (SELECT 1 FROM domains WHERE app_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM alerts WHERE app_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM outbox WHERE app_id = ?1)",
                [id],
            )? as u64;
        }

        if report.moved > 0 {
            self.rebuild_app_rollups()?;
            report.rollups_rebuilt = true;
        }
        Ok(report)
    }

    /// app_day and the app × user / device roll-ups (both packed ends) from
    /// `traffic_daily` and the domains' current apps:
    /// the same sums `apply_batch` keeps incrementally. The caller owns the transaction.
    fn rebuild_app_rollups(&self) -> Result<()> {
        self.conn.execute_batch(
            "DELETE FROM app_day;
             INSERT INTO app_day(app_id, day, bytes_up, bytes_down, transactions, blocked)
               SELECT d.app_id, t.day, sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions), sum(t.blocked)
               FROM traffic_daily t JOIN domains d ON d.id = t.domain_id GROUP BY d.app_id, t.day;",
        )?;
        // Each app's row of owners from the facts, then each owner's row of apps from those.
        for t in [UsageTables::USER, UsageTables::DEVICE] {
            let UsageTables { by_app, owners, by_owner, owner, app_view: view, .. } = t;
            self.conn.execute_batch(&format!(
                "DELETE FROM {by_app};
                 INSERT INTO {by_app}(app_id, {owners})
                   SELECT app_id, pack_usage({owner}, f, l, up, down, tx) FROM
                     (SELECT d.app_id, t.{owner}, min(t.day) f, max(t.day) l, sum(t.bytes_up) up,
                             sum(t.bytes_down) down, sum(t.transactions) tx
                      FROM traffic_daily t JOIN domains d ON d.id = t.domain_id GROUP BY d.app_id, t.{owner})
                   GROUP BY app_id;
                 DELETE FROM {by_owner};
                 INSERT INTO {by_owner}({owner}, apps)
                   SELECT {owner}, pack_usage(app_id, first_day, last_day, bytes_up, bytes_down, transactions)
                   FROM {view} GROUP BY {owner};"
            ))?;
        }
        Ok(())
    }

    /// Every roll-up from `traffic_daily`: the app ones above plus those that do not depend on
    /// the catalog. The caller owns the transaction.
    pub(crate) fn rebuild_rollups(&self) -> Result<()> {
        self.rebuild_app_rollups()?;
        self.conn.execute_batch(
            "DELETE FROM domain_total;
             INSERT INTO domain_total(domain_id, bytes_up, bytes_down, transactions)
               SELECT domain_id, sum(bytes_up), sum(bytes_down), sum(transactions) FROM traffic_daily GROUP BY domain_id;
             DELETE FROM user_day;
             INSERT INTO user_day(user_id, day, bytes_up, bytes_down, transactions)
               SELECT user_id, day, sum(bytes_up), sum(bytes_down), sum(transactions) FROM traffic_daily GROUP BY user_id, day;
             DELETE FROM device_day;
             INSERT INTO device_day(device_id, day, bytes_up, bytes_down, transactions)
               SELECT device_id, day, sum(bytes_up), sum(bytes_down), sum(transactions)
               FROM traffic_daily GROUP BY device_id, day;",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Day, Tag};
    use crate::store::write::{Counters, FactBatch, FactKey};

    /// Two days of traffic to two known apps, two hosts of one unknown domain and one other
    /// unknown domain, from two users on two devices.
    fn seeded(catalog: &Catalog) -> Store {
        let s = Store::open_in_memory().unwrap();
        s.begin().unwrap();
        let (u1, u2) = (s.intern_user("a@x").unwrap(), s.intern_user("b@x").unwrap());
        let (d1, d2) = (s.intern_device("pc1").unwrap(), s.intern_device("pc2").unwrap());
        let mut b = FactBatch::default();
        let hosts =
            ["mail.yahoo.com", "www.yahoo.com", "a.acme-files.example", "b.acme-files.example", "other.example"];
        for (n, h) in hosts.iter().enumerate() {
            let (domain, app) = s.intern_host(h, catalog).unwrap();
            for (day, user, device) in [(100, u1, d1), (101, u2, d2), (101, u1, d2)] {
                let c = Counters { bytes_up: 10 * (n as u64 + 1), bytes_down: 1000, transactions: 2, blocked: 1 };
                b.add_fact(FactKey { day: Day(day), app, domain, user, device }, &c);
            }
        }
        s.apply_batch(&b).unwrap();
        s.commit().unwrap();
        s.refresh_summaries().unwrap();
        s
    }

    /// Every roll-up row, in key order, for comparing two ways of computing them.
    fn rollup_rows(s: &Store) -> Vec<String> {
        let mut out = Vec::new();
        for table in
            ["app_day", "domain_total", "app_user", "app_device", "user_app", "device_app", "user_day", "device_day"]
        {
            let rows = s.dump_rows(&format!("SELECT * FROM {table} ORDER BY 1, 2"));
            out.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
        }
        out
    }

    #[test]
    fn pending_rollups_are_rebuilt_exactly_as_written_incrementally() {
        let s = seeded(Catalog::builtin());
        let want = rollup_rows(&s);
        assert!(want.len() > 20, "{want:?}");
        assert!(!s.repair_rollups().unwrap(), "nothing was pending");
        // Lose every roll-up, as if the facts had been committed without them.
        s.conn
            .execute_batch(
                "DELETE FROM app_day; DELETE FROM domain_total; DELETE FROM app_user_packed;
                 DELETE FROM app_device_packed; DELETE FROM user_day; DELETE FROM device_day;
                 DELETE FROM user_app_packed; DELETE FROM device_app_packed;",
            )
            .unwrap();
        s.set_rollups_pending(true).unwrap();
        assert!(s.repair_rollups().unwrap());
        assert_eq!(rollup_rows(&s), want);
        assert!(!s.repair_rollups().unwrap(), "the mark is cleared");
    }

    fn with_acme() -> Catalog {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("acme.toml");
        std::fs::write(
            &f,
            "[[app]]\nid = \"acme-files\"\nname = \"Acme Files\"\ncategory = \"Cloud storage\"\ndomains = [\"acme-files.example\"]\n",
        )
        .unwrap();
        Catalog::builtin().clone().merge_user_file(&f).unwrap()
    }

    type Rollups = (Vec<(i64, i64, i64, i64, i64, i64)>, Vec<(i64, i64, i64, i64, i64)>, Vec<(i64, i64, i64, i64)>);

    fn rollups(s: &Store) -> Rollups {
        let q = |sql: &str| -> Vec<Vec<i64>> {
            let mut st = s.conn.prepare(sql).unwrap();
            let n = st.column_count();
            st.query_map([], |r| (0..n).map(|i| r.get(i)).collect()).unwrap().map(|r| r.unwrap()).collect()
        };
        let day = q("SELECT app_id, day, bytes_up, bytes_down, transactions, blocked FROM app_day ORDER BY 1, 2")
            .into_iter()
            .map(|v| (v[0], v[1], v[2], v[3], v[4], v[5]))
            .collect();
        let user = q("SELECT app_id, user_id, first_day, last_day, bytes_up FROM app_user ORDER BY 1, 2")
            .into_iter()
            .map(|v| (v[0], v[1], v[2], v[3], v[4]))
            .collect();
        let dev = q("SELECT app_id, device_id, first_day, bytes_down FROM app_device ORDER BY 1, 2")
            .into_iter()
            .map(|v| (v[0], v[1], v[2], v[3]))
            .collect();
        (day, user, dev)
    }

    fn app_of(s: &Store, domain: &str) -> String {
        s.conn
            .query_row("SELECT a.key FROM domains d JOIN apps a ON a.id = d.app_id WHERE d.name = ?1", [domain], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[test]
    fn unchanged_catalog_moves_nothing_and_rebuild_matches_incremental_rollups() {
        let cat = Catalog::builtin();
        let s = seeded(cat);
        let before = rollups(&s);
        let r = s.reapply_catalog(cat).unwrap();
        assert_eq!((r.domains, r.moved, r.apps_created, r.apps_removed, r.rollups_rebuilt), (5, 0, 0, 0, false));
        // The SQL rebuild gives exactly what apply_batch accumulated.
        s.in_transaction(|s| s.rebuild_app_rollups()).unwrap();
        assert_eq!(rollups(&s), before);
    }

    #[test]
    fn new_app_claims_unknown_domain_with_identical_totals() {
        let s = seeded(Catalog::builtin());
        assert_eq!(app_of(&s, "a.acme-files.example"), "unknown:acme-files.example");
        let unknown_id: i64 =
            s.conn.query_row("SELECT id FROM apps WHERE key = 'unknown:acme-files.example'", [], |r| r.get(0)).unwrap();
        let total = |s: &Store, key: &str| -> (i64, i64, i64) {
            s.conn
                .query_row(
                    "SELECT coalesce(sum(bytes_up), 0), coalesce(sum(bytes_down), 0), coalesce(sum(blocked), 0)
                     FROM app_day WHERE app_id = (SELECT id FROM apps WHERE key = ?1)",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap()
        };
        let before = total(&s, "unknown:acme-files.example");
        assert_eq!(before, (3 * 30 + 3 * 40, 6000, 6));
        let yahoo_before = total(&s, "yahoo-mail");

        let cat = with_acme();
        let r = s.reapply_catalog(&cat).unwrap();
        assert_eq!((r.moved, r.apps_created, r.apps_removed, r.rollups_rebuilt), (2, 1, 1, true));
        assert_eq!(
            r.moves.first().map(|m| (m.from.as_str(), m.to.as_str())),
            Some(("unknown:acme-files.example", "acme-files"))
        );
        assert_eq!(app_of(&s, "b.acme-files.example"), "acme-files");
        assert_eq!(total(&s, "acme-files"), before);
        assert_eq!(total(&s, "yahoo-mail"), yahoo_before);
        // The emptied, untagged unknown group is gone; the other one is untouched.
        let gone: i64 =
            s.conn.query_row("SELECT count(*) FROM apps WHERE id = ?1", [unknown_id], |r| r.get(0)).unwrap();
        assert_eq!(gone, 0);
        assert_eq!(app_of(&s, "other.example"), "unknown:other.example");
        // The new app has its catalog row, users and devices in the summary.
        let (cat_row, users, devices): (String, i64, i64) = s
            .conn
            .query_row(
                "SELECT a.category, s.users, s.devices FROM apps a JOIN app_summary s ON s.app_id = a.id AND s.period = 0
                 WHERE a.key = 'acme-files'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((cat_row.as_str(), users, devices), ("Cloud storage", 2, 2));
        // Roll-ups equal a rebuild from the facts; a second reapply is a no-op.
        let after = rollups(&s);
        s.in_transaction(|s| s.rebuild_app_rollups()).unwrap();
        assert_eq!(rollups(&s), after);
        let again = s.reapply_catalog(&cat).unwrap();
        assert_eq!((again.moved, again.apps_created, again.apps_removed), (0, 0, 0));
    }

    #[test]
    fn tags_and_overrides_survive_and_tagged_empty_unknown_app_is_kept() {
        let s = seeded(Catalog::builtin());
        let unknown = AppId(
            s.conn.query_row("SELECT id FROM apps WHERE key = 'unknown:acme-files.example'", [], |r| r.get(0)).unwrap(),
        );
        let yahoo = AppId(s.conn.query_row("SELECT id FROM apps WHERE key = 'yahoo-mail'", [], |r| r.get(0)).unwrap());
        s.in_transaction(|s| s.set_tag_tx(unknown, Tag::Unsanctioned, Some("servers"), "alice", "test", 5)).unwrap();
        s.in_transaction(|s| s.set_tag_tx(yahoo, Tag::Monitored, None, "alice", "test", 5)).unwrap();
        s.set_risk_override(yahoo, Some(2.5), "alice", "looked at it", 6).unwrap();

        let r = s.reapply_catalog(&with_acme()).unwrap();
        assert_eq!((r.moved, r.apps_removed), (2, 0));
        let (tag, profile): (i64, Option<String>) = s
            .conn
            .query_row("SELECT tag, tag_profile FROM apps WHERE id = ?1", [unknown.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((Tag::from_i64(tag), profile.as_deref()), (Tag::Unsanctioned, Some("servers")));
        let (tag, ov, score): (i64, Option<f64>, f64) = s
            .conn
            .query_row("SELECT tag, risk_override, score FROM apps WHERE id = ?1", [yahoo.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((Tag::from_i64(tag), ov, score), (Tag::Monitored, Some(2.5), 2.5));
        // The kept empty group has no traffic left in the roll-ups.
        let rows: i64 =
            s.conn.query_row("SELECT count(*) FROM app_day WHERE app_id = ?1", [unknown.0], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn catalog_score_change_reaches_known_apps_but_not_overrides() {
        let s = seeded(Catalog::builtin());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin.csv");
        std::fs::write(&f, "id,score\nyahoo-mail,9.5\nyahoo,1\n").unwrap();
        let cat = Catalog::builtin().clone().merge_user_file(&f).unwrap();
        let yahoo = AppId(s.conn.query_row("SELECT id FROM apps WHERE key = 'yahoo'", [], |r| r.get(0)).unwrap());
        s.set_risk_override(yahoo, Some(6.0), "alice", "", 1).unwrap();
        let r = s.reapply_catalog(&cat).unwrap();
        assert!(r.apps_rescored >= 1, "{r:?}");
        let scores = |key: &str| -> (f64, f64) {
            s.conn
                .query_row("SELECT catalog_score, score FROM apps WHERE key = ?1", [key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
        };
        assert_eq!(scores("yahoo-mail"), (9.5, 9.5));
        assert_eq!(scores("yahoo"), (1.0, 6.0));
    }
}
