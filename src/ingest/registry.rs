//! Every known format, in detection-priority order, and auto-detection.
use super::LogFormat;
use super::{
    asa, bluecoat, cef, checkpoint, defender_csv, defender_json, fortigate, juniper, leef, mdca_csv, panos, squid,
    zeek, zscaler,
};

/// All formats. Order matters only for ties in `detect`.
pub fn formats() -> Vec<&'static dyn LogFormat> {
    let groups: &[&[&'static dyn LogFormat]] = &[
        squid::FORMATS,
        zeek::FORMATS,
        panos::FORMATS,
        fortigate::FORMATS,
        asa::FORMATS,
        checkpoint::FORMATS,
        juniper::FORMATS,
        zscaler::FORMATS,
        bluecoat::FORMATS,
        cef::FORMATS,
        leef::FORMATS,
        defender_json::FORMATS,
        defender_csv::FORMATS,
        mdca_csv::FORMATS,
    ];
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

pub fn by_name(name: &str) -> Option<&'static dyn LogFormat> {
    formats().into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
}

/// Picks the format whose `sniff` scores highest on the first lines; None below 50.
pub fn detect(lines: &[&str]) -> Option<&'static dyn LogFormat> {
    formats()
        .into_iter()
        .map(|f| (f.sniff(lines), f))
        .filter(|(score, _)| *score >= 50)
        .max_by_key(|(score, _)| *score)
        .map(|(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::test_support::{all_samples, sample};
    use crate::ingest::{ChunkReader, CollectSink, parse_all};

    /// A format that claims its lines parse independently must parse every sample, cut into
    /// chunks anywhere, exactly as its stream parser does whole: same records, skips, positions.
    #[test]
    fn chunk_parsers_agree_with_stream_parsers_on_every_sample() {
        let samples: Vec<(String, Vec<u8>)> =
            all_samples().into_iter().map(|rel| (rel.clone(), sample(&rel))).collect();
        let mut checked = 0;
        for format in formats() {
            let Some(mut chunked) = format.chunk_parser() else { continue };
            for (rel, data) in &samples {
                let whole = parse_all(format, data).unwrap();
                for (cap, max_lines, max_bytes) in [(7, 1, 1 << 20), (64, 3, 200), (1 << 16, 50_000, 1 << 20)] {
                    let mut input = std::io::BufReader::with_capacity(cap, &data[..]);
                    let mut reader = ChunkReader::new(&mut input, max_lines, max_bytes);
                    let mut sink = CollectSink::default();
                    while let Some(chunk) = reader.next_chunk().unwrap() {
                        chunked.parse_chunk(&chunk, &mut sink);
                    }
                    let what = format!("{} on {rel} in chunks of {max_lines} lines", format.name());
                    assert_eq!(sink.records, whole.records, "{what}");
                    assert_eq!(sink.skips, whole.skips, "{what}");
                }
                checked += whole.records.len() + whole.skips.len();
            }
        }
        // 487 records alone when this was written: the samples of every stateless format.
        assert!(checked > 400, "only {checked} records and skips compared");
    }
}
