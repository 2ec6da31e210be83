//! Rows packed into blobs. SQLite's cost is per row, so the cache keeps the rows that share a
//! key prefix as one row whose blob lists the rest, each entry keyed by an id:
//! - `traffic_packed`: one row per day × user × device; its `facts` blob lists the destinations
//!   (domain ids) with their [`Counters`]. A 1,000,000-line proxy log yields ~650,000 day ×
//!   domain × user × device facts but only ~45,000 such rows: writing the facts one row each
//!   took 0.47 s of that import on its own (`bench_sqlite_floor`).
//! - `app_user_packed` / `app_device_packed`: one row per app listing its users (devices) with
//!   their day [`Span`] and sums, and `user_app_packed` / `device_app_packed`: one row per user
//!   (device) listing its apps the same way. The same log's 153,351 app × user rows become 210
//!   app rows and 1,501 user rows; both ends are kept so that an app page and a user page each
//!   read one row.
//!
//! SQL still sees one row per entry. The views `traffic_daily(day, domain_id, user_id,
//! device_id, bytes_up, bytes_down, transactions, blocked)`, `app_user`, `app_device`, `user_app`
//! and `device_app` unpack the blobs through the table-valued functions `facts_of(blob)` and
//! `usage_of(blob)` registered here. An upsert merges blobs with `merge_facts(old, new)` /
//! `merge_usage(old, new)`; `pack_facts(domain_id, bytes_up, bytes_down, transactions, blocked)`
//! and `pack_usage(id, first_day, last_day, bytes_up, bytes_down, transactions)` aggregate plain
//! rows into a blob (migrations and roll-up rebuilds). Every connection to a cache needs
//! [`register`] before it reads those views; [`Store`](super::Store) does it, and plain
//! connections (tests, tools) call [`register`] themselves. The `sqlite3` shell can read the
//! packed tables but not the views.
//!
//! Blob layout: a format byte ([`FORMAT`]), then per entry LEB128 varints: the id's distance from
//! the previous one (from 0 for the first; always ≥ 1 after it), then the entry's values. A fact
//! has four (bytes up, bytes down, transactions, blocked), a span five (first day and the span's
//! length zigzag-encoded, bytes up, bytes down, transactions). A typical entry takes 8–10 bytes.
use super::write::Counters;
use rusqlite::functions::{Aggregate, Context as FnContext, FunctionFlags};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection, VTabCursor, sqlite3_vtab,
    sqlite3_vtab_cursor,
};
use rusqlite::{Connection, Error as SqlError};
use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;

/// The first byte of every blob: a later layout gets another number instead of being misread.
pub const FORMAT: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("a packed cache row is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("a packed cache row must list each id once, in ascending order (id {0} after {1})")]
    NotAscending(i64, i64),
}

impl From<PackError> for SqlError {
    fn from(e: PackError) -> SqlError {
        SqlError::UserFunctionError(Box::new(e))
    }
}

/// What a blob's entries carry besides their id.
pub trait Entry:
    Copy + Default + PartialEq + std::fmt::Debug + Send + std::panic::UnwindSafe + std::panic::RefUnwindSafe + 'static
{
    /// The table-valued function's columns: the id, the values, and the hidden blob argument.
    const SCHEMA: &'static CStr;
    /// How many value columns follow the id.
    const VALUES: usize;
    fn put(&self, out: &mut Vec<u8>);
    fn get(b: &[u8], at: &mut usize) -> Result<Self, PackError>;
    /// Folds in the entry of the same id from another blob.
    fn combine(&mut self, o: &Self);
    /// Value column `i` (0 is the first after the id) as SQL sees it.
    fn column(&self, i: usize) -> Option<i64>;
    /// The values from arguments `1..=VALUES` of an aggregate call (argument 0 is the id).
    fn from_args(ctx: &FnContext<'_>) -> rusqlite::Result<Self>;
}

impl Entry for Counters {
    const SCHEMA: &'static CStr = c"CREATE TABLE x(domain_id INTEGER, bytes_up INTEGER, bytes_down INTEGER, transactions INTEGER, blocked INTEGER, facts HIDDEN)";
    const VALUES: usize = 4;

    fn put(&self, out: &mut Vec<u8>) {
        put_varint(out, self.bytes_up);
        put_varint(out, self.bytes_down);
        put_varint(out, self.transactions);
        put_varint(out, self.blocked);
    }

    fn get(b: &[u8], at: &mut usize) -> Result<Self, PackError> {
        let mut next = || get_varint(b, at);
        Ok(Counters { bytes_up: next()?, bytes_down: next()?, transactions: next()?, blocked: next()? })
    }

    fn combine(&mut self, o: &Self) {
        self.add(o);
    }

    fn column(&self, i: usize) -> Option<i64> {
        let v = [self.bytes_up, self.bytes_down, self.transactions, self.blocked];
        v.get(i).map(|v| super::i(*v))
    }

    fn from_args(ctx: &FnContext<'_>) -> rusqlite::Result<Self> {
        Ok(Counters {
            bytes_up: counter(ctx, 1)?,
            bytes_down: counter(ctx, 2)?,
            transactions: counter(ctx, 3)?,
            blocked: counter(ctx, 4)?,
        })
    }
}

/// An app × user (or device) roll-up entry: the days it spans and its sums. No `blocked`: those
/// roll-ups never had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub first: i32,
    pub last: i32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub transactions: u64,
}

impl Span {
    /// One fact's day and counters.
    pub fn of(day: i32, c: &Counters) -> Span {
        Span { first: day, last: day, bytes_up: c.bytes_up, bytes_down: c.bytes_down, transactions: c.transactions }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn day_value(v: i64) -> Result<i32, PackError> {
    i32::try_from(v).map_err(|_| PackError::Corrupt("day out of range"))
}

impl Entry for Span {
    const SCHEMA: &'static CStr = c"CREATE TABLE x(id INTEGER, first_day INTEGER, last_day INTEGER, bytes_up INTEGER, bytes_down INTEGER, transactions INTEGER, usage HIDDEN)";
    const VALUES: usize = 5;

    fn put(&self, out: &mut Vec<u8>) {
        put_varint(out, zigzag(i64::from(self.first)));
        put_varint(out, zigzag(i64::from(self.last) - i64::from(self.first)));
        put_varint(out, self.bytes_up);
        put_varint(out, self.bytes_down);
        put_varint(out, self.transactions);
    }

    fn get(b: &[u8], at: &mut usize) -> Result<Self, PackError> {
        let first = unzigzag(get_varint(b, at)?);
        let length = unzigzag(get_varint(b, at)?);
        let last = first.checked_add(length).ok_or(PackError::Corrupt("day out of range"))?;
        let mut next = || get_varint(b, at);
        Ok(Span {
            first: day_value(first)?,
            last: day_value(last)?,
            bytes_up: next()?,
            bytes_down: next()?,
            transactions: next()?,
        })
    }

    fn combine(&mut self, o: &Self) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.bytes_up = self.bytes_up.saturating_add(o.bytes_up);
        self.bytes_down = self.bytes_down.saturating_add(o.bytes_down);
        self.transactions = self.transactions.saturating_add(o.transactions);
    }

    fn column(&self, i: usize) -> Option<i64> {
        Some(match i {
            0 => i64::from(self.first),
            1 => i64::from(self.last),
            2 => super::i(self.bytes_up),
            3 => super::i(self.bytes_down),
            4 => super::i(self.transactions),
            _ => return None,
        })
    }

    fn from_args(ctx: &FnContext<'_>) -> rusqlite::Result<Self> {
        let day = |i| -> rusqlite::Result<i32> { Ok(day_value(ctx.get::<i64>(i)?)?) };
        Ok(Span {
            first: day(1)?,
            last: day(2)?,
            bytes_up: counter(ctx, 3)?,
            bytes_down: counter(ctx, 4)?,
            transactions: counter(ctx, 5)?,
        })
    }
}

/// One entry of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed<E> {
    pub id: i64,
    pub v: E,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Result<u64, PackError> {
    // Most values (counts, small deltas) take one byte.
    if let Some(&byte) = b.get(*at)
        && byte < 0x80
    {
        *at += 1;
        return Ok(u64::from(byte));
    }
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or(PackError::Corrupt("truncated entry"))?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && byte > 1 {
                return Err(PackError::Corrupt("varint overflows 64 bits"));
            }
            return Ok(v);
        }
    }
    Err(PackError::Corrupt("varint longer than 10 bytes"))
}

/// Reads the id delta of the entry at `at` (just past the format byte for the first entry)
/// and returns the entry's id, `last` becoming it.
fn next_id(b: &[u8], at: &mut usize, last: &mut i64) -> Result<i64, PackError> {
    let first = *at == 1;
    let delta = get_varint(b, at)?;
    let id =
        i64::try_from(delta).ok().and_then(|d| last.checked_add(d)).ok_or(PackError::Corrupt("id out of range"))?;
    if !first && delta == 0 {
        return Err(PackError::Corrupt("id listed twice"));
    }
    *last = id;
    Ok(id)
}

/// Builds one blob from entries given in strictly ascending id order.
pub struct Packer<'a, E> {
    out: &'a mut Vec<u8>,
    last: i64,
    phantom: PhantomData<E>,
}

impl<'a, E: Entry> Packer<'a, E> {
    /// Clears `out` and starts a blob in it.
    pub fn new(out: &'a mut Vec<u8>) -> Packer<'a, E> {
        out.clear();
        out.push(FORMAT);
        Packer { out, last: 0, phantom: PhantomData }
    }

    pub fn push(&mut self, id: i64, v: &E) -> Result<(), PackError> {
        let first = self.out.len() == 1;
        if id < 0 || (!first && id <= self.last) {
            return Err(PackError::NotAscending(id, self.last));
        }
        put_varint(self.out, (id - self.last) as u64);
        v.put(self.out);
        self.last = id;
        Ok(())
    }
}

/// The entries of one blob, in id order. Never panics on a corrupt blob: it yields one error
/// and stops.
pub struct Unpack<'a, E> {
    b: &'a [u8],
    at: usize,
    last: i64,
    failed: bool,
    phantom: PhantomData<E>,
}

impl<'a, E: Entry> Unpack<'a, E> {
    pub fn new(b: &'a [u8]) -> Unpack<'a, E> {
        Unpack { b, at: 0, last: 0, failed: false, phantom: PhantomData }
    }

    fn entry(&mut self) -> Result<Keyed<E>, PackError> {
        if self.at == 0 {
            if self.b.first() != Some(&FORMAT) {
                return Err(PackError::Corrupt("unknown layout"));
            }
            self.at = 1;
        }
        let id = next_id(self.b, &mut self.at, &mut self.last)?;
        Ok(Keyed { id, v: E::get(self.b, &mut self.at)? })
    }
}

impl<E: Entry> Iterator for Unpack<'_, E> {
    type Item = Result<Keyed<E>, PackError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || (self.at > 0 && self.at >= self.b.len()) {
            return None;
        }
        if self.at == 0 && self.b.len() == 1 && self.b[0] == FORMAT {
            return None;
        }
        let e = self.entry();
        self.failed = e.is_err();
        Some(e)
    }
}

/// Steps past one varint, with the checks of [`get_varint`] but without decoding it.
fn skip_varint(b: &[u8], at: &mut usize) -> Result<(), PackError> {
    let rest = b.get(*at..).unwrap_or_default();
    let n = rest.iter().take(10).position(|&x| x < 0x80).ok_or(if rest.len() < 10 {
        PackError::Corrupt("truncated entry")
    } else {
        PackError::Corrupt("varint longer than 10 bytes")
    })?;
    if n == 9 && rest[9] > 1 {
        return Err(PackError::Corrupt("varint overflows 64 bits"));
    }
    *at += n + 1;
    Ok(())
}

/// One entry of a blob as its id and the bytes of its values, which a merge copies through.
#[derive(Clone, Copy)]
struct RawEntry<'a> {
    id: i64,
    values: &'a [u8],
}

/// A blob's entries as [`RawEntry`]s, their ids and varints checked as [`Unpack`] checks them
/// (the values are not decoded).
struct RawEntries<'a, E> {
    b: &'a [u8],
    at: usize,
    last: i64,
    phantom: PhantomData<E>,
}

impl<'a, E: Entry> RawEntries<'a, E> {
    fn new(b: &'a [u8]) -> Result<Self, PackError> {
        if b.first() != Some(&FORMAT) {
            return Err(PackError::Corrupt("unknown layout"));
        }
        Ok(RawEntries { b, at: 1, last: 0, phantom: PhantomData })
    }

    fn next(&mut self) -> Result<Option<RawEntry<'a>>, PackError> {
        if self.at >= self.b.len() {
            return Ok(None);
        }
        let id = next_id(self.b, &mut self.at, &mut self.last)?;
        let start = self.at;
        for _ in 0..E::VALUES {
            skip_varint(self.b, &mut self.at)?;
        }
        Ok(Some(RawEntry { id, values: &self.b[start..self.at] }))
    }
}

/// Every entry of `a` and `b`, the values of an id in both combined: what an upsert of `b` onto
/// a stored `a` must leave. An entry of one side only keeps its values' bytes (only its id
/// delta is rewritten): decoding and re-encoding them was a quarter of the writer's time on a
/// 1 GB log, whose rows of one day are merged again by each commit of that day.
pub fn merge<E: Entry>(a: &[u8], b: &[u8], out: &mut Vec<u8>) -> Result<(), PackError> {
    out.clear();
    out.push(FORMAT);
    let mut last = 0;
    let mut emit = |out: &mut Vec<u8>, id: i64, values: &[u8]| {
        // Ascending and non-negative: both inputs are, and ids are taken in order.
        put_varint(out, id.abs_diff(last));
        out.extend_from_slice(values);
        last = id;
    };
    let (mut xs, mut ys) = (RawEntries::<E>::new(a)?, RawEntries::<E>::new(b)?);
    let (mut x, mut y) = (xs.next()?, ys.next()?);
    let mut both = Vec::new();
    loop {
        match (x, y) {
            (Some(l), Some(r)) if l.id == r.id => {
                let mut v = E::get(l.values, &mut 0)?;
                v.combine(&E::get(r.values, &mut 0)?);
                both.clear();
                v.put(&mut both);
                emit(out, l.id, &both);
                x = xs.next()?;
                y = ys.next()?;
            }
            (Some(l), Some(r)) if l.id < r.id => {
                emit(out, l.id, l.values);
                x = xs.next()?;
            }
            (_, Some(r)) => {
                emit(out, r.id, r.values);
                y = ys.next()?;
            }
            (Some(l), None) => {
                emit(out, l.id, l.values);
                x = xs.next()?;
            }
            (None, None) => return Ok(()),
        }
    }
}

/// A blob from entries in any order, equal ids combined (the `pack_*` aggregates).
pub fn pack_unordered<E: Entry>(mut entries: Vec<Keyed<E>>, out: &mut Vec<u8>) -> Result<(), PackError> {
    entries.sort_unstable_by_key(|e| e.id);
    let mut p = Packer::<E>::new(out);
    for run in entries.chunk_by(|a, b| a.id == b.id) {
        let mut v = run[0].v;
        for e in &run[1..] {
            v.combine(&e.v);
        }
        p.push(run[0].id, &v)?;
    }
    Ok(())
}

/// A counter from SQL: negative values (never written by shadowscope) read as 0.
fn counter(ctx: &FnContext<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(ctx.get::<i64>(i)?).unwrap_or(0))
}

struct PackAggregate<E>(PhantomData<E>);

impl<E: Entry> Aggregate<Vec<Keyed<E>>, Vec<u8>> for PackAggregate<E> {
    fn init(&self, _: &mut FnContext<'_>) -> rusqlite::Result<Vec<Keyed<E>>> {
        Ok(Vec::new())
    }

    fn step(&self, ctx: &mut FnContext<'_>, acc: &mut Vec<Keyed<E>>) -> rusqlite::Result<()> {
        acc.push(Keyed { id: ctx.get(0)?, v: E::from_args(ctx)? });
        Ok(())
    }

    fn finalize(&self, _: &mut FnContext<'_>, acc: Option<Vec<Keyed<E>>>) -> rusqlite::Result<Vec<u8>> {
        let mut out = Vec::new();
        pack_unordered(acc.unwrap_or_default(), &mut out)?;
        Ok(out)
    }
}

/// Registers one entry kind's merge scalar and pack aggregate.
fn register_functions<E: Entry>(conn: &Connection, merge_name: &str, pack_name: &str) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(merge_name, 2, flags, |ctx| {
        let a = ctx.get_raw(0).as_blob()?;
        let b = ctx.get_raw(1).as_blob()?;
        let mut out = Vec::with_capacity(a.len() + b.len());
        merge::<E>(a, b, &mut out)?;
        Ok(out)
    })?;
    let args = c_int::try_from(E::VALUES + 1).unwrap_or(c_int::MAX);
    conn.create_aggregate_function(pack_name, args, flags, PackAggregate::<E>(PhantomData))
}

/// Registers `facts_of`, `merge_facts`, `pack_facts`, `usage_of`, `merge_usage` and `pack_usage`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    register_functions::<Counters>(conn, "merge_facts", "pack_facts")?;
    register_functions::<Span>(conn, "merge_usage", "pack_usage")?;
    const FACTS_OF: Module<'static, PackedOf<Counters>> = Module::eponymous_only_module();
    const USAGE_OF: Module<'static, PackedOf<Span>> = Module::eponymous_only_module();
    conn.create_module(c"facts_of", &FACTS_OF, None)?;
    conn.create_module(c"usage_of", &USAGE_OF, None)
}

/// The `facts_of(blob)` / `usage_of(blob)` table-valued functions: column 0 is the id, then the
/// entry's values, then the hidden blob argument.
// SAFETY (for the `unsafe impl`s below): rusqlite hands SQLite pointers to these structs as
// `sqlite3_vtab` / `sqlite3_vtab_cursor`, which is sound because each is `#[repr(C)]` with that
// base struct as its first field; that layout is the traits' whole safety contract.
#[repr(C)]
struct PackedOf<E> {
    base: sqlite3_vtab,
    phantom: PhantomData<E>,
}

impl<E: Entry> PackedOf<E> {
    /// The hidden blob column's number.
    const BLOB: c_int = E::VALUES as c_int + 1;
}

unsafe impl<'vtab, E: Entry> VTab<'vtab> for PackedOf<E> {
    type Aux = ();
    type Cursor = PackedCursor<'vtab, E>;

    fn connect(
        db: &mut VTabConnection,
        _aux: Option<&()>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        db.config(VTabConfig::Innocuous)?;
        Ok((Cow::Borrowed(E::SCHEMA), PackedOf { base: sqlite3_vtab::default(), phantom: PhantomData }))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut arg = None;
        let mut unusable = false;
        for (i, c) in info.constraints().enumerate() {
            if c.column() != Self::BLOB {
                continue;
            }
            if !c.is_usable() {
                unusable = true;
            } else if c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ {
                arg = Some(i);
            }
        }
        match arg {
            Some(i) => {
                let mut usage = info.constraint_usage(i);
                usage.set_argv_index(1);
                usage.set_omit(true);
                info.set_idx_num(1);
                info.set_estimated_cost(10.0);
                info.set_estimated_rows(16);
                Ok(true)
            }
            // Only a plan that hands over the blob can run; SQLite then looks for one.
            None if unusable => Ok(false),
            None => {
                info.set_idx_num(0);
                info.set_estimated_cost(1e18);
                Ok(true)
            }
        }
    }

    fn open(&'vtab mut self) -> rusqlite::Result<PackedCursor<'vtab, E>> {
        Ok(PackedCursor {
            base: sqlite3_vtab_cursor::default(),
            blob: Vec::new(),
            at: 0,
            last: 0,
            current: None,
            row: 0,
            phantom: PhantomData,
        })
    }
}

#[repr(C)]
struct PackedCursor<'vtab, E> {
    base: sqlite3_vtab_cursor,
    /// The row's blob, copied: SQLite's argument values live only for the `filter` call.
    blob: Vec<u8>,
    /// Where the next entry starts in `blob`.
    at: usize,
    last: i64,
    current: Option<Keyed<E>>,
    row: i64,
    phantom: PhantomData<&'vtab PackedOf<E>>,
}

impl<E: Entry> PackedCursor<'_, E> {
    fn advance(&mut self) -> rusqlite::Result<()> {
        let mut u = Unpack::<E> { b: &self.blob, at: self.at, last: self.last, failed: false, phantom: PhantomData };
        self.current = u.next().transpose()?;
        self.at = u.at;
        self.last = u.last;
        self.row += 1;
        Ok(())
    }
}

unsafe impl<E: Entry> VTabCursor for PackedCursor<'_, E> {
    fn filter(&mut self, idx_num: c_int, _idx_str: Option<&str>, args: &Filters<'_>) -> rusqlite::Result<()> {
        self.blob.clear();
        self.at = 0;
        self.last = 0;
        self.row = 0;
        self.current = None;
        if idx_num == 1 && !args.is_empty() {
            let Some(blob) = args.get::<Option<Vec<u8>>>(0)? else { return Ok(()) };
            self.blob = blob;
            self.advance()?;
        }
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.advance()
    }

    fn eof(&self) -> bool {
        self.current.is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let Some(e) = &self.current else { return ctx.set_result(rusqlite::types::Null) };
        let v = match usize::try_from(i) {
            Ok(0) => Some(e.id),
            Ok(n) => e.v.column(n - 1),
            Err(_) => None,
        };
        match v {
            Some(v) => ctx.set_result(v),
            None => ctx.set_result(rusqlite::types::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.row)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(up: u64, down: u64, tx: u64, blocked: u64) -> Counters {
        Counters { bytes_up: up, bytes_down: down, transactions: tx, blocked }
    }

    fn pack(facts: &[(i64, Counters)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut p = Packer::<Counters>::new(&mut out);
        for (d, c) in facts {
            p.push(*d, c).unwrap();
        }
        out
    }

    fn unpack(b: &[u8]) -> Vec<(i64, Counters)> {
        Unpack::<Counters>::new(b).map(|f| f.map(|f| (f.id, f.v))).collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn packs_and_unpacks_extremes() {
        let facts = vec![(0, c(0, 0, 0, 0)), (1, c(u64::MAX, 1, 2, 3)), (i64::MAX, c(127, 128, 16_383, 16_384))];
        assert_eq!(unpack(&pack(&facts)), facts);
        assert_eq!(unpack(&pack(&[])), vec![]);
    }

    #[test]
    fn refuses_unordered_or_repeated_domains() {
        let mut out = Vec::new();
        let mut p = Packer::<Counters>::new(&mut out);
        p.push(5, &c(1, 1, 1, 0)).unwrap();
        assert_eq!(p.push(5, &c(1, 1, 1, 0)), Err(PackError::NotAscending(5, 5)));
        assert_eq!(p.push(4, &c(1, 1, 1, 0)), Err(PackError::NotAscending(4, 5)));
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let good = pack(&[(3, c(1, 2, 3, 0)), (9, c(4, 5, 6, 1))]);
        // A cut between entries is a shorter valid blob; a cut inside one is an error.
        let whole = unpack(&good);
        for cut in 0..good.len() {
            let r: Result<Vec<_>, _> = Unpack::<Counters>::new(&good[..cut]).map(|f| f.map(|f| (f.id, f.v))).collect();
            match cut {
                1 => assert_eq!(r, Ok(vec![])),
                6 => assert_eq!(r, Ok(whole[..1].to_vec())),
                _ => assert!(r.is_err(), "cut at {cut}: {r:?}"),
            }
            // A merge reports the corruption of either side rather than copying it through.
            let mut out = Vec::new();
            assert_eq!(merge::<Counters>(&good, &good[..cut], &mut out).is_err(), r.is_err(), "cut at {cut}");
            assert_eq!(merge::<Counters>(&good[..cut], &good, &mut out).is_err(), r.is_err(), "cut at {cut}");
        }
        assert!(Unpack::<Counters>::new(&[2, 1, 1, 1, 1, 1]).next().unwrap().is_err(), "unknown layout");
        assert!(
            Unpack::<Counters>::new(&[FORMAT, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).nth(1).unwrap().is_err(),
            "repeated domain"
        );
        let long = [FORMAT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Unpack::<Counters>::new(&long).next().unwrap().is_err(), "varint past 64 bits");
    }

    proptest! {
        #[test]
        fn unpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Unpack::<Counters>::new(&bytes).count();
            let _ = Unpack::<Span>::new(&bytes).count();
            let mut out = Vec::new();
            let _ = merge::<Counters>(&bytes, &bytes, &mut out);
            let _ = merge::<Span>(&bytes, &bytes, &mut out);
        }

        /// Merging two blobs equals packing the union of their facts with equal domains summed.
        #[test]
        fn merge_is_the_sum_of_both(
            a in proptest::collection::btree_map(0i64..60, (0u64..1 << 40, 0u64..1 << 40, 0u64..9, 0u64..3), 0..20),
            b in proptest::collection::btree_map(0i64..60, (0u64..1 << 40, 0u64..1 << 40, 0u64..9, 0u64..3), 0..20),
        ) {
            let to = |m: &std::collections::BTreeMap<i64, (u64, u64, u64, u64)>| -> Vec<(i64, Counters)> {
                m.iter().map(|(d, (u, w, t, x))| (*d, c(*u, *w, *t, *x))).collect()
            };
            let mut out = Vec::new();
            merge::<Counters>(&pack(&to(&a)), &pack(&to(&b)), &mut out).unwrap();
            let mut want = std::collections::BTreeMap::<i64, Counters>::new();
            for (d, cs) in to(&a).into_iter().chain(to(&b)) {
                want.entry(d).or_default().add(&cs);
            }
            prop_assert_eq!(unpack(&out), want.into_iter().collect::<Vec<_>>());
            let all: Vec<Keyed<Counters>> =
                to(&a).into_iter().chain(to(&b)).map(|(id, v)| Keyed { id, v }).collect();
            let mut packed = Vec::new();
            pack_unordered(all, &mut packed).unwrap();
            prop_assert_eq!(packed, out);
        }
    }

    fn span(first: i32, last: i32, up: u64) -> Span {
        Span { first, last, bytes_up: up, bytes_down: up / 2, transactions: 1 }
    }

    #[test]
    fn spans_round_trip_negative_days_and_extremes() {
        let entries =
            [(0, span(-719_162, -1, 0)), (7, span(i32::MIN, i32::MAX, u64::MAX)), (8, span(20_000, 20_000, 5))];
        let mut out = Vec::new();
        let mut p = Packer::<Span>::new(&mut out);
        for (id, v) in &entries {
            p.push(*id, v).unwrap();
        }
        let back: Vec<(i64, Span)> =
            Unpack::<Span>::new(&out).map(|e| e.map(|e| (e.id, e.v))).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, entries);
    }

    proptest! {
        /// Merging two usage blobs gives each id the widest span and the sums of both.
        #[test]
        fn usage_merge_widens_spans_and_sums(
            a in proptest::collection::btree_map(0i64..40, (19_000i32..19_100, 0i32..30, 0u64..1 << 40), 0..16),
            b in proptest::collection::btree_map(0i64..40, (19_000i32..19_100, 0i32..30, 0u64..1 << 40), 0..16),
        ) {
            let blob = |m: &std::collections::BTreeMap<i64, (i32, i32, u64)>| {
                let mut out = Vec::new();
                let mut p = Packer::<Span>::new(&mut out);
                for (id, (first, len, up)) in m {
                    p.push(*id, &span(*first, first + len, *up)).unwrap();
                }
                out
            };
            let mut out = Vec::new();
            merge::<Span>(&blob(&a), &blob(&b), &mut out).unwrap();
            let got: Vec<Keyed<Span>> = Unpack::<Span>::new(&out).collect::<Result<_, _>>().unwrap();
            let mut want = std::collections::BTreeMap::<i64, Span>::new();
            for (id, (first, len, up)) in a.iter().chain(b.iter()) {
                let s = span(*first, first + len, *up);
                want.entry(*id).and_modify(|w| {
                    w.first = w.first.min(s.first);
                    w.last = w.last.max(s.last);
                    w.bytes_up += s.bytes_up;
                    w.bytes_down += s.bytes_down;
                    w.transactions += 1;
                }).or_insert(s);
            }
            prop_assert_eq!(got, want.into_iter().map(|(id, v)| Keyed { id, v }).collect::<Vec<_>>());
        }
    }

    #[test]
    fn sql_sees_one_row_per_usage_entry() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE plain(app INTEGER, user INTEGER, f INTEGER, l INTEGER, up INTEGER, down INTEGER, tx INTEGER);
             INSERT INTO plain VALUES (1, 9, 100, 101, 10, 1, 1), (1, 3, 102, 102, 5, 5, 2), (1, 9, 99, 100, 1, 1, 1),
                                      (2, 3, 100, 100, 7, 7, 7);
             CREATE TABLE p AS SELECT app, pack_usage(user, f, l, up, down, tx) AS usage FROM plain GROUP BY app;",
        )
        .unwrap();
        let mut st = conn.prepare("SELECT p.app, u.* FROM p, usage_of(p.usage) u ORDER BY 1, 2").unwrap();
        let rows: Vec<Vec<i64>> =
            st.query_map([], |r| (0..7).map(|i| r.get(i)).collect()).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            rows,
            vec![vec![1, 3, 102, 102, 5, 5, 2], vec![1, 9, 99, 101, 11, 2, 2], vec![2, 3, 100, 100, 7, 7, 7]]
        );
        let merged: i64 = conn
            .query_row("SELECT sum(u.transactions) FROM p, usage_of(merge_usage(p.usage, p.usage)) u", [], |r| r.get(0))
            .unwrap();
        assert_eq!(merged, 2 * (2 + 2 + 7));
    }

    #[test]
    fn sql_sees_one_row_per_fact() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE p(day INTEGER, user_id INTEGER, facts BLOB);
             CREATE TABLE plain(day INTEGER, user_id INTEGER, domain_id INTEGER, up INTEGER, down INTEGER, tx INTEGER, bl INTEGER);
             INSERT INTO plain VALUES (1, 7, 30, 10, 20, 1, 0), (1, 7, 4, 1, 2, 3, 1), (1, 8, 4, 5, 5, 5, 0),
                                      (2, 7, 30, 1, 1, 1, 0), (1, 7, 30, 5, 0, 1, 1);
             INSERT INTO p SELECT day, user_id, pack_facts(domain_id, up, down, tx, bl) FROM plain GROUP BY 1, 2;",
        )
        .unwrap();
        let rows = |sql: &str| -> Vec<Vec<i64>> {
            let mut st = conn.prepare(sql).unwrap();
            let n = st.column_count();
            st.query_map([], |r| (0..n).map(|i| r.get(i)).collect()).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(
            rows("SELECT p.day, p.user_id, f.* FROM p, facts_of(p.facts) f ORDER BY 1, 2, 3"),
            vec![
                vec![1, 7, 4, 1, 2, 3, 1],
                vec![1, 7, 30, 15, 20, 2, 1],
                vec![1, 8, 4, 5, 5, 5, 0],
                vec![2, 7, 30, 1, 1, 1, 0]
            ]
        );
        conn.execute("UPDATE p SET facts = merge_facts(facts, facts) WHERE day = 2", []).unwrap();
        assert_eq!(
            rows("SELECT f.bytes_up, f.transactions FROM p, facts_of(p.facts) f WHERE p.day = 2"),
            vec![vec![2, 2]]
        );
        conn.execute("UPDATE p SET facts = x'0102' WHERE day = 2", []).unwrap();
        let err =
            conn.prepare("SELECT count(*) FROM p, facts_of(p.facts) f").unwrap().query_row([], |r| r.get::<_, i64>(0));
        assert!(err.unwrap_err().to_string().contains("corrupt"));
    }
}
