//! Resource limits on hostile input: an enormous line, JSON nested far deeper than any parser
//! recurses, and files of garbage are skipped and counted (or refused with a message), never a
//! crash, and memory stays bounded. Kept fast enough for the normal debug test run.
use shadowscope::catalog::Catalog;
use shadowscope::ingest::pipeline::{ImportError, ImportOptions, import_paths};
use shadowscope::ingest::{MAX_LINE, parse_all, registry};
use shadowscope::store::Store;
use std::io::Write;
use std::path::Path;

/// Peak resident set size of this process, in KiB (Linux only).
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak RSS counter so the next reading measures only what follows (Linux ≥ 4.0).
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn import(
    db: &Path,
    file: &Path,
    format: Option<&str>,
) -> Result<shadowscope::ingest::pipeline::ImportReport, ImportError> {
    let store = Store::open(db).unwrap();
    let opts = ImportOptions { format: format.map(str::to_owned), ..Default::default() };
    import_paths(&store, Catalog::builtin(), &[file.to_owned()], &opts, &mut |_| {}).map(|mut r| r.remove(0))
}

const SQUID_OK: &str = "1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 GET http://www.example.com/ alice DIRECT/175.16.199.115 -\n";

/// A 100 MB line between two good ones: the good ones are imported, the long one is skipped
/// and reported with its line number, and the import's peak memory does not grow with it.
#[test]
fn hundred_megabyte_line_is_skipped_and_counted_in_bounded_memory() {
    const LINE_BYTES: usize = 100 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.log");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        w.write_all(SQUID_OK.as_bytes()).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..LINE_BYTES / chunk.len() {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\n").unwrap();
        w.write_all(SQUID_OK.replace("alice", "bob").as_bytes()).unwrap();
    }
    let db = dir.path().join("c.db");
    drop(Store::open(&db).unwrap());
    let measured = reset_hwm();
    let before = vm_hwm_kib();
    let report = import(&db, &file, Some("squid")).unwrap();
    let after = vm_hwm_kib();
    assert_eq!((report.records, report.imported), (3, 2), "{report:?}");
    assert_eq!(report.skipped.get("line_too_long"), Some(&1), "{report:?}");
    let example = &report.examples[0];
    assert_eq!((example.line, example.reason.as_str()), (2, "line_too_long"));
    assert!(report.file.ends_with("huge.log"));
    assert_eq!(report.bytes, std::fs::metadata(&file).unwrap().len());
    if let (true, Some(b), Some(a)) = (measured, before, after) {
        // Far below the 100 MiB of the line: the reader keeps at most MAX_LINE of it. (Peak RSS
        // is per process: a test panicking in parallel symbolises a backtrace and inflates it,
        // so look at the other failure first.)
        let grown = a.saturating_sub(b);
        assert!(grown < 48 * 1024, "peak RSS grew by {grown} KiB");
        eprintln!("100 MB line: peak RSS grew by {grown} KiB");
    }
}

fn nested(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 6 + 8);
    for i in 0..depth {
        s.push_str(if i % 2 == 0 { "{\"a\":" } else { "[" });
    }
    s.push('1');
    for i in (0..depth).rev() {
        s.push(if i % 2 == 0 { '}' } else { ']' });
    }
    s
}

/// 10,000 levels of nesting in every JSON format, as a field value and inside a JSON-encoded
/// string field, on a thread with a deliberately small stack: skipped or parsed, never a stack
/// overflow (serde_json stops at 128 levels).
#[test]
fn json_nested_ten_thousand_deep_does_not_overflow_the_stack() {
    let deep = nested(10_000);
    assert!(deep.len() < MAX_LINE, "must reach the JSON parser, not the line limit");
    let deep_str = serde_json::to_string(&deep).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("defender-json", deep.clone()),
        (
            "defender-json",
            format!(
                "{{\"category\":\"AdvancedHunting-DeviceNetworkEvents\",\"properties\":{{\"Timestamp\":\"2022-11-08T05:56:25Z\",\"RemoteIP\":\"20.1.2.3\",\"AdditionalFields\":{deep}}}}}"
            ),
        ),
        (
            "defender-json",
            format!(
                "{{\"category\":\"AdvancedHunting-DeviceNetworkEvents\",\"properties\":{{\"Timestamp\":\"2022-11-08T05:56:25Z\",\"RemoteIP\":\"20.1.2.3\",\"AdditionalFields\":{deep_str}}}}}"
            ),
        ),
        (
            "defender-json",
            format!(
                "{{\"category\":\"AdvancedHunting-DeviceInfo\",\"properties\":{{\"Timestamp\":\"2022-11-08T05:56:25Z\",\"DeviceName\":\"d\",\"LoggedOnUsers\":{deep_str}}}}}"
            ),
        ),
        ("zeek-json", deep.clone()),
        (
            "zeek-json",
            format!("{{\"ts\":1320279566.45,\"id.orig_h\":\"10.0.0.1\",\"host\":\"a.example.com\",\"x\":{deep}}}"),
        ),
        ("zscaler", deep.clone()),
        ("zscaler", format!("{{\"sourcetype\":\"zscalernss-web\",\"event\":{deep}}}")),
        (
            "zscaler",
            format!(
                "{{\"sourcetype\":\"zscalernss-web\",\"event\":{{\"time\":\"Fri Dec 31 07:07:07 2021\",\"eurl\":\"a.example.com\",\"x\":{deep}}}}}"
            ),
        ),
    ];
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            for (name, line) in &cases {
                let format = registry::by_name(name).unwrap();
                let out = parse_all(format, format!("{line}\n").as_bytes()).unwrap();
                assert!(out.records.len() + out.skips.len() >= 1, "{name}: the line vanished");
            }
        })
        .unwrap();
    worker.join().expect("a parser overflowed or panicked on deep JSON");
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Random bytes are reported, not a panic: auto-detection names the file and suggests
/// `--format`; a forced format skips and counts every line; a corrupt gzip stream is an I/O
/// error with the file name.
#[test]
fn garbage_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let file = dir.path().join("garbage.bin");
    std::fs::write(&file, garbage(4 << 20, 7)).unwrap();
    let err = import(&db, &file, None).unwrap_err().to_string();
    assert!(err.contains("garbage.bin") && err.contains("--format"), "{err}");
    for (i, format) in registry::formats().into_iter().enumerate() {
        // Different bytes per format: the import fingerprint would otherwise skip repeats.
        let forced = dir.path().join(format!("garbage-{}.bin", format.name()));
        std::fs::write(&forced, garbage(256 << 10, 1000 + 2 * i as u64)).unwrap();
        let report = import(&db, &forced, Some(format.name())).unwrap();
        assert!(!report.already_imported);
        assert_eq!(report.imported, 0, "{}: {report:?}", format.name());
        assert!(report.skipped_total() > 0, "{}", format.name());
    }
    // No newline at all: one too-long line, not one buffer of the whole file.
    let flat = dir.path().join("flat.bin");
    std::fs::write(
        &flat,
        garbage(8 << 20, 11).into_iter().map(|b| if b == b'\n' { b'.' } else { b }).collect::<Vec<u8>>(),
    )
    .unwrap();
    let r = import(&db, &flat, Some("squid")).unwrap();
    assert_eq!((r.records, r.skipped.get("line_too_long")), (1, Some(&1)), "{r:?}");
    // A gzip header followed by garbage.
    let gz = dir.path().join("broken.log.gz");
    let mut bytes = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    bytes.extend(garbage(4096, 3));
    std::fs::write(&gz, bytes).unwrap();
    let err = import(&db, &gz, Some("squid")).unwrap_err().to_string();
    assert!(err.contains("broken.log.gz"), "{err}");
    // The cache is still sound after all of it.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
}
