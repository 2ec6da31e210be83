//! The large limits of issue #9, too slow for the normal test run (`#[ignore]`); run them with
//! `tools/limits.sh`. Each runs the real binary and reports its wall time and peak resident set
//! size (VmHWM from /proc/PID/status, polled while it runs).
//!
//! - `garbage_through_stdin_in_bounded_memory`: SHADOWSCOPE_GARBAGE_GB (default 10) of garbage
//!   generated on the fly into `shadowscope import --format squid -`.
//! - `million_rule_catalog_loads_in_bounded_memory`: a CSV user catalog of SHADOWSCOPE_RULES
//!   (default 1,000,000) rules given to `shadowscope --catalog F catalog lookup`.
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Polls the child's peak RSS until `done` is set; the last reading before exit is the peak
/// up to within one poll interval.
fn watch_peak(pid: u32, done: Arc<AtomicBool>) -> (Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(0));
    let p = Arc::clone(&peak);
    let handle = std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            if let Some(kib) = vm_hwm_kib(pid) {
                p.fetch_max(kib, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (peak, handle)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The binary under test: SHADOWSCOPE_BIN (e.g. a release build), else this build's.
fn command(home: &std::path::Path) -> Command {
    let bin = std::env::var_os("SHADOWSCOPE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_shadowscope").into());
    let mut c = Command::new(bin);
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("SHADOWSCOPE_DB")
        .env_remove("SHADOWSCOPE_CONFIG");
    c
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 8 MiB of garbage lines of every kind a hostile file mixes: random printable tokens (some with
/// ten fields, like a Squid line with nonsense values), invalid UTF-8, terminal escapes and
/// controls, JSON-looking fragments, and one 200 KiB line (over the 64 KiB line limit).
/// Returns the bytes and the number of lines.
fn garbage_block(seed: u64) -> (Vec<u8>, u64) {
    const LEN: usize = 8 << 20;
    let mut r = Rng(seed);
    let mut b = Vec::with_capacity(LEN + 300_000);
    // Overwritten per block with the block number.
    b.extend_from_slice(b"0000000000000000 block\n");
    let mut lines = 1u64;
    while b.len() < LEN {
        // Every line a record: none empty and none a `#` comment, which parsers skip uncounted.
        b.push(b'a' + r.below(26) as u8);
        match r.below(100) {
            0 if b.len() > LEN / 2 && b.len() < LEN / 2 + 1_000_000 => {
                b.extend(std::iter::repeat_n(b'z', 200 << 10));
            }
            0..=39 => {
                for f in 0..10 {
                    if f > 0 {
                        b.push(b' ');
                    }
                    for _ in 0..1 + r.below(12) {
                        b.push(b'!' + r.below(94) as u8);
                    }
                }
            }
            40..=59 => {
                for _ in 0..r.below(300) {
                    let x = r.next() as u8;
                    b.push(if x == b'\n' { 0xff } else { x });
                }
            }
            60..=69 => b.extend_from_slice(b"\x1b[2J\x1b]0;pwn\x07\x1b]52;c;eA==\x07\xc2\x9b31m\x7f\x00\xe2\x80\xae"),
            70..=79 => {
                let depth = r.below(64) as usize;
                b.extend(std::iter::repeat_n(b'{', depth));
                b.extend_from_slice(b"\"k\":[1,");
                b.extend(std::iter::repeat_n(b'[', depth));
            }
            _ => {
                for _ in 0..r.below(120) {
                    b.push(b' ' + r.below(95) as u8);
                }
            }
        }
        b.push(b'\n');
        lines += 1;
    }
    (b, lines)
}

#[derive(serde::Deserialize, Debug)]
struct ImportSummary {
    records: u64,
    imported: u64,
    skipped: std::collections::BTreeMap<String, u64>,
}

#[test]
#[ignore = "minutes: run tools/limits.sh"]
fn garbage_through_stdin_in_bounded_memory() {
    let gb = env_f64("SHADOWSCOPE_GARBAGE_GB", 10.0);
    let total_bytes = (gb * 1e9) as u64;
    let dir = tempfile::tempdir().unwrap();
    let (block, block_lines) = garbage_block(0x2545_f491_4f6c_dd1d);
    let block_len = block.len() as u64;
    let blocks = total_bytes.div_ceil(block_len);
    let mut child: Child = command(dir.path())
        .arg("--db")
        .arg(dir.path().join("cache.db"))
        .args(["import", "--format", "squid", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let (peak, watcher) = watch_peak(child.id(), Arc::clone(&done));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut block = block;
        for i in 0..blocks {
            // A different first line per block, so no two blocks are byte-identical.
            let tag = format!("{i:016x}");
            block[..16].copy_from_slice(tag.as_bytes());
            stdin.write_all(&block).unwrap();
        }
    });
    writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let took = started.elapsed();
    let peak_mib = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: ImportSummary = serde_json::from_slice(&out.stdout).unwrap();
    let sent = blocks * block_len;
    eprintln!(
        "garbage: {:.2} GB in {:.1} s ({:.0} MB/s), peak RSS {peak_mib:.1} MiB; {} records, {} imported, skipped {:?}",
        sent as f64 / 1e9,
        took.as_secs_f64(),
        sent as f64 / 1e6 / took.as_secs_f64(),
        summary.records,
        summary.imported,
        summary.skipped
    );
    assert_eq!(summary.imported, 0, "{summary:?}");
    assert_eq!(summary.records, blocks * block_lines, "{summary:?}");
    assert_eq!(summary.skipped.values().sum::<u64>(), summary.records, "{summary:?}");
    assert!(summary.skipped.get("line_too_long").is_some_and(|n| *n >= blocks), "{summary:?}");
    assert!(peak_mib < 128.0, "peak RSS {peak_mib:.1} MiB");
}

#[test]
#[ignore = "tens of seconds: run tools/limits.sh"]
fn million_rule_catalog_loads_in_bounded_memory() {
    let rules = env_f64("SHADOWSCOPE_RULES", 1e6) as u64;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    // 1,000 rules per app; 98 % domain suffixes, 1 % full: hosts, 1 % keywords. Short names
    // keep a million rules under the user file's 16 MiB cap.
    let per_app = 1_000u64;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(w, "id,name,category,domains").unwrap();
        let mut n = 0u64;
        let mut app = 0u64;
        while n < rules {
            let mut cell = String::new();
            for _ in 0..per_app.min(rules - n) {
                if !cell.is_empty() {
                    cell.push(';');
                }
                match n % 100 {
                    0 => cell.push_str(&format!("full:h{n:x}.io")),
                    1 => cell.push_str(&format!("keyword:kw{n:x}q")),
                    _ => cell.push_str(&format!("{n:x}.io")),
                }
                n += 1;
            }
            writeln!(w, "big-{app},Big {app},Cloud storage,{cell}").unwrap();
            app += 1;
        }
    }
    let size = std::fs::metadata(&file).unwrap().len();
    // The last domain rule, its parent app, and a host no rule names.
    let mut last = rules - 1;
    while last % 100 <= 1 {
        last -= 1;
    }
    let hit = format!("www.{last:x}.io");
    let want_app = format!("Big {}", last / per_app);
    let mut child = command(dir.path())
        .arg("--catalog")
        .arg(&file)
        .args(["catalog", "lookup", &hit, "example.com"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let (peak, watcher) = watch_peak(child.id(), Arc::clone(&done));
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let took = started.elapsed();
    let peak_mib = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    eprintln!(
        "catalog: {rules} rules ({:.1} MB CSV) loaded and looked up in {:.2} s, peak RSS {peak_mib:.1} MiB\n{stdout}",
        size as f64 / 1e6,
        took.as_secs_f64()
    );
    assert!(stdout.contains(&want_app), "{hit} should be {want_app}: {stdout}");
    assert!(peak_mib < 512.0, "peak RSS {peak_mib:.1} MiB");
}

/// Not ignored (fast): a user catalog over the 16 MiB cap is refused before it is read, with a
/// message naming the file and the cap.
#[test]
fn oversized_catalog_file_is_refused_with_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(w, "id,domains").unwrap();
        let mut i = 0u64;
        while w.get_ref().metadata().unwrap().len() <= 16 << 20 {
            writeln!(w, "app{i},{}", (0..100).map(|j| format!("h{i}-{j}.example.com")).collect::<Vec<_>>().join(";"))
                .unwrap();
            i += 1;
            if i.is_multiple_of(1000) {
                w.flush().unwrap();
            }
        }
    }
    let out = command(dir.path()).arg("--catalog").arg(&file).args(["catalog", "lookup", "a.com"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("huge.csv") && err.contains("16777216-byte limit"), "{err}");
}
