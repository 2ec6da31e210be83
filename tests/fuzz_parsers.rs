//! Property-based fuzzing of every log parser, format detection and the catalog matcher:
//! arbitrary bytes and structure-aware mutations of the real sample lines never panic and
//! produce bounded output. `tools/fuzz.sh` runs the same properties with many more cases.
//!
//! Contract checked (parsers keep data verbatim — escaping is the display layer's job, see
//! `tests/hostile_input.rs`): no panic; every line is accounted for at most once per record it
//! yields; no field is longer than the line it came from; `Position`s only move forward.
use proptest::prelude::*;
use shadowscope::catalog::Catalog;
use shadowscope::ingest::{MAX_LINE, Record, host_of_url, parse_all, registry};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The first lines of every log sample (app catalogs excluded), one entry per file so that
/// header lines (Zeek `#fields`, CSV headers) stay in front of the lines they describe.
fn samples() -> &'static [Vec<String>] {
    static S: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    S.get_or_init(|| {
        let root = data_dir();
        let mut files = Vec::new();
        walk(&root, &mut files);
        files
            .into_iter()
            .filter(|p| {
                let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                !(rel.starts_with("v2fly-domain-list-community/")
                    || rel.starts_with("ndpi/")
                    || rel.starts_with("azure-sentinel/catalog/")
                    || rel == "SOURCES.md")
            })
            .filter_map(|p| {
                let bytes = std::fs::read(&p).ok()?;
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<String> = text.lines().take(25).map(str::to_owned).collect();
                (!lines.is_empty()).then_some(lines)
            })
            .collect()
    })
}

/// Tokens that stress tokenisers and number parsing.
const NASTY: &[&str] = &[
    "\u{1b}]0;x\u{7}",
    "\u{9b}2J",
    "\u{202e}",
    "\u{200b}",
    "\0",
    "\u{7f}",
    "\"",
    "\\",
    "\\\"",
    "=",
    "|",
    "^",
    ",",
    "\t",
    " ",
    ":",
    "%",
    "%%%",
    "{",
    "}",
    "[",
    "]",
    "{\"a\":",
    "99999999999999999999999",
    "-1",
    "-9223372036854775808",
    "1e999",
    "NaN",
    "0x",
    "::",
    "[::1]:",
    "://",
    "@",
    "é",
    "\u{10ffff}",
    "\r",
    "#",
    "CEF:0|",
    "LEEF:2.0|",
    "<999999>",
];

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
    FlipByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::sample::select(NASTY)).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 0usize..60).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
    ]
}

fn apply(line: &str, muts: &[Mutation]) -> Vec<u8> {
    let mut b = line.as_bytes().to_vec();
    for m in muts {
        let at = |a: usize, len: usize| if len == 0 { 0 } else { a % (len + 1) };
        match *m {
            Mutation::Truncate(a) => b.truncate(at(a, b.len())),
            Mutation::Insert(a, t) => {
                let i = at(a, b.len());
                b.splice(i..i, t.bytes());
            }
            Mutation::Delete(a, n) => {
                let i = at(a, b.len());
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
            Mutation::Duplicate(a, n) => {
                let i = at(a, b.len());
                let j = (i + n).min(b.len());
                let part = b[i..j].to_vec();
                b.splice(j..j, part);
            }
            Mutation::FlipByte(a, x) => {
                if !b.is_empty() {
                    let i = a % b.len();
                    b[i] ^= x;
                }
            }
        }
    }
    b
}

fn fields<'r>(r: &'r Record<'_>) -> [Option<&'r str>; 7] {
    [
        r.user.as_deref(),
        r.src_ip.as_deref(),
        r.device.as_deref(),
        r.dest_host.as_deref(),
        r.dest_ip.as_deref(),
        r.url.as_deref(),
        r.vendor_app.as_deref(),
    ]
}

/// Runs every registered format over `data` and checks the output contract.
fn check_all_formats(data: &[u8]) -> Result<(), TestCaseError> {
    let lines = data.split(|&b| b == b'\n').count() as u64;
    for format in registry::formats() {
        let out = parse_all(format, data).map_err(|e| TestCaseError::fail(format!("{}: io {e}", format.name())))?;
        let mut last = 0u64;
        for (pos, rec) in &out.records {
            prop_assert!(pos.line >= last && pos.line <= lines, "{}: line {} of {lines}", format.name(), pos.line);
            prop_assert!(pos.offset_end <= data.len() as u64);
            last = pos.line;
            for f in fields(rec).into_iter().flatten() {
                prop_assert!(f.len() <= MAX_LINE + 64, "{}: field of {} bytes", format.name(), f.len());
            }
        }
        for (pos, _, text) in &out.skips {
            prop_assert!(pos.line <= lines && text.len() <= 8 * MAX_LINE);
        }
        // A JSON batch line may hold many records; everything else yields at most a few per line.
        let per_line_cap = (data.len() as u64 / 2).max(4);
        prop_assert!(
            out.records.len() as u64 <= lines * per_line_cap,
            "{}: {} records",
            format.name(),
            out.records.len()
        );
    }
    let text = String::from_utf8_lossy(data);
    let head: Vec<&str> = text.lines().take(20).collect();
    let _ = registry::detect(&head);
    Ok(())
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES (tools/fuzz.sh) overrides the small default kept for the normal test run.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_all_formats(&data)?;
    }

    #[test]
    fn arbitrary_text_never_panics_any_parser(lines in prop::collection::vec(".{0,200}", 0..8)) {
        check_all_formats(lines.join("\n").as_bytes())?;
    }

    #[test]
    fn mutated_samples_never_panic_any_parser(
        file in any::<prop::sample::Index>(),
        line in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
        keep_all in any::<bool>(),
    ) {
        let sample = file.get(samples());
        let target = line.index(sample.len());
        // The header lines stay, so stateful parsers (Zeek, ELFF, CSV) reach the mutated line.
        let mut data = Vec::new();
        for (i, l) in sample.iter().enumerate() {
            if i == target {
                data.extend(apply(l, &muts));
            } else if keep_all || i < target {
                data.extend_from_slice(l.as_bytes());
            } else {
                continue;
            }
            data.push(b'\n');
        }
        check_all_formats(&data)?;
    }

    #[test]
    fn catalog_matcher_never_panics(host in "\\PC{0,300}", raw in ".{0,100}") {
        let c = Catalog::builtin();
        for h in [host.as_str(), raw.as_str(), &host.to_ascii_uppercase(), &format!("{raw}.{host}"), &format!("..{host}..")] {
            let _ = c.identify_host(h);
            let _ = c.identify_vendor_app(h);
            let _ = host_of_url(h);
        }
    }

    #[test]
    fn catalog_matcher_on_mutated_hosts(muts in prop::collection::vec(mutation(), 1..5), base in prop::sample::select(&[
        "www.dropbox.com", "login.microsoftonline.com", "chat.openai.com", "a.b.c.d.e.f.example.co.uk",
        "xn--80ak6aa92e.com", "192.168.0.1", "[2001:db8::1]", "*.s3.amazonaws.com", "localhost", ".",
    ][..])) {
        let bytes = apply(base, &muts);
        let h = String::from_utf8_lossy(&bytes);
        let _ = Catalog::builtin().identify_host(&h);
        let _ = host_of_url(&h);
    }
}

/// Every sample line itself, with and without its headers, through every format.
#[test]
fn every_sample_through_every_format() {
    for sample in samples() {
        check_all_formats(sample.join("\n").as_bytes()).unwrap();
        for line in sample {
            check_all_formats(line.as_bytes()).unwrap();
        }
    }
}
