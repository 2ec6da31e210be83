//! Import: file → (gzip) → format detection → parser → identification → per-day aggregates,
//! committed in batches together with the byte offset reached. A killed import leaves whole
//! batches only, and a re-run resumes after the last committed offset; a file already fully
//! imported (same fingerprint) is not counted twice.
use super::name_ids::{Case, NameId, NameIds};
use super::{
    Action, Chunk, ChunkParser, ChunkReader, LogFormat, Position, Record, RecordKind, RecordSink, SkipReason,
    host_of_url, registry,
};
use crate::catalog::Catalog;
use crate::domain::{AppId, Day, DeviceId, DomainId, UNKNOWN_DEVICE, UNKNOWN_USER, UserId};
use crate::packed_sort::sort_by_fields;
use crate::sanitize::display_safe_bytes;
use crate::store::write::{
    Counters, EdgeAgg, EdgeKey, EnsuredApps, FactKey, FastMap, RollupPart, Rollups, sum_facts, sum_neighbours,
};
use crate::store::{Store, StoreError};
use rusqlite::{OptionalExtension, params};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

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
    /// Records per committed batch (also the most lines a split import's chunk holds).
    pub batch_lines: u64,
    /// How many skipped-line examples to keep per file.
    pub examples: usize,
    /// Roll-up rows held in memory before they are written mid-file (they are always written
    /// at the end of a file). The default keeps the largest map (app × user) under the 229,376
    /// entries at which it would double to 512 Ki slots (~25 MB, and the old table beside it
    /// while it moves), the peak of a 1 GB import.
    pub rollup_flush_rows: usize,
    /// Parser threads for formats whose lines parse on their own (0 = one per core, at most 4;
    /// 1 = read in order on one thread, as every other format is).
    pub parse_threads: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { format: None, batch_lines: 50_000, examples: 5, rollup_flush_rows: 220_000, parse_threads: 0 }
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
    /// Where the time went (for benchmarks; not part of the JSON summary).
    #[serde(skip)]
    pub timings: ImportTimings,
}

/// Wall-clock seconds spent per stage of one import. Stages on other threads overlap, so the
/// parts need not add up to the total.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ImportTimings {
    /// Parser side busy, summed over its threads: read, decompress, parse, map names to local
    /// ids, aggregate.
    pub parse_s: f64,
    /// Parser side blocked because the writer was still committing earlier batches (summed).
    pub parser_blocked_s: f64,
    /// Parser threads used (one reads in order; more share the input in chunks).
    pub parse_threads: usize,
    /// Writer: catalog identification and cache interning of names first seen in a batch.
    pub intern_s: f64,
    /// Writer: facts, the roll-ups when due, the checkpoint and COMMIT.
    pub commit_s: f64,
    /// Roll-up thread busy summing the committed facts.
    pub rollup_s: f64,
    /// Writer: held roll-ups written to their tables (part of `commit_s`).
    pub rollup_write_s: f64,
    /// Writer waiting for the parser.
    pub writer_idle_s: f64,
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

fn open_input(path: &Path) -> io::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = std::fs::File::open(path)?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut peek = BufReader::with_capacity(super::READ_SIZE, raw);
    let gz = peek.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gz {
        Ok((Box::new(BufReader::with_capacity(super::READ_SIZE, flate2::bufread::MultiGzDecoder::new(peek))), None))
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

fn present<'a>(v: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
    v.as_deref().map(trim).filter(|s| !s.is_empty() && *s != "-")
}

/// `str::trim`, told at once for a field that starts and ends with a printable ASCII byte (the
/// usual case, five fields a line: the full trim was 1 % of a Squid import's CPU).
fn trim(s: &str) -> &str {
    let printable = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if printable(s.as_bytes().first()) && printable(s.as_bytes().last()) { s } else { s.trim() }
}

/// A destination key first seen in this import; the writer resolves it to cache ids once.
enum DestName {
    /// A host name or, failing that, a destination IP: identified by the catalog.
    Host(String),
    /// No host: the appliance's own app name (`key` is `app:<name>`).
    VendorApp { key: String, app: String },
}

/// Names first seen in one batch, in local-id order.
#[derive(Default)]
struct NewNames {
    users: Vec<String>,
    devices: Vec<String>,
    dests: Vec<DestName>,
}

/// A fact keyed by the parser thread's local ids (user/device 0 = unknown). Ordered as the
/// cache's `traffic_daily` key, so sorted local facts stay sorted once mapped to cache ids
/// wherever the writer hands out ids in local-id order (every name new to the cache).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct LocalFact {
    day: i32,
    dest: u32,
    user: u32,
    device: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct LocalEdge {
    user: u32,
    device: u32,
    source: &'static str,
}

/// What one transaction commits: the new names, the aggregates and the checkpoint reached.
#[derive(Default)]
struct Batch {
    /// Place in the input: the writer commits batches in this order.
    seq: u64,
    /// The parser thread whose local ids the batch's names and facts use.
    worker: usize,
    names: NewNames,
    /// One entry per line until [`Collector::send`] sorts and merges them: appending costs
    /// the parser far less than a hash map whose entries miss the cache on every line.
    facts: Vec<(LocalFact, Counters)>,
    edges: FastMap<LocalEdge, EdgeAgg>,
    /// The resume checkpoint once this batch is committed.
    offset: u64,
    /// This batch's lines only; the writer keeps the running totals.
    tally: Tally,
    complete: bool,
}

/// What the lines of a stretch of input came to.
#[derive(Default)]
struct Tally {
    /// Records seen (header and comment lines excluded).
    records: u64,
    imported: u64,
    skipped: BTreeMap<String, u64>,
    /// The first skipped lines, at most `ImportOptions::examples` of them.
    examples: Vec<SkipExample>,
}

impl Tally {
    /// Adds a later stretch of the input.
    fn absorb(&mut self, later: Tally, max_examples: usize) {
        self.records += later.records;
        self.imported += later.imported;
        for (reason, n) in later.skipped {
            *self.skipped.entry(reason).or_default() += n;
        }
        let room = max_examples.saturating_sub(self.examples.len());
        self.examples.extend(later.examples.into_iter().take(room));
    }
}

/// Lines and bytes reached by the parser side, read by the writer for progress reports; `stop`
/// tells the parser side to give up (the writer failed).
#[derive(Default)]
struct Shared {
    lines: AtomicU64,
    bytes: AtomicU64,
    stop: AtomicBool,
}

/// Ends the input early (as an error) once the writer has failed, so the parser does not read a
/// large file to its end for nothing.
struct StopReader<'a> {
    inner: Box<dyn BufRead + Send>,
    stop: &'a AtomicBool,
}

impl Read for StopReader<'_> {
    /// The inner reader's own `read`: a `BufReader` reads a large `buf` straight from its
    /// input, without a copy through its buffer.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("import stopped"));
        }
        self.inner.read(buf)
    }
}

impl BufRead for StopReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("import stopped"));
        }
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
    }
}

/// Parser-thread sink: maps names to dense local ids (each distinct name is hashed once per
/// line and allocated once per import), aggregates per day, and hands full batches to the writer.
struct Collector<'a> {
    tx: SyncSender<Batch>,
    shared: &'a Shared,
    /// Which parser thread this is (its local ids are its own).
    worker: usize,
    /// Local ids; 0 is the unknown user and device.
    users: NameIds,
    devices: NameIds,
    dests: NameIds,
    batch: Batch,
    next_seq: u64,
    resume_from: u64,
    max_examples: usize,
    lines_in_batch: u64,
    /// Lines per batch when reading a stream; a chunk is one batch whatever its length.
    batch_lines: u64,
    /// Whether this thread reports progress (the chunk reader does when there are several).
    publishes: bool,
    last: Position,
    blocked: Duration,
}

impl<'a> Collector<'a> {
    fn new(tx: SyncSender<Batch>, shared: &'a Shared, worker: usize, opts: &ImportOptions, resume_from: u64) -> Self {
        Collector {
            tx,
            shared,
            worker,
            users: NameIds::starting_at(1),
            devices: NameIds::starting_at(1),
            dests: NameIds::starting_at(0),
            batch: Batch::default(),
            next_seq: 0,
            resume_from,
            max_examples: opts.examples,
            lines_in_batch: 0,
            batch_lines: opts.batch_lines.max(1),
            publishes: true,
            last: Position::default(),
            blocked: Duration::ZERO,
        }
    }

    fn user(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else { return 0 };
        let NameId { id, new } = self.users.id(name, Case::Fold);
        if let Some(name) = new {
            self.batch.names.users.push(name);
        }
        id
    }

    fn device(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else { return 0 };
        let NameId { id, new } = self.devices.id(name, Case::Exact);
        if let Some(name) = new {
            self.batch.names.devices.push(name);
        }
        id
    }

    /// Host name (folded to lower case), else the appliance's app name, else the destination IP.
    fn destination(&mut self, rec: &Record<'_>) -> Option<u32> {
        let host = present(&rec.dest_host).or_else(|| present(&rec.url).and_then(host_of_url));
        let vendor = present(&rec.vendor_app);
        let NameId { id, new } = match (host, vendor, present(&rec.dest_ip)) {
            (Some(h), _, _) => self.dests.id(if h.ends_with('.') { h.trim_end_matches('.') } else { h }, Case::Fold),
            (None, Some(app), _) => self.dests.id(&format!("app:{}", app.to_ascii_lowercase()), Case::Exact),
            (None, None, Some(ip)) => self.dests.id(ip, Case::Exact),
            (None, None, None) => return None,
        };
        if let Some(key) = new {
            self.batch.names.dests.push(match (host, vendor) {
                (None, Some(app)) => DestName::VendorApp { key, app: app.to_string() },
                _ => DestName::Host(key),
            });
        }
        Some(id)
    }

    fn add(&mut self, rec: &Record<'_>) {
        let user = self.user(present(&rec.user));
        let device = self.device(present(&rec.device));
        if rec.kind == RecordKind::Logon {
            add_edge(&mut self.batch.edges, LocalEdge { user, device, source: "logon" }, rec.ts, 1);
            return;
        }
        let Some(dest) = self.destination(rec) else { return };
        let c = Counters {
            bytes_up: rec.bytes_up,
            bytes_down: rec.bytes_down,
            transactions: 1,
            blocked: u64::from(rec.action == Action::Blocked),
        };
        let day = Day::from_unix(rec.ts).0;
        self.batch.facts.push((LocalFact { day, dest, user, device }, c));
        if user != 0 && device != 0 {
            add_edge(&mut self.batch.edges, LocalEdge { user, device, source: "traffic" }, rec.ts, 0);
        }
    }

    fn count_skip(&mut self, pos: Position, reason: &SkipReason, raw: &[u8]) {
        let tally = &mut self.batch.tally;
        *tally.skipped.entry(reason.key()).or_default() += 1;
        if tally.examples.len() < self.max_examples {
            let mut text = display_safe_bytes(&raw[..raw.len().min(200)]);
            if raw.len() > 200 {
                text.push('…');
            }
            tally.examples.push(SkipExample { line: pos.line, reason: reason.key(), text });
        }
    }

    /// Lines at or before the resume point were committed by an earlier, interrupted run.
    fn already_done(&mut self, pos: Position) -> bool {
        if pos.offset_end <= self.resume_from {
            self.last = pos;
            if pos.line.is_multiple_of(8192) {
                self.publish();
            }
            return true;
        }
        false
    }

    fn publish(&self) {
        if self.publishes {
            self.shared.lines.store(self.last.line, Ordering::Relaxed);
            self.shared.bytes.store(self.last.offset_end, Ordering::Relaxed);
        }
    }

    fn after_line(&mut self, pos: Position) {
        self.last = pos;
        self.lines_in_batch += 1;
        if self.lines_in_batch.is_multiple_of(8192) {
            self.publish();
        }
        if self.lines_in_batch >= self.batch_lines {
            self.send(false);
        }
    }

    /// Hands the batch and its checkpoint to the writer; blocks while the writer's queue is full,
    /// which bounds memory to a few batches.
    fn send(&mut self, complete: bool) {
        self.publish();
        // The next batch is about as large as this one: sizing its maps up front saves the
        // rehashes of growing them line by line.
        let next = Batch {
            facts: Vec::with_capacity(self.batch.facts.len()),
            edges: FastMap::with_capacity_and_hasher(self.batch.edges.len(), Default::default()),
            ..Default::default()
        };
        let mut batch = std::mem::replace(&mut self.batch, next);
        sort_and_merge(&mut batch.facts);
        batch.seq = self.next_seq;
        batch.worker = self.worker;
        batch.offset = self.last.offset_end;
        batch.complete = complete;
        self.next_seq += 1;
        self.lines_in_batch = 0;
        let t = Instant::now();
        if self.tx.send(batch).is_err() {
            self.shared.stop.store(true, Ordering::Relaxed);
        }
        self.blocked += t.elapsed();
    }

    /// One chunk parsed: it becomes one batch, checkpointed at the chunk's end.
    fn finish_chunk(&mut self, chunk: &Chunk) {
        self.last = chunk.end();
        self.next_seq = chunk.seq;
        self.send(chunk.last);
    }
}

/// Sorts facts by key and sums the counters of equal keys into one entry.
fn sort_and_merge(facts: &mut Vec<(LocalFact, Counters)>) {
    sort_by_fields(facts, |(k, _)| [i64::from(k.day), i64::from(k.dest), i64::from(k.user), i64::from(k.device)]);
    sum_neighbours(facts, |a, b| a == b);
}

fn add_edge(edges: &mut FastMap<LocalEdge, EdgeAgg>, key: LocalEdge, ts: i64, logons: u64) {
    edges.entry(key).and_modify(|e| e.merge(ts, logons)).or_insert(EdgeAgg { first_seen: ts, last_seen: ts, logons });
}

impl RecordSink for Collector<'_> {
    fn record(&mut self, pos: Position, rec: Record<'_>) {
        if self.already_done(pos) {
            return;
        }
        self.batch.tally.records += 1;
        self.add(&rec);
        self.batch.tally.imported += 1;
        self.after_line(pos);
    }

    fn skip(&mut self, pos: Position, reason: SkipReason, raw: &[u8]) {
        if self.already_done(pos) {
            return;
        }
        self.batch.tally.records += 1;
        self.count_skip(pos, &reason, raw);
        self.after_line(pos);
    }
}

/// Cache ids for one parser thread's local ids, in local-id order.
struct LocalIds {
    users: Vec<UserId>,
    devices: Vec<DeviceId>,
    dests: Vec<(DomainId, AppId)>,
}

impl Default for LocalIds {
    fn default() -> Self {
        LocalIds { users: vec![UNKNOWN_USER], devices: vec![UNKNOWN_DEVICE], dests: Vec::new() }
    }
}

impl LocalIds {
    fn user(&self, id: u32) -> Result<UserId, StoreError> {
        self.users.get(id as usize).copied().ok_or_else(|| StoreError::Invalid(format!("unresolved user {id}")))
    }
    fn device(&self, id: u32) -> Result<DeviceId, StoreError> {
        self.devices.get(id as usize).copied().ok_or_else(|| StoreError::Invalid(format!("unresolved device {id}")))
    }
    fn dest(&self, id: u32) -> Result<(DomainId, AppId), StoreError> {
        self.dests.get(id as usize).copied().ok_or_else(|| StoreError::Invalid(format!("unresolved destination {id}")))
    }
}

/// Roll-up rows held back before they are written. An import's batches hit the same app ×
/// user pairs again and again: writing the roll-ups once per file rather than once per batch
/// took the writer from 1.8 s to ~1 s on 2 M Squid lines. A row cap
/// ([`ImportOptions::rollup_flush_rows`]) bounds memory on caches with many users; the
/// interval keeps a long import visible in a console.
const ROLLUP_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Facts as [`crate::store::write::sum_facts`] leaves them, shared by the writer (which writes
/// them) and the roll-up thread (which sums them) while both work on one commit.
type SharedFacts = Arc<Vec<(FactKey, Counters)>>;

/// What the writer hands the roll-up thread.
enum RollupMsg {
    /// A commit's facts; the thread answers on its `done` channel with its row count and them.
    Facts(SharedFacts),
    /// Everything summed so far, sent back part by part to be written, sorted here while the
    /// part before is written; `None` after the last part.
    Take(SyncSender<Option<RollupPart>>),
}

/// The roll-up thread: sums each commit's facts into [`Rollups`] while the writer writes the
/// same facts to SQLite, until the writer takes them. Summing ~650,000 facts a million Squid
/// lines into six maps, two of them ~150,000 entries and a cache miss a lookup, was a fifth of
/// the writer's time, the import's critical path, while the parser threads had time to spare.
/// Returns its busy time.
fn sum_rollups(rx: Receiver<RollupMsg>, done: SyncSender<(usize, SharedFacts)>) -> Duration {
    let mut rollups = Rollups::default();
    let mut busy = Duration::ZERO;
    for msg in rx {
        match msg {
            RollupMsg::Facts(facts) => {
                let started = Instant::now();
                rollups.add_facts(&facts);
                busy += started.elapsed();
                if done.send((rollups.rows(), facts)).is_err() {
                    break;
                }
            }
            // Not counted as busy: the time is the sums', and this mostly waits on the writer.
            RollupMsg::Take(reply) => {
                let sent = std::mem::take(&mut rollups).into_parts(|part| reply.send(Some(part)));
                if sent.is_ok() {
                    let _ = reply.send(None);
                }
            }
        }
    }
    busy
}

/// The writer's end of the roll-up thread: roll-ups not yet written, and whether the cache
/// already says so. One commit at a time is in flight, so the row count the cap is checked
/// against is exact (a count one commit late let the largest map double past the cap: 80 →
/// 92 MB on a 1 GB import) and one vector of facts serves every commit.
struct HeldRollups {
    /// `None` once closed, which ends the thread.
    tx: Option<SyncSender<RollupMsg>>,
    done: Receiver<(usize, SharedFacts)>,
    /// Rows the thread holds: none until facts are summed, some after any.
    rows: usize,
    /// [`crate::store::write::ROLLUPS_PENDING`] is set in the committed state.
    marked: bool,
    since: Instant,
    cap: usize,
    /// Time spent writing roll-ups to their tables.
    write_time: Duration,
}

/// The thread's side of [`HeldRollups`], to run with [`sum_rollups`].
struct RollupThreadEnds {
    rx: Receiver<RollupMsg>,
    done: SyncSender<(usize, SharedFacts)>,
}

fn rollup_thread_stopped() -> StoreError {
    StoreError::Invalid("the roll-up thread stopped".into())
}

impl HeldRollups {
    fn new(cap: usize) -> (HeldRollups, RollupThreadEnds) {
        let (tx, rx) = sync_channel(1);
        let (done_tx, done) = sync_channel(1);
        let held = HeldRollups {
            tx: Some(tx),
            done,
            rows: 0,
            marked: false,
            since: Instant::now(),
            cap,
            write_time: Duration::ZERO,
        };
        (held, RollupThreadEnds { rx, done: done_tx })
    }

    fn send(&self, msg: RollupMsg) -> Result<(), StoreError> {
        self.tx.as_ref().ok_or_else(rollup_thread_stopped)?.send(msg).map_err(|_| rollup_thread_stopped())
    }

    /// Whether facts were summed since the roll-ups were last written.
    fn holds(&self) -> bool {
        self.rows > 0
    }

    /// Has the thread sum a commit's facts (as [`sum_facts`] leaves them) while `write` writes
    /// them; returns their vector, emptied, to gather the next commit in.
    fn sum_while(
        &mut self,
        facts: Vec<(FactKey, Counters)>,
        write: impl FnOnce(&[(FactKey, Counters)]) -> Result<(), StoreError>,
    ) -> Result<Vec<(FactKey, Counters)>, StoreError> {
        let mut facts = Arc::new(facts);
        if facts.is_empty() {
            write(&facts)?;
        } else {
            self.send(RollupMsg::Facts(Arc::clone(&facts)))?;
            write(&facts)?;
            drop(facts);
            let (rows, theirs) = self.done.recv().map_err(|_| rollup_thread_stopped())?;
            self.rows = rows;
            facts = theirs;
        }
        let mut v = Arc::try_unwrap(facts).unwrap_or_default();
        v.clear();
        Ok(v)
    }

    /// Inside the batch's transaction: writes the held roll-ups when due (or `now`), else
    /// records that the cache's roll-ups lag its facts, so a crash is repaired on next open.
    fn settle(&mut self, store: &Store, now: bool) -> Result<(), StoreError> {
        let due = now || self.rows >= self.cap || self.since.elapsed() >= ROLLUP_FLUSH_INTERVAL;
        if due {
            if self.holds() {
                let (reply, parts) = sync_channel(1);
                self.send(RollupMsg::Take(reply))?;
                self.rows = 0;
                let started = Instant::now();
                // Until the thread says it sent the last part: a thread that died part-way must
                // not pass for roll-ups written in full.
                while let Some(part) = parts.recv().map_err(|_| rollup_thread_stopped())? {
                    store.write_rollup_part(part)?;
                }
                self.write_time += started.elapsed();
            }
            if self.marked {
                store.set_rollups_pending(false)?;
            }
            self.since = Instant::now();
        } else if !self.marked && self.holds() {
            store.set_rollups_pending(true)?;
        }
        Ok(())
    }

    /// Called after the transaction that `settle` wrote into has committed.
    fn committed(&mut self) {
        self.marked = self.holds();
    }

    /// Writes what is held in a transaction of its own and opens the next one.
    fn flush(&mut self, store: &Store) -> Result<(), StoreError> {
        self.settle(store, true)?;
        store.commit()?;
        self.committed();
        store.begin()
    }

    /// Ends the thread (whatever it holds is dropped).
    fn close(&mut self) {
        self.tx = None;
    }
}

/// This thread's side of an import: resolves each parser thread's names to cache ids and
/// commits the batches in input order, whichever thread finishes one first.
struct Writer<'s> {
    store: &'s Store,
    catalog: &'s Catalog,
    import_id: i64,
    ids: Vec<LocalIds>,
    apps: EnsuredApps,
    held: HeldRollups,
    /// Batches that arrived before an earlier one.
    waiting: BTreeMap<u64, Batch>,
    pending: PendingCommit,
    /// Records per commit.
    batch_lines: u64,
    next_seq: u64,
    /// Everything committed so far, resumed runs included.
    totals: Tally,
    max_examples: usize,
    /// The checkpoint committed last.
    offset: u64,
    timings: ImportTimings,
}

impl Writer<'_> {
    fn accept(&mut self, b: Batch) -> Result<(), StoreError> {
        let seq = b.seq;
        if seq < self.next_seq || self.waiting.insert(seq, b).is_some() {
            return Err(StoreError::Invalid(format!("import batch {seq} arrived twice")));
        }
        while let Some(b) = self.waiting.remove(&self.next_seq) {
            self.write(b)?;
            self.next_seq += 1;
        }
        Ok(())
    }

    fn learn(&mut self, worker: usize, names: &NewNames) -> Result<(), StoreError> {
        if self.ids.len() <= worker {
            self.ids.resize_with(worker + 1, LocalIds::default);
        }
        let (store, catalog) = (self.store, self.catalog);
        let ids = &mut self.ids[worker];
        ids.users.extend(store.intern_users(&names.users)?);
        ids.devices.extend(store.intern_devices(&names.devices)?);
        // Runs of host names are interned many at a time; an appliance's app names, rarer, one
        // by one where they fall, so that ids follow first sight whatever the batch size.
        for run in names.dests.chunk_by(|a, b| matches!((a, b), (DestName::Host(_), DestName::Host(_)))) {
            if let [DestName::VendorApp { key, app }] = run {
                let app_id = match catalog.identify_vendor_app(app) {
                    Some(idx) => self.apps.catalog_app(store, catalog, idx)?,
                    None => self.apps.unknown_app(store, catalog, &app.to_ascii_lowercase())?,
                };
                ids.dests.push((store.insert_domain(key, app_id)?, app_id));
                continue;
            }
            let hosts: Vec<&str> = run
                .iter()
                .filter_map(|d| match d {
                    DestName::Host(key) => Some(key.as_str()),
                    DestName::VendorApp { .. } => None,
                })
                .collect();
            ids.dests.extend(store.intern_hosts_with(&hosts, catalog, &mut self.apps)?);
        }
        Ok(())
    }

    /// Adds one batch to the commit being gathered, and commits it once it holds
    /// [`ImportOptions::batch_lines`] records or the input's end: a split import's chunks are
    /// smaller than a commit, and fewer commits rewrite fewer packed rows.
    fn write(&mut self, b: Batch) -> Result<(), StoreError> {
        let started = Instant::now();
        self.learn(b.worker, &b.names)?;
        self.timings.intern_s += started.elapsed().as_secs_f64();
        let ids = &self.ids[b.worker];
        let p = &mut self.pending;
        p.facts.reserve(b.facts.len());
        // In local-key order: for names new to the cache the mapped keys come out sorted already,
        // and `write_facts`' sort only checks that.
        for (k, c) in &b.facts {
            let (domain, app) = ids.dest(k.dest)?;
            let key = FactKey { day: Day(k.day), app, domain, user: ids.user(k.user)?, device: ids.device(k.device)? };
            p.facts.push((key, *c));
        }
        for (k, e) in &b.edges {
            p.edges.push((EdgeKey { user: ids.user(k.user)?, device: ids.device(k.device)?, source: k.source }, *e));
        }
        p.tally.absorb(b.tally, self.max_examples);
        p.offset = p.offset.max(b.offset);
        p.complete = b.complete;
        if b.complete || p.tally.records >= self.batch_lines {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits what was gathered, with its checkpoint, and opens the next transaction.
    fn commit(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut p = std::mem::take(&mut self.pending);
        let store = self.store;
        sum_facts(&mut p.facts);
        let edges = &p.edges;
        self.pending.facts = self.held.sum_while(p.facts, |facts| store.write_facts(facts, edges))?;
        self.held.settle(store, p.complete)?;
        self.totals.absorb(p.tally, self.max_examples);
        let t = &self.totals;
        store.conn.execute(
            "UPDATE imports SET committed_offset = max(committed_offset, ?2), records = ?3, imported = ?4, skipped = ?5,
                complete = ?6, finished = CASE WHEN ?6 THEN strftime('%s','now') ELSE finished END WHERE id = ?1",
            params![
                self.import_id,
                p.offset as i64,
                t.records as i64,
                t.imported as i64,
                t.skipped.values().sum::<u64>() as i64,
                p.complete
            ],
        )?;
        store.conn.execute("DELETE FROM import_skips WHERE import_id = ?1", [self.import_id])?;
        for (reason, n) in &t.skipped {
            store.conn.execute(
                "INSERT INTO import_skips(import_id, reason, count) VALUES (?1, ?2, ?3)",
                params![self.import_id, reason, *n as i64],
            )?;
        }
        store.commit()?;
        self.held.committed();
        self.offset = self.offset.max(p.offset);
        store.begin()?;
        self.timings.commit_s += started.elapsed().as_secs_f64();
        Ok(())
    }
}

/// Batches resolved to cache ids and not yet committed.
#[derive(Default)]
struct PendingCommit {
    facts: Vec<(FactKey, Counters)>,
    edges: Vec<(EdgeKey, EdgeAgg)>,
    tally: Tally,
    offset: u64,
    complete: bool,
}

/// How the parser side of an import ended.
struct ParseOutcome {
    result: io::Result<()>,
    /// Busy and blocked time, summed over the parser side's threads.
    busy: Duration,
    blocked: Duration,
    threads: usize,
}

/// What an import committed, for its report.
struct ImportDone {
    totals: Tally,
    offset: u64,
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
        timings: ImportTimings::default(),
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
    let resume = Resume { import_id, resume_from, records, imported, skipped };
    let outcome = run_import(store, catalog, reader, format, opts, resume, total_bytes, &shown, progress);
    // The writer leaves a transaction open for the next batch; close it either way.
    let _ = store.rollback();
    if outcome.is_err() {
        // A failed write may have left committed facts without their roll-ups: repair now
        // rather than at the next open, since this process (a console) may go on reading.
        let _ = store.repair_rollups();
    }
    let (done, timings) = outcome?;
    report.records = done.totals.records;
    report.imported = done.totals.imported;
    report.skipped = done.totals.skipped;
    report.examples = done.totals.examples;
    report.bytes = done.offset;
    report.timings = timings;
    Ok(report)
}

/// Where an import starts: a fresh one, or the totals committed by an interrupted run.
struct Resume {
    import_id: i64,
    resume_from: u64,
    records: u64,
    imported: u64,
    skipped: BTreeMap<String, u64>,
}

/// SQLite page cache during an import, in KiB (negative = KiB in `PRAGMA cache_size`).
const IMPORT_PAGE_CACHE_KIB: i64 = -16 * 1024;

/// WAL pages (4 KiB) between automatic checkpoints during an import: 64 MiB instead of 4 MiB.
const IMPORT_WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;

/// Shrinks the page cache for the length of an import and puts it back afterwards, however the
/// import ends. The writes are near-appends in key order, so a smaller cache costs little and
/// keeps the import's memory bounded whatever the size of the cache file.
struct ImportPageCache<'a> {
    store: &'a Store,
    before: Option<i64>,
    checkpoint_before: Option<i64>,
}

impl<'a> ImportPageCache<'a> {
    fn shrink(store: &'a Store) -> ImportPageCache<'a> {
        // Room for the multi-row upserts of every roll-up next to the interning statements.
        store.conn.set_prepared_statement_cache_capacity(64);
        let before = store.conn.query_row("PRAGMA cache_size", [], |r| r.get(0)).ok();
        let _ = store.conn.pragma_update(None, "cache_size", IMPORT_PAGE_CACHE_KIB);
        // Each batch rewrites the pages it ends in (the last leaves and the interior pages of
        // every table it touches); checkpointing every 4 MiB of WAL copied them into the database
        // over and over. Durability is unchanged (every batch is still committed); only the WAL
        // may grow further before it is folded back.
        let checkpoint_before = store.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).ok();
        let _ = store.conn.pragma_update(None, "wal_autocheckpoint", IMPORT_WAL_AUTOCHECKPOINT_PAGES);
        ImportPageCache { store, before, checkpoint_before }
    }
}

impl Drop for ImportPageCache<'_> {
    fn drop(&mut self) {
        if let Some(v) = self.before {
            let _ = self.store.conn.pragma_update(None, "cache_size", v);
        }
        if let Some(v) = self.checkpoint_before {
            let _ = self.store.conn.pragma_update(None, "wal_autocheckpoint", v);
        }
    }
}

/// Bytes per chunk when the input is split between parser threads: a 50,000-line batch of a
/// proxy log is ~7 MB, and each thread holds about two chunks. At 2 MiB the chunks in flight and
/// their spares took a 1 GB Squid import to 98–101 MB peak RSS; at 1 MiB it peaks at 81 MB, at
/// the same 1 M-line speed.
const CHUNK_MAX_BYTES: usize = 1 << 20;

/// Parser threads to use for a format: several only for formats whose lines parse on their own.
fn parse_threads(opts: &ImportOptions, format: &dyn LogFormat) -> Vec<Box<dyn ChunkParser>> {
    let wanted = match opts.parse_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
        n => n,
    };
    if wanted < 2 {
        return Vec::new();
    }
    (0..wanted).map_while(|_| format.chunk_parser()).collect()
}

/// The parser side (read, parse, aggregate) feeding this thread (resolve ids, write, commit) a
/// batch at a time: parsing overlaps SQLite. Formats whose lines parse on their own have the
/// input cut into chunks by a reader thread and parsed by several threads; the others are read
/// in order by one.
#[allow(clippy::too_many_arguments)]
fn run_import(
    store: &Store,
    catalog: &Catalog,
    reader: Box<dyn BufRead + Send>,
    format: &'static dyn LogFormat,
    opts: &ImportOptions,
    resume: Resume,
    total_bytes: Option<u64>,
    shown: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(ImportDone, ImportTimings), ImportError> {
    let _page_cache = ImportPageCache::shrink(store);
    store.begin()?;
    let shared = Shared::default();
    let chunk_parsers = parse_threads(opts, format);
    // A few batches queued besides the ones being written and built, so that no thread waits on
    // another's slower batches (0.88 s → 0.81 s on 1 M Squid lines against a rendezvous
    // channel); the bound is what bounds memory.
    let (tx, rx) = sync_channel::<Batch>(2 + chunk_parsers.len());
    let resume_from = resume.resume_from;
    let (held, rollup_ends) = HeldRollups::new(opts.rollup_flush_rows);
    let writer = Writer {
        store,
        catalog,
        import_id: resume.import_id,
        ids: Vec::new(),
        apps: EnsuredApps::default(),
        held,
        waiting: BTreeMap::new(),
        pending: PendingCommit::default(),
        batch_lines: opts.batch_lines.max(1),
        next_seq: 0,
        totals: Tally {
            records: resume.records,
            imported: resume.imported,
            skipped: resume.skipped,
            examples: Vec::new(),
        },
        max_examples: opts.examples,
        offset: resume_from,
        timings: ImportTimings::default(),
    };
    let (parsed, written, writer) = std::thread::scope(|scope| {
        // Owned here so that a panic on this side drops the roll-up thread's sender, which ends
        // that thread, rather than leave the scope waiting on it.
        let mut writer = writer;
        let shared = &shared;
        let RollupThreadEnds { rx: rollup_rx, done } = rollup_ends;
        let rollup_side = scope.spawn(move || sum_rollups(rollup_rx, done));
        let parse_side = if chunk_parsers.is_empty() {
            let mut sink = Collector::new(tx, shared, 0, opts, resume_from);
            scope.spawn(move || {
                let started = Instant::now();
                let mut input = StopReader { inner: reader, stop: &shared.stop };
                let result = format.parser().parse(&mut input, &mut sink);
                if result.is_ok() {
                    sink.send(true);
                }
                let busy = started.elapsed().saturating_sub(sink.blocked);
                ParseOutcome { result, busy, blocked: sink.blocked, threads: 1 }
            })
        } else {
            let threads = chunk_parsers.len();
            let mut to_workers = Vec::new();
            let mut workers = Vec::new();
            let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(2 * chunk_parsers.len() + 1);
            for (i, mut parser) in chunk_parsers.into_iter().enumerate() {
                // One chunk waiting per thread besides the one it parses.
                let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(1);
                to_workers.push(chunk_tx);
                let spare_tx = spare_tx.clone();
                let mut sink = Collector::new(tx.clone(), shared, i, opts, resume_from);
                // The reader reports progress and cuts the batches (a chunk is one).
                sink.publishes = false;
                sink.batch_lines = u64::MAX;
                workers.push(scope.spawn(move || {
                    let started = Instant::now();
                    let mut waited = Duration::ZERO;
                    loop {
                        let t = Instant::now();
                        let Ok(chunk) = chunk_rx.recv() else { break };
                        waited += t.elapsed();
                        parser.parse_chunk(&chunk, &mut sink);
                        sink.finish_chunk(&chunk);
                        let _ = spare_tx.try_send(chunk.into_buffer());
                        if shared.stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    let blocked = sink.blocked + waited;
                    (started.elapsed().saturating_sub(blocked), sink.blocked)
                }));
            }
            drop(tx);
            let batch_lines = opts.batch_lines.max(1);
            scope.spawn(move || {
                let started = Instant::now();
                let mut input = StopReader { inner: reader, stop: &shared.stop };
                let (result, blocked) =
                    read_chunks(&mut input, shared, &to_workers, &spare_rx, resume_from, batch_lines);
                drop(to_workers);
                let mut busy = started.elapsed().saturating_sub(blocked);
                let mut blocked = Duration::ZERO;
                for w in workers {
                    match w.join() {
                        Ok((b, waited)) => {
                            busy += b;
                            blocked += waited;
                        }
                        // The scope re-raises a worker's panic; report it as this side failing.
                        Err(_) => {
                            return ParseOutcome {
                                result: Err(io::Error::other("a parser thread panicked")),
                                threads,
                                busy,
                                blocked,
                            };
                        }
                    }
                }
                ParseOutcome { result, busy, blocked, threads }
            })
        };
        let mut written: Result<(), StoreError> = Ok(());
        let mut idle = Duration::ZERO;
        let report = |progress: &mut dyn FnMut(Progress)| {
            progress(Progress {
                lines: shared.lines.load(Ordering::Relaxed),
                bytes: shared.bytes.load(Ordering::Relaxed),
                total_bytes,
            })
        };
        loop {
            let waiting = Instant::now();
            let next = rx.recv_timeout(Duration::from_millis(100));
            idle += waiting.elapsed();
            match next {
                Ok(batch) => {
                    if let Err(e) = writer.accept(batch) {
                        written = Err(e);
                        shared.stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    report(progress);
                }
                Err(RecvTimeoutError::Timeout) => report(progress),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Unblocks parser threads waiting to send after a write error.
        drop(rx);
        // The input failed part-way (no final batch): what was read before the failure is
        // committed and gets its roll-ups. After a write error `import_file` rebuilds them.
        if written.is_ok() && writer.pending.tally.records > 0 {
            written = writer.commit();
        }
        if written.is_ok() && writer.held.holds() {
            written = writer.held.flush(store);
        }
        writer.held.close();
        match rollup_side.join() {
            Ok(busy) => writer.timings.rollup_s = busy.as_secs_f64(),
            Err(_) if written.is_ok() => written = Err(StoreError::Invalid("the roll-up thread panicked".into())),
            Err(_) => {}
        }
        writer.timings.writer_idle_s = idle.as_secs_f64();
        writer.timings.rollup_write_s = writer.held.write_time.as_secs_f64();
        (parse_side.join(), written, writer)
    });
    let mut timings = writer.timings;
    match (parsed, written) {
        (_, Err(e)) => Err(ImportError::Store(e)),
        (Err(_), Ok(())) => {
            Err(ImportError::Io { path: shown.to_string(), source: io::Error::other("the parser thread panicked") })
        }
        (Ok(p), Ok(())) => {
            timings.parse_s = p.busy.as_secs_f64();
            timings.parse_threads = p.threads;
            timings.parser_blocked_s = p.blocked.as_secs_f64();
            match p.result {
                Err(e) => Err(ImportError::Io { path: shown.to_string(), source: e }),
                Ok(()) => Ok((ImportDone { totals: writer.totals, offset: writer.offset }, timings)),
            }
        }
    }
}

/// The reader thread of a split import: cuts the input into chunks and deals them out to the
/// parser threads in turn; returns how it ended and how long it waited on them. Chunks wholly
/// committed by an interrupted earlier run are passed over (the last one is always sent: it
/// completes the import).
fn read_chunks(
    input: &mut dyn BufRead,
    shared: &Shared,
    to_workers: &[SyncSender<Chunk>],
    spare: &Receiver<Vec<u8>>,
    resume_from: u64,
    batch_lines: u64,
) -> (io::Result<()>, Duration) {
    let mut chunks = ChunkReader::new(input, batch_lines, CHUNK_MAX_BYTES);
    let mut sent: u64 = 0;
    let mut blocked = Duration::ZERO;
    loop {
        while let Ok(buf) = spare.try_recv() {
            chunks.give_back(buf);
        }
        let mut chunk = match chunks.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => return (Ok(()), blocked),
            Err(e) => return (Err(e), blocked),
        };
        let end = chunk.end();
        shared.lines.store(end.line, Ordering::Relaxed);
        shared.bytes.store(end.offset_end, Ordering::Relaxed);
        if end.offset_end <= resume_from && !chunk.last {
            continue;
        }
        chunk.seq = sent;
        let to = &to_workers[(sent % to_workers.len() as u64) as usize];
        sent += 1;
        let t = Instant::now();
        let delivered = to.send(chunk).is_ok();
        blocked += t.elapsed();
        if !delivered {
            // The parser threads are gone: the writer failed.
            return (Ok(()), blocked);
        }
    }
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
    store.with_background_checkpoint(|| store.refresh_summaries())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one_fact(user: i64) -> (FactKey, Counters) {
        let key =
            FactKey { day: Day(19_000), app: AppId(7), domain: DomainId(3), user: UserId(user), device: DeviceId(0) };
        (key, Counters { bytes_up: 10, bytes_down: 20, transactions: 1, blocked: 0 })
    }

    /// The held roll-ups go through the roll-up thread and back, part by part, into every
    /// roll-up table.
    #[test]
    fn held_rollups_are_written_part_by_part() {
        let store = Store::open_in_memory().unwrap();
        store.begin().unwrap();
        let (mut held, RollupThreadEnds { rx, done }) = HeldRollups::new(1_000);
        let thread = std::thread::spawn(move || sum_rollups(rx, done));
        held.sum_while(vec![one_fact(1), one_fact(2)], |_| Ok(())).unwrap();
        assert!(held.holds());
        held.settle(&store, true).unwrap();
        assert!(!held.holds());
        held.close();
        thread.join().unwrap();
        for (table, rows) in [("app_day", 1), ("domain_total", 1), ("user_day", 2), ("device_day", 1)] {
            assert_eq!(
                store.dump_rows(&format!("SELECT count(*) FROM {table}")),
                [format!("Integer({rows})")],
                "{table}"
            );
        }
        assert_eq!(
            store.dump_rows("SELECT user_id, bytes_up FROM app_user ORDER BY 1"),
            ["Integer(1) Integer(10)", "Integer(2) Integer(10)"]
        );
        assert_eq!(store.dump_rows("SELECT count(*) FROM user_app"), ["Integer(2)"]);
    }

    /// A roll-up thread that stops after handing over some parts leaves an error, not roll-ups
    /// taken for written in full.
    #[test]
    fn a_rollup_thread_lost_part_way_is_an_error() {
        let store = Store::open_in_memory().unwrap();
        store.begin().unwrap();
        let (mut held, RollupThreadEnds { rx, done }) = HeldRollups::new(1_000);
        let thread = std::thread::spawn(move || {
            let mut rollups = Rollups::default();
            for msg in rx {
                match msg {
                    RollupMsg::Facts(facts) => {
                        rollups.add_facts(&facts);
                        let _ = done.send((rollups.rows(), facts));
                    }
                    RollupMsg::Take(reply) => {
                        // The first part only, then gone without the end mark.
                        let _ = std::mem::take(&mut rollups).into_parts(|part| {
                            let _ = reply.send(Some(part));
                            Err(())
                        });
                        return;
                    }
                }
            }
        });
        held.sum_while(vec![one_fact(1)], |_| Ok(())).unwrap();
        let got = held.settle(&store, true);
        assert!(matches!(&got, Err(StoreError::Invalid(m)) if m.contains("roll-up thread stopped")), "{got:?}");
        thread.join().unwrap();
    }

    proptest! {
        /// The quick trim agrees with `str::trim`, control bytes, Unicode spaces and all.
        #[test]
        fn trim_matches_std(s in "[ \\t\\r\\n\\x0b\\x0c\\x1c\\x00a-z.\\u{a0}\\u{2003}é-]{0,8}") {
            prop_assert_eq!(trim(&s), s.trim());
        }
    }
}
