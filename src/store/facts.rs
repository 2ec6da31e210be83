//! Daily traffic facts, packed. The cache keeps one row per day × user × device in
//! `traffic_packed`; its `facts` blob lists the destinations of that row (domain id ascending)
//! with their counters. A 1,000,000-line proxy log yields ~650,000 day × domain × user × device
//! facts but only ~45,000 day × user × device rows, and SQLite's cost is per row: writing the
//! facts one row each took 0.47 s of that import on its own (`bench_sqlite_floor`).
//!
//! SQL still sees one row per fact: the view `traffic_daily(day, domain_id, user_id, device_id,
//! bytes_up, bytes_down, transactions, blocked)` unpacks the blobs through the table-valued
//! function `facts_of(blob)` registered here. An upsert merges blobs with `merge_facts(old, new)`,
//! and `pack_facts(domain_id, bytes_up, bytes_down, transactions, blocked)` aggregates plain rows
//! into a blob (the migration from one row per fact). Every connection to a cache needs
//! [`register`] before it reads `traffic_daily`; [`Store`](super::Store) does it, and plain
//! connections (tests, tools) call [`register`] themselves. The `sqlite3` shell can read
//! `traffic_packed` but not the view.
//!
//! Blob layout: a format byte ([`FORMAT`]), then per destination five LEB128 varints: the domain
//! id's distance from the previous one (from 0 for the first; always ≥ 1 after it), bytes up,
//! bytes down, transactions, blocked. A typical entry takes 8–10 bytes.
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
    #[error("packed traffic facts are corrupt: {0}")]
    Corrupt(&'static str),
    #[error("packed traffic facts must list each domain once, in ascending order (domain {0} after {1})")]
    NotAscending(i64, i64),
}

impl From<PackError> for SqlError {
    fn from(e: PackError) -> SqlError {
        SqlError::UserFunctionError(Box::new(e))
    }
}

/// One destination of a packed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedFact {
    pub domain: i64,
    pub c: Counters,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Result<u64, PackError> {
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

/// Builds one blob from destinations given in strictly ascending domain order.
pub struct Packer<'a> {
    out: &'a mut Vec<u8>,
    last: i64,
}

impl<'a> Packer<'a> {
    /// Clears `out` and starts a blob in it.
    pub fn new(out: &'a mut Vec<u8>) -> Packer<'a> {
        out.clear();
        out.push(FORMAT);
        Packer { out, last: 0 }
    }

    pub fn push(&mut self, domain: i64, c: &Counters) -> Result<(), PackError> {
        let first = self.out.len() == 1;
        if domain < 0 || (!first && domain <= self.last) {
            return Err(PackError::NotAscending(domain, self.last));
        }
        put_varint(self.out, (domain - self.last) as u64);
        put_varint(self.out, c.bytes_up);
        put_varint(self.out, c.bytes_down);
        put_varint(self.out, c.transactions);
        put_varint(self.out, c.blocked);
        self.last = domain;
        Ok(())
    }
}

/// The destinations of one blob, in domain order. Never panics on a corrupt blob: it yields
/// one error and stops.
pub struct Unpack<'a> {
    b: &'a [u8],
    at: usize,
    last: i64,
    failed: bool,
}

impl<'a> Unpack<'a> {
    pub fn new(b: &'a [u8]) -> Unpack<'a> {
        Unpack { b, at: 0, last: 0, failed: false }
    }

    fn entry(&mut self) -> Result<PackedFact, PackError> {
        if self.at == 0 {
            if self.b.first() != Some(&FORMAT) {
                return Err(PackError::Corrupt("unknown layout"));
            }
            self.at = 1;
        }
        let first = self.at == 1;
        let delta = get_varint(self.b, &mut self.at)?;
        let domain = i64::try_from(delta)
            .ok()
            .and_then(|d| self.last.checked_add(d))
            .ok_or(PackError::Corrupt("domain id out of range"))?;
        if !first && delta == 0 {
            return Err(PackError::Corrupt("domain listed twice"));
        }
        self.last = domain;
        let mut next = || get_varint(self.b, &mut self.at);
        let c = Counters { bytes_up: next()?, bytes_down: next()?, transactions: next()?, blocked: next()? };
        Ok(PackedFact { domain, c })
    }
}

impl Iterator for Unpack<'_> {
    type Item = Result<PackedFact, PackError>;

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

/// Every destination of `a` and `b`, the counters of a domain in both summed: what an upsert of
/// `b` onto a stored `a` must leave.
pub fn merge(a: &[u8], b: &[u8], out: &mut Vec<u8>) -> Result<(), PackError> {
    let mut p = Packer::new(out);
    let (mut xs, mut ys) = (Unpack::new(a), Unpack::new(b));
    let (mut x, mut y) = (xs.next().transpose()?, ys.next().transpose()?);
    loop {
        match (x, y) {
            (Some(l), Some(r)) if l.domain == r.domain => {
                let mut c = l.c;
                c.add(&r.c);
                p.push(l.domain, &c)?;
                x = xs.next().transpose()?;
                y = ys.next().transpose()?;
            }
            (Some(l), Some(r)) if l.domain < r.domain => {
                p.push(l.domain, &l.c)?;
                x = xs.next().transpose()?;
            }
            (_, Some(r)) => {
                p.push(r.domain, &r.c)?;
                y = ys.next().transpose()?;
            }
            (Some(l), None) => {
                p.push(l.domain, &l.c)?;
                x = xs.next().transpose()?;
            }
            (None, None) => return Ok(()),
        }
    }
}

/// A blob from destinations in any order, equal domains summed (the `pack_facts` aggregate).
pub fn pack_unordered(mut facts: Vec<PackedFact>, out: &mut Vec<u8>) -> Result<(), PackError> {
    facts.sort_unstable_by_key(|f| f.domain);
    let mut p = Packer::new(out);
    let mut rest = facts.as_slice();
    while let Some((first, tail)) = rest.split_first() {
        let same = tail.iter().take_while(|f| f.domain == first.domain).count();
        let mut c = first.c;
        for f in &tail[..same] {
            c.add(&f.c);
        }
        p.push(first.domain, &c)?;
        rest = &tail[same..];
    }
    Ok(())
}

/// A counter from SQL: negative values (never written by shadowscope) read as 0.
fn counter(ctx: &FnContext<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(ctx.get::<i64>(i)?).unwrap_or(0))
}

struct PackFacts;

impl Aggregate<Vec<PackedFact>, Vec<u8>> for PackFacts {
    fn init(&self, _: &mut FnContext<'_>) -> rusqlite::Result<Vec<PackedFact>> {
        Ok(Vec::new())
    }

    fn step(&self, ctx: &mut FnContext<'_>, acc: &mut Vec<PackedFact>) -> rusqlite::Result<()> {
        let c = Counters {
            bytes_up: counter(ctx, 1)?,
            bytes_down: counter(ctx, 2)?,
            transactions: counter(ctx, 3)?,
            blocked: counter(ctx, 4)?,
        };
        acc.push(PackedFact { domain: ctx.get(0)?, c });
        Ok(())
    }

    fn finalize(&self, _: &mut FnContext<'_>, acc: Option<Vec<PackedFact>>) -> rusqlite::Result<Vec<u8>> {
        let mut out = Vec::new();
        pack_unordered(acc.unwrap_or_default(), &mut out)?;
        Ok(out)
    }
}

/// Registers `facts_of`, `merge_facts` and `pack_facts` on a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("merge_facts", 2, flags, |ctx| {
        let a = ctx.get_raw(0).as_blob()?;
        let b = ctx.get_raw(1).as_blob()?;
        let mut out = Vec::with_capacity(a.len() + b.len());
        merge(a, b, &mut out)?;
        Ok(out)
    })?;
    conn.create_aggregate_function("pack_facts", 5, flags, PackFacts)?;
    const FACTS_OF: Module<'static, FactsOf> = Module::eponymous_only_module();
    conn.create_module(c"facts_of", &FACTS_OF, None)
}

/// Column numbers of `facts_of`; `facts` is the hidden argument column.
const COL_DOMAIN: c_int = 0;
const COL_UP: c_int = 1;
const COL_DOWN: c_int = 2;
const COL_TX: c_int = 3;
const COL_BLOCKED: c_int = 4;
const COL_FACTS: c_int = 5;

/// The `facts_of(blob)` table-valued function.
// SAFETY (for the `unsafe impl`s below): rusqlite hands SQLite pointers to these structs as
// `sqlite3_vtab` / `sqlite3_vtab_cursor`, which is sound because each is `#[repr(C)]` with that
// base struct as its first field; that layout is the traits' whole safety contract.
#[repr(C)]
struct FactsOf {
    base: sqlite3_vtab,
}

unsafe impl<'vtab> VTab<'vtab> for FactsOf {
    type Aux = ();
    type Cursor = FactsCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        _aux: Option<&()>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        db.config(VTabConfig::Innocuous)?;
        Ok((
            Cow::Borrowed(c"CREATE TABLE x(domain_id INTEGER, bytes_up INTEGER, bytes_down INTEGER, transactions INTEGER, blocked INTEGER, facts HIDDEN)"),
            FactsOf { base: sqlite3_vtab::default() },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut arg = None;
        let mut unusable = false;
        for (i, c) in info.constraints().enumerate() {
            if c.column() != COL_FACTS {
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

    fn open(&'vtab mut self) -> rusqlite::Result<FactsCursor<'vtab>> {
        Ok(FactsCursor {
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
struct FactsCursor<'vtab> {
    base: sqlite3_vtab_cursor,
    /// The row's blob, copied: SQLite's argument values live only for the `filter` call.
    blob: Vec<u8>,
    /// Where the next entry starts in `blob`.
    at: usize,
    last: i64,
    current: Option<PackedFact>,
    row: i64,
    phantom: PhantomData<&'vtab FactsOf>,
}

impl FactsCursor<'_> {
    fn advance(&mut self) -> rusqlite::Result<()> {
        let mut u = Unpack { b: &self.blob, at: self.at, last: self.last, failed: false };
        self.current = u.next().transpose()?;
        self.at = u.at;
        self.last = u.last;
        self.row += 1;
        Ok(())
    }
}

unsafe impl VTabCursor for FactsCursor<'_> {
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
        let Some(f) = &self.current else { return ctx.set_result(rusqlite::types::Null) };
        let v = match i {
            COL_DOMAIN => f.domain,
            COL_UP => super::i(f.c.bytes_up),
            COL_DOWN => super::i(f.c.bytes_down),
            COL_TX => super::i(f.c.transactions),
            COL_BLOCKED => super::i(f.c.blocked),
            _ => return ctx.set_result(rusqlite::types::Null),
        };
        ctx.set_result(v)
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
        let mut p = Packer::new(&mut out);
        for (d, c) in facts {
            p.push(*d, c).unwrap();
        }
        out
    }

    fn unpack(b: &[u8]) -> Vec<(i64, Counters)> {
        Unpack::new(b).map(|f| f.map(|f| (f.domain, f.c))).collect::<Result<_, _>>().unwrap()
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
        let mut p = Packer::new(&mut out);
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
            let r: Result<Vec<_>, _> = Unpack::new(&good[..cut]).map(|f| f.map(|f| (f.domain, f.c))).collect();
            match cut {
                1 => assert_eq!(r, Ok(vec![])),
                6 => assert_eq!(r, Ok(whole[..1].to_vec())),
                _ => assert!(r.is_err(), "cut at {cut}: {r:?}"),
            }
        }
        assert!(Unpack::new(&[2, 1, 1, 1, 1, 1]).next().unwrap().is_err(), "unknown layout");
        assert!(Unpack::new(&[FORMAT, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).nth(1).unwrap().is_err(), "repeated domain");
        let long = [FORMAT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Unpack::new(&long).next().unwrap().is_err(), "varint past 64 bits");
    }

    proptest! {
        #[test]
        fn unpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Unpack::new(&bytes).count();
            let mut out = Vec::new();
            let _ = merge(&bytes, &bytes, &mut out);
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
            merge(&pack(&to(&a)), &pack(&to(&b)), &mut out).unwrap();
            let mut want = std::collections::BTreeMap::<i64, Counters>::new();
            for (d, cs) in to(&a).into_iter().chain(to(&b)) {
                want.entry(d).or_default().add(&cs);
            }
            prop_assert_eq!(unpack(&out), want.into_iter().collect::<Vec<_>>());
            let all: Vec<PackedFact> =
                to(&a).into_iter().chain(to(&b)).map(|(domain, c)| PackedFact { domain, c }).collect();
            let mut packed = Vec::new();
            pack_unordered(all, &mut packed).unwrap();
            prop_assert_eq!(packed, out);
        }
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
