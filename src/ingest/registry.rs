//! Every known format, in detection-priority order, and auto-detection.
use super::LogFormat;
use super::{
    squid,
    zeek,
    panos,
    fortigate,
    asa,
    checkpoint,
    juniper,
    zscaler,
    bluecoat,
    cef,
    leef,
    defender_json,
    defender_csv,
    mdca_csv,
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
