//! Sync into the SQLite cache against the loopback fake tenant: counts, joins with imports,
//! kill-resume, the outbox push, `config check`, and no secret in the cache file.
mod common;

use shadowscope::actions::indicators::{IndicatorAction, IndicatorSpec, OutboxOp};
use shadowscope::catalog::Catalog;
use shadowscope::domain::Severity;
use shadowscope::ingest::pipeline::{self, ImportOptions};
use shadowscope::store::{Store, StoreSink};
use shadowscope::sync::fake_tenant::{FakeTenantHandle, FakeTenantOptions, FaultKind, FaultRule, serve_fake_tenant};
use shadowscope::sync::memory_sink::MemorySink;
use shadowscope::sync::push::push_outbox;
use shadowscope::sync::run::{self, check_blocking, sync_and_push_blocking};
use shadowscope::sync::{
    CheckStatus, DiscoveredApp, IndicatorClient, MdcaAlert, RiskyUser, SinkError, SourceKind, SyncConfig, SyncSink,
    SyncedDevice, SyncedLogon, SyncedTraffic, Watermark, run_sync,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

const CANARY: &str = "canary-Secr3t-7f3a9e";

/// The fake tenant on its own runtime, so the blocking entry points can run on the test thread.
struct Fake {
    handle: FakeTenantHandle,
    _secret: tempfile::NamedTempFile,
    cfg: SyncConfig,
    _rt: tokio::runtime::Runtime,
}

fn fake() -> Fake {
    let opts = FakeTenantOptions {
        users: 30,
        devices: 20,
        days: 2,
        page_size: 7,
        apps_per_stream: 12,
        alerts: 9,
        client_secret: CANARY.into(),
        now_unix: Some(1_750_003_600),
        ..FakeTenantOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let handle = rt.block_on(serve_fake_tenant(opts)).unwrap();
    let mut secret = tempfile::NamedTempFile::new().unwrap();
    write!(secret, "{CANARY}").unwrap();
    let mut cfg = handle.sync_config(secret.path());
    cfg.windows.mde_page_size = 6;
    cfg.windows.mdca_page_size = 4;
    // Several machines per logon-user transaction, so kills land inside and between batches.
    cfg.windows.mde_logon_batch = 3;
    Fake { handle, _secret: secret, cfg, _rt: rt }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn memory_run(cfg: &SyncConfig) -> MemorySink {
    let mut sink = MemorySink::default();
    let report = block_on(run_sync(cfg, &mut sink, &|_| {}));
    assert!(report.is_ok(), "{:?}", report.errors());
    sink
}

fn q(db: &Path, sql: &str) -> i64 {
    let c = shadowscope::store::raw_connection(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

#[test]
fn full_sync_counts_match_what_the_fake_tenant_served() {
    let f = fake();
    let mem = memory_run(&f.cfg);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let out = sync_and_push_blocking(&db, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap();
    assert!(out.is_ok(), "{}", run::format_report(&out));
    assert_eq!(out.sync.total_rows(), mem.rows.values().sum::<u64>());

    let mut users = BTreeSet::new();
    let mut devices = BTreeSet::new();
    let mut edges = BTreeSet::new();
    for d in &mem.devices {
        devices.insert(d.name.clone());
    }
    for l in &mem.logons {
        let u = lower(l.upn.as_deref().unwrap_or(&l.account));
        users.insert(u.clone());
        devices.insert(l.device_name.clone());
        edges.insert((u, l.device_name.clone(), l.source.name().to_string()));
    }
    let mut tx = 0u64;
    let mut up = 0u64;
    let mut facts = BTreeSet::new();
    for t in &mem.traffic {
        let u = t.account.as_deref().map(lower);
        if let Some(u) = &u {
            users.insert(u.clone());
            edges.insert((u.clone(), t.device.clone(), "traffic".to_string()));
        }
        devices.insert(t.device.clone());
        tx += t.connections;
        up += t.bytes_up.unwrap_or(0);
        facts.insert((t.day.0, lower(&t.remote_host), u, t.device.clone()));
    }
    for r in &mem.risky_users {
        users.insert(lower(&r.upn));
    }
    assert_eq!(q(&db, "SELECT count(*) FROM users WHERE id != 0") as usize, users.len());
    assert_eq!(q(&db, "SELECT count(*) FROM devices WHERE id != 0") as usize, devices.len());
    assert_eq!(q(&db, "SELECT count(*) FROM user_devices") as usize, edges.len());
    assert_eq!(q(&db, "SELECT count(*) FROM traffic_daily") as usize, facts.len());
    assert_eq!(q(&db, "SELECT sum(transactions) FROM traffic_daily") as u64, tx);
    assert_eq!(q(&db, "SELECT sum(bytes_up) FROM traffic_daily") as u64, up);
    assert_eq!(q(&db, "SELECT sum(transactions) FROM app_day") as u64, tx);
    // Every device MDE listed carries its MDE fields.
    assert_eq!(
        q(&db, "SELECT count(*) FROM devices WHERE mde_id IS NOT NULL AND os IS NOT NULL") as usize,
        mem.devices.len()
    );
    assert!(q(&db, "SELECT count(*) FROM devices WHERE mde_tags LIKE '%VIP%'") > 0);
    // Risky users: identity risk set on exactly the users Entra reported.
    let risky: BTreeSet<String> =
        mem.risky_users.iter().filter(|r| r.risk.to_i64() > 0).map(|r| lower(&r.upn)).collect();
    assert_eq!(q(&db, "SELECT count(*) FROM users WHERE identity_risk > 0") as usize, risky.len());
    // MDCA apps: every discovered app lands on a local app; our own tags are untouched.
    let c = shadowscope::store::raw_connection(&db).unwrap();
    for a in &mem.discovered_apps {
        let d = lower(a.domains.first().unwrap());
        let (score, users, upload, last_seen): (Option<f64>, Option<i64>, Option<i64>, Option<i64>) = c
            .query_row(
                "SELECT a.mdca_score, a.mdca_users, a.mdca_upload, a.mdca_last_seen
                 FROM domains d JOIN apps a ON a.id = d.app_id WHERE d.name = ?1",
                [&d],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(score, a.risk_score.map(|s| s as f64), "{d}");
        // MDCA's own counts, kept beside ours.
        assert_eq!((users, upload), (Some(a.users as i64), Some(a.upload_bytes as i64)), "{d}");
        assert_eq!(last_seen, a.last_seen_unix, "{d}");
    }
    assert_eq!(q(&db, "SELECT count(*) FROM apps WHERE tag != 0"), 0);
    assert!(q(&db, "SELECT count(*) FROM apps WHERE mdca_tag = 'unsanctioned'") > 0);
    // MDCA alerts: one row each, mapped to users and apps where the labels match.
    assert_eq!(q(&db, "SELECT count(*) FROM alerts WHERE policy = 'mdca'") as usize, mem.mdca_alerts.len());
    assert_eq!(
        q(&db, "SELECT count(DISTINCT dedup_key) FROM alerts WHERE dedup_key LIKE 'mdca:%'") as usize,
        mem.mdca_alerts.len()
    );
    assert!(q(&db, "SELECT count(*) FROM alerts WHERE user_id IS NOT NULL") > 0);
    assert!(q(&db, "SELECT count(*) FROM alerts WHERE app_id IS NOT NULL") > 0);
    // Summaries were refreshed and each source has a watermark.
    assert!(q(&db, "SELECT count(*) FROM app_summary") > 0);
    assert!(q(&db, "SELECT count(*) FROM user_summary") > 0);
    assert_eq!(q(&db, "SELECT count(*) FROM sync_state WHERE watermark IS NOT NULL AND last_error IS NULL"), 9);

    // A second sync re-reads snapshots and adds no windowed data: nothing doubles.
    let before = snapshot(&db);
    let again = sync_and_push_blocking(&db, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap();
    assert!(again.is_ok());
    assert_eq!(snapshot(&db), before);
}

#[test]
fn synced_and_imported_devices_join() {
    let f = fake();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let only = sync_and_push_blocking(&db, Catalog::builtin(), &f.cfg, Some(SourceKind::Devices), &|_| {}).unwrap();
    assert!(only.is_ok());
    assert_eq!(only.sync.sources.len(), 1);
    let csv = dir.path().join("hunting.csv");
    std::fs::write(
        &csv,
        "Timestamp,DeviceName,ActionType,RemoteIP,RemotePort,RemoteUrl\n\
         2025-06-15T10:00:00Z,dev-000001.contoso.example,ConnectionSuccess,1.2.3.4,443,https://zoom.us/j/1\n",
    )
    .unwrap();
    let store = Store::open(&db).unwrap();
    let opts = ImportOptions { format: Some("defender-csv".into()), ..Default::default() };
    let r = pipeline::import_paths(&store, Catalog::builtin(), &[csv], &opts, &mut |_| {}).unwrap();
    assert_eq!(r[0].imported, 1);
    drop(store);
    assert_eq!(q(&db, "SELECT count(*) FROM devices WHERE name = 'dev-000001.contoso.example'"), 1);
    assert_eq!(
        q(
            &db,
            "SELECT count(*) FROM traffic_daily t JOIN devices d ON d.id = t.device_id JOIN domains m ON m.id = t.domain_id
             WHERE d.name = 'dev-000001.contoso.example' AND d.mde_id IS NOT NULL AND m.name = 'zoom.us'"
        ),
        1
    );
}

/// Counts and sums that must not depend on how the sync was split into runs.
fn snapshot(db: &Path) -> Vec<(String, i64)> {
    common::cache::snapshot(db, &[])
}

/// Fails the `fail_at`-th page commit (1-based, over all sources) before it reaches the store.
struct KilledAt<'a> {
    inner: StoreSink<'a>,
    fail_at: u64,
    calls: u64,
}

impl KilledAt<'_> {
    fn gate(&mut self) -> Result<(), SinkError> {
        self.calls += 1;
        if self.calls == self.fail_at { Err(SinkError::new("killed")) } else { Ok(()) }
    }
}

impl SyncSink for KilledAt<'_> {
    fn devices(&mut self, p: &[SyncedDevice], w: &Watermark) -> Result<(), SinkError> {
        self.gate()?;
        self.inner.devices(p, w)
    }
    fn logons(&mut self, p: &[SyncedLogon], w: &Watermark) -> Result<(), SinkError> {
        self.gate()?;
        self.inner.logons(p, w)
    }
    fn traffic(&mut self, p: &[SyncedTraffic], w: &Watermark) -> Result<(), SinkError> {
        self.gate()?;
        self.inner.traffic(p, w)
    }
    fn risky_users(&mut self, p: &[RiskyUser], w: &Watermark) -> Result<(), SinkError> {
        self.gate()?;
        self.inner.risky_users(p, w)
    }
    fn discovered_apps(&mut self, p: &[DiscoveredApp], w: &Watermark) -> Result<(), SinkError> {
        self.gate()?;
        self.inner.discovered_apps(p, w)
    }
    fn mdca_alerts(&mut self, p: &[MdcaAlert], w: &Watermark) -> Result<(), SinkError> {
        self.gate()?;
        self.inner.mdca_alerts(p, w)
    }
    fn watermark(&self, s: SourceKind) -> Option<Watermark> {
        self.inner.watermark(s)
    }
}

#[test]
fn killed_sync_resumes_to_the_same_cache() {
    let f = fake();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.db");
    assert!(sync_and_push_blocking(&whole, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap().is_ok());
    let expected = snapshot(&whole);
    let total_pages = {
        let mem = memory_run(&f.cfg);
        mem.pages.values().sum::<u64>()
    };
    for fail_at in [2, 9, total_pages / 2, total_pages - 1] {
        let db: PathBuf = dir.path().join(format!("killed-{fail_at}.db"));
        {
            let store = Store::open(&db).unwrap();
            let mut sink = KilledAt { inner: StoreSink::new(&store, Catalog::builtin()), fail_at, calls: 0 };
            let report = block_on(run_sync(&f.cfg, &mut sink, &|_| {}));
            assert!(!report.is_ok(), "page {fail_at} of {total_pages} should have failed");
        }
        let resumed = sync_and_push_blocking(&db, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap();
        assert!(resumed.is_ok(), "{}", run::format_report(&resumed));
        assert_eq!(snapshot(&db), expected, "killed at page {fail_at} of {total_pages}");
    }
}

/// A machine whose logon users cannot be read, in the middle of a batch: the batch is not
/// committed, the watermark names the last machine of the previous batch, and the resumed
/// sync ends with exactly the cache of an uninterrupted one.
#[test]
fn logon_users_failing_mid_batch_resume_to_the_same_cache() {
    let f = fake();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.db");
    assert!(sync_and_push_blocking(&whole, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap().is_ok());
    let expected = snapshot(&whole);
    let mut ids: Vec<String> = memory_run(&f.cfg)
        .logons
        .iter()
        .filter_map(|l| l.device_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 20);
    // Batches of 3: [0,1,2] [3,4,5] [6,7,8] ...; machine 7 is mid-batch.
    for broken in [1usize, 7, 19] {
        let db: PathBuf = dir.path().join(format!("broken-{broken}.db"));
        let path = format!("/mde/api/machines/{}/logonusers", ids[broken]);
        f.handle.add_fault(FaultRule::new(&path, FaultKind::ServerError(503), None));
        let store = Store::open(&db).unwrap();
        let failed = block_on(run_sync(&f.cfg, &mut StoreSink::new(&store, Catalog::builtin()), &|_| {}));
        f.handle.clear_faults();
        assert!(failed.error_for(SourceKind::LogonUsers).is_some(), "machine {broken} should have failed");
        let wm = store.watermark(SourceKind::LogonUsers).unwrap();
        drop(store);
        let committed = broken / 3 * 3;
        match committed.checked_sub(1) {
            Some(last) => {
                let wm = wm.expect("a batch was committed");
                assert!(!wm.complete);
                assert_eq!(wm.cursor.as_deref(), Some(ids[last].as_str()), "machine {broken}");
            }
            None => assert!(wm.is_none(), "nothing committed before machine {broken}"),
        }
        let logon_edges = q(&db, "SELECT count(DISTINCT device_id) FROM user_devices WHERE source = 'MDE logon users'");
        assert_eq!(logon_edges, committed as i64, "machine {broken}");
        let resumed = sync_and_push_blocking(&db, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap();
        assert!(resumed.is_ok(), "{}", run::format_report(&resumed));
        assert_eq!(snapshot(&db), expected, "broken machine {broken}");
    }
}

fn spec(value: &str, action: IndicatorAction) -> IndicatorSpec {
    IndicatorSpec {
        indicator_value: value.into(),
        indicator_type: "DomainName".into(),
        action,
        title: "Unsanctioned cloud app access was blocked".into(),
        description: format!("[shadowscope] {value}"),
        severity: Severity::Medium,
        rbac_group_names: Vec::new(),
        generate_alert: true,
        application: "Test".into(),
        expiration_time: None,
    }
}

fn queue(db: &Path, app: i64, op: &OutboxOp) -> i64 {
    let (kind, value) = match op {
        OutboxOp::Upsert(s) => ("upsert", s.indicator_value.clone()),
        OutboxOp::Delete { indicator_value, .. } => ("delete", indicator_value.clone()),
    };
    let c = shadowscope::store::raw_connection(db).unwrap();
    c.execute(
        "INSERT INTO outbox(app_id, op, indicator_value, payload, status, created, updated)
         VALUES (?1, ?2, ?3, ?4, 'pending', 100, 100)",
        rusqlite::params![app, kind, value, serde_json::to_string(op).unwrap()],
    )
    .unwrap();
    c.last_insert_rowid()
}

fn row(db: &Path, id: i64) -> (String, i64, Option<String>) {
    let c = shadowscope::store::raw_connection(db).unwrap();
    c.query_row("SELECT status, attempts, last_error FROM outbox WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

fn values_on_server(f: &Fake) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = f
        .handle
        .indicators()
        .iter()
        .map(|i| (i["indicatorValue"].as_str().unwrap().to_string(), i["action"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn outbox_upsert_delete_and_supersede() {
    let f = fake();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let store = Store::open(&db).unwrap();
    let client = IndicatorClient::new(&f.cfg).unwrap();
    let old = queue(&db, 1, &OutboxOp::Upsert(spec("mega.nz", IndicatorAction::Block)));
    let other = queue(&db, 2, &OutboxOp::Upsert(spec("wetransfer.com", IndicatorAction::Block)));
    let newer = queue(&db, 1, &OutboxOp::Upsert(spec("mega.nz", IndicatorAction::Warn)));
    let r = block_on(push_outbox(&store, &client, 200));
    assert_eq!((r.pushed, r.superseded, r.failed), (2, 1, 0), "{r:?}");
    assert_eq!(row(&db, old).0, "superseded");
    assert_eq!(row(&db, other).0, "pushed");
    assert_eq!(row(&db, newer).0, "pushed");
    assert_eq!(
        values_on_server(&f),
        vec![("mega.nz".into(), "Warn".into()), ("wetransfer.com".into(), "Block".into())]
    );

    let del =
        queue(&db, 1, &OutboxOp::Delete { indicator_value: "MEGA.nz".into(), indicator_type: "DomainName".into() });
    let gone = queue(
        &db,
        3,
        &OutboxOp::Delete { indicator_value: "never-pushed.example".into(), indicator_type: "DomainName".into() },
    );
    let r = block_on(push_outbox(&store, &client, 300));
    assert_eq!((r.pushed, r.failed), (2, 0), "{r:?}");
    assert_eq!((row(&db, del).0, row(&db, gone).0), ("pushed".into(), "pushed".into()));
    assert_eq!(values_on_server(&f), vec![("wetransfer.com".into(), "Block".into())]);
    let counts = store.outbox_status_by_app().unwrap();
    assert_eq!(counts[&shadowscope::domain::AppId(1)].pushed, 2);
    assert_eq!(counts[&shadowscope::domain::AppId(1)].pending, 0);
    // Nothing pending: no request at all.
    f.handle.clear_requests();
    let r = block_on(push_outbox(&store, &client, 400));
    assert_eq!(r.pushed, 0);
    assert!(f.handle.requests().iter().all(|q| !q.path.contains("indicators")));
}

#[test]
fn outbox_push_after_a_crash_does_not_duplicate() {
    let f = fake();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let store = Store::open(&db).unwrap();
    let client = IndicatorClient::new(&f.cfg).unwrap();
    let id = queue(&db, 1, &OutboxOp::Upsert(spec("pastebin.com", IndicatorAction::Block)));
    assert_eq!(block_on(push_outbox(&store, &client, 200)).pushed, 1);
    // The server accepted it but the mark was lost.
    shadowscope::store::raw_connection(&db)
        .unwrap()
        .execute("UPDATE outbox SET status = 'pending' WHERE id = ?1", [id])
        .unwrap();
    assert_eq!(block_on(push_outbox(&store, &client, 300)).pushed, 1);
    assert_eq!(values_on_server(&f), vec![("pastebin.com".into(), "Block".into())]);
    assert_eq!(row(&db, id).0, "pushed");
}

#[test]
fn outbox_failure_is_marked_without_secrets() {
    let f = fake();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let store = Store::open(&db).unwrap();
    let client = IndicatorClient::new(&f.cfg).unwrap();
    f.handle.add_fault(FaultRule::new("/mde/api/indicators", FaultKind::ServerError(503), None));
    let id = queue(&db, 1, &OutboxOp::Upsert(spec("mega.nz", IndicatorAction::Block)));
    let r = block_on(push_outbox(&store, &client, 200));
    assert_eq!((r.pushed, r.failed), (0, 1));
    let (status, attempts, err) = row(&db, id);
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    let err = err.unwrap();
    assert!(err.contains("503"), "{err}");
    assert!(!err.contains(CANARY));
    for t in f.handle.issued_tokens() {
        assert!(!err.contains(&t));
    }
    // Failed rows are retried on the next push.
    f.handle.clear_faults();
    assert_eq!(block_on(push_outbox(&store, &client, 300)).pushed, 1);
    assert_eq!(row(&db, id).0, "pushed");
    assert_eq!(values_on_server(&f).len(), 1);
}

#[test]
fn config_check_names_the_missing_permission() {
    let f = fake();
    f.handle.add_fault(FaultRule::new("/mde/api/machines", FaultKind::Forbidden, None));
    let checks = check_blocking(&f.cfg).unwrap();
    let devices = checks.iter().find(|c| c.source == SourceKind::Devices).unwrap();
    match &devices.status {
        CheckStatus::Failed(e) => assert!(e.to_string().contains("Machine.Read.All"), "{e}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let risky = checks.iter().find(|c| c.source == SourceKind::RiskyUsers).unwrap();
    assert!(matches!(risky.status, CheckStatus::Ok));
    let table = run::format_checks(&checks);
    assert!(table.contains("Machine.Read.All") && table.contains("FAILED"), "{table}");
    assert!(!run::checks_ok(&checks));
}

#[test]
fn no_secret_or_token_in_the_cache_file() {
    let f = fake();
    // A failing source too, so an error message is stored.
    f.handle.add_fault(FaultRule::new("riskyUsers", FaultKind::Forbidden, None));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let out = sync_and_push_blocking(&db, Catalog::builtin(), &f.cfg, None, &|_| {}).unwrap();
    assert!(!out.is_ok());
    assert!(run::format_report(&out).contains("IdentityRiskyUser.Read.All"));
    let err: String = shadowscope::store::raw_connection(&db)
        .unwrap()
        .query_row("SELECT last_error FROM sync_state WHERE source = 'RiskyUsers'", [], |r| r.get(0))
        .unwrap();
    assert!(err.contains("IdentityRiskyUser.Read.All"), "{err}");
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(&p) {
            bytes.extend(b);
        }
    }
    assert!(bytes.len() > 4096);
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(CANARY));
    let tokens = f.handle.issued_tokens();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(!contains(&t), "token in cache");
    }
}
