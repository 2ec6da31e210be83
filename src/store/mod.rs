//! The local cache: one SQLite file (WAL), normalised with integer ids, a versioned schema with
//! forward migrations, per-day traffic aggregates plus roll-ups and summaries so that every view
//! reads a few thousand rows at most.
//!
//! Concurrency: one writer *process* per cache, enforced by an advisory lock on `<db>.lock`
//! (see [`WriterLock`]); inside that process any number of connections (the console and its
//! background sync) share the lock. Read-only connections never take it; WAL lets them read
//! while the writer writes.
pub mod audit;
pub mod catalog_sync;
pub mod governance;
pub mod outbox;
pub mod packed;
pub mod queries;
pub mod schema;
mod span_map;
mod summaries;
pub mod sync_sink;
pub mod write;

pub use sync_sink::StoreSink;

use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the cache {path}: {source}. Use --db PATH to choose another file, or delete it to rebuild.")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path} is not a shadowscope cache (it is {what}). Use --db PATH to choose another file.")]
    Foreign { path: PathBuf, what: String },
    #[error(
        "the cache {path} has schema version {found}, newer than this shadowscope understands ({supported}). Upgrade shadowscope, or use --db PATH for a fresh cache."
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error(
        "the cache {path} has schema version {found}, older than this shadowscope's ({supported}), and a read-only open cannot upgrade it. Run a command that writes to it once (`shadowscope import`, or the console without --read-only)."
    )]
    TooOld { path: PathBuf, found: i64, supported: i64 },
    #[error(
        "the cache is busy: another shadowscope process is writing to it. Wait for it to finish, or use --db PATH."
    )]
    Busy,
    #[error(
        "another shadowscope process ({}) is writing to {}; use --read-only or wait for it to finish",
        pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}")),
        crate::sanitize::display_safe(&path.to_string_lossy())
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("cache I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cache error: {0}")]
    Sql(rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sql(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// Held for as long as any read-write connection of this process to the cache is open.
    _writer: Option<Arc<WriterLock>>,
}

/// The advisory lock that makes one process the cache's writer. An OS lock (flock on Unix,
/// LockFileEx on Windows) is released by the kernel when the process dies, so a killed import
/// never leaves a stale lock. Locks belong to an open file description, so a second `open` of the
/// same file in this process would conflict with the first: the registry hands out the one lock
/// this process already holds instead.
///
/// Dropping the last `Arc` closes the file and so releases the lock without touching the
/// registry; the dead `Weak` left behind is replaced by the next `open`.
pub struct WriterLock {
    _file: std::fs::File,
}

fn held_locks() -> &'static Mutex<HashMap<PathBuf, Weak<WriterLock>>> {
    static HELD: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<WriterLock>>>> = std::sync::OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// `<db>.lock` beside the cache file.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes (or shares, within this process) the writer lock of the cache at `db`, which exists.
pub fn acquire_writer_lock(db: &Path) -> Result<Arc<WriterLock>> {
    use std::io::{Read, Seek, Write};
    let key = std::fs::canonicalize(db)?;
    // Poisoning only means another thread panicked while holding the map; the map is still valid.
    let mut held = held_locks().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lock) = held.get(&key).and_then(Weak::upgrade) {
        return Ok(lock);
    }
    let lock_file = lock_path(&key);
    let mut file =
        crate::private_fs::owner_only().read(true).write(true).create(true).truncate(false).open(&lock_file)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid: Option<u32> = text.trim().parse().ok();
            if pid == Some(std::process::id()) {
                // Our own last connection is closing on another thread right now: its file is
                // about to be closed, so wait for that instead of refusing.
                file.lock()?;
            } else {
                return Err(StoreError::Locked { path: db.to_owned(), pid });
            }
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io(e)),
    }
    // The pid is for the message the next process shows; the lock itself is what counts.
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    let lock = Arc::new(WriterLock { _file: file });
    held.insert(key, Arc::downgrade(&lock));
    Ok(lock)
}

/// Default cache location: `$XDG_CACHE_HOME/shadowscope/cache.db`.
pub fn default_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "shadowscope")
        .map(|d| d.cache_dir().join("cache.db"))
        .unwrap_or_else(|| PathBuf::from("shadowscope-cache.db"))
}

/// Creates the directory (0700) and an empty file (0600) before SQLite touches it, so the cache
/// is never readable by other users of a shared jump host, not even for an instant.
fn prepare_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        crate::private_fs::dir_builder().recursive(true).create(dir)?;
    }
    if !path.exists() {
        match crate::private_fs::owner_only().write(true).create_new(true).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A count into an SQLite integer, which stops at `i64::MAX`.
pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An SQLite integer read back as a count; a negative one (never written) reads as 0.
pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A plain SQLite connection to a cache with its SQL functions registered (see [`packed`]), for
/// tests and tools that inspect a cache without a [`Store`]: no lock, no migration, no pragmas.
pub fn raw_connection(path: impl AsRef<Path>) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    packed::register(&conn)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) a read-write cache and migrates it to the current schema.
    /// Fails with [`StoreError::Locked`] while another process is the cache's writer; a second
    /// `open` in the same process shares this process's lock.
    pub fn open(path: &Path) -> Result<Store> {
        prepare_private_file(path)?;
        let writer = acquire_writer_lock(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        let mut store = Store { conn, path: path.to_owned(), _writer: Some(writer) };
        store.configure()?;
        store.migrate()?;
        // An import killed between its fact batches and its roll-up write left them lagging.
        store.repair_rollups()?;
        Ok(store)
    }

    /// Opens an existing cache for reading only (the console's query connection). Never takes
    /// the writer lock, so it works while another process imports.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        let store = Store { conn, path: path.to_owned(), _writer: None };
        store.conn.busy_timeout(Duration::from_secs(5))?;
        packed::register(&store.conn)?;
        store.check_identity()?;
        let (found, supported) = (store.version()?, schema::current_version());
        if found > supported {
            return Err(StoreError::TooNew { path: path.to_owned(), found, supported });
        }
        if found < supported {
            return Err(StoreError::TooOld { path: path.to_owned(), found, supported });
        }
        Ok(store)
    }

    /// [`Store::open_read_only`] for commands that only read (`info`, `blocklist`): a cache left
    /// at an older schema by the previous version is upgraded first when no other process is
    /// writing to it, as any writing command would.
    pub fn open_for_reading(path: &Path) -> Result<Store> {
        match Store::open_read_only(path) {
            Err(StoreError::TooOld { .. }) => match Store::open(path) {
                Ok(upgraded) => {
                    drop(upgraded);
                    Store::open_read_only(path)
                }
                Err(StoreError::Locked { .. }) => Store::open_read_only(path),
                Err(e) => Err(e),
            },
            other => other,
        }
    }

    /// An in-memory cache, for tests.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store { conn, path: PathBuf::from(":memory:"), _writer: None };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Caps this connection's SQLite page cache (KiB). The console's reads are summaries and
    /// index seeks, so a small cache costs little and keeps its memory low.
    pub fn set_page_cache_kib(&self, kib: i64) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -kib.abs())?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        packed::register(&self.conn)?;
        self.check_identity()?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        self.conn.pragma_update(None, "temp_store", "MEMORY")?;
        self.conn.pragma_update(None, "cache_size", -65_536)?;
        Ok(())
    }

    /// Refuses files that are not SQLite, or SQLite files that belong to something else.
    fn check_identity(&self) -> Result<()> {
        let app_id: i64 = match self.conn.query_row("PRAGMA application_id", [], |r| r.get(0)) {
            Ok(v) => v,
            Err(e) => {
                return Err(match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::NotADatabase) => {
                        StoreError::Foreign { path: self.path.clone(), what: "not an SQLite database".into() }
                    }
                    _ => StoreError::from(e),
                });
            }
        };
        let tables: i64 =
            self.conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0))?;
        if app_id != schema::APPLICATION_ID && !(app_id == 0 && tables == 0) {
            return Err(StoreError::Foreign {
                path: self.path.clone(),
                what: format!(
                    "an SQLite database of another application (application_id {app_id:#x}, {tables} tables)"
                ),
            });
        }
        Ok(())
    }

    pub fn version(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let found = self.version()?;
        let supported = schema::current_version();
        if found > supported {
            return Err(StoreError::TooNew { path: self.path.clone(), found, supported });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.pragma_update(None, "application_id", schema::APPLICATION_ID)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Runs `f` while a second connection folds the WAL back into the database file on another
    /// thread. After a large import the checkpoint (the whole import's pages copied and synced)
    /// then overlaps `f` instead of stalling the commit that crosses the WAL limit; this
    /// connection's own automatic checkpoint is held off meanwhile. The thread is not waited
    /// for: what follows (the alert policies after an import's summaries) overlaps it too,
    /// where waiting for it had left the writer idle ~15 ms of a 1 M-line import. A checkpoint
    /// cut short, by the process ending, is safe: SQLite resumes it on the next one. In-memory
    /// caches just run `f`.
    pub fn with_background_checkpoint<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.path == Path::new(":memory:") {
            return f();
        }
        let before: Option<i64> = self.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).ok();
        let _ = self.conn.pragma_update(None, "wal_autocheckpoint", 0);
        let path = self.path.clone();
        std::thread::spawn(move || {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            if let Ok(c) = Connection::open_with_flags(&path, flags) {
                // Best effort: whatever this pass leaves is folded back at the next one.
                let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
        let out = f();
        if let Some(v) = before {
            let _ = self.conn.pragma_update(None, "wal_autocheckpoint", v);
        }
        out
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Every row `sql` returns, each as its cells' debug text: for tests comparing two ways of
    /// computing a table.
    #[cfg(test)]
    pub(crate) fn dump_rows(&self, sql: &str) -> Vec<String> {
        let mut st = self.conn.prepare(sql).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| Ok((0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join(" ")))
            .unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_file_and_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.version().unwrap(), schema::current_version());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dmode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
            assert_eq!(dmode, 0o700);
        }
        drop(store);
        // Re-opening is a no-op migration.
        assert!(Store::open(&path).is_ok());
        assert!(Store::open_read_only(&path).is_ok());
    }

    /// A version-3 cache (one row per fact, one row per app × user roll-up) opens at the
    /// current version with the same facts, read back through the `traffic_daily` view, and the
    /// same roll-ups read from both packed ends.
    #[test]
    fn migrates_plain_facts_into_packed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let facts = [
            "(19000, 3, 1, 2, 10, 20, 1, 0)",
            "(19000, 1, 1, 2, 5, 6, 2, 1)",
            "(19000, 2, 1, 0, 7, 8, 3, 0)",
            "(19001, 3, 1, 2, 1, 1, 1, 0)",
            "(19001, 9, 0, 0, 9223372036854775807, 0, 1, 0)",
        ];
        {
            let c = raw_connection(&path).unwrap();
            for sql in &schema::MIGRATIONS[..3] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 3).unwrap();
            c.pragma_update(None, "application_id", schema::APPLICATION_ID).unwrap();
            c.execute_batch(&format!("INSERT INTO traffic_daily VALUES {}", facts.join(","))).unwrap();
            c.execute_batch(
                "INSERT INTO app_user VALUES (7, 1, 19000, 19001, 1, 1, 1), (3, 1, 19000, 19000, 1, 1, 1),
                                             (7, 2, 19001, 19001, 1, 1, 1);
                 INSERT INTO app_device VALUES (7, 2, 19000, 19001, 1, 1, 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.version().unwrap(), schema::current_version());
        let usage = |a: i64, b: i64, first: i64, last: i64| {
            format!("Integer({a}) Integer({b}) Integer({first}) Integer({last}) Integer(1) Integer(1) Integer(1)")
        };
        assert_eq!(
            store.dump_rows("SELECT * FROM user_app ORDER BY 1, 2"),
            [usage(1, 3, 19000, 19000), usage(1, 7, 19000, 19001), usage(2, 7, 19001, 19001)]
        );
        assert_eq!(
            store.dump_rows("SELECT * FROM app_user ORDER BY 1, 2"),
            [usage(3, 1, 19000, 19000), usage(7, 1, 19000, 19001), usage(7, 2, 19001, 19001)]
        );
        assert_eq!(store.dump_rows("SELECT * FROM device_app"), [usage(2, 7, 19000, 19001)]);
        assert_eq!(store.dump_rows("SELECT count(*) FROM app_user_packed"), ["Integer(2)"]);
        let mut want: Vec<String> = facts
            .iter()
            .map(|f| {
                f.trim_matches(['(', ')']).split(", ").map(|v| format!("Integer({v})")).collect::<Vec<_>>().join(" ")
            })
            .collect();
        want.sort();
        let mut got = store.dump_rows("SELECT * FROM traffic_daily");
        got.sort();
        assert_eq!(got, want);
        assert_eq!(store.dump_rows("SELECT count(*) FROM traffic_packed"), vec!["Integer(4)"]);
    }

    #[test]
    fn one_writer_lock_shared_within_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let a = Store::open(&path).unwrap();
        // A second connection in this process (the console's background sync) still opens.
        let b = Store::open(&path).unwrap();
        let pid: u32 = std::fs::read_to_string(lock_path(&path)).unwrap().trim().parse().unwrap();
        assert_eq!(pid, std::process::id());
        // Another open file description on the lock is what a second process would get.
        let other = std::fs::OpenOptions::new().read(true).write(true).open(lock_path(&path)).unwrap();
        assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop(a);
        assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop(b);
        other.try_lock().unwrap();
        // Now this process is the "other" one: open reports the holder, read-only still works.
        std::fs::write(lock_path(&path), "4242").unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::Locked { pid: Some(4242), .. }), "{err}");
        assert!(err.to_string().contains("another shadowscope process (pid 4242) is writing to"), "{err}");
        assert!(Store::open_read_only(&path).is_ok());
        drop(other);
        assert!(Store::open(&path).is_ok());
    }

    #[test]
    fn refuses_foreign_and_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"this is not sqlite at all, just text padding padding padding").unwrap();
        let err = Store::open(&garbage).err().unwrap().to_string();
        assert!(err.contains("not a shadowscope cache") || err.contains("not an SQLite"), "{err}");

        let other = dir.path().join("other.db");
        let c = Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE t(x)").unwrap();
        drop(c);
        let err = Store::open(&other).err().unwrap().to_string();
        assert!(err.contains("another application"), "{err}");

        let newer = dir.path().join("newer.db");
        drop(Store::open(&newer).unwrap());
        let c = Connection::open(&newer).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = Store::open(&newer).err().unwrap().to_string();
        assert!(err.contains("newer than this shadowscope"), "{err}");
        let err = Store::open_read_only(&newer).err().unwrap().to_string();
        assert!(err.contains("newer than this shadowscope"), "{err}");
    }

    /// A cache at an older schema is not mistaken for a newer one by a read-only open, and the
    /// reading commands' open upgrades it.
    #[test]
    fn read_only_opens_name_an_older_cache_and_reading_upgrades_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.db");
        {
            let c = raw_connection(&path).unwrap();
            for sql in &schema::MIGRATIONS[..5] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 5).unwrap();
            c.pragma_update(None, "application_id", schema::APPLICATION_ID).unwrap();
        }
        let err = Store::open_read_only(&path).err().unwrap().to_string();
        assert!(err.contains("version 5, older than this shadowscope's"), "{err}");
        let store = Store::open_for_reading(&path).unwrap();
        assert_eq!(store.version().unwrap(), schema::current_version());
    }
}
