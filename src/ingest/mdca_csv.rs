//! Microsoft Defender for Cloud Apps activity-log CSV export (`mdca-csv`): UTF-8 BOM, header
//! `Event ID, Category, Description, User, User Principle Name, App, Device, Location, Date,
//! IP address, User agent, Organizations`. Every activity is Traffic to its App.
//!
//! Zone rule: `Date` is written `2023-10-25 17:44:53 UTC`; a missing zone is taken as UTC.
//! `Device` holds a device *type* (`PC`, `Mobile`...) in these exports; such generic values are
//! not device names and are dropped so they cannot create user↔device edges.
use std::borrow::Cow;
use std::io::{self, BufRead};

use super::util_b::{self, CsvRow, dest_of, drive_csv, row_text};
use super::{LogFormat, Parser, Record, RecordKind, RecordSink, SkipReason};

pub static FORMATS: &[&dyn LogFormat] = &[&MdcaCsv];

pub struct MdcaCsv;

const GENERIC_DEVICES: &[&str] = &["pc", "mobile", "tablet", "other", "unknown", "desktop", "smartphone", "iot"];

impl LogFormat for MdcaCsv {
    fn name(&self) -> &'static str {
        "mdca-csv"
    }
    fn description(&self) -> &'static str {
        "Microsoft Defender for Cloud Apps activity log CSV export (Event ID, ..., App, Device, Date, IP address, ...)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let Some(first) = lines.first() else { return 0 };
        let h: Vec<String> = first
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
            .collect();
        let has = |n: &str| h.iter().any(|c| c == n);
        let upn = has("user principle name") || has("user principal name");
        if has("event id") && upn && has("app") && has("ip address") && has("date") { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(CsvParser)
    }
}

struct CsvParser;

impl Parser for CsvParser {
    fn parse(&mut self, input: &mut dyn BufRead, sink: &mut dyn RecordSink) -> io::Result<()> {
        drive_csv(input, sink, |header, row, pos, sink| {
            let f = CsvRow { header, row };
            match map_row(&f) {
                Ok(r) => sink.record(pos, r),
                Err(reason) => sink.skip(pos, reason, row_text(row).as_bytes()),
            }
        })
    }
}

/// Maps one activity row.
pub fn map_row<'r>(f: &'r CsvRow<'r>) -> Result<Record<'r>, SkipReason> {
    let ts =
        f.raw("Date").or_else(|| f.raw_prefix("Date")).and_then(util_b::parse_iso).ok_or(SkipReason::BadTimestamp)?;
    let app = f.raw("App").ok_or(SkipReason::Irrelevant("activity without app"))?;
    let mut rec = Record { kind: RecordKind::Traffic, ts, vendor_app: Some(Cow::Borrowed(app)), ..Default::default() };
    rec.user = f.raw("User Principle Name").or(f.raw("User Principal Name")).or(f.raw("User")).map(Cow::Borrowed);
    rec.src_ip = f.raw("IP address").map(Cow::Borrowed);
    rec.device =
        f.raw("Device").filter(|d| !GENERIC_DEVICES.contains(&d.to_ascii_lowercase().as_str())).map(Cow::Borrowed);
    // "Access file: file https://tenant-my.sharepoint.com/..." names the service host.
    if let Some(desc) = f.raw("Description")
        && let Some(i) = desc.find("https://").or_else(|| desc.find("http://"))
    {
        let url = desc[i..].split_whitespace().next().unwrap_or("");
        let d = dest_of(url);
        if d.host.is_some() {
            rec.url = Some(Cow::Borrowed(url));
            rec.dest_host = d.host;
        }
    }
    rec.vendor_category = f.raw("Category").filter(|c| !c.eq_ignore_ascii_case("Unspecified")).map(Cow::Borrowed);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_all;

    const SAMPLE: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/plaso/mcas-activity-log/m365_activity_log_002.csv");

    #[test]
    fn activity_log_sample() {
        let data = std::fs::read(SAMPLE).unwrap();
        let out = parse_all(&MdcaCsv, &data).unwrap();
        assert_eq!(out.records.len(), 15);
        assert!(out.skips.is_empty());
        let (pos, r) = &out.records[0];
        assert_eq!(pos.line, 2);
        assert_eq!(r.ts, 1_698_255_893);
        assert_eq!(
            (r.user.as_deref(), r.src_ip.as_deref()),
            (Some("test-user@test-company.tld"), Some("82.181.16.164"))
        );
        assert_eq!(
            (r.vendor_app.as_deref(), r.device.as_deref(), r.dest_host.as_deref()),
            (Some("Microsoft OneDrive for Business"), None, None)
        );
        let r = &out.records[3].1;
        assert_eq!(r.dest_host.as_deref(), Some("test-company-my.sharepoint.com"));
        assert_eq!(r.vendor_category.as_deref(), Some("Access file"));
        let r = &out.records[9].1;
        assert_eq!((r.vendor_app.as_deref(), r.ts), (Some("Microsoft SharePoint Online"), 1_698_255_892));
        assert_eq!(out.records.last().unwrap().0.offset_end, data.len() as u64);
    }

    #[test]
    fn named_device_is_kept() {
        let data = "Event ID,Category,Description,User,User Principal Name,App,Device,Location,Date,IP address,User agent,Organizations\n\
1,Login,Log on,bob,bob@x.example,Box,BOB-LAPTOP,US,2024-02-03 04:05:06,10.0.0.1,\"UA, with comma\",org\n\
2,Login,Log on,bob,bob@x.example,,PC,US,2024-02-03 04:05:06 UTC,10.0.0.1,ua,org\n\
3,Login,Log on,bob,bob@x.example,Box,PC,US,yesterday,10.0.0.1,ua,org\n";
        let out = parse_all(&MdcaCsv, data.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].1.device.as_deref(), Some("BOB-LAPTOP"));
        let reasons: Vec<_> = out.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect();
        assert_eq!(reasons, vec![(3, SkipReason::Irrelevant("activity without app")), (4, SkipReason::BadTimestamp)]);
    }

    #[test]
    fn sample_is_detected() {
        assert_eq!(crate::ingest::test_support::detected_from_header(SAMPLE), Some("mdca-csv"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), row in "[ -~\n\"]{0,200}") {
            let _ = parse_all(&MdcaCsv, &data);
            let with_header = format!("Event ID,App,Date,Description,Device\n{row}");
            let _ = parse_all(&MdcaCsv, with_header.as_bytes());
        }
    }
}
