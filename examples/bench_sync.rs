//! Full sync of a large fake tenant on loopback into a real on-disk cache (`StoreSink`).
//!
//! `cargo run --release --example bench_sync [devices] [users] [days]`
//! (default 100000 200000 2).
//! Prints wall time, rows/s, peak RSS (VmHWM, fake tenant included: same process), the cache
//! size, and the least time the same calls would take under the documented per-API quotas.
//! After each source: VmHWM, and the Rust heap's own peak during that source and its size after
//! (SQLite's page cache, up to 64 MiB, is outside the Rust heap and shows in VmHWM only).
//! `BENCH_SYNC_ARENAS=2` limits glibc malloc to two arenas (see `limit_malloc_arenas`).
use shadowscope::catalog::Catalog;
use shadowscope::store::Store;
use shadowscope::sync::fake_tenant::{FakeTenantOptions, serve_fake_tenant};
use shadowscope::sync::run::sync_into_store;
use shadowscope::sync::{ApiKind, ProgressPhase, SourceKind, SyncProgress};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes, so the report can tell what the program holds from what glibc's
/// arenas keep (VmHWM). Two relaxed atomics per allocation: noise next to the work measured.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const MIB: usize = 1024 * 1024;

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallopt(param: i32, value: i32) -> i32;
}

/// glibc gives each thread that meets a locked arena its own arena (up to 8 per core), and
/// memory freed in one is never reused by another: the fake tenant (one worker) and the client
/// (the other) each keep their own high-water mark, so VmHWM counts both peaks.
/// `BENCH_SYNC_ARENAS=2` limits malloc to two arenas, as `MALLOC_ARENA_MAX=2` would (it must
/// be set before the runtime's threads start), to see how much of VmHWM is arena slack; the
/// default measures glibc as shipped.
fn limit_malloc_arenas() -> &'static str {
    if std::env::var("BENCH_SYNC_ARENAS").is_ok_and(|v| v == "2") {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            const M_ARENA_MAX: i32 = -8;
            // SAFETY: called before any other thread exists; mallopt only sets a tunable.
            if unsafe { mallopt(M_ARENA_MAX, 2) } == 1 {
                return "malloc arenas limited to 2 (BENCH_SYNC_ARENAS=2)";
            }
        }
        return "BENCH_SYNC_ARENAS=2 not supported here: default allocator";
    }
    "glibc default arenas (BENCH_SYNC_ARENAS=2 limits them to 2)"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arenas = limit_malloc_arenas();
    // The sync future is not Send (it borrows the SQLite connection); the fake tenant's tasks
    // run on the second worker.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(bench(arenas))
}

async fn bench(arenas: &str) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let devices = args.first().copied().unwrap_or(100_000);
    let users = args.get(1).copied().unwrap_or(200_000);
    let days = args.get(2).copied().unwrap_or(2);
    let opts = FakeTenantOptions {
        devices,
        users,
        days,
        page_size: 1_000,
        streams: 2,
        apps_per_stream: 5_000,
        alerts: 2_000,
        ..FakeTenantOptions::default()
    };
    let fake = serve_fake_tenant(opts.clone()).await?;
    let mut secret = tempfile::NamedTempFile::new()?;
    write!(secret, "{}", opts.client_secret)?;
    let cfg = fake.sync_config(secret.path());
    let dir = tempfile::tempdir()?;
    // BENCH_SYNC_DB=path keeps the cache for inspection (`sqlite3 path`).
    let db = std::env::var_os("BENCH_SYNC_DB").map_or_else(|| dir.path().join("bench.db"), std::path::PathBuf::from);
    let store = Store::open(&db)?;
    let t0 = Instant::now();
    // VmHWM only grows: the source after which it jumps is the one that set the peak.
    // The heap peak is reset around each source, so it is that source's own. SQLite allocates
    // with its own malloc: its page cache shows in VmHWM only.
    let progress = |p: SyncProgress| match p.phase {
        ProgressPhase::Started => PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed),
        ProgressPhase::Finished => {
            eprintln!(
                "  after {:<36} VmHWM {:>4} MiB  heap peak {:>4} MiB  heap now {:>4} MiB",
                p.source.name(),
                vm_hwm_kib().unwrap_or(0) / 1024,
                PEAK.load(Ordering::Relaxed) / MIB,
                LIVE.load(Ordering::Relaxed) / MIB
            );
            PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        _ => {}
    };
    let outcome = sync_into_store(&store, Catalog::builtin(), &cfg, &progress).await;
    let wall = t0.elapsed();
    eprintln!(
        "  after summaries + alert policies           VmHWM {:>4} MiB  heap peak {:>4} MiB  heap now {:>4} MiB",
        vm_hwm_kib().unwrap_or(0) / 1024,
        PEAK.load(Ordering::Relaxed) / MIB,
        LIVE.load(Ordering::Relaxed) / MIB
    );
    let report = outcome.sync;
    for e in report.errors() {
        eprintln!("error: {e}");
    }
    println!("fake tenant: {devices} devices, {users} users, {days} days of events; {arenas}");
    for s in SourceKind::ALL {
        let (rows, pages, secs) = report
            .sources
            .iter()
            .filter(|r| r.source == s)
            .fold((0, 0, 0.0), |(r, p, t), x| (r + x.rows, p + x.pages, t + x.elapsed.as_secs_f64()));
        println!("  {:<36} {:>9} rows {:>7} pages {:>7.2} s", s.name(), rows, pages, secs);
    }
    let rows = report.total_rows();
    println!(
        "wall time: {:.2} s (sync {:.2} s, summaries + alert policies {:.2} s)",
        wall.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        (wall - report.elapsed.min(wall)).as_secs_f64()
    );
    println!("rows: {rows}  ({:.0} rows/s)", rows as f64 / wall.as_secs_f64());
    println!("peak RSS (VmHWM): {} MiB", vm_hwm_kib().unwrap_or(0) / 1024);
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    println!("cache file: {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    let mut quota_total = 0.0;
    for api in ApiKind::ALL {
        if let Some(st) = report.api_stats.get(&api) {
            let q = api.documented_quota_time(st.requests).as_secs_f64();
            quota_total += q;
            println!(
                "  {:<42} {:>7} requests  quota floor {:>10.0} s ({:.1} h)",
                api.name(),
                st.requests,
                q,
                q / 3600.0
            );
        }
    }
    println!(
        "under documented quotas (APIs run one after another): >= {:.0} s ({:.1} h)",
        quota_total,
        quota_total / 3600.0
    );
    Ok(())
}
