//! User catalog files end to end through the real binary: `--catalog`, `catalog import`
//! (validate, install, move the cache's domains), `catalog reapply`, `catalog override`, and the
//! console's `:score`, on the real Squid sample.
use rusqlite::Connection;
use shadowscope::app::{self, Effect, Msg, State};
use shadowscope::catalog::Catalog;
use shadowscope::runtime::Backend;
use shadowscope::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SQUID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/elastic-integrations/squid/test-access.log");

/// A private cache, config and state directory per test, so nothing touches the real ones.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("cache.db")
    }
    fn catalog_d(&self) -> PathBuf {
        self.dir.path().join("config/shadowscope/catalog.d")
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new(env!("CARGO_BIN_EXE_shadowscope"))
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("HOME", d)
            .env_remove("SHADOWSCOPE_DB")
            .env_remove("SHADOWSCOPE_CONFIG")
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{args:?} failed:\n{out}\n{err}");
        out.into_owned()
    }
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "{args:?} should fail: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
    fn sql(&self) -> Connection {
        shadowscope::store::raw_connection(self.db()).unwrap()
    }
}

const CONNEXTRA_TOML: &str = r#"# Claims an ad network the built-in catalog does not know.
[[app]]
id = "connextra"
name = "Connextra"
vendor = "Connextra Ltd"
category = "Ad tracking"
domains = ["connextra.com"]
"#;

/// (bytes_up, bytes_down, transactions) of the facts whose domain is under `suffix`.
fn fact_totals(c: &Connection, suffix: &str) -> (i64, i64, i64) {
    c.query_row(
        "SELECT sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions) FROM traffic_daily t
         JOIN domains d ON d.id = t.domain_id WHERE d.name = ?1 OR d.name LIKE '%.' || ?1",
        [suffix],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn app_totals(c: &Connection, key: &str) -> (i64, i64, i64) {
    c.query_row(
        "SELECT coalesce(sum(bytes_up), 0), coalesce(sum(bytes_down), 0), coalesce(sum(transactions), 0)
         FROM app_day WHERE app_id = (SELECT id FROM apps WHERE key = ?1)",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn apps_of_domains(c: &Connection, suffix: &str) -> Vec<String> {
    let mut st = c
        .prepare(
            "SELECT DISTINCT a.key FROM domains d JOIN apps a ON a.id = d.app_id
             WHERE d.name = ?1 OR d.name LIKE '%.' || ?1 ORDER BY 1",
        )
        .unwrap();
    st.query_map([suffix], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

/// Every app roll-up row equals the sums over `traffic_daily` through the domains' apps.
fn assert_rollups_match_facts(c: &Connection) {
    let checks = [
        (
            "app_day",
            "SELECT app_id, day, bytes_up, bytes_down, transactions, blocked FROM app_day",
            "SELECT d.app_id, t.day, sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions), sum(t.blocked)
             FROM traffic_daily t JOIN domains d ON d.id = t.domain_id GROUP BY 1, 2",
        ),
        (
            "app_user",
            "SELECT app_id, user_id, first_day, last_day, bytes_up, bytes_down, transactions FROM app_user",
            "SELECT d.app_id, t.user_id, min(t.day), max(t.day), sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions)
             FROM traffic_daily t JOIN domains d ON d.id = t.domain_id GROUP BY 1, 2",
        ),
        (
            "app_device",
            "SELECT app_id, device_id, first_day, last_day, bytes_up, bytes_down, transactions FROM app_device",
            "SELECT d.app_id, t.device_id, min(t.day), max(t.day), sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions)
             FROM traffic_daily t JOIN domains d ON d.id = t.domain_id GROUP BY 1, 2",
        ),
    ];
    for (name, table, facts) in checks {
        for (a, b) in [(table, facts), (facts, table)] {
            let n: i64 = c.query_row(&format!("SELECT count(*) FROM ({a} EXCEPT {b})"), [], |r| r.get(0)).unwrap();
            assert_eq!(n, 0, "{name} differs from traffic_daily");
        }
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn imported_catalog_file_moves_squid_traffic_and_overrides_survive_reapply() {
    let env = Env::new();
    env.ok(&["import", SQUID]);
    let c = env.sql();
    assert_eq!(apps_of_domains(&c, "connextra.com"), ["unknown:connextra.com"]);
    let domains: i64 =
        c.query_row("SELECT count(*) FROM domains WHERE name LIKE '%connextra.com'", [], |r| r.get(0)).unwrap();
    assert_eq!(domains, 2, "the sample has two connextra.com hosts");
    let facts = fact_totals(&c, "connextra.com");
    assert_eq!(app_totals(&c, "unknown:connextra.com"), facts);
    let total_before: i64 = c.query_row("SELECT sum(bytes_up + bytes_down) FROM app_day", [], |r| r.get(0)).unwrap();
    drop(c);

    let file = env.file("connextra.toml", CONNEXTRA_TOML);
    let out = env.ok(&["catalog", "import", file.to_str().unwrap()]);
    assert!(out.contains("1 app(s) added or overridden"), "{out}");
    assert!(out.contains("2 moved") && out.contains("unknown:connextra.com → connextra"), "{out}");
    let installed = env.catalog_d().join("connextra.toml");
    assert_eq!(std::fs::read_to_string(&installed).unwrap(), CONNEXTRA_TOML);
    #[cfg(unix)]
    assert_eq!((mode(&env.catalog_d()), mode(&installed)), (0o700, 0o600));

    let c = env.sql();
    // The catalog change is in the audit log with what it moved.
    let (target, new): (String, String) = c
        .query_row("SELECT target, new_value FROM audit WHERE action = 'catalog' ORDER BY id DESC", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(target.ends_with("connextra.toml") && new == "2 domain(s) moved", "{target} {new}");
    assert_eq!(apps_of_domains(&c, "connextra.com"), ["connextra"]);
    assert_eq!(app_totals(&c, "connextra"), facts, "identical byte totals after the move");
    assert_eq!(fact_totals(&c, "connextra.com"), facts, "the facts themselves are untouched");
    let total_after: i64 = c.query_row("SELECT sum(bytes_up + bytes_down) FROM app_day", [], |r| r.get(0)).unwrap();
    assert_eq!(total_after, total_before);
    assert_rollups_match_facts(&c);
    let (category, unknown, summary_bytes): (String, i64, i64) = c
        .query_row(
            "SELECT a.category, a.unknown, s.bytes_up + s.bytes_down FROM apps a
             JOIN app_summary s ON s.app_id = a.id AND s.period = 0 WHERE a.key = 'connextra'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((category.as_str(), unknown, summary_bytes), ("Ad tracking", 0, facts.0 + facts.1));
    let leftover: i64 =
        c.query_row("SELECT count(*) FROM apps WHERE key = 'unknown:connextra.com'", [], |r| r.get(0)).unwrap();
    assert_eq!(leftover, 0, "the emptied, untagged unknown group is dropped");
    drop(c);

    // Later runs merge the installed file without being told.
    let out = env.ok(&["catalog", "lookup", "ads.connextra.com"]);
    assert!(out.contains("Connextra (connextra)\tAd tracking"), "{out}");

    // An analyst's score and tag survive a reapply.
    let out = env.ok(&["catalog", "override", "connextra", "1.5", "--reason", "ad network, no DPA"]);
    assert!(out.contains("connextra: score") && out.contains("→ 1.5 (override)"), "{out}");
    env.ok(&["tag", "connextra", "monitored"]);
    let out = env.ok(&["catalog", "reapply"]);
    assert!(out.contains("0 moved"), "{out}");
    let c = env.sql();
    let (ov, score, tag): (Option<f64>, f64, i64) = c
        .query_row("SELECT risk_override, score, tag FROM apps WHERE key = 'connextra'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((ov, score), (Some(1.5), 1.5));
    assert_ne!(tag, 0);
    let (old, new, detail): (String, String, String) = c
        .query_row(
            "SELECT old_value, new_value, detail FROM audit WHERE action = 'score' AND target = 'connextra'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((old.as_str(), new.as_str()), ("none", "1.5"));
    assert!(detail.contains("ad network, no DPA"), "{detail}");
    drop(c);

    // Clearing returns to the catalog's score, also audited.
    let out = env.ok(&["catalog", "override", "connextra", "clear"]);
    assert!(out.contains("catalog score"), "{out}");
    let c = env.sql();
    let (ov, score, cat): (Option<f64>, f64, f64) = c
        .query_row("SELECT risk_override, score, catalog_score FROM apps WHERE key = 'connextra'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((ov, score), (None, cat));
    let audits: i64 = c.query_row("SELECT count(*) FROM audit WHERE action = 'score'", [], |r| r.get(0)).unwrap();
    assert_eq!(audits, 2);

    // Scores outside 0–10 are refused before the cache is touched.
    let err = env.fails(&["catalog", "override", "connextra", "11"]);
    assert!(err.contains("0 to 10"), "{err}");
}

#[test]
fn malformed_user_files_are_refused_with_file_and_line() {
    let env = Env::new();
    let toml = env.file(
        "bad.toml",
        "[[app]]\nid = \"fine\"\ndomains = [\"fine.example\"]\n\n[[app]]\nid = \"broken\"\ncategory = \"Spaceships\"\n",
    );
    let err = env.fails(&["catalog", "import", toml.to_str().unwrap()]);
    assert!(err.contains("bad.toml:7: app[1].category: unknown category \"Spaceships\""), "{err}");
    assert!(!env.catalog_d().exists(), "nothing installed");

    let syntax = env.file("syntax.toml", "[[app]]\nid = \"a\"\ndomains = [\"x.example\",\n\n");
    let err = env.fails(&["catalog", "import", syntax.to_str().unwrap()]);
    assert!(err.contains("syntax.toml:"), "{err}");

    let csv = env.file("bad.csv", "id,domains\ngood,good.example\nre,regexp:(open\n");
    let err = env.fails(&["catalog", "import", csv.to_str().unwrap()]);
    assert!(err.contains("bad.csv:3: domains: bad regexp"), "{err}");

    // --catalog is checked the same way, for any command.
    let err = env.fails(&["--catalog", csv.to_str().unwrap(), "catalog", "lookup", "good.example"]);
    assert!(err.contains("bad.csv:3:"), "{err}");
    assert!(!env.db().exists(), "no cache was created for a refused command");
}

#[test]
fn catalog_flag_merges_for_one_run_only() {
    let env = Env::new();
    let file = env.file("extra.csv", "id,name,category,domains\nconnextra,Connextra,Ad tracking,connextra.com\n");
    let with = env.ok(&["--catalog", file.to_str().unwrap(), "catalog", "lookup", "www.connextra.com"]);
    assert!(with.contains("Connextra (connextra)"), "{with}");
    let without = env.ok(&["catalog", "lookup", "www.connextra.com"]);
    assert!(without.contains("unknown app connextra.com"), "{without}");

    // With a cache, `--catalog … catalog reapply` moves the traffic for good.
    env.ok(&["import", SQUID]);
    let out = env.ok(&["--catalog", file.to_str().unwrap(), "catalog", "reapply"]);
    assert!(out.contains("2 moved"), "{out}");
    assert_eq!(apps_of_domains(&env.sql(), "connextra.com"), ["connextra"]);
    assert_rollups_match_facts(&env.sql());
}

#[test]
fn read_only_refuses_catalog_changes() {
    let env = Env::new();
    env.ok(&["import", SQUID]);
    let file = env.file("c.toml", CONNEXTRA_TOML);
    for args in [
        vec!["--read-only", "catalog", "import", file.to_str().unwrap()],
        vec!["--read-only", "catalog", "reapply"],
        vec!["--read-only", "catalog", "override", "yahoo", "3"],
    ] {
        let err = env.fails(&args);
        assert!(err.contains("--read-only"), "{err}");
    }
    assert!(!env.catalog_d().exists());
}

#[test]
fn console_score_command_sets_and_clears_the_override() {
    let store = Store::open_in_memory().unwrap();
    let (_, app) = store.intern_host("www.dropbox.com", Catalog::builtin()).unwrap();
    let mut backend = Backend::new(store, Catalog::builtin());
    backend.actor = "analyst".into();
    let mut state = State::new("test");

    let fx = app::update::run_command(&mut state, "score dropbox 2");
    assert_eq!(fx, vec![Effect::SetScore { needle: "dropbox".into(), score: Some(2.0) }]);
    let msgs = backend.handle(fx.into_iter().next().unwrap());
    assert!(
        matches!(&msgs[..], [Msg::Done { text }] if text.contains("Score of dropbox") && text.ends_with("→ 2.0 (override)")),
        "{msgs:?}"
    );
    let row = backend.store.app(app, shadowscope::domain::Period::ALL).unwrap().unwrap();
    assert_eq!(row.score.0, 2.0);

    let fx = app::update::run_command(&mut state, "score dropbox clear");
    assert_eq!(fx, vec![Effect::SetScore { needle: "dropbox".into(), score: None }]);
    let msgs = backend.handle(fx.into_iter().next().unwrap());
    assert!(matches!(&msgs[..], [Msg::Done { text }] if text.contains("override cleared")), "{msgs:?}");
    let entries = backend.store.audit_entries(Some("dropbox"), 10).unwrap();
    assert_eq!(entries.iter().filter(|e| e.action == "score").count(), 2);

    // Bad values and read-only sessions never reach the runtime.
    assert!(app::update::run_command(&mut state, "score dropbox 12").is_empty());
    assert!(app::update::run_command(&mut state, "score 5").is_empty());
    state.read_only = true;
    assert!(app::update::run_command(&mut state, "score dropbox 4").is_empty());
    let missing = backend.handle(Effect::SetScore { needle: "no-such-app".into(), score: Some(1.0) });
    assert!(matches!(&missing[..], [Msg::Failed { .. }]), "{missing:?}");
}
