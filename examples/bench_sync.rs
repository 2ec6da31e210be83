//! Full sync of a large fake tenant on loopback into a counting sink.
//!
//! `cargo run --release --example bench_sync [devices] [users] [days]` (default 100000 200000 2).
//! Prints wall time, rows/s, peak RSS (VmHWM, fake tenant included: same process) and the
//! least time the same calls would take under the documented per-API quotas.
use shadowscope::sync::fake_tenant::{FakeTenantOptions, serve_fake_tenant};
use shadowscope::sync::memory_sink::CountingSink;
use shadowscope::sync::{ApiKind, SourceKind, run_sync};
use std::io::Write;
use std::time::Instant;

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let mut sink = CountingSink::default();
    let t0 = Instant::now();
    let report = run_sync(&cfg, &mut sink, &|_| {}).await;
    let wall = t0.elapsed();
    for e in report.errors() {
        eprintln!("error: {e}");
    }
    println!("fake tenant: {devices} devices, {users} users, {days} days of events");
    for s in SourceKind::ALL {
        let pages = sink.pages.get(&s).copied().unwrap_or(0);
        println!("  {:<36} {:>9} rows {:>7} pages", s.name(), sink.rows.get(&s).copied().unwrap_or(0), pages);
    }
    let rows = sink.total_rows();
    println!("wall time: {:.2} s", wall.as_secs_f64());
    println!("rows: {rows}  ({:.0} rows/s)", rows as f64 / wall.as_secs_f64());
    println!("peak RSS (VmHWM): {} MiB", vm_hwm_kib().unwrap_or(0) / 1024);
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
