//! Import: file → (gzip) → format detection → parser → identification → per-day aggregates,
//! committed in batches together with the byte offset reached. A killed import leaves whole
//! batches only, and a re-run resumes after the last committed offset; a file already fully
//! imported (same fingerprint) is not counted twice.
use super::{Action, LogFormat, Position, Record, RecordKind, RecordSink, SkipReason, host_of_url, registry};
use crate::catalog::Catalog;
use crate::domain::{AppId, Day, DeviceId, DomainId, UNKNOWN_DEVICE, UNKNOWN_USER, UserId};
use crate::sanitize::display_safe_bytes;
use crate::store::write::{Counters, EdgeKey, FactBatch, FactKey};
use crate::store::{Store, StoreError};
use rusqlite::{OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: format not recognised from its first lines; name it with --format (see `shadowscope formats`)")]
    UnknownFormat { path: String },
    #[error("unknown format {0:?}; `shadowscope formats` lists them")]
    NoSuchFormat(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// None = detect per file.
    pub format: Option<String>,
    /// Lines per committed batch.
    pub batch_lines: u64,
    /// How many skipped-line examples to keep per file.
    pub examples: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { format: None, batch_lines: 250_000, examples: 5 }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SkipExample {
    pub line: u64,
    pub reason: String,
    /// Sanitised, truncated copy of the line.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    pub file: String,
    pub format: String,
    /// Records seen (header and comment lines excluded).
    pub records: u64,
    pub imported: u64,
    pub skipped: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<SkipExample>,
    /// The same content was imported before: nothing was added.
    pub already_imported: bool,
    /// Bytes read (decompressed).
    pub bytes: u64,
}

impl ImportReport {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub lines: u64,
    pub bytes: u64,
    pub total_bytes: Option<u64>,
}

/// 64-bit FNV-1a over the file length and its first MiB: cheap, stable, and enough to tell a
/// re-import of the same file from a different one.
fn fingerprint(path: &Path) -> io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in meta.len().to_le_bytes().iter().chain(&buf[..n]) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}-{}", meta.len()))
}

fn open_input(path: &Path) -> io::Result<(Box<dyn BufRead>, Option<u64>)> {
    let (raw, size): (Box<dyn Read>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = std::fs::File::open(path)?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut peek = BufReader::with_capacity(1 << 20, raw);
    let gz = peek.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gz {
        Ok((Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(peek))), None))
    } else {
        Ok((Box::new(peek), size))
    }
}

/// First non-empty lines of the buffered input, for detection (BOM removed).
fn first_lines(reader: &mut dyn BufRead) -> io::Result<Vec<String>> {
    let buf = reader.fill_buf()?;
    let text = String::from_utf8_lossy(&buf[..buf.len().min(64 * 1024)]);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text.lines().filter(|l| !l.trim().is_empty()).take(20).map(str::to_string).collect())
}

struct Interner<'s> {
    store: &'s Store,
    catalog: &'s Catalog,
    users: HashMap<String, UserId>,
    devices: HashMap<String, DeviceId>,
    hosts: HashMap<String, (DomainId, AppId)>,
}

fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) { s.to_ascii_lowercase().into() } else { s.into() }
}

fn present<'a>(v: &'a Option<std::borrow::Cow<'_, str>>) -> Option<&'a str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty() && *s != "-")
}

impl Interner<'_> {
    fn user(&mut self, name: Option<&str>) -> Result<UserId, StoreError> {
        let Some(name) = name else { return Ok(UNKNOWN_USER) };
        let key = lower(name);
        if let Some(id) = self.users.get(key.as_ref()) {
            return Ok(*id);
        }
        let id = self.store.intern_user(&key)?;
        self.users.insert(key.into_owned(), id);
        Ok(id)
    }
    fn device(&mut self, name: Option<&str>) -> Result<DeviceId, StoreError> {
        let Some(name) = name else { return Ok(UNKNOWN_DEVICE) };
        if let Some(id) = self.devices.get(name) {
            return Ok(*id);
        }
        let id = self.store.intern_device(name)?;
        self.devices.insert(name.to_string(), id);
        Ok(id)
    }
    /// Host name, else the appliance's app name, else the destination IP. Each distinct key
    /// reaches the cache (and the catalog) once per import.
    fn destination(&mut self, rec: &Record<'_>) -> Result<Option<(DomainId, AppId)>, StoreError> {
        let host = present(&rec.dest_host).or_else(|| present(&rec.url).and_then(host_of_url));
        let key = match (host, present(&rec.vendor_app), present(&rec.dest_ip)) {
            (Some(h), _, _) => lower(h.trim_end_matches('.')),
            (None, Some(app), _) => format!("app:{}", app.to_ascii_lowercase()).into(),
            (None, None, Some(ip)) => ip.into(),
            (None, None, None) => return Ok(None),
        };
        if let Some(v) = self.hosts.get(key.as_ref()) {
            return Ok(Some(*v));
        }
        let v = match (host, present(&rec.vendor_app)) {
            (None, Some(app)) => {
                let app_id = match self.catalog.identify_vendor_app(app) {
                    Some(idx) => self.store.ensure_catalog_app(self.catalog.get(idx))?,
                    None => self.store.ensure_unknown_app(&app.to_ascii_lowercase(), self.catalog)?,
                };
                (self.store.insert_domain(&key, app_id)?, app_id)
            }
            _ => self.store.intern_host(&key, self.catalog)?,
        };
        self.hosts.insert(key.into_owned(), v);
        Ok(Some(v))
    }
}

struct ImportSink<'s, 'p> {
    interner: Interner<'s>,
    import_id: i64,
    batch: FactBatch,
    resume_from: u64,
    records: u64,
    imported: u64,
    skipped: BTreeMap<String, u64>,
    examples: Vec<SkipExample>,
    max_examples: usize,
    lines_in_batch: u64,
    batch_lines: u64,
    last: Position,
    error: Option<StoreError>,
    progress: &'p mut dyn FnMut(Progress),
    total_bytes: Option<u64>,
}

impl ImportSink<'_, '_> {
    fn count_skip(&mut self, pos: Position, reason: &SkipReason, raw: &[u8]) {
        *self.skipped.entry(reason.key()).or_default() += 1;
        if self.examples.len() < self.max_examples {
            let mut text = display_safe_bytes(&raw[..raw.len().min(200)]);
            if raw.len() > 200 {
                text.push('…');
            }
            self.examples.push(SkipExample { line: pos.line, reason: reason.key(), text });
        }
    }

    fn after_line(&mut self, pos: Position) {
        self.last = pos;
        self.lines_in_batch += 1;
        if self.lines_in_batch >= self.batch_lines {
            if let Err(e) = self.flush(false) {
                self.error.get_or_insert(e);
            }
            (self.progress)(Progress { lines: pos.line, bytes: pos.offset_end, total_bytes: self.total_bytes });
        }
    }

    /// Commits the batch with its checkpoint and starts the next transaction.
    fn flush(&mut self, complete: bool) -> Result<(), StoreError> {
        if self.error.is_some() {
            return Ok(());
        }
        let store = self.interner.store;
        store.apply_batch(&self.batch)?;
        store.conn.execute(
            "UPDATE imports SET committed_offset = max(committed_offset, ?2), records = ?3, imported = ?4, skipped = ?5,
                complete = ?6, finished = CASE WHEN ?6 THEN strftime('%s','now') ELSE finished END WHERE id = ?1",
            params![
                self.import_id,
                self.last.offset_end as i64,
                self.records as i64,
                self.imported as i64,
                self.skipped.values().sum::<u64>() as i64,
                complete
            ],
        )?;
        store.conn.execute("DELETE FROM import_skips WHERE import_id = ?1", [self.import_id])?;
        for (reason, n) in &self.skipped {
            store.conn.execute(
                "INSERT INTO import_skips(import_id, reason, count) VALUES (?1, ?2, ?3)",
                params![self.import_id, reason, *n as i64],
            )?;
        }
        store.commit()?;
        store.begin()?;
        self.batch = FactBatch::default();
        self.lines_in_batch = 0;
        Ok(())
    }

    fn add(&mut self, rec: &Record<'_>) -> Result<(), StoreError> {
        let user = self.interner.user(present(&rec.user))?;
        let device = self.interner.device(present(&rec.device))?;
        if rec.kind == RecordKind::Logon {
            self.batch.add_edge(EdgeKey { user, device, source: "logon" }, rec.ts, 1);
            return Ok(());
        }
        let Some((domain, app)) = self.interner.destination(rec)? else {
            return Ok(());
        };
        let day = Day::from_unix(rec.ts);
        let c = Counters {
            bytes_up: rec.bytes_up,
            bytes_down: rec.bytes_down,
            transactions: 1,
            blocked: u64::from(rec.action == Action::Blocked),
        };
        self.batch.add_fact(FactKey { day, app, domain, user, device }, &c);
        if user != UNKNOWN_USER && device != UNKNOWN_DEVICE {
            self.batch.add_edge(EdgeKey { user, device, source: "traffic" }, rec.ts, 0);
        }
        Ok(())
    }
}

impl RecordSink for ImportSink<'_, '_> {
    fn record(&mut self, pos: Position, rec: Record<'_>) {
        if pos.offset_end <= self.resume_from {
            self.last = pos;
            return;
        }
        self.records += 1;
        if self.error.is_none() {
            match self.add(&rec) {
                Ok(()) => self.imported += 1,
                Err(e) => self.error = Some(e),
            }
        }
        self.after_line(pos);
    }

    fn skip(&mut self, pos: Position, reason: SkipReason, raw: &[u8]) {
        if pos.offset_end <= self.resume_from {
            self.last = pos;
            return;
        }
        self.records += 1;
        self.count_skip(pos, &reason, raw);
        self.after_line(pos);
    }
}

fn choose_format(
    opts: &ImportOptions,
    reader: &mut dyn BufRead,
    path: &str,
) -> Result<&'static dyn LogFormat, ImportError> {
    match opts.format.as_deref() {
        Some(name) if name != "auto" => registry::by_name(name).ok_or_else(|| ImportError::NoSuchFormat(name.into())),
        _ => {
            let lines = first_lines(reader).map_err(|source| ImportError::Io { path: path.into(), source })?;
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            registry::detect(&refs).ok_or_else(|| ImportError::UnknownFormat { path: path.into() })
        }
    }
}

/// Imports one file (or `-` for stdin) into the cache.
pub fn import_file(
    store: &Store,
    catalog: &Catalog,
    path: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let shown = crate::sanitize::display_safe(&path.to_string_lossy()).into_owned();
    let io_err = |source| ImportError::Io { path: shown.clone(), source };
    let (mut reader, total_bytes) = open_input(path).map_err(io_err)?;
    let format = choose_format(opts, reader.as_mut(), &shown)?;
    let fp = if path.as_os_str() == "-" {
        format!("stdin-{}", crate::runtime::wall_clock())
    } else {
        fingerprint(path).map_err(io_err)?
    };
    let prior: Option<(i64, i64, bool, i64, i64)> = store
        .conn
        .query_row(
            "SELECT id, committed_offset, complete, records, imported FROM imports WHERE fingerprint = ?1",
            [&fp],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let mut report = ImportReport {
        file: shown.clone(),
        format: format.name().into(),
        records: 0,
        imported: 0,
        skipped: BTreeMap::new(),
        examples: Vec::new(),
        already_imported: false,
        bytes: 0,
    };
    if let Some((id, _, true, records, imported)) = prior {
        report.already_imported = true;
        report.records = records as u64;
        report.imported = imported as u64;
        report.skipped = skips_of(store, id)?;
        return Ok(report);
    }
    let (import_id, resume_from, records, imported, skipped) = match prior {
        Some((id, offset, _, records, imported)) => {
            (id, offset as u64, records as u64, imported as u64, skips_of(store, id)?)
        }
        None => {
            store
                .conn
                .execute(
                    "INSERT INTO imports(fingerprint, path, format, started) VALUES (?1, ?2, ?3, strftime('%s','now'))",
                    params![fp, shown, format.name()],
                )
                .map_err(StoreError::from)?;
            (store.conn.last_insert_rowid(), 0, 0, 0, BTreeMap::new())
        }
    };
    store.begin()?;
    let mut sink = ImportSink {
        interner: Interner { store, catalog, users: HashMap::new(), devices: HashMap::new(), hosts: HashMap::new() },
        import_id,
        batch: FactBatch::default(),
        resume_from,
        records,
        imported,
        skipped,
        examples: Vec::new(),
        max_examples: opts.examples,
        lines_in_batch: 0,
        batch_lines: opts.batch_lines.max(1),
        last: Position::default(),
        error: None,
        progress,
        total_bytes,
    };
    let parsed = format.parser().parse(reader.as_mut(), &mut sink);
    let outcome = match (parsed, sink.error.take()) {
        (Err(e), _) => Err(io_err(e)),
        (_, Some(e)) => Err(ImportError::Store(e)),
        (Ok(()), None) => sink.flush(true).map_err(ImportError::from),
    };
    // `flush` leaves a transaction open for the next batch; close it either way.
    let _ = store.rollback();
    outcome?;
    report.records = sink.records;
    report.imported = sink.imported;
    report.skipped = sink.skipped;
    report.examples = sink.examples;
    report.bytes = sink.last.offset_end;
    Ok(report)
}

fn skips_of(store: &Store, id: i64) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut st = store.conn.prepare_cached("SELECT reason, count FROM import_skips WHERE import_id = ?1")?;
    let rows = st.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Imports several files, then refreshes the summaries once.
pub fn import_paths(
    store: &Store,
    catalog: &Catalog,
    paths: &[PathBuf],
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ImportReport>, ImportError> {
    let mut out = Vec::new();
    for p in paths {
        out.push(import_file(store, catalog, p, opts, progress)?);
    }
    store.refresh_summaries()?;
    Ok(out)
}
