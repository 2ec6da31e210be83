//! Why the facts are packed: how long SQLite alone takes to write a given number of rows of
//! the old one-row-per-fact `traffic_daily` shape (4-column key, 4 counters, WITHOUT ROWID, WAL, synchronous=NORMAL),
//! in key order, 64 rows per statement, in one transaction, with nothing else running; then the
//! same facts packed one row per day × user × device, as `store::packed` writes them. The
//! import's writer does the packed write plus the roll-ups, so it can never be faster than that.
//!
//! `cargo run --release --example bench_sqlite_floor -- [ROWS]` (default 656,771: the distinct
//! day × host × user rows of the 1,000,000-line `gen_squid.py` log).
use rusqlite::Connection;
use std::time::Instant;

fn main() -> rusqlite::Result<()> {
    let rows: i64 = std::env::args().nth(1).and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(656_771);
    let dir = std::env::temp_dir().join(format!("shadowscope-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    // 30 days, 5,000 hosts, 1,500 users: the shape of the generated Squid log.
    let mut data: Vec<[i64; 8]> =
        (0..rows).map(|i| [i * 30 / rows, (i / 7) % 5000, i % 1500, 0, 0, 20_000 + i, 1, 0]).collect();
    data.sort_unstable();
    data.dedup_by_key(|r| [r[0], r[1], r[2], r[3]]);
    println!("rows: {} (distinct keys)", data.len());
    for (label, conflict) in [
        ("plain INSERT", ""),
        (
            "INSERT … ON CONFLICT DO UPDATE (as the import)",
            " ON CONFLICT DO UPDATE SET up = up + excluded.up, down = down + excluded.down, tx = tx + excluded.tx, bl = bl + excluded.bl",
        ),
    ] {
        let path = dir.join("floor.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let c = Connection::open(&path)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        c.execute_batch(
            "CREATE TABLE t(day INTEGER NOT NULL, domain INTEGER NOT NULL, user INTEGER NOT NULL, device INTEGER NOT NULL,
               up INTEGER NOT NULL, down INTEGER NOT NULL, tx INTEGER NOT NULL, bl INTEGER NOT NULL,
               PRIMARY KEY(day, domain, user, device)) STRICT, WITHOUT ROWID",
        )?;
        let started = Instant::now();
        c.execute_batch("BEGIN")?;
        let many = format!("INSERT INTO t VALUES {}{conflict}", vec!["(?,?,?,?,?,?,?,?)"; 64].join(","));
        let one = format!("INSERT INTO t VALUES (?,?,?,?,?,?,?,?){conflict}");
        let chunks = data.chunks_exact(64);
        let rest = chunks.remainder();
        let mut st = c.prepare(&many)?;
        for chunk in chunks {
            for (j, v) in chunk.iter().flatten().enumerate() {
                st.raw_bind_parameter(j + 1, *v)?;
            }
            st.raw_execute()?;
        }
        let mut st = c.prepare(&one)?;
        for row in rest {
            for (j, v) in row.iter().enumerate() {
                st.raw_bind_parameter(j + 1, *v)?;
            }
            st.raw_execute()?;
        }
        drop(st);
        c.execute_batch("COMMIT")?;
        let secs = started.elapsed().as_secs_f64();
        println!("{label:<48} {secs:.3} s  ({:.2} µs per row)", secs * 1e6 / data.len() as f64);
    }
    packed(&dir, &data)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The same facts as the import writes them now: one `traffic_packed` row per day × user ×
/// device, its domains in a blob, upserted through `merge_facts`.
fn packed(dir: &std::path::Path, data: &[[i64; 8]]) -> rusqlite::Result<()> {
    use shadowscope::store::packed::Packer;
    use shadowscope::store::write::Counters;
    let path = dir.join("packed.db");
    let c = shadowscope::store::raw_connection(&path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.execute_batch(
        "CREATE TABLE p(day INTEGER NOT NULL, user_id INTEGER NOT NULL, device_id INTEGER NOT NULL, facts BLOB NOT NULL,
           PRIMARY KEY(day, user_id, device_id)) STRICT, WITHOUT ROWID",
    )?;
    let mut rows = data.to_vec();
    rows.sort_unstable_by_key(|r| (r[0], r[2], r[3], r[1]));
    let started = Instant::now();
    c.execute_batch("BEGIN")?;
    let mut st = c.prepare(
        "INSERT INTO p VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET facts = merge_facts(facts, excluded.facts)",
    )?;
    let mut blob = Vec::new();
    let mut n = 0;
    for run in rows.chunk_by(|a, b| (a[0], a[2], a[3]) == (b[0], b[2], b[3])) {
        let mut p = Packer::new(&mut blob);
        for r in run {
            let c = Counters {
                bytes_up: r[4] as u64,
                bytes_down: r[5] as u64,
                transactions: r[6] as u64,
                blocked: r[7] as u64,
            };
            p.push(r[1], &c).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        }
        st.execute(rusqlite::params![run[0][0], run[0][2], run[0][3], &blob])?;
        n += 1;
    }
    drop(st);
    c.execute_batch("COMMIT")?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<48} {secs:.3} s  ({n} rows, {:.2} µs per fact)",
        "packed per day × user × device (as the import)",
        secs * 1e6 / data.len() as f64
    );
    Ok(())
}
