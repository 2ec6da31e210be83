//! End-to-end import into a fresh cache: lines/s, MB/s, peak RSS, cache size, and where the
//! time goes (read + parse, identify, aggregate, SQLite commit), for several log formats.
//!
//! `cargo run --release --example bench_import -- [--format F] [--lines N] [--file PATH] [--gz] [--batch N]`
//! `cargo run --release --example bench_import -- --all [--lines N]`
//!
//! Formats: squid (default), zeek, fortigate, cef, defender-json. Without `--file`, a log of N
//! lines (default 2,000,000; `--all` defaults to 1,000,000 per format) is generated once under
//! `$TMPDIR/shadowscope-bench/`. Squid uses `../shared/tools/gen_squid.py` when python3 is
//! available, else the in-Rust generator below; every other format uses the in-Rust generator,
//! which draws from one population (2,000 client IPs, 1,500 users, one workstation per owned IP,
//! 5,000 hosts with Zipf popularity, 30 days) so the formats aggregate to comparable row counts
//! as far as each format carries users and devices:
//!
//! * zeek: TSV with `#fields` headers, three concatenated logs: conn (~14%, no host: the
//!   service is the destination), http (~45%, `username` unset as on most networks), ssl (~41%,
//!   `server_name`). No user or device.
//! * fortigate: FortiOS 7 `type="traffic"` forward logs with `hostname` for TLS and
//!   `type="utm" subtype="webfilter"` for HTTP, with `user` and `srcname`.
//! * cef: a web gateway's CEF with a syslog prefix, `rt` in ms, `dhost`/`request`, `suser`,
//!   `shost`.
//! * defender-json: streaming-API DeviceNetworkEvents (`RemoteUrl`, `DeviceName`,
//!   `InitiatingProcessAccountUpn`) with the envelope and null fields the API sends, plus 2%
//!   DeviceLogonEvents.
//!
//! `--all` runs every format in its own child process (so peak RSS is per format) and prints a
//! Markdown table.
use shadowscope::catalog::{Catalog, Identified};
use shadowscope::ingest::pipeline::{ImportOptions, import_file};
use shadowscope::ingest::{Position, Record, RecordSink, SkipReason, registry};
use shadowscope::store::Store;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const FORMATS: &[&str] = &["squid", "zeek", "fortigate", "cef", "defender-json"];

struct Args {
    lines: Option<u64>,
    file: Option<PathBuf>,
    gz: bool,
    batch: Option<u64>,
    format: String,
    all: bool,
    /// Child of `--all`: end-to-end import only, one machine-readable line.
    result_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        lines: None,
        file: None,
        gz: false,
        batch: None,
        format: "squid".into(),
        all: false,
        result_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--lines" => a.lines = it.next().and_then(|v| v.replace('_', "").parse().ok()),
            "--file" => a.file = it.next().map(PathBuf::from),
            "--gz" => a.gz = true,
            "--batch" => a.batch = it.next().and_then(|v| v.parse().ok()),
            "--format" => a.format = it.next().unwrap_or_default(),
            "--all" => a.all = true,
            "--result-only" => a.result_only = true,
            other => {
                eprintln!(
                    "unknown argument {other}; usage: bench_import [--format F | --all] [--lines N] [--file PATH] [--gz] [--batch N]"
                );
                std::process::exit(2);
            }
        }
    }
    if !FORMATS.contains(&a.format.as_str()) {
        eprintln!("--format is one of {}", FORMATS.join(", "));
        std::process::exit(2);
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let a = args();
    if a.all {
        run_all(&a);
        return;
    }
    let file = match &a.file {
        Some(f) => f.clone(),
        None => generated(&a.format, a.lines.unwrap_or(2_000_000)),
    };
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    if a.result_only {
        let r = run_import(&file, size, &a);
        println!(
            "RESULT\t{}\t{}\t{}\t{:.3}\t{}\t{:.2}\t{:.1}\t{}\t{}",
            a.format, r.lines, size, r.seconds, r.imported, r.cpu, r.peak_rss, r.rows, r.cache
        );
        return;
    }
    println!("input: {} ({:.1} MB, format {})", file.display(), size as f64 / 1e6, a.format);
    let parse_s = parse_pass(&file, &a.format, false);
    let identify_s = (parse_pass(&file, &a.format, true) - parse_s).max(0.0);
    let r = run_import(&file, size, &a);
    print_detail(&r, size, parse_s, identify_s);
    if a.gz {
        let gz = gzip_copy(&file);
        let gz_size = std::fs::metadata(&gz).map(|m| m.len()).unwrap_or(0);
        println!("\ngzip input: {} ({:.1} MB compressed)", gz.display(), gz_size as f64 / 1e6);
        let r = run_import(&gz, size, &a);
        print_detail(&r, size, parse_s, identify_s);
    }
}

/// Every format at the same size, each in a child process, as a Markdown table.
fn run_all(a: &Args) {
    let lines = a.lines.unwrap_or(1_000_000);
    let exe = std::env::current_exe().expect("own path");
    // Generate first, so generation does not overlap (or count towards) the imports.
    for f in FORMATS {
        generated(f, lines);
    }
    let load_before = load_average();
    let mut rows = Vec::new();
    for f in FORMATS {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--format", f, "--lines", &lines.to_string(), "--result-only"]);
        if let Some(b) = a.batch {
            cmd.args(["--batch", &b.to_string()]);
        }
        let out = cmd.output().expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().find_map(|l| l.strip_prefix("RESULT\t")) {
            Some(r) => {
                eprintln!("{f}: done");
                rows.push(r.split('\t').map(str::to_string).collect::<Vec<_>>());
            }
            None => eprintln!("{f}: failed: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    let load_after = load_average();
    println!(
        "\n| format | lines | MB | seconds | lines/s | MB/s | lines per CPU-s | peak RSS MiB | traffic_daily rows | cache MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let g = |i: usize| r.get(i).map_or("", String::as_str);
        let num = |i: usize| g(i).parse::<f64>().unwrap_or(0.0);
        let (lines, bytes, secs, cpu) = (num(1), num(2), num(3).max(1e-9), num(5).max(1e-9));
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.1} | {:.0} | {:.0} | {} | {:.0} |",
            g(0),
            g(1),
            bytes / 1e6,
            secs,
            lines / secs,
            bytes / 1e6 / secs,
            lines / cpu,
            num(6),
            g(7),
            num(8) / 1e6
        );
    }
    println!(
        "\n{} cores, load average (1/5/15 min) {load_before} before, {load_after} after; fresh cache per format; \
         seconds = import + summaries.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

struct Outcome {
    lines: u64,
    imported: u64,
    skipped: u64,
    seconds: f64,
    import_s: f64,
    summaries_s: f64,
    cpu: f64,
    peak_rss: f64,
    rows: u64,
    packed_rows: u64,
    cache: u64,
    timings: shadowscope::ingest::pipeline::ImportTimings,
}

fn run_import(file: &Path, _size: u64, a: &Args) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let store = Store::open(&db).expect("open cache");
    let mut opts = ImportOptions { format: Some(a.format.clone()), ..Default::default() };
    if let Some(b) = a.batch {
        opts.batch_lines = b;
    }
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let r = import_file(&store, Catalog::builtin(), file, &opts, &mut |_| {}).expect("import");
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // As `shadowscope import` does it: the WAL folded back on a thread of its own meanwhile.
    store.with_background_checkpoint(|| store.refresh_summaries()).expect("summaries");
    let summaries_s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let peak_rss = peak_rss_mib();
    drop(store);
    let conn = shadowscope::store::raw_connection(&db).expect("reopen cache");
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map_or(0, |n| n as u64);
    let rows = count("SELECT count(*) FROM traffic_daily");
    let packed_rows = count("SELECT count(*) FROM traffic_packed");
    check_rollups(&conn);
    drop(conn);
    let cache: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    Outcome {
        lines: r.records,
        imported: r.imported,
        skipped: r.skipped_total(),
        seconds: import_s + summaries_s,
        import_s,
        summaries_s,
        cpu,
        peak_rss,
        rows,
        packed_rows,
        cache,
        timings: r.timings,
    }
}

/// The roll-ups written during the import must equal a re-aggregation of `traffic_daily`: a
/// speed-up that breaks them is no speed-up.
fn check_rollups(c: &rusqlite::Connection) {
    const T: &str = "traffic_daily t JOIN domains d ON d.id = t.domain_id";
    let checks = [
        ("app_day", format!("SELECT app_id, day, bytes_up, bytes_down, transactions, blocked FROM app_day EXCEPT SELECT d.app_id, t.day, sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions), sum(t.blocked) FROM {T} GROUP BY 1, 2")),
        ("domain_total", "SELECT domain_id, bytes_up, bytes_down, transactions FROM domain_total EXCEPT SELECT domain_id, sum(bytes_up), sum(bytes_down), sum(transactions) FROM traffic_daily GROUP BY 1".to_string()),
        ("app_user", format!("SELECT app_id, user_id, first_day, last_day, bytes_up, bytes_down, transactions FROM app_user EXCEPT SELECT d.app_id, t.user_id, min(t.day), max(t.day), sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions) FROM {T} GROUP BY 1, 2")),
        ("app_device", format!("SELECT app_id, device_id, first_day, last_day, bytes_up, bytes_down, transactions FROM app_device EXCEPT SELECT d.app_id, t.device_id, min(t.day), max(t.day), sum(t.bytes_up), sum(t.bytes_down), sum(t.transactions) FROM {T} GROUP BY 1, 2")),
        ("user_day", "SELECT user_id, day, bytes_up, bytes_down, transactions FROM user_day EXCEPT SELECT user_id, day, sum(bytes_up), sum(bytes_down), sum(transactions) FROM traffic_daily GROUP BY 1, 2".to_string()),
        ("device_day", "SELECT device_id, day, bytes_up, bytes_down, transactions FROM device_day EXCEPT SELECT device_id, day, sum(bytes_up), sum(bytes_down), sum(transactions) FROM traffic_daily GROUP BY 1, 2".to_string()),
    ];
    // The packed rows by owner must hold exactly the app × owner entries of the rows by app.
    let both_ends = |by_owner: &str, by_app: &str, owner: &str| {
        let cols = format!("app_id, {owner}, first_day, last_day, bytes_up, bytes_down, transactions");
        (
            by_owner.to_string(),
            format!(
                "SELECT * FROM (SELECT {cols} FROM {by_owner} EXCEPT SELECT {cols} FROM {by_app})
                 UNION ALL SELECT * FROM (SELECT {cols} FROM {by_app} EXCEPT SELECT {cols} FROM {by_owner})"
            ),
        )
    };
    let checks = checks
        .into_iter()
        .map(|(t, sql)| (t.to_string(), sql))
        .chain([both_ends("user_app", "app_user", "user_id"), both_ends("device_app", "app_device", "device_id")]);
    for (table, sql) in checks {
        let bad: i64 = c.query_row(&format!("SELECT count(*) FROM ({sql})"), [], |r| r.get(0)).expect("check");
        assert_eq!(bad, 0, "{table} disagrees with traffic_daily in {bad} rows");
    }
}

fn print_detail(r: &Outcome, size: u64, parse_s: f64, identify_s: f64) {
    let total = r.seconds;
    let lines = r.lines;
    println!("lines:        {lines} ({} imported, {} skipped)", r.imported, r.skipped);
    println!("seconds:      {total:.3} (import {:.3} + summaries {:.3})", r.import_s, r.summaries_s);
    println!("lines/s:      {:.0}", lines as f64 / total);
    println!("MB/s:         {:.1}", size as f64 / 1e6 / total);
    println!(
        "CPU:          {:.2} s on {} threads ({:.0} lines per CPU-second; the wall figures above depend on the machine's load)",
        r.cpu,
        2,
        lines as f64 / r.cpu.max(1e-9)
    );
    println!("peak RSS:     {:.1} MiB (VmHWM, whole process so far)", r.peak_rss);
    println!(
        "cache size:   {:.1} MB ({} daily facts in {} packed day × user × device rows)",
        r.cache as f64 / 1e6,
        r.rows,
        r.packed_rows
    );
    println!("load average: {}", load_average());
    let t = &r.timings;
    println!(
        "split (s):    read+parse {parse_s:.3} (alone, one thread) | identify {identify_s:.3} (alone, cached per host)"
    );
    println!(
        "              {} parser thread(s), summed: read+parse+aggregate {:.3} busy, {:.3} blocked on the writer => aggregate ~{:.3}",
        t.parse_threads,
        t.parse_s,
        t.parser_blocked_s,
        (t.parse_s - parse_s).max(0.0)
    );
    println!(
        "              writer thread: identify+intern new names {:.3} | SQLite apply+commit {:.3} | idle {:.3}",
        t.intern_s, t.commit_s, t.writer_idle_s
    );
    println!("              roll-up thread: summing committed facts {:.3} busy", t.rollup_s);
    println!("              writer, of apply+commit: held roll-ups written {:.3}", t.rollup_write_s);
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

fn parse_pass(file: &Path, format: &str, identify: bool) -> f64 {
    let f = std::fs::File::open(file).expect("open log");
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut sink = Count { identify, ..Default::default() };
    let t = Instant::now();
    let fmt = registry::by_name(format).expect("known format");
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

/// The log of `format` for `n` lines, generated once and reused.
fn generated(format: &str, n: u64) -> PathBuf {
    let dir = std::env::temp_dir().join("shadowscope-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let out = dir.join(format!("{format}-{n}.log"));
    if out.exists() {
        return out;
    }
    let tmp = dir.join(format!("{format}-{n}.log.tmp"));
    let t = Instant::now();
    if format == "squid" {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tools/gen_squid.py");
        let py = Path::new(script).exists()
            && std::process::Command::new("python3")
                .arg(script)
                .arg(n.to_string())
                .arg(&tmp)
                .status()
                .is_ok_and(|s| s.success());
        if py {
            eprintln!("generated {n} squid lines with gen_squid.py in {:.1}s", t.elapsed().as_secs_f64());
            std::fs::rename(&tmp, &out).expect("rename");
            return out;
        }
    }
    rust_generate(format, n, &tmp).expect("generate");
    eprintln!("generated {n} {format} lines (in-Rust generator) in {:.1}s", t.elapsed().as_secs_f64());
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

/// The shared population: hosts (with a fixed public IP each), users, and client IPs with their
/// owner and workstation.
struct Population {
    hosts: Vec<String>,
    host_ips: Vec<String>,
    users: Vec<String>,
    ips: Vec<(String, Option<usize>)>,
}

const WORDS: &[&str] =
    &["v1", "api", "user", "files", "upload", "share", "static", "js", "img", "search", "auth", "sync", "data"];

fn population(rng: &mut Rng) -> Population {
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
    let mut other = Rng(77_777);
    let host_ips = (0..hosts.len())
        .map(|_| {
            const FIRST: &[u8] = &[13, 20, 23, 34, 35, 40, 52, 54, 104, 142, 151, 157, 172, 185, 199];
            let a = FIRST[other.below(FIRST.len())];
            format!("{a}.{}.{}.{}", other.below(256), other.below(256), 1 + other.below(254))
        })
        .collect();
    Population { hosts, host_ips, users, ips }
}

/// One transaction, whatever the format that logs it.
struct Event<'p> {
    sec: u64,
    ms: u64,
    host: &'p str,
    host_ip: &'p str,
    ip: &'p str,
    ip_idx: usize,
    user: Option<&'p str>,
    /// Workstation of an IP that has an owner.
    device: Option<String>,
    denied: bool,
    /// TLS (CONNECT) rather than plain HTTP.
    tls: bool,
    method: &'static str,
    path: String,
    elapsed_ms: u64,
    up: u64,
    down: u64,
    /// Per-event randomness for format-specific fields (ports, ids), drawn apart from the
    /// Squid stream so the Squid output stays what it was.
    extra: u64,
}

/// Same shape and cardinalities as gen_squid.py (not byte-identical); every format logs the
/// same events.
fn rust_generate(format: &str, n: u64, out: &Path) -> std::io::Result<()> {
    let mut rng = Rng(20_240_301);
    let p = population(&mut rng);
    let host_cw = zipf(p.hosts.len(), 1.1);
    let ip_cw = zipf(p.ips.len(), 0.7);
    let start = 1_709_251_200f64;
    let span = 30.0 * 86_400.0;
    let mut side = Rng(4_242);
    let mut sink = FormatWriter::new(format, out)?;
    for i in 0..n {
        let t = start + span * (i as f64 / n.max(1) as f64);
        let (sec, ms) = (t as u64, ((t.fract()) * 1000.0) as u64);
        let h = pick(&host_cw, &mut rng);
        let ip_idx = pick(&ip_cw, &mut rng);
        let (ip, owner) = &p.ips[ip_idx];
        let user = match owner {
            Some(u) if rng.f() >= 0.03 => Some(p.users[*u].as_str()),
            _ => None,
        };
        let m = rng.f();
        let denied = rng.f() < 0.04;
        let tls = m < 0.55;
        let bytes = if denied { 3500 + rng.below(700) as u64 } else { rng.lognorm(8.3, 1.9) };
        let (method, path, elapsed_ms) = if tls {
            ("CONNECT", String::new(), rng.lognorm(8.0, 1.6))
        } else {
            let method = if m < 0.9 { "GET" } else { "POST" };
            let path: Vec<&str> = (0..1 + rng.below(4)).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            (method, path.join("/"), rng.lognorm(4.8, 1.2))
        };
        let up = if denied { 0 } else { side.lognorm(6.5, 1.5) };
        let ev = Event {
            sec,
            ms,
            host: &p.hosts[h],
            host_ip: &p.host_ips[h],
            ip,
            ip_idx,
            user,
            device: owner.map(|_| format!("WS-{ip_idx:04}")),
            denied,
            tls,
            method,
            path,
            elapsed_ms,
            up,
            down: bytes,
            extra: side.next(),
        };
        sink.write(&ev)?;
    }
    sink.finish(out)
}

const UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36";

fn file(path: &Path) -> std::io::Result<BufWriter<std::fs::File>> {
    Ok(BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?))
}

fn utc(sec: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(sec as i64, 0).unwrap_or_default()
}

/// A Zeek connection uid: `C` and 17 base62 characters.
fn zeek_uid(mut x: u64) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(18);
    s.push('C');
    for _ in 0..17 {
        s.push(B62[(x % 62) as usize] as char);
        x = (x / 62) ^ x.rotate_left(17);
    }
    s
}

enum FormatWriter {
    Squid(BufWriter<std::fs::File>),
    /// conn, http and ssl logs written apart and concatenated at the end, as three header blocks.
    Zeek {
        parts: [BufWriter<std::fs::File>; 3],
        paths: [PathBuf; 3],
    },
    Fortigate(BufWriter<std::fs::File>),
    Cef(BufWriter<std::fs::File>),
    DefenderJson(BufWriter<std::fs::File>),
}

const ZEEK_HEAD: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n";
const ZEEK_CONN: &str = "#path\tconn\n#open\t2024-03-01-00-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";
const ZEEK_HTTP: &str = "#path\thttp\n#open\t2024-03-01-00-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\tversion\tuser_agent\torigin\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\tinfo_code\tinfo_msg\ttags\tusername\tpassword\tproxied\torig_fuids\torig_filenames\torig_mime_types\tresp_fuids\tresp_filenames\tresp_mime_types\n#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tcount\tcount\tcount\tstring\tcount\tstring\tset[enum]\tstring\tstring\tset[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\n";
const ZEEK_SSL: &str = "#path\tssl\n#open\t2024-03-01-00-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tcipher\tcurve\tserver_name\tresumed\tlast_alert\tnext_protocol\testablished\tssl_history\tcert_chain_fps\tclient_cert_chain_fps\tsni_matches_cert\n#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tbool\tstring\tstring\tbool\tstring\tvector[string]\tvector[string]\tbool\n";

impl FormatWriter {
    fn new(format: &str, out: &Path) -> std::io::Result<FormatWriter> {
        Ok(match format {
            "zeek" => {
                let paths = ["conn", "http", "ssl"].map(|k| out.with_extension(format!("{k}.part")));
                let parts = [file(&paths[0])?, file(&paths[1])?, file(&paths[2])?];
                let mut w = FormatWriter::Zeek { parts, paths };
                if let FormatWriter::Zeek { parts, .. } = &mut w {
                    for (p, h) in parts.iter_mut().zip([ZEEK_CONN, ZEEK_HTTP, ZEEK_SSL]) {
                        write!(p, "{ZEEK_HEAD}{h}")?;
                    }
                }
                w
            }
            "fortigate" => FormatWriter::Fortigate(file(out)?),
            "cef" => FormatWriter::Cef(file(out)?),
            "defender-json" => FormatWriter::DefenderJson(file(out)?),
            _ => FormatWriter::Squid(file(out)?),
        })
    }

    fn write(&mut self, e: &Event<'_>) -> std::io::Result<()> {
        let (sec, ms) = (e.sec, e.ms);
        let sport = 49_152 + e.extra % 16_000;
        match self {
            FormatWriter::Squid(w) => {
                let user = e.user.unwrap_or("-");
                let el = e.elapsed_ms;
                let code = if e.denied {
                    "TCP_DENIED/403"
                } else if e.tls {
                    "TCP_TUNNEL/200"
                } else {
                    "TCP_MISS/200"
                };
                let (ip, host, bytes) = (e.ip, e.host, e.down);
                if e.tls {
                    writeln!(
                        w,
                        "{sec}.{ms:03} {el:6} {ip} {code} {bytes} CONNECT {host}:443 {user} DIRECT/93.184.216.34 -"
                    )
                } else {
                    writeln!(
                        w,
                        "{sec}.{ms:03} {el:6} {ip} {code} {bytes} {} http://{host}/{} {user} DIRECT/93.184.216.34 text/html",
                        e.method, e.path
                    )
                }
            }
            FormatWriter::Zeek { parts, .. } => {
                let uid = zeek_uid(e.extra);
                let ts = format!("{sec}.{ms:03}{:03}", e.extra % 1000);
                let (ip, dst) = (e.ip, e.host_ip);
                let dur = e.elapsed_ms as f64 / 1000.0;
                if e.tls && e.extra.is_multiple_of(4) {
                    let (up, down) = (e.up, e.down);
                    writeln!(
                        parts[0],
                        "{ts}\t{uid}\t{ip}\t{sport}\t{dst}\t443\ttcp\tssl\t{dur:.6}\t{up}\t{down}\tSF\tT\tF\t0\tShADadFf\t{}\t{}\t{}\t{}\t-",
                        up / 1200 + 3,
                        up + 40 * (up / 1200 + 3),
                        down / 1400 + 3,
                        down + 40 * (down / 1400 + 3)
                    )
                } else if e.tls {
                    let est = if e.denied { "F" } else { "T" };
                    writeln!(
                        parts[2],
                        "{ts}\t{uid}\t{ip}\t{sport}\t{dst}\t443\tTLSv13\tTLS_AES_128_GCM_SHA256\tx25519\t{}\tF\t-\th2\t{est}\tCsiI\t-\t-\t-",
                        e.host
                    )
                } else {
                    let (status, msg) = if e.denied { (403, "Forbidden") } else { (200, "OK") };
                    writeln!(
                        parts[1],
                        "{ts}\t{uid}\t{ip}\t{sport}\t{dst}\t80\t1\t{}\t{}\t/{}\t-\t1.1\t{UA}\t-\t{}\t{}\t{status}\t{msg}\t-\t-\t(empty)\t-\t-\t-\t-\t-\t-\tF{}\t-\ttext/html",
                        e.method,
                        e.host,
                        e.path,
                        if e.method == "POST" { e.up } else { 0 },
                        e.down,
                        &uid[1..]
                    )
                }
            }
            FormatWriter::Fortigate(w) => {
                let d = utc(sec);
                let head = format!(
                    "<189>date={} time={} devname=\"FGT-HQ-01\" devid=\"FG100FTK20001234\" eventtime={sec}{ms:03}{:06} tz=\"+0000\"",
                    d.format("%Y-%m-%d"),
                    d.format("%H:%M:%S"),
                    e.extra % 1_000_000
                );
                let user = e.user.map(|u| format!(" user=\"{u}\" authserver=\"FSSO-CORP\"")).unwrap_or_default();
                let srcname = e.device.as_deref().map(|d| format!(" srcname=\"{d}\"")).unwrap_or_default();
                let session = e.extra % 100_000_000;
                if e.tls {
                    let action = if e.denied { "deny" } else { "close" };
                    writeln!(
                        w,
                        "{head} logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" srcip={}{srcname} srcport={sport} srcintf=\"port1\" srcintfrole=\"lan\" dstip={} dstport=443 dstintf=\"wan1\" dstintfrole=\"wan\" srccountry=\"Reserved\" dstcountry=\"United States\" sessionid={session} proto=6 action=\"{action}\" policyid=12 policytype=\"policy\" poluuid=\"4b1c2f7e-7d6a-51ee-9f3c-6d1a0e8b2c41\" policyname=\"LAN-to-Internet\"{user} service=\"HTTPS\" trandisp=\"snat\" transip=203.0.113.10 transport={} appid=40568 app=\"HTTPS.BROWSER\" appcat=\"Web.Client\" apprisk=\"medium\" hostname=\"{}\" duration={} sentbyte={} rcvdbyte={} sentpkt={} rcvdpkt={} utmaction=\"allow\" countweb=1",
                        e.ip,
                        e.host_ip,
                        1024 + e.extra % 60_000,
                        e.host,
                        e.elapsed_ms / 1000,
                        e.up,
                        e.down,
                        e.up / 1200 + 3,
                        e.down / 1400 + 3
                    )
                } else {
                    let (evt, action, msg) = if e.denied {
                        ("ftgd_blk", "blocked", "URL belongs to a denied category in policy")
                    } else {
                        ("ftgd_allow", "passthrough", "URL belongs to an allowed category in policy")
                    };
                    writeln!(
                        w,
                        "{head} logid=\"0316013056\" type=\"utm\" subtype=\"webfilter\" eventtype=\"{evt}\" level=\"notice\" vd=\"root\" policyid=12 sessionid={session}{user} srcip={} srcport={sport} srcintf=\"port1\" srcintfrole=\"lan\" dstip={} dstport=80 dstintf=\"wan1\" dstintfrole=\"wan\" proto=6 service=\"HTTP\" hostname=\"{}\" profile=\"default\" action=\"{action}\" reqtype=\"direct\" url=\"/{}\" sentbyte={} rcvdbyte={} direction=\"outgoing\" msg=\"{msg}\" method=\"domain\" cat=52 catdesc=\"Information Technology\"",
                        e.ip, e.host_ip, e.host, e.path, e.up, e.down
                    )
                }
            }
            FormatWriter::Cef(w) => {
                let (sig, name, act) = if e.denied {
                    (195, "Transaction blocked", "blocked")
                } else {
                    (194, "Transaction permitted", "permitted")
                };
                let user = e.user.map(|u| format!(" suser={u}")).unwrap_or_default();
                let shost = e.device.as_deref().map(|d| format!(" shost={d}")).unwrap_or_default();
                let (app, port, request) = if e.tls {
                    ("https", 443, format!("https://{}/", e.host))
                } else {
                    ("http", 80, format!("http://{}/{}", e.host, e.path))
                };
                writeln!(
                    w,
                    "<14>{} swg01 CEF:0|Forcepoint|Web Security|8.5.5|{sig}|{name}|1| act={act} app={app} dvc=10.0.0.5 dst={} dhost={} dpt={port} src={} spt={sport}{user}{shost} rt={sec}{ms:03} in={} out={} requestMethod={} requestClientApplication={UA} cs1Label=Policy cs1=Role-Corp\\\\Default cs2Label=DynCat cs2=0 cs3Label=ContentType cs3=text/html cat=Information Technology request={request}",
                    utc(sec).format("%b %e %H:%M:%S"),
                    e.host_ip,
                    e.host,
                    e.ip,
                    e.up,
                    e.down,
                    e.method
                )
            }
            FormatWriter::DefenderJson(w) => {
                let d = utc(sec);
                let ts = format!("{}.{ms:03}{:04}Z", d.format("%Y-%m-%dT%H:%M:%S"), e.extra % 10_000);
                let sent = format!("{}.{ms:03}0000Z", utc(sec + 180).format("%Y-%m-%dT%H:%M:%S"));
                let device = format!("ws-{:04}.corp.example", e.ip_idx);
                let device_id = format!("{:040x}", (e.ip_idx as u128 + 1) * 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                let report = e.extra % 100_000;
                let q = |v: Option<&str>| v.map_or_else(|| "null".to_string(), |v| format!("\"{v}\""));
                if e.extra.is_multiple_of(50) && e.user.is_some() {
                    let name = e.user.and_then(|u| u.split('@').next());
                    return writeln!(
                        w,
                        "{{\"Tenant\":\"DefaultTenant\",\"category\":\"AdvancedHunting-DeviceLogonEvents\",\"operationName\":\"Publish\",\"properties\":{{\"AccountDomain\":\"corp\",\"AccountName\":{},\"AccountSid\":\"S-1-5-21-1004336348-1177238915-682003330-{}\",\"ActionType\":\"LogonSuccess\",\"AdditionalFields\":\"{{\\\"IsLocalLogon\\\":true}}\",\"DeviceId\":\"{device_id}\",\"DeviceName\":\"{device}\",\"FailureReason\":null,\"IsLocalAdmin\":false,\"LogonId\":{},\"LogonType\":\"Interactive\",\"MachineGroup\":\"Workstations\",\"Protocol\":\"Kerberos\",\"RemoteDeviceName\":null,\"RemoteIP\":null,\"RemoteIPType\":null,\"RemotePort\":null,\"ReportId\":{report},\"Timestamp\":\"{ts}\"}},\"tenantId\":\"12345af3-bc0e-4f36-b08e-27759e912345\",\"time\":\"{sent}\"}}",
                        q(name),
                        1000 + e.ip_idx,
                        e.extra % 10_000_000
                    );
                }
                let (upn, dom, acct) = match e.user {
                    Some(u) => (q(Some(u)), q(Some("corp")), q(u.split('@').next())),
                    None => ("null".into(), q(Some("nt authority")), q(Some("network service"))),
                };
                let url = if e.tls { e.host.to_string() } else { format!("http://{}/{}", e.host, e.path) };
                let (action, port) = if e.tls { ("ConnectionSuccess", 443) } else { ("ConnectionSuccess", 80) };
                writeln!(
                    w,
                    "{{\"Tenant\":\"DefaultTenant\",\"category\":\"AdvancedHunting-DeviceNetworkEvents\",\"operationName\":\"Publish\",\"properties\":{{\"ActionType\":\"{action}\",\"AdditionalFields\":null,\"AppGuardContainerId\":null,\"DeviceId\":\"{device_id}\",\"DeviceName\":\"{device}\",\"InitiatingProcessAccountDomain\":{dom},\"InitiatingProcessAccountName\":{acct},\"InitiatingProcessAccountObjectId\":null,\"InitiatingProcessAccountSid\":null,\"InitiatingProcessAccountUpn\":{upn},\"InitiatingProcessCommandLine\":\"\\\"chrome.exe\\\" --type=utility\",\"InitiatingProcessCreationTime\":\"{ts}\",\"InitiatingProcessFileName\":\"chrome.exe\",\"InitiatingProcessFileSize\":2884888,\"InitiatingProcessFolderPath\":\"c:\\\\program files\\\\google\\\\chrome\\\\application\\\\chrome.exe\",\"InitiatingProcessId\":{},\"InitiatingProcessIntegrityLevel\":\"Medium\",\"InitiatingProcessMD5\":\"3f2a1c0e9b8d7c6b5a4f3e2d1c0b9a8f\",\"InitiatingProcessParentCreationTime\":null,\"InitiatingProcessParentFileName\":\"explorer.exe\",\"InitiatingProcessParentId\":4242,\"InitiatingProcessSHA1\":null,\"InitiatingProcessSHA256\":null,\"InitiatingProcessTokenElevation\":\"TokenElevationTypeLimited\",\"InitiatingProcessVersionInfoCompanyName\":\"Google LLC\",\"InitiatingProcessVersionInfoFileDescription\":\"Google Chrome\",\"InitiatingProcessVersionInfoInternalFileName\":\"chrome_exe\",\"InitiatingProcessVersionInfoOriginalFileName\":\"chrome.exe\",\"InitiatingProcessVersionInfoProductName\":\"Google Chrome\",\"InitiatingProcessVersionInfoProductVersion\":\"122.0.6261.95\",\"LocalIP\":\"{}\",\"LocalIPType\":\"Private\",\"LocalPort\":{sport},\"MachineGroup\":\"Workstations\",\"Protocol\":\"Tcp\",\"RemoteIP\":\"{}\",\"RemoteIPType\":\"Public\",\"RemotePort\":{port},\"RemoteUrl\":\"{url}\",\"ReportId\":{report},\"Timestamp\":\"{ts}\"}},\"tenantId\":\"12345af3-bc0e-4f36-b08e-27759e912345\",\"time\":\"{sent}\"}}",
                    1000 + e.extra % 30_000,
                    e.ip,
                    e.host_ip
                )
            }
        }
    }

    fn finish(self, out: &Path) -> std::io::Result<()> {
        match self {
            FormatWriter::Zeek { parts, paths } => {
                let mut all = file(out)?;
                for (mut p, path) in parts.into_iter().zip(&paths) {
                    writeln!(p, "#close\t2024-03-31-00-00-00")?;
                    p.flush()?;
                    drop(p);
                    std::io::copy(&mut BufReader::new(std::fs::File::open(path)?), &mut all)?;
                    std::fs::remove_file(path)?;
                }
                all.flush()
            }
            FormatWriter::Squid(mut w)
            | FormatWriter::Fortigate(mut w)
            | FormatWriter::Cef(mut w)
            | FormatWriter::DefenderJson(mut w) => w.flush(),
        }
    }
}
