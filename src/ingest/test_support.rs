//! Test helpers shared by every format module: reading the real samples in `../shared/data`.
use std::path::{Path, PathBuf};

pub fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"))
}

/// The bytes of one sample file, by its path relative to `shared/data`.
pub fn sample(rel: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(rel)).unwrap()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
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

/// Every log sample under shared/data (app catalogs and SOURCES.md excluded), as paths
/// relative to it.
pub fn all_samples() -> Vec<String> {
    let root = data_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_string_lossy().replace('\\', "/");
            let catalog = rel.starts_with("v2fly-domain-list-community/")
                || rel.starts_with("ndpi/")
                || rel.starts_with("azure-sentinel/catalog/")
                || rel == "SOURCES.md";
            (!catalog).then_some(rel)
        })
        .collect()
}

/// First 20 non-empty lines (BOM stripped) of one sample file.
pub fn head(rel: &str) -> Vec<String> {
    let bytes = sample(rel);
    let text = String::from_utf8_lossy(&bytes);
    text.trim_start_matches('\u{feff}').lines().filter(|l| !l.trim().is_empty()).take(20).map(str::to_owned).collect()
}

/// Every sample except those whose relative path starts with one of `own` (the format's own
/// samples), with their first lines, for the "sniff scores < 50" checks.
pub fn other_samples(own: &[&str]) -> Vec<(String, Vec<String>)> {
    all_samples()
        .into_iter()
        .filter(|rel| !own.iter().any(|o| rel.starts_with(o)))
        .map(|rel| {
            let lines = head(&rel);
            (rel, lines)
        })
        .collect()
}

/// The format `registry::detect` picks for the head of a sample.
pub fn detected_as(rel: &str) -> Option<&'static str> {
    let lines = head(rel);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    super::registry::detect(&refs).map(|f| f.name())
}

/// The format `registry::detect` picks from a file's header line alone (CSV exports, whose
/// first line is all there is to go on).
pub fn detected_from_header(path: &str) -> Option<&'static str> {
    let text = std::fs::read_to_string(path).ok()?;
    let first = text.lines().next()?.trim_start_matches('\u{feff}');
    super::registry::detect(&[first]).map(|f| f.name())
}

/// None of `formats` claims any other format's sample (sniff score below 50); `own` are the
/// path prefixes of the formats' own samples.
pub fn assert_rejects_others(formats: &[&dyn super::LogFormat], own: &[&str]) {
    for (path, lines) in other_samples(own) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        for f in formats {
            assert!(f.sniff(&refs) < 50, "{} claims {path}", f.name());
        }
    }
}
