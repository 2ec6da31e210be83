//! `cargo run --release --example bench_console [-- USERS DAYS]`
//! Generates the demo organisation (default 50,000 users / 90 days) into a fresh cache, then
//! measures the console on it: first frame with data, per-keystroke latency (input → frame
//! written) for scrolling, filtering, pivoting and sorting, bytes written per scroll step, and
//! peak memory.
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use shadowscope::app::keymap::Key;
use shadowscope::app::{self, Effect, Msg, State};
use shadowscope::catalog::Catalog;
use shadowscope::demo::{DemoOptions, generate};
use shadowscope::runtime::Backend;
use shadowscope::store::Store;
use std::time::Instant;

/// Counts the bytes a frame would send to the terminal.
struct Counter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl std::io::Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(b.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(state: &mut State, backend: &mut Backend, mut fx: Vec<Effect>) {
    while let Some(e) = fx.pop() {
        for m in backend.handle(e) {
            fx.extend(app::update(state, m));
        }
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let users = args.first().copied().unwrap_or(50_000);
    let days = args.get(1).copied().unwrap_or(90);
    let dir = tempfile::tempdir()?;
    // BENCH_DB=PATH reuses a cache made by `shadowscope --db PATH demo --no-ui …` (iterating on
    // the console without regenerating); by default a fresh one is generated and timed.
    let reuse = std::env::var_os("BENCH_DB").map(std::path::PathBuf::from).filter(|p| p.exists());
    let path = reuse.clone().unwrap_or_else(|| dir.path().join("bench.db"));
    if reuse.is_none() {
        let store = Store::open(&path)?;
        let t = Instant::now();
        let s = generate(&store, Catalog::builtin(), &DemoOptions { users, days, ..Default::default() })?;
        let gen_s = t.elapsed().as_secs_f64();
        drop(store);
        let size_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
        println!(
            "demo: {users} users, {days} days, {} devices, {} apps, {} facts: {gen_s:.2} s, cache {size_mb:.0} MB",
            s.devices, s.apps, s.facts
        );
    } else {
        println!("reusing {}", path.display());
    }

    // First frame: open the cache, load the start view, draw.
    let t = Instant::now();
    let mut backend = Backend::new(Store::open(&path)?, Catalog::builtin());
    let mut state = State::new("bench");
    state.width = 200;
    state.height = 50;
    let fx = app::update::start(&mut state);
    run(&mut state, &mut backend, fx);
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut term = Terminal::new(CrosstermBackend::new(Counter(written.clone())))?;
    term.resize(ratatui::layout::Rect::new(0, 0, 200, 50))?;
    term.draw(|f| shadowscope::ui::render(f, &state))?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("first frame with data (open cache + load Users + draw 200x50): {first_ms:.1} ms");

    let mut measure = |name: &str, keys: &[Key], state: &mut State, backend: &mut Backend| {
        let mut lat = Vec::new();
        let mut bytes = Vec::new();
        for k in keys {
            written.store(0, std::sync::atomic::Ordering::Relaxed);
            let t = Instant::now();
            let fx = app::update(state, Msg::Key(*k));
            run(state, backend, fx);
            term.draw(|f| shadowscope::ui::render(f, state)).ok();
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            bytes.push(written.load(std::sync::atomic::Ordering::Relaxed) as f64);
        }
        let (p50, p99, max) = (pct(&mut lat.clone(), 0.5), pct(&mut lat.clone(), 0.99), pct(&mut lat, 1.0));
        let b = pct(&mut bytes, 0.5);
        println!("{name:<28} p50 {p50:6.2} ms  p99 {p99:6.2} ms  max {max:6.2} ms  median bytes/frame {b:.0}");
    };
    let down: Vec<Key> = std::iter::repeat_n(Key::ch('j'), 300).collect();
    measure("scroll (j) in Users", &down, &mut state, &mut backend);
    let mut filter = vec![Key::ch('/')];
    filter.extend("carlos.nguyen".chars().map(Key::ch));
    filter.push(Key::plain(crossterm::event::KeyCode::Esc));
    measure("filter typing in Users", &filter, &mut state, &mut backend);
    let sort: Vec<Key> = std::iter::repeat_n(Key::ch('o'), 20).collect();
    measure("sort (o) in Users", &sort, &mut state, &mut backend);
    let mut pivot = Vec::new();
    for _ in 0..10 {
        pivot.extend([
            Key::plain(crossterm::event::KeyCode::Enter),
            Key::plain(crossterm::event::KeyCode::Enter),
            Key::plain(crossterm::event::KeyCode::Esc),
            Key::plain(crossterm::event::KeyCode::Esc),
        ]);
    }
    measure("pivot user→device and back", &pivot, &mut state, &mut backend);
    let apps = [
        Key::ch('2'),
        Key::ch('j'),
        Key::ch('j'),
        Key::plain(crossterm::event::KeyCode::Enter),
        Key::plain(crossterm::event::KeyCode::Esc),
    ];
    measure("apps view, open an app", &apps, &mut state, &mut backend);
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    Ok(())
}
