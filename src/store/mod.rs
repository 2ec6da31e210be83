//! The local cache: one SQLite file (WAL), normalised with integer ids, a versioned schema with
//! forward migrations, per-day traffic aggregates plus roll-ups and summaries so that every view
//! reads a few thousand rows at most.
//!
//! Concurrency: one writer (the process holding the write transaction) and any number of
//! read-only connections; WAL lets the console read while an import writes.
pub mod audit;
pub mod outbox;
pub mod queries;
pub mod schema;
pub mod sync_sink;
pub mod write;

pub use sync_sink::StoreSink;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
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
        "the cache is busy: another shadowscope process is writing to it. Wait for it to finish, or use --db PATH."
    )]
    Busy,
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
        {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir)?;
        }
    }
    if !path.exists() {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) a read-write cache and migrates it to the current schema.
    pub fn open(path: &Path) -> Result<Store> {
        prepare_private_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        let mut store = Store { conn, path: path.to_owned() };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing cache for reading only (the console's query connection).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        let store = Store { conn, path: path.to_owned() };
        store.conn.busy_timeout(Duration::from_secs(5))?;
        store.check_identity()?;
        let version = store.version()?;
        if version != schema::current_version() {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
                supported: schema::current_version(),
            });
        }
        Ok(store)
    }

    /// An in-memory cache, for tests.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store { conn, path: PathBuf::from(":memory:") };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
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

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
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
    }
}
