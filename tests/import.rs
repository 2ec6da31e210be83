//! Import end to end on real samples: counts, identification, idempotence, resume.
use shadowscope::catalog::Catalog;
use shadowscope::ingest::pipeline::{ImportOptions, import_paths};
use shadowscope::store::Store;
use std::path::PathBuf;

fn sample(p: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/")).join(p)
}

/// Every roll-up and summary row of a cache, in key order.
fn rollup_rows(db: &std::path::Path) -> Vec<String> {
    let c = shadowscope::store::raw_connection(db).unwrap();
    let mut out = Vec::new();
    for table in
        ["app_day", "domain_total", "app_user", "app_device", "user_day", "device_day", "app_summary", "user_summary"]
    {
        let mut st = c.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| Ok((0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join(" ")))
            .unwrap();
        out.extend(rows.map(|r| format!("{table}: {}", r.unwrap())));
    }
    out
}

fn totals(store: &Store) -> (u64, u64) {
    let apps = store.apps(shadowscope::domain::Period::ALL).unwrap();
    (apps.iter().map(|a| a.transactions).sum(), apps.iter().map(|a| a.bytes_down).sum())
}

#[test]
fn squid_import_identifies_apps_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).unwrap();
    let files = vec![sample("elastic-integrations/squid/test-access.log")];
    let r = import_paths(&store, Catalog::builtin(), &files, &ImportOptions::default(), &mut |_| {}).unwrap();
    assert_eq!((r[0].format.as_str(), r[0].records, r[0].imported), ("squid", 100, 100));
    let first = totals(&store);
    assert_eq!(first.0, 100);
    // Yahoo traffic in the 2006 capture is identified as a catalog app, not an unknown domain.
    let apps = store.apps(shadowscope::domain::Period::ALL).unwrap();
    assert!(
        apps.iter().any(|a| !a.unknown && a.key.contains("yahoo")),
        "{:?}",
        apps.iter().map(|a| &a.key).collect::<Vec<_>>()
    );
    // Users from the ident field become users.
    assert!(!store.users().unwrap().is_empty());
    // Importing the same file again adds nothing.
    let again = import_paths(&store, Catalog::builtin(), &files, &ImportOptions::default(), &mut |_| {}).unwrap();
    assert!(again[0].already_imported);
    assert_eq!(totals(&store), first);
}

#[test]
fn import_in_small_batches_matches_one_batch_and_reports_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        sample("elastic-integrations/paloalto/test-panw-panos-traffic-sample.head34.log"),
        sample("elastic-integrations/squid/test-access-extensive.log"),
    ];
    let one = Store::open(&dir.path().join("one.db")).unwrap();
    let r = import_paths(&one, Catalog::builtin(), &files, &ImportOptions::default(), &mut |_| {}).unwrap();
    assert_eq!((r[0].records, r[0].imported, r[0].skipped_total()), (34, 32, 2));
    assert_eq!(r[0].examples[0].line, 26);
    assert_eq!((r[1].records, r[1].imported, r[1].skipped_total()), (11, 0, 11));
    let many = Store::open(&dir.path().join("many.db")).unwrap();
    let opts = ImportOptions { batch_lines: 3, ..Default::default() };
    import_paths(&many, Catalog::builtin(), &files, &opts, &mut |_| {}).unwrap();
    assert_eq!(totals(&one), totals(&many));
    assert_eq!(many.integrity_check().unwrap(), "ok");
}

/// Roll-ups written mid-file (a tiny row cap, three-line batches: some batches write them, the
/// others only mark them pending) end up exactly as those written once at the end of each file,
/// on samples with users, devices and logon edges.
#[test]
fn rollups_written_mid_file_equal_rollups_written_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        sample("elastic-integrations/squid/test-access.log"),
        sample("elastic-integrations/cisco_asa/test-sample.log"),
        sample("elastic-integrations/m365_defender/test-device.extract-a.ndjson"),
        sample("elastic-integrations/fortigate/test-fortinet.head29.log"),
    ];
    let (once, often) = (dir.path().join("once.db"), dir.path().join("often.db"));
    let store = Store::open(&once).unwrap();
    import_paths(&store, Catalog::builtin(), &files, &ImportOptions::default(), &mut |_| {}).unwrap();
    drop(store);
    let store = Store::open(&often).unwrap();
    let opts = ImportOptions { batch_lines: 3, rollup_flush_rows: 40, ..Default::default() };
    import_paths(&store, Catalog::builtin(), &files, &opts, &mut |_| {}).unwrap();
    drop(store);
    let want = rollup_rows(&once);
    assert!(want.iter().filter(|r| r.starts_with("app_user")).count() > 40, "the cap is crossed");
    assert_eq!(rollup_rows(&often), want);
    let c = shadowscope::store::raw_connection(&often).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert!(count("SELECT count(*) FROM app_device WHERE device_id != 0") > 0, "devices are exercised");
    assert_eq!(count("SELECT count(*) FROM meta WHERE key = 'rollups_pending'"), 0);
}

/// The facts of a cache as names (ids differ between caches that saw names in another order).
fn fact_rows(db: &std::path::Path) -> Vec<String> {
    let c = shadowscope::store::raw_connection(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT t.day, d.name, u.upn, v.name, t.bytes_up, t.bytes_down, t.transactions, t.blocked
             FROM traffic_daily t JOIN domains d ON d.id = t.domain_id JOIN users u ON u.id = t.user_id
             JOIN devices v ON v.id = t.device_id ORDER BY 1, 2, 3, 4",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((0..8).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join(" ")))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// An import split between parser threads (in chunks of a few lines, so every thread gets many
/// and they finish out of order) commits exactly what one thread reading in order commits:
/// the same facts, reports with the same skip examples, and the same per-app totals.
#[test]
fn import_split_between_threads_matches_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        sample("elastic-integrations/squid/test-access.log"),
        sample("elastic-integrations/squid/test-access-extensive.log"),
        sample("elastic-integrations/paloalto/test-panw-panos-traffic-sample.head34.log"),
        sample("elastic-integrations/cisco_asa/test-sample.log"),
        sample("elastic-integrations/m365_defender/test-device.extract-a.ndjson"),
        sample("elastic-integrations/fortigate/test-fortinet.head29.log"),
    ];
    let run = |name: &str, threads: usize, batch_lines: u64| {
        let db = dir.path().join(name);
        let store = Store::open(&db).unwrap();
        let opts = ImportOptions { parse_threads: threads, batch_lines, ..Default::default() };
        let reports = import_paths(&store, Catalog::builtin(), &files, &opts, &mut |_| {}).unwrap();
        let t = totals(&store);
        drop(store);
        (reports, t, fact_rows(&db))
    };
    let (one, one_totals, one_facts) = run("one.db", 1, 50_000);
    assert!(one_facts.len() > 80, "{} facts", one_facts.len());
    for (name, threads, batch) in [("two.db", 2, 4), ("three.db", 3, 1), ("four.db", 4, 50_000)] {
        let (reports, t, facts) = run(name, threads, batch);
        assert_eq!(t, one_totals, "{name}");
        assert_eq!(facts, one_facts, "{name}");
        for (a, b) in reports.iter().zip(&one) {
            assert_eq!(
                (a.records, a.imported, &a.skipped, &a.examples, a.bytes),
                (b.records, b.imported, &b.skipped, &b.examples, b.bytes),
                "{name}: {}",
                a.file
            );
        }
    }
}
