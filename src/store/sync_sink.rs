//! The store side of sync: every API page lands in one transaction together with its
//! watermark, so a sync killed between pages resumes without gaps or double counts.
//!
//! Names are interned exactly as the import pipeline does (users lower-cased, devices as the
//! source spells them, hosts through the catalog), so synced and imported rows join.
use super::write::{Counters, EdgeKey, FactBatch, FactKey};
use super::{Result, Store, StoreError, i};
use crate::catalog::{Catalog, Identified};
use crate::domain::{AppId, DeviceId, DomainId, UNKNOWN_DEVICE, UNKNOWN_USER, UserId};
use crate::sync::{
    DiscoveredApp, MdcaAlert, RiskyUser, SinkError, SourceKind, SyncSink, SyncedDevice, SyncedLogon, SyncedTraffic,
    Watermark,
};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// Stable key of a source in `sync_state` (the enum's variant name).
pub fn source_key(source: SourceKind) -> String {
    format!("{source:?}")
}

/// Writes sync pages into the cache. Caches ids across pages; the caches are dropped whenever
/// a page rolls back, since ids minted inside it no longer exist.
pub struct StoreSink<'a> {
    store: &'a Store,
    catalog: &'a Catalog,
    users: HashMap<String, UserId>,
    devices: HashMap<String, DeviceId>,
    hosts: HashMap<String, (DomainId, AppId)>,
}

/// Rows per `apply_batch` within a page's transaction. A window's answer reaches 100,000–
/// 500,000 rows, and `apply_batch` builds several maps the size of its input; every upsert
/// adds or takes min/max, so applying a page in parts gives the same cache.
const BATCH_ROWS: usize = 16_384;

fn lower_trim(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty() && t != "-").then(|| t.to_lowercase())
}

fn sink_err(e: StoreError) -> SinkError {
    SinkError::new(e.to_string())
}

impl<'a> StoreSink<'a> {
    pub fn new(store: &'a Store, catalog: &'a Catalog) -> StoreSink<'a> {
        StoreSink { store, catalog, users: HashMap::new(), devices: HashMap::new(), hosts: HashMap::new() }
    }

    /// Runs `f` and the watermark write in one transaction.
    fn page(&mut self, wm: &Watermark, f: impl FnOnce(&mut Self) -> Result<()>) -> std::result::Result<(), SinkError> {
        let result = (|| {
            self.store.begin()?;
            f(self)?;
            self.store.save_watermark(wm)?;
            self.store.commit()
        })();
        if let Err(e) = result {
            let _ = self.store.rollback();
            self.users.clear();
            self.devices.clear();
            self.hosts.clear();
            return Err(sink_err(e));
        }
        Ok(())
    }

    fn user(&mut self, name: Option<&str>) -> Result<UserId> {
        let Some(key) = name.and_then(lower_trim) else { return Ok(UNKNOWN_USER) };
        if let Some(id) = self.users.get(&key) {
            return Ok(*id);
        }
        let id = self.store.intern_user(&key)?;
        self.users.insert(key, id);
        Ok(id)
    }

    fn device(&mut self, name: &str) -> Result<DeviceId> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(UNKNOWN_DEVICE);
        }
        if let Some(id) = self.devices.get(name) {
            return Ok(*id);
        }
        let id = self.store.intern_device(name)?;
        self.devices.insert(name.to_string(), id);
        Ok(id)
    }

    fn host(&mut self, host: &str) -> Result<Option<(DomainId, AppId)>> {
        let Some(key) = lower_trim(host.trim().trim_end_matches('.')) else { return Ok(None) };
        if let Some(v) = self.hosts.get(&key) {
            return Ok(Some(*v));
        }
        let v = self.store.intern_host(&key, self.catalog)?;
        self.hosts.insert(key, v);
        Ok(Some(v))
    }

    fn write_devices(&mut self, page: &[SyncedDevice]) -> Result<()> {
        for d in page {
            let id = self.device(&d.name)?;
            if id == UNKNOWN_DEVICE {
                continue;
            }
            let tags = if d.tags.is_empty() { None } else { serde_json::to_string(&d.tags).ok() };
            let mut st = self.store.conn.prepare_cached(
                "UPDATE devices SET os = coalesce(?2, os), device_group = coalesce(?3, device_group),
                    exposure = coalesce(?4, exposure), mde_risk = coalesce(?5, mde_risk),
                    last_seen = max(coalesce(last_seen, 0), coalesce(?6, 0)), mde_id = ?7, mde_tags = ?8
                 WHERE id = ?1",
            )?;
            st.execute(params![
                id.0,
                d.os_platform,
                d.device_group,
                d.exposure_level,
                d.risk_score,
                d.last_seen_unix,
                d.id,
                tags
            ])?;
        }
        Ok(())
    }

    fn write_logons(&mut self, page: &[SyncedLogon], wm: &Watermark) -> Result<()> {
        for chunk in page.chunks(BATCH_ROWS) {
            self.write_logon_chunk(chunk, wm)?;
        }
        Ok(())
    }

    fn write_logon_chunk(&mut self, page: &[SyncedLogon], wm: &Watermark) -> Result<()> {
        let mut batch = FactBatch::default();
        for l in page {
            let user = self.user(Some(l.upn.as_deref().unwrap_or(&l.account)))?;
            let device = self.device(&l.device_name)?;
            let first = l.first_seen_unix.or(l.last_seen_unix).unwrap_or(wm.synced_at_unix);
            let last = l.last_seen_unix.unwrap_or(first);
            // MDE's logon-user list is a snapshot without counts: adding 0 keeps a re-read
            // pass from inflating the edge.
            let key = EdgeKey { user, device, source: l.source.name() };
            batch.add_edge(key, first, l.logon_count.unwrap_or(0));
            batch.add_edge(key, last, 0);
        }
        self.store.apply_batch(&batch)
    }

    fn write_traffic(&mut self, page: &[SyncedTraffic]) -> Result<()> {
        for chunk in page.chunks(BATCH_ROWS) {
            self.write_traffic_chunk(chunk)?;
        }
        Ok(())
    }

    fn write_traffic_chunk(&mut self, page: &[SyncedTraffic]) -> Result<()> {
        let mut batch = FactBatch::default();
        for t in page {
            let Some((domain, app)) = self.host(&t.remote_host)? else { continue };
            let user = self.user(t.account.as_deref())?;
            let device = self.device(&t.device)?;
            let c = Counters {
                bytes_up: t.bytes_up.unwrap_or(0),
                bytes_down: t.bytes_down.unwrap_or(0),
                transactions: t.connections,
                blocked: 0,
            };
            batch.add_fact(FactKey { day: t.day, app, domain, user, device }, &c);
            if user != UNKNOWN_USER && device != UNKNOWN_DEVICE {
                batch.add_edge(EdgeKey { user, device, source: "traffic" }, t.day.start_unix(), 0);
            }
        }
        self.store.apply_batch(&batch)
    }

    fn write_risky_users(&mut self, page: &[RiskyUser], wm: &Watermark) -> Result<()> {
        for r in page.iter().filter(|r| !r.is_deleted) {
            let user = self.user(Some(&r.upn))?;
            if user == UNKNOWN_USER {
                continue;
            }
            self.store.set_identity_risk(
                user,
                r.risk,
                &r.risk_state,
                &r.risk_detail,
                r.last_updated_unix.unwrap_or(wm.synced_at_unix),
            )?;
            if let Some(name) = &r.display_name {
                self.store.conn.execute(
                    "UPDATE users SET display_name = coalesce(display_name, ?2) WHERE id = ?1",
                    params![user.0, name],
                )?;
            }
        }
        Ok(())
    }

    /// The local app MDCA's app corresponds to: by domain (cache, then catalog), else by
    /// name, else a new app so MDCA's view shows up beside ours.
    fn local_app(&mut self, a: &DiscoveredApp) -> Result<Option<AppId>> {
        let domains: Vec<String> =
            a.domains.iter().filter_map(|d| lower_trim(d.trim().trim_end_matches('.'))).collect();
        for d in &domains {
            let known: Option<i64> = self
                .store
                .conn
                .prepare_cached("SELECT app_id FROM domains WHERE name = ?1")?
                .query_row([d], |r| r.get(0))
                .optional()?;
            if let Some(app) = known {
                return Ok(Some(AppId(app)));
            }
            if let Identified::App { .. } = self.catalog.identify_host(d) {
                return self.host(d).map(|v| v.map(|(_, app)| app));
            }
        }
        if let Some(name) = lower_trim(&a.name) {
            let by_name: Option<i64> = self
                .store
                .conn
                .prepare_cached("SELECT id FROM apps WHERE lower(name) = ?1 ORDER BY unknown, id LIMIT 1")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            if let Some(app) = by_name {
                return Ok(Some(AppId(app)));
            }
        }
        match (domains.first(), lower_trim(&a.name)) {
            (Some(d), _) => self.host(d).map(|v| v.map(|(_, app)| app)),
            (None, Some(name)) => self.store.ensure_unknown_app(&name, self.catalog).map(Some),
            (None, None) => Ok(None),
        }
    }

    fn write_discovered_apps(&mut self, page: &[DiscoveredApp]) -> Result<()> {
        for a in page {
            let Some(app) = self.local_app(a)? else { continue };
            // Only MDCA's columns: the analyst's own tag is never taken from MDCA. Two discovered
            // apps on one local app (two streams): the later page's figures stand, as for the score.
            self.store.conn.execute(
                "UPDATE apps SET mdca_score = coalesce(?2, mdca_score), mdca_tag = ?3, mdca_id = ?4, mdca_users = ?5,
                    mdca_transactions = ?6, mdca_upload = ?7, mdca_download = ?8, mdca_last_seen = ?9
                 WHERE id = ?1",
                params![
                    app.0,
                    a.risk_score.map(|s| s as f64),
                    a.tag.as_str(),
                    a.id,
                    i(a.users),
                    i(a.transactions),
                    i(a.upload_bytes),
                    i(a.download_bytes),
                    a.last_seen_unix
                ],
            )?;
        }
        Ok(())
    }

    fn alert_user(&self, label: &str) -> Result<Option<i64>> {
        let Some(upn) = lower_trim(label) else { return Ok(None) };
        Ok(self
            .store
            .conn
            .prepare_cached("SELECT id FROM users WHERE upn = ?1 AND id != 0")?
            .query_row([upn], |r| r.get(0))
            .optional()?)
    }

    fn alert_app(&self, label: &str) -> Result<Option<i64>> {
        let Some(l) = lower_trim(label.trim_end_matches('.')) else { return Ok(None) };
        let by_domain: Option<i64> = self
            .store
            .conn
            .prepare_cached("SELECT app_id FROM domains WHERE name = ?1")?
            .query_row([&l], |r| r.get(0))
            .optional()?;
        if by_domain.is_some() {
            return Ok(by_domain);
        }
        let bare = l.strip_prefix("www.").unwrap_or(&l);
        Ok(self
            .store
            .conn
            .prepare_cached("SELECT id FROM apps WHERE lower(name) = ?1 ORDER BY unknown, id LIMIT 1")?
            .query_row([bare], |r| r.get(0))
            .optional()?)
    }

    fn write_alerts(&mut self, page: &[MdcaAlert]) -> Result<()> {
        for a in page {
            let (mut user, mut app) = (None, None);
            for e in &a.entities {
                let kind = e.kind.to_ascii_lowercase();
                if user.is_none() && (kind.contains("account") || kind.contains("user")) {
                    user = self.alert_user(&e.label)?;
                } else if app.is_none() && (kind.contains("service") || kind.contains("app")) {
                    app = self.alert_app(&e.label)?;
                }
            }
            let status = if a.is_open == Some(false) { "resolved" } else { "open" };
            let key = format!("mdca:{}", a.id);
            let evidence =
                serde_json::json!({ "url": a.url, "stories": a.stories, "entities": a.entities }).to_string();
            let existing: Option<(i64, String)> = self
                .store
                .conn
                .prepare_cached("SELECT id, status FROM alerts WHERE dedup_key = ?1 ORDER BY id DESC LIMIT 1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match existing {
                // The same MDCA alert read again is not a new occurrence: refresh, do not count.
                Some((id, old_status)) => {
                    self.store.conn.execute(
                        "UPDATE alerts SET title = ?2, severity = ?3, status = ?4, user_id = coalesce(?5, user_id),
                            app_id = coalesce(?6, app_id), evidence = ?7, last_seen = max(last_seen, ?8),
                            version = version + (?4 != ?9)
                         WHERE id = ?1",
                        params![
                            id,
                            a.title,
                            a.severity.to_i64(),
                            status,
                            user,
                            app,
                            evidence,
                            a.timestamp_unix,
                            old_status
                        ],
                    )?;
                }
                None => {
                    self.store.conn.execute(
                        "INSERT INTO alerts(policy, dedup_key, title, severity, status, user_id, app_id, evidence,
                            count, first_seen, last_seen)
                         VALUES ('mdca', ?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)",
                        params![key, a.title, a.severity.to_i64(), status, user, app, evidence, a.timestamp_unix],
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl SyncSink for StoreSink<'_> {
    fn devices(&mut self, page: &[SyncedDevice], wm: &Watermark) -> std::result::Result<(), SinkError> {
        self.page(wm, |s| s.write_devices(page))
    }
    fn logons(&mut self, page: &[SyncedLogon], wm: &Watermark) -> std::result::Result<(), SinkError> {
        self.page(wm, |s| s.write_logons(page, wm))
    }
    fn traffic(&mut self, page: &[SyncedTraffic], wm: &Watermark) -> std::result::Result<(), SinkError> {
        self.page(wm, |s| s.write_traffic(page))
    }
    fn risky_users(&mut self, page: &[RiskyUser], wm: &Watermark) -> std::result::Result<(), SinkError> {
        self.page(wm, |s| s.write_risky_users(page, wm))
    }
    fn discovered_apps(&mut self, page: &[DiscoveredApp], wm: &Watermark) -> std::result::Result<(), SinkError> {
        self.page(wm, |s| s.write_discovered_apps(page))
    }
    fn mdca_alerts(&mut self, page: &[MdcaAlert], wm: &Watermark) -> std::result::Result<(), SinkError> {
        self.page(wm, |s| s.write_alerts(page))
    }
    fn watermark(&self, source: SourceKind) -> Option<Watermark> {
        match self.store.watermark(source) {
            Ok(w) => w,
            Err(e) => {
                // Unreadable state means "start over": re-reading is safe, skipping is not.
                tracing::warn!(%e, "cannot read the sync watermark");
                None
            }
        }
    }
}

/// Last sync of one source, for the console's status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub source: String,
    pub watermark: Option<Watermark>,
    pub last_run: Option<i64>,
    pub last_error: Option<String>,
}

impl Store {
    pub fn save_watermark(&self, wm: &Watermark) -> Result<()> {
        let json = serde_json::to_string(wm).map_err(|e| StoreError::Invalid(format!("watermark: {e}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO sync_state(source, watermark, last_run, last_error) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT(source) DO UPDATE SET watermark = excluded.watermark, last_run = excluded.last_run,
                    last_error = NULL",
            )?
            .execute(params![source_key(wm.source), json, wm.synced_at_unix])?;
        Ok(())
    }

    pub fn watermark(&self, source: SourceKind) -> Result<Option<Watermark>> {
        let json: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT watermark FROM sync_state WHERE source = ?1")?
            .query_row([source_key(source)], |r| r.get(0))
            .optional()?;
        Ok(json.flatten().and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Records how a source's run ended (`error` = None clears the previous error).
    pub fn record_sync_outcome(&self, source: &str, now: i64, error: Option<&str>) -> Result<()> {
        let error = error.map(|e| crate::sanitize::display_safe(e).into_owned());
        self.conn.execute(
            "INSERT INTO sync_state(source, last_run, last_error) VALUES (?1, ?2, ?3)
             ON CONFLICT(source) DO UPDATE SET last_run = excluded.last_run, last_error = excluded.last_error",
            params![source, now, error],
        )?;
        Ok(())
    }

    pub fn sync_states(&self) -> Result<Vec<SyncState>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT source, watermark, last_run, last_error FROM sync_state ORDER BY source")?;
        let rows = st.query_map([], |r| {
            let wm: Option<String> = r.get(1)?;
            Ok(SyncState {
                source: r.get(0)?,
                watermark: wm.and_then(|j| serde_json::from_str(&j).ok()),
                last_run: r.get(2)?,
                last_error: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
