//! End-to-end Squid import into a fresh cache: lines/s, MB/s, peak RSS, cache size, and where
//! the time goes (read + parse, identify, aggregate, SQLite commit).
//!
//! `cargo run --release --example bench_import -- [--lines N] [--file PATH] [--gz] [--batch N]`
//!
//! Without `--file`, a log of N lines (default 2,000,000) is generated once under
//! `$TMPDIR/shadowscope-bench/` with `../shared/tools/gen_squid.py` when python3 is available, else
//! with the in-Rust generator below (same population: 2,000 client IPs, 1,500 users, 5,000 hosts
//! with Zipf popularity, 30 days). `--gz` also imports a gzip copy of the same log.
use shadowscope::catalog::{Catalog, Identified};
use shadowscope::ingest::pipeline::{ImportOptions, import_file};
use shadowscope::ingest::{Position, Record, RecordSink, SkipReason, registry};
use shadowscope::store::Store;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    lines: u64,
    file: Option<PathBuf>,
    gz: bool,
    batch: Option<u64>,
}

fn args() -> Args {
    let mut a = Args { lines: 2_000_000, file: None, gz: false, batch: None };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--lines" => a.lines = it.next().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(a.lines),
            "--file" => a.file = it.next().map(PathBuf::from),
            "--gz" => a.gz = true,
            "--batch" => a.batch = it.next().and_then(|v| v.parse().ok()),
            other => {
                eprintln!("unknown argument {other}; usage: bench_import [--lines N] [--file PATH] [--gz] [--batch N]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Peak resident set (VmHWM) in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far (utime + stime from /proc/self/stat, in
/// clock ticks of 1/100 s): a figure the other tenants of a shared machine do not distort.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

fn main() {
    let a = args();
    let file = match &a.file {
        Some(f) => f.clone(),
        None => generated(a.lines),
    };
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!("input: {} ({:.1} MB)", file.display(), size as f64 / 1e6);

    let parse_s = parse_only(&file);
    let identify_s = identify_only(&file, parse_s);
    run_import(&file, size, &a, parse_s, identify_s);
    if a.gz {
        let gz = gzip_copy(&file);
        let gz_size = std::fs::metadata(&gz).map(|m| m.len()).unwrap_or(0);
        println!("\ngzip input: {} ({:.1} MB compressed)", gz.display(), gz_size as f64 / 1e6);
        run_import(&gz, size, &a, parse_s, identify_s);
    }
}

fn run_import(file: &Path, size: u64, a: &Args, parse_s: f64, identify_s: f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let store = Store::open(&db).expect("open cache");
    let mut opts = ImportOptions { format: Some("squid".into()), ..Default::default() };
    if let Some(b) = a.batch {
        opts.batch_lines = b;
    }
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let r = import_file(&store, Catalog::builtin(), file, &opts, &mut |_| {}).expect("import");
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.refresh_summaries().expect("summaries");
    let summaries_s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    drop(store);
    let cache: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    let total = import_s + summaries_s;
    let lines = r.records;
    println!("lines:        {lines} ({} imported, {} skipped)", r.imported, r.skipped_total());
    println!("seconds:      {total:.3} (import {import_s:.3} + summaries {summaries_s:.3})");
    println!("lines/s:      {:.0}", lines as f64 / total);
    println!("MB/s:         {:.1}", size as f64 / 1e6 / total);
    println!(
        "CPU:          {cpu:.2} s on {} threads ({:.0} lines per CPU-second; the wall figures above depend on the machine's load)",
        2,
        lines as f64 / cpu.max(1e-9)
    );
    println!("peak RSS:     {:.1} MiB (VmHWM, whole process so far)", peak_rss_mib());
    println!("cache size:   {:.1} MB", cache as f64 / 1e6);
    let t = &r.timings;
    println!(
        "split (s):    read+parse {parse_s:.3} (alone, one thread) | identify {identify_s:.3} (alone, cached per host)"
    );
    println!(
        "              parser thread: read+parse+aggregate {:.3} busy, {:.3} blocked on the writer => aggregate ~{:.3}",
        t.parse_s,
        t.parser_blocked_s,
        (t.parse_s - parse_s).max(0.0)
    );
    println!(
        "              writer thread: identify+intern new names {:.3} | SQLite apply+commit {:.3} | idle {:.3}",
        t.intern_s, t.commit_s, t.writer_idle_s
    );
}

/// Sink that only counts: the cost of read + parse alone.
#[derive(Default)]
struct Count {
    records: u64,
    bytes: u64,
    hosts: HashMap<String, u32>,
    identify: bool,
}

impl RecordSink for Count {
    fn record(&mut self, _pos: Position, rec: Record<'_>) {
        self.records += 1;
        self.bytes = self.bytes.wrapping_add(rec.bytes_down);
        if self.identify
            && let Some(h) = rec.dest_host.as_deref()
            && !self.hosts.contains_key(h)
        {
            let n = match Catalog::builtin().identify_host(h) {
                Identified::App { idx, .. } => idx.0,
                Identified::Unknown { .. } => u32::MAX,
            };
            self.hosts.insert(h.to_string(), n);
        }
    }
    fn skip(&mut self, _pos: Position, _reason: SkipReason, _raw: &[u8]) {}
}

fn parse_pass(file: &Path, identify: bool) -> f64 {
    let f = std::fs::File::open(file).expect("open log");
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut sink = Count { identify, ..Default::default() };
    let t = Instant::now();
    let fmt = registry::by_name("squid").expect("squid format");
    fmt.parser().parse(&mut r, &mut sink).expect("parse");
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(sink.bytes);
    println!(
        "{}: {} records in {s:.3}s ({:.0} lines/s)",
        if identify { "parse+identify" } else { "read+parse    " },
        sink.records,
        sink.records as f64 / s
    );
    s
}

fn parse_only(file: &Path) -> f64 {
    parse_pass(file, false)
}

/// Identification alone: parse+identify minus the parse pass just measured.
fn identify_only(file: &Path, parse_s: f64) -> f64 {
    (parse_pass(file, true) - parse_s).max(0.0)
}

fn gzip_copy(file: &Path) -> PathBuf {
    let out = file.with_extension("log.gz");
    if !out.exists() {
        let t = Instant::now();
        let mut input = BufReader::new(std::fs::File::open(file).expect("open"));
        let tmp = out.with_extension("gz.tmp");
        let mut enc = flate2::write::GzEncoder::new(
            BufWriter::new(std::fs::File::create(&tmp).expect("create")),
            flate2::Compression::fast(),
        );
        std::io::copy(&mut input, &mut enc).expect("gzip");
        enc.finish().expect("gzip finish").flush().expect("flush");
        std::fs::rename(&tmp, &out).expect("rename");
        println!("(gzip copy made in {:.1}s)", t.elapsed().as_secs_f64());
    }
    out
}

/// The log for `n` lines, generated once and reused.
fn generated(n: u64) -> PathBuf {
    let dir = std::env::temp_dir().join("shadowscope-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let out = dir.join(format!("squid-{n}.log"));
    if out.exists() {
        return out;
    }
    let tmp = dir.join(format!("squid-{n}.log.tmp"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tools/gen_squid.py");
    let t = Instant::now();
    let py = Path::new(script).exists()
        && std::process::Command::new("python3")
            .arg(script)
            .arg(n.to_string())
            .arg(&tmp)
            .status()
            .is_ok_and(|s| s.success());
    if py {
        println!("generated {n} lines with gen_squid.py in {:.1}s", t.elapsed().as_secs_f64());
    } else {
        rust_generate(n, &tmp).expect("generate");
        println!("generated {n} lines (in-Rust generator) in {:.1}s", t.elapsed().as_secs_f64());
    }
    std::fs::rename(&tmp, &out).expect("rename");
    out
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Log-normal via Box–Muller.
    fn lognorm(&mut self, mu: f64, sigma: f64) -> u64 {
        let (u1, u2) = (self.f().max(1e-12), self.f());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (mu + sigma * z).exp() as u64
    }
}

/// Cumulative Zipf weights `1/(r+1)^s` for `n` ranks.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|r| {
            acc += 1.0 / ((r + 1) as f64).powf(s);
            acc
        })
        .collect()
}

fn pick(cw: &[f64], rng: &mut Rng) -> usize {
    let x = rng.f() * cw.last().copied().unwrap_or(1.0);
    cw.partition_point(|&c| c < x).min(cw.len() - 1)
}

/// Same shape and cardinalities as gen_squid.py (not byte-identical).
fn rust_generate(n: u64, out: &Path) -> std::io::Result<()> {
    const BASES: &[&str] = &[
        "google.com",
        "googleapis.com",
        "gstatic.com",
        "youtube.com",
        "microsoft.com",
        "office365.com",
        "live.com",
        "sharepoint.com",
        "microsoftonline.com",
        "azure.com",
        "amazonaws.com",
        "cloudfront.net",
        "apple.com",
        "icloud.com",
        "facebook.com",
        "instagram.com",
        "whatsapp.com",
        "linkedin.com",
        "x.com",
        "dropbox.com",
        "box.com",
        "slack.com",
        "zoom.us",
        "webex.com",
        "salesforce.com",
        "atlassian.net",
        "github.com",
        "gitlab.com",
        "notion.so",
        "airtable.com",
        "asana.com",
        "monday.com",
        "miro.com",
        "figma.com",
        "canva.com",
        "adobe.com",
        "docusign.net",
        "zendesk.com",
        "hubspot.com",
        "mailchimp.com",
        "twilio.com",
        "workday.com",
        "servicenow.com",
        "okta.com",
        "wetransfer.com",
        "mega.nz",
        "mediafire.com",
        "openai.com",
        "chatgpt.com",
        "anthropic.com",
        "claude.ai",
        "deepl.com",
        "grammarly.com",
        "spotify.com",
        "netflix.com",
        "reddit.com",
        "redd.it",
        "pinterest.com",
        "wikipedia.org",
        "stackoverflow.com",
        "yahoo.com",
        "bing.com",
        "baidu.com",
        "yandex.ru",
        "telegram.org",
        "discord.com",
        "tiktok.com",
        "cloudflare.com",
        "akamaihd.net",
        "fastly.net",
        "herokuapp.com",
        "vercel.app",
        "shopify.com",
        "paypal.com",
        "stripe.com",
        "tableau.com",
        "surveymonkey.com",
        "typeform.com",
        "loom.com",
        "vimeo.com",
        "lastpass.com",
        "1password.com",
        "teamviewer.com",
        "anydesk.com",
        "protonmail.com",
        "mail.ru",
        "ebay.com",
        "aliexpress.com",
        "booking.com",
        "nytimes.com",
        "bbc.co.uk",
    ];
    const SUBS: &[&str] = &[
        "www", "api", "login", "app", "cdn", "static", "mail", "auth", "accounts", "files", "upload", "download",
        "docs", "m", "media", "assets", "content", "sync", "push", "edge", "eu", "us", "admin", "portal",
    ];
    const WORDS: &[&str] =
        &["v1", "api", "user", "files", "upload", "share", "static", "js", "img", "search", "auth", "sync", "data"];
    let mut rng = Rng(20_240_301);
    let mut hosts: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for b in BASES {
        for s in ["", "www.", "api.", "login."] {
            let h = format!("{s}{b}");
            if seen.insert(h.clone()) {
                hosts.push(h);
            }
        }
    }
    for s in SUBS {
        for b in BASES {
            let h = format!("{s}.{b}");
            if hosts.len() < 3500 && seen.insert(h.clone()) {
                hosts.push(h);
            }
        }
    }
    while hosts.len() < 5000 {
        let label: String = (0..4 + rng.below(7)).map(|_| (b'a' + rng.below(26) as u8) as char).collect();
        let h = format!("{label}.{}", BASES[rng.below(BASES.len())]);
        if seen.insert(h.clone()) {
            hosts.push(h);
        }
    }
    let users: Vec<String> = (0..1500).map(|i| format!("user{i:04}.{}@corp.example", i * 7919 % 1000)).collect();
    let ips: Vec<(String, Option<usize>)> = (0..2000)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", 1 + rng.below(254), rng.below(256), 1 + rng.below(254));
            let owner = if i < 1500 {
                Some(i)
            } else if rng.f() < 0.5 {
                None
            } else {
                Some(rng.below(1500))
            };
            (ip, owner)
        })
        .collect();
    let host_cw = zipf(hosts.len(), 1.1);
    let ip_cw = zipf(ips.len(), 0.7);
    let start = 1_709_251_200f64;
    let span = 30.0 * 86_400.0;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    for i in 0..n {
        let t = start + span * (i as f64 / n.max(1) as f64);
        let (sec, ms) = (t as u64, ((t.fract()) * 1000.0) as u64);
        let host = &hosts[pick(&host_cw, &mut rng)];
        let (ip, owner) = &ips[pick(&ip_cw, &mut rng)];
        let user = match owner {
            Some(u) if rng.f() >= 0.03 => users[*u].as_str(),
            _ => "-",
        };
        let m = rng.f();
        let denied = rng.f() < 0.04;
        let code = if denied {
            "TCP_DENIED/403"
        } else if m < 0.55 {
            "TCP_TUNNEL/200"
        } else {
            "TCP_MISS/200"
        };
        let bytes = if denied { 3500 + rng.below(700) as u64 } else { rng.lognorm(8.3, 1.9) };
        if m < 0.55 {
            let el = rng.lognorm(8.0, 1.6);
            writeln!(w, "{sec}.{ms:03} {el:6} {ip} {code} {bytes} CONNECT {host}:443 {user} DIRECT/93.184.216.34 -")?;
        } else {
            let method = if m < 0.9 { "GET" } else { "POST" };
            let path: Vec<&str> = (0..1 + rng.below(4)).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            let el = rng.lognorm(4.8, 1.2);
            writeln!(
                w,
                "{sec}.{ms:03} {el:6} {ip} {code} {bytes} {method} http://{host}/{} {user} DIRECT/93.184.216.34 text/html",
                path.join("/")
            )?;
        }
    }
    w.flush()
}
