//! Import end to end on real samples: counts, identification, idempotence, resume.
use shadowscope::catalog::Catalog;
use shadowscope::ingest::pipeline::{ImportOptions, import_paths};
use shadowscope::store::Store;
use std::path::PathBuf;

fn sample(p: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/")).join(p)
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
