//! Writes: interning of users / devices / hosts, per-batch fact application with roll-ups,
//! summaries, tags and settings. Callers bracket batches with `begin` / `commit` so a killed
//! process leaves either the whole batch or none of it.
use super::packed::{Packer, Span};
use super::schema::UsageTables;
use super::span_map::{Pair, SpanMap};
use super::{Result, Store, StoreError, i};
use crate::catalog::{AppIdx, Catalog, CatalogApp, Identified};
use crate::domain::{AppId, Day, DeviceId, DomainId, IdentityRisk, Severity, Tag, UserId};
use crate::packed_sort::sort_by_fields;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FactKey {
    pub day: Day,
    pub app: AppId,
    pub domain: DomainId,
    pub user: UserId,
    pub device: DeviceId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub transactions: u64,
    pub blocked: u64,
}

impl Counters {
    /// Saturating: counters read back from a cache file are not trusted to be small.
    pub fn add(&mut self, o: &Counters) {
        self.bytes_up = self.bytes_up.saturating_add(o.bytes_up);
        self.bytes_down = self.bytes_down.saturating_add(o.bytes_down);
        self.transactions = self.transactions.saturating_add(o.transactions);
        self.blocked = self.blocked.saturating_add(o.blocked);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EdgeKey {
    pub user: UserId,
    pub device: DeviceId,
    pub source: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeAgg {
    pub first_seen: i64,
    pub last_seen: i64,
    pub logons: u64,
}

impl EdgeAgg {
    pub fn merge(&mut self, ts: i64, logons: u64) {
        self.first_seen = self.first_seen.min(ts);
        self.last_seen = self.last_seen.max(ts);
        self.logons += logons;
    }
}

/// In-memory aggregate of one batch: what gets written in one transaction.
#[derive(Debug, Default)]
pub struct FactBatch {
    pub facts: HashMap<FactKey, Counters>,
    pub edges: HashMap<EdgeKey, EdgeAgg>,
}

impl FactBatch {
    pub fn add_fact(&mut self, key: FactKey, c: &Counters) {
        self.facts.entry(key).or_default().add(c);
    }
    pub fn add_edge(&mut self, key: EdgeKey, ts: i64, logons: u64) {
        self.edges.entry(key).and_modify(|e| e.merge(ts, logons)).or_insert(EdgeAgg {
            first_seen: ts,
            last_seen: ts,
            logons,
        });
    }
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty() && self.edges.is_empty()
    }
}

/// FxHash-style multiplicative hasher: the roll-up and batch keys are small integers, where
/// SipHash's flood resistance buys nothing and costs a large share of the import.
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves its entropy in the high bits, but the table picks buckets with the
        // low ones: without the rotation, host names that share a suffix crowd a few buckets.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes per step: the parser hashes a user and a host name on every line.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        let tail = chunks.remainder();
        w[..tail.len()].copy_from_slice(tail);
        self.write_u64(u64::from_le_bytes(w) ^ ((tail.len() as u64) << 59));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_i32(&mut self, v: i32) {
        self.write_u64(v as u32 as u64);
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A HashMap keyed by small integers.
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;

/// A HashSet of small integers.
pub type FastSet<T> = std::collections::HashSet<T, std::hash::BuildHasherDefault<IntHasher>>;

fn sorted<K: Ord, V>(map: FastMap<K, V>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = map.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Apps already upserted by one writer (an import): 5,000 hosts of 200 apps cost 200 app
/// upserts, not 5,000. Only valid within the transactions that created the rows.
#[derive(Default)]
pub struct EnsuredApps {
    catalog: FastMap<u32, AppId>,
    unknown: HashMap<String, AppId>,
}

impl EnsuredApps {
    /// The catalog app at `idx` (see [`Store::ensure_catalog_app`]).
    pub fn catalog_app(&mut self, store: &Store, catalog: &Catalog, idx: AppIdx) -> Result<AppId> {
        if let Some(id) = self.catalog.get(&idx.0) {
            return Ok(*id);
        }
        let id = store.ensure_catalog_app(catalog.get(idx))?;
        self.catalog.insert(idx.0, id);
        Ok(id)
    }

    /// The app the catalog assigns `host` (lower case), its row upserted once per import.
    fn app_of_host(&mut self, store: &Store, catalog: &Catalog, host: &str) -> Result<AppId> {
        match catalog.identify_host(host) {
            Identified::App { idx, .. } => self.catalog_app(store, catalog, idx),
            Identified::Unknown { registrable } => self.unknown_app(store, catalog, &registrable),
        }
    }

    /// The app for an unidentified registrable domain (see [`Store::ensure_unknown_app`]).
    pub fn unknown_app(&mut self, store: &Store, catalog: &Catalog, registrable: &str) -> Result<AppId> {
        if let Some(id) = self.unknown.get(registrable) {
            return Ok(*id);
        }
        let id = store.ensure_unknown_app(registrable, catalog)?;
        self.unknown.insert(registrable.to_owned(), id);
        Ok(id)
    }
}

/// Rows one multi-row statement writes: per-statement overhead (step, reset, halt) dominated
/// one-row statements, and more rows a statement gained nothing measurable.
const ROWS_PER_STATEMENT: usize = 64;

/// A multi-row statement's `VALUES`: `(?,…,?)` of `cols` columns, `rows` times.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * (2 * cols + 2));
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..cols {
            sql.push_str(if c == 0 { "?" } else { ",?" });
        }
        sql.push(')');
    }
    sql
}

/// `items` in runs for multi-row statements, each with its offset: full runs of
/// [`ROWS_PER_STATEMENT`], then the rest one by one. So only two statements of a kind are
/// prepared and cached, not one per remainder length crowding the connection's statement cache.
fn statement_runs<T>(items: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    let (many, rest) = items.split_at(items.len() - items.len() % ROWS_PER_STATEMENT);
    many.chunks(ROWS_PER_STATEMENT).chain(rest.chunks(1)).scan(0, |at, run| {
        let start = *at;
        *at += run.len();
        Some((start, run))
    })
}

/// The upsert clause that adds a row's three counters to the stored ones.
const SUM4: &str = "bytes_up = bytes_up + excluded.bytes_up, bytes_down = bytes_down + excluded.bytes_down,
    transactions = transactions + excluded.transactions";

/// `meta` key present while some committed facts are not yet in the roll-ups.
pub const ROLLUPS_PENDING: &str = "rollups_pending";

/// Roll-up sums of facts already written but not yet added to the roll-up tables.
#[derive(Default)]
pub struct Rollups {
    app_day: FastMap<(i64, i32), Counters>,
    domain_total: FastMap<i64, Counters>,
    app_user: SpanMap,
    app_device: SpanMap,
    user_day: FastMap<(i64, i32), Counters>,
    device_day: FastMap<(i64, i32), Counters>,
}

impl Rollups {
    /// Rows the next [`Store::write_rollups`] will write: what bounds its memory.
    pub fn rows(&self) -> usize {
        self.app_day.len()
            + self.domain_total.len()
            + self.app_user.len()
            + self.app_device.len()
            + self.user_day.len()
            + self.device_day.len()
    }
    fn prefetch(&self, k: &FactKey) {
        self.app_user.prefetch((k.app.0, k.user.0));
        self.app_device.prefetch((k.app.0, k.device.0));
    }
    /// Adds facts to the roll-ups. Any order gives the same sums; sorted by day, user and device
    /// (as [`sum_facts`] leaves them) each packed row's user and device days are looked
    /// up once rather than once per fact.
    pub fn add_facts(&mut self, facts: &[(FactKey, Counters)]) {
        // The app × owner slots of the facts this far ahead are fetched while these are summed.
        use super::span_map::AHEAD;
        let mut ahead = facts.iter().skip(AHEAD).map(|(k, _)| k);
        for k in facts.iter().take(AHEAD).map(|(k, _)| k) {
            self.prefetch(k);
        }
        for row in packed_rows(facts) {
            let head = &row[0].0;
            let mut total = Counters::default();
            for (k, c) in row {
                if let Some(later) = ahead.next() {
                    self.prefetch(later);
                }
                self.app_day.entry((k.app.0, k.day.0)).or_default().add(c);
                self.domain_total.entry(k.domain.0).or_default().add(c);
                self.app_user.merge((k.app.0, k.user.0), Span::of(k.day.0, c));
                self.app_device.merge((k.app.0, k.device.0), Span::of(k.day.0, c));
                total.add(c);
            }
            self.user_day.entry((head.user.0, head.day.0)).or_default().add(&total);
            self.device_day.entry((head.device.0, head.day.0)).or_default().add(&total);
        }
    }
}

/// What [`Rollups::into_parts`] hands out, each ready to write: the day and domain roll-ups,
/// then each app × owner roll-up sorted for both of its packed ends.
pub enum RollupPart {
    Days(DayRollups),
    /// Sorted by app, then owner.
    ByApp(Owners, Vec<(Pair, Span)>),
    /// Sorted by owner, then app.
    ByOwner(Owners, Vec<(Pair, Span)>),
}

/// Whose app roll-up a [`RollupPart`] is.
#[derive(Clone, Copy)]
pub enum Owners {
    Users,
    Devices,
}

impl Owners {
    fn tables(self) -> UsageTables {
        match self {
            Owners::Users => UsageTables::USER,
            Owners::Devices => UsageTables::DEVICE,
        }
    }
}

/// The roll-ups keyed by day (and the per-domain totals), each sorted by key.
pub struct DayRollups {
    app_day: Vec<((i64, i32), Counters)>,
    domain_total: Vec<(i64, Counters)>,
    user_day: Vec<((i64, i32), Counters)>,
    device_day: Vec<((i64, i32), Counters)>,
}

impl Rollups {
    /// Hands the roll-ups to `write` part by part, sorting each just before it goes: an import
    /// does this on its roll-up thread, so that the sorts of one part (11 ms of the 34 ms a
    /// million Squid lines' roll-ups took to write at the end of the file) overlap the writes
    /// of the part before. Stops at the first error.
    pub fn into_parts<E>(
        self,
        mut write: impl FnMut(RollupPart) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let Rollups { app_day, domain_total, app_user, app_device, user_day, device_day } = self;
        write(RollupPart::Days(DayRollups {
            app_day: sorted(app_day),
            domain_total: sorted(domain_total),
            user_day: sorted(user_day),
            device_day: sorted(device_day),
        }))?;
        for (t, map) in [(Owners::Users, app_user), (Owners::Devices, app_device)] {
            let mut by_app = map.into_vec();
            sort_by_fields(&mut by_app, |((app, owner), _)| [*app, *owner]);
            let mut by_owner = by_app.clone();
            write(RollupPart::ByApp(t, by_app))?;
            sort_by_fields(&mut by_owner, |((app, owner), _)| [*owner, *app]);
            write(RollupPart::ByOwner(t, by_owner))?;
        }
        Ok(())
    }
}

/// Sorts facts into the key order of `traffic_packed` (near-appends), then domain order within
/// a row, which the blob needs, and sums equal keys into one entry. Summed per domain: a domain
/// belongs to one app, and should a caller pair it with two, the blob still needs each domain
/// once (the first key's app gets the roll-ups).
pub fn sum_facts(facts: &mut Vec<(FactKey, Counters)>) {
    sort_by_fields(facts, |(k, _)| [i64::from(k.day.0), k.user.0, k.device.0, k.domain.0, k.app.0]);
    sum_neighbours(facts, |a, b| same_packed_row(a, b) && a.domain == b.domain);
}

/// Sums each run of neighbouring entries that `same` calls equal into its first entry: sorted
/// entries come out one per key.
pub fn sum_neighbours<K>(entries: &mut Vec<(K, Counters)>, same: impl Fn(&K, &K) -> bool) {
    entries.dedup_by(|later, kept| {
        let equal = same(&later.0, &kept.0);
        if equal {
            kept.1.add(&later.1);
        }
        equal
    });
}

/// Facts as [`sum_facts`] leaves them, one slice per `traffic_packed` row.
fn packed_rows(facts: &[(FactKey, Counters)]) -> impl Iterator<Item = &[(FactKey, Counters)]> {
    facts.chunk_by(|(a, _), (b, _)| same_packed_row(a, b))
}

/// Whether two facts belong to the same `traffic_packed` row (day × user × device).
fn same_packed_row(a: &FactKey, b: &FactKey) -> bool {
    a.day == b.day && a.user == b.user && a.device == b.device
}

/// What [`Store::set_risk_override`] changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreChange {
    /// The app's key (`dropbox`, `unknown:example.com`).
    pub key: String,
    pub old_override: Option<f64>,
    pub new_override: Option<f64>,
    pub catalog_score: f64,
    /// The effective score (override, else catalog) before and after.
    pub old_score: f64,
    pub new_score: f64,
}

/// The OS user, recorded as the actor of analyst actions.
pub fn os_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

impl Store {
    pub fn begin(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }
    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }
    pub fn rollback(&self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK")?;
        Ok(())
    }

    /// Runs `f` inside one write transaction: all of it lands, or none of it.
    pub fn in_transaction<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    pub fn intern_user(&self, upn: &str) -> Result<UserId> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO users(upn) VALUES (?1) ON CONFLICT(upn) DO UPDATE SET upn = excluded.upn RETURNING id",
        )?;
        Ok(UserId(st.query_row([upn], |r| r.get(0))?))
    }

    pub fn intern_device(&self, name: &str) -> Result<DeviceId> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO devices(name) VALUES (?1) ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id",
        )?;
        Ok(DeviceId(st.query_row([name], |r| r.get(0))?))
    }

    /// [`Store::intern_user`] for many names at once (each given once).
    pub fn intern_users(&self, upns: &[String]) -> Result<Vec<UserId>> {
        Ok(self.intern_many("users", "upn", upns)?.into_iter().map(UserId).collect())
    }

    /// [`Store::intern_device`] for many names at once (each given once).
    pub fn intern_devices(&self, names: &[String]) -> Result<Vec<DeviceId>> {
        Ok(self.intern_many("devices", "name", names)?.into_iter().map(DeviceId).collect())
    }

    /// The ids of `names` in `table(col)`, inserting those not there yet, in the order given.
    /// Sixty-four a statement: an import's first batches bring thousands of new names, and one
    /// statement each was most of the writer's time before the parsers got going.
    fn intern_many(&self, table: &str, col: &str, names: &[String]) -> Result<Vec<i64>> {
        let mut out = vec![None; names.len()];
        for (start, chunk) in statement_runs(names) {
            let sql = format!(
                "INSERT INTO {table}({col}) VALUES {} ON CONFLICT({col}) DO UPDATE SET {col} = excluded.{col}
                 RETURNING {col}, id",
                placeholders(chunk.len(), 1)
            );
            let at = chunk.iter().enumerate().map(|(i, s)| (s.as_str(), start + i)).collect();
            self.fill_by_name(&sql, rusqlite::params_from_iter(chunk), &at, &mut out, |r| r.get(1))?;
        }
        out.into_iter()
            .zip(names)
            .map(|(id, name)| id.ok_or_else(|| StoreError::Invalid(format!("{table}: no id for {name:?}"))))
            .collect()
    }

    /// Runs `sql`, whose rows start with a name, and puts each row's `value` in `out` where
    /// `at` places its name.
    fn fill_by_name<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        at: &HashMap<&str, usize>,
        out: &mut [Option<T>],
        value: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<()> {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query(params)?;
        while let Some(r) = rows.next()? {
            if let Some(slot) = r.get_ref(0)?.as_str().ok().and_then(|name| at.get(name)).and_then(|&i| out.get_mut(i))
            {
                *slot = Some(value(r)?);
            }
        }
        Ok(())
    }

    /// Inserts or refreshes a catalog app; keeps the analyst's tag and override.
    pub fn ensure_catalog_app(&self, app: &CatalogApp) -> Result<AppId> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO apps(key, name, vendor, category, unknown, catalog_score, score)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)
             ON CONFLICT(key) DO UPDATE SET name = excluded.name, vendor = excluded.vendor,
                 category = excluded.category, catalog_score = excluded.catalog_score,
                 score = coalesce(apps.risk_override, excluded.catalog_score)
             RETURNING id",
        )?;
        Ok(AppId(
            st.query_row(params![app.id, app.name, app.vendor, app.category.label(), app.risk.score.0 as f64], |r| {
                r.get(0)
            })?,
        ))
    }

    pub fn ensure_unknown_app(&self, registrable: &str, catalog: &Catalog) -> Result<AppId> {
        let key = format!("unknown:{registrable}");
        let score = catalog.unknown_risk().score.0 as f64;
        let mut st = self.conn.prepare_cached(
            "INSERT INTO apps(key, name, vendor, category, unknown, catalog_score, score)
             VALUES (?1, ?2, '', 'Unknown', 1, ?3, ?3)
             ON CONFLICT(key) DO UPDATE SET key = excluded.key RETURNING id",
        )?;
        Ok(AppId(st.query_row(params![key, registrable, score], |r| r.get(0))?))
    }

    /// Interns a destination host: its domain row and the app it belongs to.
    pub fn intern_host(&self, host: &str, catalog: &Catalog) -> Result<(DomainId, AppId)> {
        self.intern_host_with(host, catalog, &mut EnsuredApps::default())
    }

    /// [`Store::intern_host`] for many hosts: each app row is upserted once, not once per host.
    pub fn intern_host_with(
        &self,
        host: &str,
        catalog: &Catalog,
        ensured: &mut EnsuredApps,
    ) -> Result<(DomainId, AppId)> {
        let host = host.to_ascii_lowercase();
        {
            let mut st = self.conn.prepare_cached("SELECT id, app_id FROM domains WHERE name = ?1")?;
            if let Some((d, a)) =
                st.query_row([&host], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).optional()?
            {
                return Ok((DomainId(d), AppId(a)));
            }
        }
        let app = ensured.app_of_host(self, catalog, &host)?;
        self.insert_domain(&host, app).map(|d| (d, app))
    }

    /// [`Store::intern_host_with`] for many hosts at once (each given once), in the order given:
    /// the known ones looked up and the new ones inserted many to a statement.
    pub fn intern_hosts_with(
        &self,
        hosts: &[&str],
        catalog: &Catalog,
        ensured: &mut EnsuredApps,
    ) -> Result<Vec<(DomainId, AppId)>> {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        let mut out: Vec<Option<(DomainId, AppId)>> = vec![None; hosts.len()];
        let ids = |r: &rusqlite::Row<'_>| Ok((DomainId(r.get(1)?), AppId(r.get(2)?)));
        for (start, chunk) in statement_runs(&hosts) {
            let sql = format!("SELECT name, id, app_id FROM domains WHERE name IN {}", placeholders(1, chunk.len()));
            let at = chunk.iter().enumerate().map(|(i, s)| (s.as_str(), start + i)).collect();
            self.fill_by_name(&sql, rusqlite::params_from_iter(chunk), &at, &mut out, ids)?;
        }
        let mut new: Vec<(usize, &str, i64)> = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            new.push((i, host, ensured.app_of_host(self, catalog, host)?.0));
        }
        for (_, chunk) in statement_runs(&new) {
            let sql = format!(
                "INSERT INTO domains(name, app_id) VALUES {} ON CONFLICT(name) DO UPDATE SET name = excluded.name
                 RETURNING name, id, app_id",
                placeholders(chunk.len(), 2)
            );
            let at = chunk.iter().map(|&(i, host, _)| (host, i)).collect();
            let values =
                chunk.iter().flat_map(|&(_, host, app)| [rusqlite::types::Value::from(host.to_string()), app.into()]);
            self.fill_by_name(&sql, rusqlite::params_from_iter(values), &at, &mut out, ids)?;
        }
        out.into_iter()
            .zip(&hosts)
            .map(|(v, host)| v.ok_or_else(|| StoreError::Invalid(format!("domains: no id for {host:?}"))))
            .collect()
    }

    pub fn insert_domain(&self, host: &str, app: AppId) -> Result<DomainId> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO domains(name, app_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id",
        )?;
        Ok(DomainId(st.query_row(params![host, app.0], |r| r.get(0))?))
    }

    /// Writes one batch: facts, their roll-ups and user↔device edges. Must run inside
    /// `begin` / `commit`.
    pub fn apply_batch(&self, batch: &FactBatch) -> Result<()> {
        let mut facts: Vec<(FactKey, Counters)> = batch.facts.iter().map(|(k, c)| (*k, *c)).collect();
        let edges: Vec<(EdgeKey, EdgeAgg)> = batch.edges.iter().map(|(k, e)| (*k, *e)).collect();
        self.apply_rows(&mut facts, &edges)
    }

    /// Writes facts (keys may repeat: they are summed), their roll-ups and user↔device edges.
    /// Must run inside `begin` / `commit`.
    pub fn apply_rows(&self, facts: &mut Vec<(FactKey, Counters)>, edges: &[(EdgeKey, EdgeAgg)]) -> Result<()> {
        sum_facts(facts);
        self.write_facts(facts, edges)?;
        let mut rollups = Rollups::default();
        rollups.add_facts(facts);
        self.write_rollups(rollups)
    }

    /// Writes facts as [`sum_facts`] leaves them, and edges, without their roll-ups: an import
    /// sums the facts into [`Rollups`] on a thread of its own and writes each roll-up row once
    /// per file instead of once per batch (the same app × user pairs recur in every batch).
    /// Until [`Store::write_rollups`] runs, the caller must keep [`ROLLUPS_PENDING`] set in the
    /// same transactions, so that a crash in between is repaired on the next open. Must run
    /// inside `begin` / `commit`; a row's domains out of order are an error.
    pub fn write_facts(&self, facts: &[(FactKey, Counters)], edges: &[(EdgeKey, EdgeAgg)]) -> Result<()> {
        // Many rows a statement, as `upsert` writes them. A commit's rows are distinct, so no
        // two in one statement conflict.
        let rows: Vec<&[(FactKey, Counters)]> = packed_rows(facts).collect();
        let mut heads: Vec<(&FactKey, std::ops::Range<usize>)> = Vec::with_capacity(ROWS_PER_STATEMENT);
        let mut blobs = Vec::new();
        let mut blob = Vec::new();
        // The two statements' text made once: a commit has hundreds of runs.
        let sql = |n: usize| {
            format!(
                "INSERT OR FAIL INTO traffic_packed(day, user_id, device_id, facts) VALUES {}
                 ON CONFLICT DO UPDATE SET facts = merge_facts(facts, excluded.facts)",
                placeholders(n, 4)
            )
        };
        let (many, one) = (sql(ROWS_PER_STATEMENT), sql(1));
        for (_, run) in statement_runs(&rows) {
            heads.clear();
            blobs.clear();
            for &row in run {
                let mut packer = Packer::new(&mut blob);
                for (k, c) in row {
                    packer.push(k.domain.0, c).map_err(|e| StoreError::Invalid(e.to_string()))?;
                }
                let start = blobs.len();
                blobs.extend_from_slice(&blob);
                heads.push((&row[0].0, start..blobs.len()));
            }
            let mut st = self.conn.prepare_cached(if heads.len() == 1 { &one } else { &many })?;
            for (j, (head, range)) in heads.iter().enumerate() {
                st.raw_bind_parameter(4 * j + 1, head.day.0)?;
                st.raw_bind_parameter(4 * j + 2, head.user.0)?;
                st.raw_bind_parameter(4 * j + 3, head.device.0)?;
                st.raw_bind_parameter(4 * j + 4, &blobs[range.clone()])?;
            }
            st.raw_execute()?;
        }
        let mut st = self.conn.prepare_cached(
            "INSERT INTO user_devices(user_id, device_id, source, first_seen, last_seen, logons)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
                last_seen = max(last_seen, excluded.last_seen), logons = logons + excluded.logons",
        )?;
        for (k, e) in edges {
            if k.user.0 == 0 || k.device.0 == 0 {
                continue;
            }
            st.execute(params![k.user.0, k.device.0, k.source, e.first_seen, e.last_seen, i(e.logons)])?;
        }
        Ok(())
    }

    /// Adds accumulated roll-ups to their tables. Must run inside `begin` / `commit`.
    pub fn write_rollups(&self, r: Rollups) -> Result<()> {
        r.into_parts(|part| self.write_rollup_part(part))
    }

    /// Adds one part of accumulated roll-ups to its tables (see [`Rollups::into_parts`]). Must
    /// run inside `begin` / `commit`.
    pub fn write_rollup_part(&self, part: RollupPart) -> Result<()> {
        // Rows stream from the sorted entries into the upserts: a second, row-shaped copy of the
        // largest roll-up (~150,000 app × user rows) was the peak of a 1 GB import.
        match part {
            RollupPart::Days(d) => {
                let rows = d.app_day.into_iter().map(|((a, day), c)| {
                    [a, i64::from(day), i(c.bytes_up), i(c.bytes_down), i(c.transactions), i(c.blocked)]
                });
                self.upsert(
                    "app_day(app_id, day, bytes_up, bytes_down, transactions, blocked)",
                    &format!("{SUM4}, blocked = blocked + excluded.blocked"),
                    rows,
                )?;
                let rows =
                    d.domain_total.into_iter().map(|(d, c)| [d, i(c.bytes_up), i(c.bytes_down), i(c.transactions)]);
                self.upsert("domain_total(domain_id, bytes_up, bytes_down, transactions)", SUM4, rows)?;
                for (table, col, rows) in
                    [("user_day", "user_id", d.user_day), ("device_day", "device_id", d.device_day)]
                {
                    let rows = rows
                        .into_iter()
                        .map(|((x, day), c)| [x, i64::from(day), i(c.bytes_up), i(c.bytes_down), i(c.transactions)]);
                    self.upsert(&format!("{table}({col}, day, bytes_up, bytes_down, transactions)"), SUM4, rows)?;
                }
                Ok(())
            }
            RollupPart::ByApp(o, entries) => {
                let t = o.tables();
                self.upsert_usage(t.by_app, t.owners, &entries, |&(app, owner)| (app, owner))
            }
            RollupPart::ByOwner(o, entries) => {
                self.upsert_usage(o.tables().by_owner, "apps", &entries, |&(app, owner)| (owner, app))
            }
        }
    }

    /// One upsert per run of `entries` with the same row key, `split` naming each pair's row key
    /// and entry id; `entries` are sorted by both.
    fn upsert_usage(
        &self,
        table: &str,
        blob: &str,
        entries: &[(Pair, Span)],
        split: impl Fn(&Pair) -> (i64, i64),
    ) -> Result<()> {
        let mut st = self.conn.prepare_cached(&format!(
            "INSERT INTO {table} VALUES (?1, ?2) ON CONFLICT DO UPDATE SET {blob} = merge_usage({blob}, excluded.{blob})"
        ))?;
        let mut packed = Vec::new();
        for run in entries.chunk_by(|a, b| split(&a.0).0 == split(&b.0).0) {
            let mut packer = Packer::<Span>::new(&mut packed);
            for (pair, span) in run {
                packer.push(split(pair).1, span).map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
            st.execute(params![split(&run[0].0).0, &packed])?;
        }
        Ok(())
    }

    /// Marks the roll-ups as lagging the facts (or not) inside the caller's transaction.
    pub fn set_rollups_pending(&self, pending: bool) -> Result<()> {
        if pending {
            self.set_meta(ROLLUPS_PENDING, "1")
        } else {
            self.conn.execute("DELETE FROM meta WHERE key = ?1", [ROLLUPS_PENDING])?;
            Ok(())
        }
    }

    /// After a crash between an import's fact batches and its roll-up write, rebuilds every
    /// roll-up from `traffic_daily`. Returns whether anything had to be repaired.
    pub fn repair_rollups(&self) -> Result<bool> {
        let pending: Option<String> =
            self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [ROLLUPS_PENDING], |r| r.get(0)).optional()?;
        if pending.is_none() {
            return Ok(false);
        }
        self.in_transaction(|s| {
            s.rebuild_rollups()?;
            s.set_rollups_pending(false)
        })?;
        Ok(true)
    }

    /// `INSERT INTO target VALUES … ON CONFLICT DO UPDATE SET update` for every row,
    /// [`ROWS_PER_STATEMENT`] a statement and the rest one by one, as [`statement_runs`] cuts them
    /// (streamed here: the rows are never all in memory).
    fn upsert<const N: usize>(
        &self,
        target: &str,
        update: &str,
        rows: impl IntoIterator<Item = [i64; N]>,
    ) -> Result<()> {
        let sql = |n: usize| {
            // OR FAIL: a failed row need not undo the statement's earlier rows (the caller rolls
            // back the whole transaction), which spares SQLite a statement journal.
            format!("INSERT OR FAIL INTO {target} VALUES {} ON CONFLICT DO UPDATE SET {update}", placeholders(n, N))
        };
        let mut chunk: Vec<[i64; N]> = Vec::with_capacity(ROWS_PER_STATEMENT);
        let mut rows = rows.into_iter();
        let mut many = None;
        loop {
            chunk.clear();
            chunk.extend(rows.by_ref().take(ROWS_PER_STATEMENT));
            if chunk.len() < ROWS_PER_STATEMENT {
                break;
            }
            let st = match &mut many {
                Some(st) => st,
                None => many.insert(self.conn.prepare_cached(&sql(ROWS_PER_STATEMENT))?),
            };
            for (j, v) in chunk.iter().flatten().enumerate() {
                st.raw_bind_parameter(j + 1, *v)?;
            }
            st.raw_execute()?;
        }
        drop(many);
        let mut st = self.conn.prepare_cached(&sql(1))?;
        for row in &chunk {
            for (j, v) in row.iter().enumerate() {
                st.raw_bind_parameter(j + 1, *v)?;
            }
            st.raw_execute()?;
        }
        Ok(())
    }

    /// Latest day with traffic; periods end here.
    pub fn latest_day(&self) -> Result<Option<Day>> {
        let d: Option<i64> = self.conn.query_row("SELECT max(day) FROM app_day", [], |r| r.get(0))?;
        Ok(d.map(|d| Day(d as i32)))
    }

    /// Rebuilds the summary tables the views read. Runs in its own transaction.
    pub fn refresh_summaries(&self) -> Result<()> {
        self.in_transaction(Self::refresh_summaries_inner)
    }

    fn refresh_summaries_inner(&self) -> Result<()> {
        let c = &self.conn;
        c.execute("UPDATE apps SET score = coalesce(risk_override, catalog_score)", [])?;
        let latest = self.latest_day()?.unwrap_or(Day(0));
        self.rebuild_summaries(latest)?;
        self.refresh_user_alerts_inner()
    }

    /// Open-alert counts and the local risk scores that include them: all an alert run changes
    /// in the summaries, so it need not rebuild the rest.
    pub fn refresh_user_alerts(&self) -> Result<()> {
        self.in_transaction(Self::refresh_user_alerts_inner)
    }

    fn refresh_user_alerts_inner(&self) -> Result<()> {
        let c = &self.conn;
        c.execute(
            "UPDATE user_summary SET alerts = (SELECT count(*) FROM alerts l WHERE l.user_id = user_summary.user_id AND l.status = 'open')",
            [],
        )?;
        // Local risk score 0–100 (higher = riskier): identity risk from Entra/MDI, plus evidence
        // of unsanctioned and high-risk app uploads, plus open alerts.
        c.execute(
            "UPDATE user_summary SET score = min(100,
                (SELECT identity_risk FROM users WHERE id = user_id) * 20
                + CASE WHEN unsanctioned_up >= 1000000000 THEN 30 WHEN unsanctioned_up >= 100000000 THEN 20
                       WHEN unsanctioned_up > 0 THEN 10 ELSE 0 END
                + CASE WHEN risky_up >= 1000000000 THEN 15 WHEN risky_up >= 100000000 THEN 10
                       WHEN risky_up > 0 THEN 5 ELSE 0 END
                + min(alerts * 5, 15))",
            [],
        )?;
        Ok(())
    }

    pub fn set_identity_risk(
        &self,
        user: UserId,
        risk: IdentityRisk,
        state: &str,
        detail: &str,
        ts: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE users SET identity_risk = ?2, risk_state = ?3, risk_detail = ?4, risk_updated = ?5 WHERE id = ?1",
            params![user.0, risk.to_i64(), state, detail, ts],
        )?;
        Ok(())
    }

    pub fn app_tag(&self, app: AppId) -> Result<Tag> {
        let v: Option<i64> =
            self.conn.query_row("SELECT tag FROM apps WHERE id = ?1", [app.0], |r| r.get(0)).optional()?;
        v.map(Tag::from_i64).ok_or_else(|| StoreError::Invalid(format!("no app with id {app}")))
    }

    pub fn severity_setting(&self, key: &str) -> Result<Option<Severity>> {
        Ok(self.setting(key)?.as_deref().and_then(Severity::parse))
    }

    /// Sets a severity setting (`severity.global` or `severity.<policy>`) with an audit entry.
    pub fn set_severity(&self, key: &str, sev: Severity, actor: &str, ts: i64) -> Result<Option<Severity>> {
        self.in_transaction(|s| {
            let old = s.severity_setting(key)?;
            s.conn.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, sev.as_str()],
            )?;
            s.append_audit(ts, actor, "severity", key, old.map(Severity::as_str).unwrap_or(""), sev.as_str(), "")?;
            Ok(old)
        })
    }

    /// Sets (`Some`, 0–10) or clears (`None`) the analyst's score for an app, with an audit
    /// entry (action `score`, old → new override, `none` when there is none), and refreshes
    /// the summaries that depend on scores — one transaction. The override lives beside the
    /// catalog score, so catalog updates never overwrite it.
    pub fn set_risk_override(
        &self,
        app: AppId,
        score: Option<f64>,
        actor: &str,
        reason: &str,
        ts: i64,
    ) -> Result<ScoreChange> {
        if let Some(s) = score
            && !(0.0..=10.0).contains(&s)
        {
            return Err(StoreError::Invalid(format!("a score is 0–10 (10 = safest), not {s}")));
        }
        self.in_transaction(|s| {
            let row: Option<(String, Option<f64>, f64, f64)> = s
                .conn
                .query_row("SELECT key, risk_override, catalog_score, score FROM apps WHERE id = ?1", [app.0], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            let Some((key, old_override, catalog_score, old_score)) = row else {
                return Err(StoreError::Invalid(format!("no app with id {app}")));
            };
            s.conn.execute(
                "UPDATE apps SET risk_override = ?2, score = coalesce(?2, catalog_score) WHERE id = ?1",
                params![app.0, score],
            )?;
            let shown = |v: Option<f64>| v.map_or_else(|| "none".to_string(), |v| format!("{v:.1}"));
            let new_score = score.unwrap_or(catalog_score);
            let detail = serde_json::json!({
                "app_id": app.0, "reason": reason, "catalog_score": catalog_score,
                "old_score": old_score, "new_score": new_score,
            })
            .to_string();
            s.append_audit(ts, actor, "score", &key, &shown(old_override), &shown(score), &detail)?;
            s.refresh_summaries_inner()?;
            Ok(ScoreChange { key, old_override, new_override: score, catalog_score, old_score, new_score })
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn placeholders_are_rows_of_columns() {
        assert_eq!(placeholders(1, 1), "(?)");
        assert_eq!(placeholders(2, 3), "(?,?,?),(?,?,?)");
        assert_eq!(placeholders(3, 1), "(?),(?),(?)");
    }

    fn reference(mut facts: Vec<(FactKey, Counters)>) -> Vec<(FactKey, Counters)> {
        facts.sort_by_key(|(k, _)| (k.day.0, k.user.0, k.device.0, k.domain.0, k.app.0));
        sum_neighbours(&mut facts, |a, b| same_packed_row(a, b) && a.domain == b.domain);
        facts
    }

    fn fact(day: i32, user: i64, device: i64, domain: i64, app: i64, n: u64) -> (FactKey, Counters) {
        let key = FactKey {
            day: Day(day),
            app: AppId(app),
            domain: DomainId(domain),
            user: UserId(user),
            device: DeviceId(device),
        };
        (key, Counters { bytes_up: n, bytes_down: 2 * n, transactions: 1, blocked: n % 2 })
    }

    proptest! {
        // Small ranges take the packed path; ids up to i64::MAX overflow it into the fallback.
        #[test]
        fn sum_facts_agrees_with_a_plain_sort(
            raw in prop::collection::vec((0i32..40, 0i64..3000, 0i64..50, 0i64..6000, 0i64..4, 0u64..1000), 0..400),
            wide in any::<bool>(),
        ) {
            let mut facts: Vec<_> = raw.iter().map(|&(d, u, v, m, a, n)| {
                let u = if wide && u % 7 == 0 { i64::MAX - u } else { u };
                fact(19_000 + d, u, v, m, a, n)
            }).collect();
            let want = reference(facts.clone());
            sum_facts(&mut facts);
            prop_assert_eq!(facts, want);
        }
    }
}
