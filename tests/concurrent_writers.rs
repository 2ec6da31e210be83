//! Two shadowscope processes on one cache: the first is the writer, the second gets a clear
//! message naming it and exits non-zero, and the cache is intact afterwards.
use shadowscope::domain::Period;
use shadowscope::store::{Store, lock_path};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn squid_lines(n: usize, host: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "1157689312.{i:03}   5 10.0.0.{} TCP_MISS/200 1000 GET http://{host}/{i} user{} DIRECT/1.2.3.4 -\n",
                i % 200,
                i % 7
            )
        })
        .collect()
}

fn shadowscope(db: &Path, state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shadowscope"));
    // Keep the log file and session out of the real home directory.
    c.arg("--db").arg(db).env("XDG_STATE_HOME", state).env("XDG_DATA_HOME", state).env("XDG_CACHE_HOME", state);
    c
}

fn transactions(db: &Path) -> u64 {
    let store = Store::open_read_only(db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    store.apps(Period::ALL).unwrap().iter().map(|a| a.transactions).sum()
}

#[test]
fn second_process_is_refused_with_the_writers_pid() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let small = dir.path().join("small.log");
    std::fs::write(&small, squid_lines(50, "second.example.com")).unwrap();

    // The first writer imports from a pipe we keep open, so it is provably mid-import.
    let mut first = shadowscope(&db, dir.path())
        .args(["import", "--format", "squid", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(squid_lines(1000, "first.example.com").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = first.id().to_string();
    while std::fs::read_to_string(lock_path(&db)).unwrap_or_default().trim() != pid {
        assert!(Instant::now() < deadline, "the first import never took the writer lock");
        std::thread::sleep(Duration::from_millis(20));
    }

    let second = shadowscope(&db, dir.path()).arg("import").arg(&small).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{err}");
    assert!(err.contains(&format!("another shadowscope process (pid {pid}) is writing to")), "{err}");
    assert!(err.contains("--read-only"), "{err}");
    // Tagging is a write as well.
    let tag = shadowscope(&db, dir.path()).args(["tag", "example", "monitored"]).output().unwrap();
    assert!(!tag.status.success());
    assert!(String::from_utf8_lossy(&tag.stderr).contains(&format!("(pid {pid})")));
    // `demo` replaces its cache file: never one another process is writing.
    let demo = shadowscope(&db, dir.path()).args(["demo", "--no-ui", "--users", "20", "--days", "3"]).output().unwrap();
    assert!(!demo.status.success());
    assert!(String::from_utf8_lossy(&demo.stderr).contains(&format!("(pid {pid})")));

    // The first import finishes normally with all of its lines.
    stdin.write_all(squid_lines(1000, "first.example.com").as_bytes()).unwrap();
    drop(stdin);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(transactions(&db), 2000);

    // With the writer gone the second import goes through.
    let again = shadowscope(&db, dir.path()).arg("import").arg(&small).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(transactions(&db), 2050);
}

/// The lock dies with its process: a SIGKILLed writer never blocks the next one.
#[cfg(unix)]
#[test]
fn killed_writer_leaves_no_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let mut first = shadowscope(&db, dir.path())
        .args(["import", "--format", "squid", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(squid_lines(10, "a.example.com").as_bytes()).unwrap();
    let pid = first.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(lock_path(&db)).unwrap_or_default().trim() != pid {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    drop(stdin);
    let small = dir.path().join("small.log");
    std::fs::write(&small, squid_lines(5, "b.example.com")).unwrap();
    let next = shadowscope(&db, dir.path()).arg("import").arg(&small).output().unwrap();
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    assert_eq!(transactions(&db), 5);
}

/// SIGKILL an import at several points, then finish it: the cache passes `integrity_check`
/// after every kill, never shows more than the file holds, and the final counts equal an
/// uninterrupted run exactly (0 records lost or doubled).
#[cfg(unix)]
#[test]
fn import_killed_repeatedly_then_finished_counts_exactly() {
    const LINES: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let log = dir.path().join("big.log");
    std::fs::write(&log, squid_lines(LINES, "kill.example.com")).unwrap();
    let mut killed = 0;
    for delay_ms in [20u64, 60, 110, 160, 220] {
        let mut child = shadowscope(&db, dir.path())
            .arg("import")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        if db.exists() && Store::open_read_only(&db).is_ok() {
            assert!(transactions(&db) <= LINES as u64);
        }
    }
    let done = shadowscope(&db, dir.path()).arg("import").arg(&log).output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(transactions(&db), LINES as u64);
    assert!(killed >= 3, "only {killed} runs were still going when killed");
    eprintln!("kill test: {killed} of 5 imports killed mid-run, 0 records lost");
}
