//! `cargo run --release --example bench_background [-- LINES]`
//! The console stays responsive while an import of LINES (default 1,000,000) Squid lines and a
//! sync from a loopback fake tenant write to the same cache in the background: key → frame
//! latency (p50 / p99 / max) of scrolling, filtering and pivoting, measured for as long as the
//! background work runs, then the same keys on the quiet cache for comparison.
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use shadowscope::app::keymap::Key;
use shadowscope::app::{self, Effect, Msg, State};
use shadowscope::catalog::Catalog;
use shadowscope::demo::{DemoOptions, generate};
use shadowscope::ingest::pipeline::{self, ImportOptions};
use shadowscope::runtime::Backend;
use shadowscope::store::Store;
use shadowscope::sync::fake_tenant::{FakeTenantOptions, serve_fake_tenant};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

fn run(state: &mut State, backend: &mut Backend, mut fx: Vec<Effect>) {
    while let Some(e) = fx.pop() {
        for m in backend.handle(e) {
            fx.extend(app::update(state, m));
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
}

/// A Squid native log with a realistic spread of users, clients and hosts.
fn squid_log(path: &std::path::Path, lines: u64) -> std::io::Result<()> {
    let hosts: Vec<String> = Catalog::builtin()
        .apps()
        .iter()
        .flat_map(|a| a.domains.iter().filter(|d| !d.contains(':')).take(2).cloned())
        .take(600)
        .chain((0..400).map(|i| format!("site{i}.example-{}.com", i % 37)))
        .collect();
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let t0 = 1_763_000_000u64;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let host = &hosts[(x % hosts.len() as u64) as usize];
        let user = (x >> 20) % 5_000;
        writeln!(
            w,
            "{}.{:03} {:>6} 10.{}.{}.{} TCP_TUNNEL/200 {} CONNECT {host}:443 user{user}@contoso.com HIER_DIRECT/203.0.113.{} -",
            t0 + i * 2,
            i % 1000,
            50 + x % 900,
            user % 250,
            (user / 250) % 250,
            1 + user % 200,
            300 + (x >> 8) % 90_000,
            1 + (x >> 3) % 250
        )?;
    }
    w.flush()
}

fn main() -> anyhow::Result<()> {
    let lines: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bg.db");
    let log = dir.path().join("access.log");
    {
        let store = Store::open(&db)?;
        generate(&store, Catalog::builtin(), &DemoOptions { users: 5_000, days: 60, ..Default::default() })?;
    }
    squid_log(&log, lines)?;
    println!(
        "cache: demo 5,000 users / 60 days; background: import {lines} Squid lines + sync of a 5,000-device tenant"
    );

    let mut backend = Backend::new(Store::open(&db)?, Catalog::builtin());
    let mut state = State::new("bench");
    (state.width, state.height) = (200, 50);
    let fx = app::update::start(&mut state);
    run(&mut state, &mut backend, fx);
    let mut term = Terminal::new(TestBackend::new(200, 50))?;

    let keys: Vec<Key> = {
        let mut k = Vec::new();
        k.extend(std::iter::repeat_n(Key::ch('j'), 20));
        k.push(Key::ch('/'));
        k.extend("carlos".chars().map(Key::ch));
        k.push(Key::plain(crossterm::event::KeyCode::Esc));
        k.extend([Key::plain(crossterm::event::KeyCode::Enter), Key::plain(crossterm::event::KeyCode::Esc)]);
        k
    };
    let mut press = |state: &mut State, backend: &mut Backend, k: Key| -> f64 {
        let t = Instant::now();
        let fx = app::update(state, Msg::Key(k));
        run(state, backend, fx);
        term.draw(|f| shadowscope::ui::render(f, state)).ok();
        t.elapsed().as_secs_f64() * 1e3
    };

    let busy = Arc::new(AtomicBool::new(true));
    let import = {
        let (db, log) = (db.clone(), log.clone());
        std::thread::spawn(move || -> anyhow::Result<(u64, f64)> {
            let store = Store::open(&db)?;
            let t = Instant::now();
            let r = pipeline::import_paths(&store, Catalog::builtin(), &[log], &ImportOptions::default(), &mut |_| {})?;
            Ok((r.iter().map(|r| r.imported).sum(), t.elapsed().as_secs_f64()))
        })
    };
    let sync = {
        let db = db.clone();
        std::thread::spawn(move || -> anyhow::Result<(u64, f64)> {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
            let opts = FakeTenantOptions { users: 5_000, devices: 5_000, days: 2, ..FakeTenantOptions::default() };
            let secret = shadowscope::sync::run::SecretDir::create(&opts.client_secret)?;
            let fake = rt.block_on(serve_fake_tenant(opts))?;
            let cfg = fake.sync_config(&secret.file);
            let t = Instant::now();
            let o = shadowscope::sync::run::sync_and_push_blocking(&db, Catalog::builtin(), &cfg, None, &|_| {})?;
            Ok((o.sync.total_rows(), t.elapsed().as_secs_f64()))
        })
    };
    let watcher = {
        let busy = busy.clone();
        std::thread::spawn(move || {
            let a = import.join();
            let b = sync.join();
            busy.store(false, Ordering::SeqCst);
            (a, b)
        })
    };
    let mut loaded = Vec::new();
    let t0 = Instant::now();
    while busy.load(Ordering::SeqCst) {
        for k in &keys {
            loaded.push(press(&mut state, &mut backend, *k));
        }
        // An analyst presses a key every few tens of milliseconds at most.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let bg_s = t0.elapsed().as_secs_f64();
    let (a, b) = watcher.join().map_err(|_| anyhow::anyhow!("background thread panicked"))?;
    let (imported, import_s) = a.map_err(|_| anyhow::anyhow!("import thread panicked"))??;
    let (rows, sync_s) = b.map_err(|_| anyhow::anyhow!("sync thread panicked"))??;
    println!(
        "import: {imported} records in {import_s:.1} s; sync: {rows} rows in {sync_s:.1} s (background {bg_s:.1} s)"
    );
    let n = loaded.len();
    println!(
        "keys while busy  ({n:>5}): p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
        pct(&mut loaded, 0.5),
        pct(&mut loaded, 0.99),
        pct(&mut loaded, 1.0)
    );
    let mut quiet = Vec::new();
    for _ in 0..20 {
        for k in &keys {
            quiet.push(press(&mut state, &mut backend, *k));
        }
    }
    println!(
        "keys when quiet  ({:>5}): p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
        quiet.len(),
        pct(&mut quiet, 0.5),
        pct(&mut quiet, 0.99),
        pct(&mut quiet, 1.0)
    );
    Ok(())
}
