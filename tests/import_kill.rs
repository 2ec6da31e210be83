//! The real binary, SIGKILLed mid-import, again and again: every kill leaves a cache that passes
//! `PRAGMA integrity_check` and holds exactly the lines before its committed offset (whole
//! batches only); roll-ups that lag the facts are marked so and rebuilt when the cache is next
//! opened; re-running completes the import with the same totals as an uninterrupted one, and a
//! further run adds nothing.
use rusqlite::Connection;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: usize = 60_000;

/// One generated Squid line: its text and the bytes it carries.
struct Line {
    text: String,
    bytes: u64,
}

/// Deterministic Squid log: 10 days, 300 users (some lines unauthenticated), 400 hosts.
fn squid_lines() -> Vec<Line> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bases = ["dropbox.com", "slack.com", "google.com", "wetransfer.com", "example-shop.net", "github.com"];
    (0..LINES)
        .map(|i| {
            let ts = 1_709_251_200 + (i as u64 * 10 * 86_400 / LINES as u64);
            let r = next();
            let host = format!("h{}.{}", r % 67, bases[(r >> 8) as usize % bases.len()]);
            let user = if r % 11 == 0 { "-".to_string() } else { format!("user{}@corp.example", (r >> 16) % 300) };
            let bytes = (r >> 24) % 50_000;
            let text = if r % 2 == 0 {
                format!(
                    "{ts}.{:03}    120 10.0.{}.{} TCP_TUNNEL/200 {bytes} CONNECT {host}:443 {user} DIRECT/1.2.3.4 -",
                    i % 1000,
                    (r >> 32) % 250,
                    (r >> 40) % 250
                )
            } else {
                format!(
                    "{ts}.{:03}     15 10.0.{}.{} TCP_MISS/200 {bytes} GET http://{host}/p/{i} {user} DIRECT/1.2.3.4 text/html",
                    i % 1000,
                    (r >> 32) % 250,
                    (r >> 40) % 250
                )
            };
            Line { text, bytes }
        })
        .collect()
}

fn import(db: &Path, log: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shadowscope"));
    c.arg("--db").arg(db).arg("import").arg("--format").arg("squid").arg(log);
    c.env("SHADOWSCOPE_IMPORT_BATCH", "1000").stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Transactions and bytes of the facts, or of one roll-up table.
#[derive(Debug, PartialEq, Clone, Copy)]
struct Sums {
    transactions: i64,
    bytes: i64,
}

const ROLLUPS: [&str; 6] = ["app_day", "domain_total", "app_user", "app_device", "user_day", "device_day"];

fn sums_of(conn: &Connection, table: &str) -> Sums {
    conn.query_row(
        &format!("SELECT coalesce(sum(transactions), 0), coalesce(sum(bytes_down), 0) FROM {table}"),
        [],
        |r| Ok(Sums { transactions: r.get(0)?, bytes: r.get(1)? }),
    )
    .unwrap()
}

/// The facts' sums, which every roll-up must agree with.
fn sums(conn: &Connection) -> Sums {
    let fact = sums_of(conn, "traffic_daily");
    for table in ROLLUPS {
        assert_eq!(sums_of(conn, table), fact, "{table} disagrees with traffic_daily");
    }
    fact
}

fn rollups_pending(conn: &Connection) -> bool {
    conn.query_row("SELECT count(*) FROM meta WHERE key = 'rollups_pending'", [], |r| r.get::<_, i64>(0)).unwrap() > 0
}

/// The facts by name (ids may differ between caches).
fn facts(conn: &Connection) -> Vec<(i64, String, String, i64, i64, i64)> {
    let mut st = conn
        .prepare(
            "SELECT t.day, d.name, u.upn, t.transactions, t.bytes_down, t.blocked
             FROM traffic_daily t JOIN domains d ON d.id = t.domain_id JOIN users u ON u.id = t.user_id
             ORDER BY 1, 2, 3",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn sigkill_mid_import_leaves_whole_batches_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let lines = squid_lines();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    // Line-end offsets and running totals: what any committed offset implies.
    let mut ends = Vec::with_capacity(lines.len());
    let (mut offset, mut bytes) = (0u64, 0i64);
    for l in &lines {
        writeln!(f, "{}", l.text).unwrap();
        offset += l.text.len() as u64 + 1;
        bytes += l.bytes as i64;
        ends.push((offset, bytes));
    }
    f.flush().unwrap();
    drop(f);
    let file_len = offset;

    // The uninterrupted import first: its duration scales the kill delays to this machine.
    let clean = dir.path().join("clean.db");
    let t = Instant::now();
    assert!(import(&clean, &log).status().unwrap().success());
    let full_ms = t.elapsed().as_millis() as u64;

    let db = dir.path().join("killed.db");
    let mut mid_file = 0;
    let mut repaired = 0;
    let mut last_offset = 0u64;
    for (n, percent) in [15u64, 20, 25, 30, 35, 40].into_iter().enumerate() {
        let delay_ms = full_ms * percent / 100;
        let mut child = import(&db, &log).spawn().unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(delay_ms) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SIGKILL on unix: no destructor, no rollback, no clean close.
        let _ = child.kill();
        child.wait().unwrap();

        let conn = shadowscope::store::raw_connection(&db).unwrap();
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "kill {n}");
        let committed: Option<(i64, i64, i64)> = conn
            .query_row("SELECT committed_offset, records, imported FROM imports", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .ok();
        // The roll-ups may lag the facts only while the cache says so; opening it repairs them.
        let lagging = ROLLUPS.iter().any(|t| sums_of(&conn, t) != sums_of(&conn, "traffic_daily"));
        assert!(!lagging || rollups_pending(&conn), "kill {n}: roll-ups lag without the pending mark");
        if rollups_pending(&conn) {
            repaired += 1;
            drop(shadowscope::store::Store::open(&db).unwrap());
            assert!(!rollups_pending(&conn), "kill {n}: the mark survived the repair");
        }
        let got = sums(&conn);
        let (off, records, imported) = committed.unwrap_or((0, 0, 0));
        let off = off as u64;
        // The checkpoint is a line end, and exactly the lines before it are in every table.
        let done = ends.partition_point(|(end, _)| *end <= off);
        assert!(off == 0 || ends[done - 1].0 == off, "kill {n}: offset {off} is not a line end");
        let want_bytes = if done == 0 { 0 } else { ends[done - 1].1 };
        assert_eq!(got, Sums { transactions: done as i64, bytes: want_bytes }, "kill {n} at offset {off}");
        assert_eq!((records, imported), (done as i64, done as i64), "kill {n}");
        assert!(off >= last_offset, "kill {n}: the checkpoint went backwards");
        eprintln!("kill {n} after {delay_ms} ms: {done} of {LINES} lines committed");
        last_offset = off;
        if off > 0 && off < file_len {
            mid_file += 1;
        }
    }
    assert!(mid_file >= 2, "only {mid_file} kills landed mid-file; the test proves nothing");
    assert!(repaired >= 1, "no kill left lagging roll-ups; the repair path went untested");

    // Resume to the end, then compare with an uninterrupted import.
    assert!(import(&db, &log).status().unwrap().success());
    let (a, b) =
        (shadowscope::store::raw_connection(&db).unwrap(), shadowscope::store::raw_connection(&clean).unwrap());
    let full = Sums { transactions: LINES as i64, bytes: ends[LINES - 1].1 };
    assert_eq!(sums(&a), full);
    assert_eq!(sums(&b), full);
    assert_eq!(facts(&a), facts(&b));
    let complete: i64 = a.query_row("SELECT complete FROM imports", [], |r| r.get(0)).unwrap();
    assert_eq!(complete, 1);

    // A third run finds the fingerprint complete and adds nothing.
    let out = import(&db, &log).stdout(Stdio::piped()).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already imported"));
    assert_eq!(sums(&a), full);
    assert_eq!(facts(&a), facts(&b));
}
