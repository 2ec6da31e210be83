//! Microsoft Defender XDR Advanced Hunting CSV export (`defender-csv`): UTF-8 BOM, RFC 4180
//! quoting (quoted fields may span lines), column order from the header (the union export of
//! the Device* tables has ~100 columns; table-specific exports work the same way).
//!
//! Rows: successful logons → Logon; outbound network rows (`RemoteUrl`/`RemoteIP`) → Traffic;
//! URL-click rows (`Url`, UrlClickEvents) → Traffic; inbound connections, failed logons and all
//! other tables → irrelevant. Zone rule: `Timestamp` is ISO 8601 UTC (`Z`).
use std::borrow::Cow;
use std::io::{self, BufRead};

use super::util_b::{self, CsvRow, DefenderRow, Fields, dest_of, drive_csv, row_text};
use super::{Action, LogFormat, Parser, Record, RecordKind, RecordSink, SkipReason};

pub static FORMATS: &[&dyn LogFormat] = &[&DefenderCsv];

pub struct DefenderCsv;

fn header_names(line: &str) -> Vec<String> {
    line.trim_start_matches('\u{feff}').split(',').map(|h| h.trim().trim_matches('"').to_string()).collect()
}

impl LogFormat for DefenderCsv {
    fn name(&self) -> &'static str {
        "defender-csv"
    }
    fn description(&self) -> &'static str {
        "Microsoft Defender XDR Advanced Hunting CSV export (header row; Device*/UrlClick tables)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let Some(first) = lines.first() else { return 0 };
        let h = header_names(first);
        let has = |n: &str| h.iter().any(|c| c == n);
        if has("Timestamp") && has("ActionType") && (has("DeviceName") || has("DeviceId")) {
            if has("RemoteIP") || has("RemoteUrl") || has("ReportId") || has("ReportId_long") { 95 } else { 70 }
        } else {
            0
        }
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
                DefenderRow::Records(recs) => recs.into_iter().for_each(|r| sink.record(pos, r)),
                DefenderRow::Skip(reason) => sink.skip(pos, reason, row_text(row).as_bytes()),
            }
        })
    }
}

/// Maps one export row.
pub fn map_row(f: &CsvRow<'_>) -> DefenderRow {
    let Some(ts) = f.raw("Timestamp").or_else(|| f.raw_prefix("Timestamp")).and_then(util_b::parse_iso) else {
        return DefenderRow::Skip(SkipReason::BadTimestamp);
    };
    let action = f.raw("ActionType").unwrap_or("");
    if action.starts_with("Logon") {
        return util_b::defender_logon(f, ts);
    }
    if f.raw("RemoteUrl").is_some() || f.raw("RemoteIP").is_some() {
        return util_b::defender_network(f, ts);
    }
    if let Some(url) = f.raw("Url") {
        return url_click(f, url, action, ts);
    }
    DefenderRow::Skip(SkipReason::Irrelevant("no network destination"))
}

/// UrlClickEvents: a user opened a link (from mail, Teams, Office) through Safe Links.
fn url_click(f: &CsvRow<'_>, url: &str, action: &str, ts: i64) -> DefenderRow {
    let d = dest_of(url);
    if d.host.is_none() && d.ip.is_none() {
        return DefenderRow::Skip(SkipReason::Irrelevant("no network destination"));
    }
    let own = |c: Option<Cow<'_, str>>| c.map(|v| Cow::Owned(v.into_owned()));
    DefenderRow::Records(vec![Record {
        kind: RecordKind::Traffic,
        ts,
        user: own(f.get("AccountUpn")),
        src_ip: own(f.get("IPAddress")),
        dest_host: own(d.host),
        dest_ip: own(d.ip),
        dest_port: d.port,
        url: Some(Cow::Owned(url.to_string())),
        action: match action {
            "ClickBlocked" => Action::Blocked,
            "ClickAllowed" => Action::Allowed,
            _ => Action::Unknown,
        },
        ..Default::default()
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{parse_all, registry};
    use std::collections::BTreeMap;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/plaso/mde-advanced-hunting/advanced_hunting_test_002.rows-odd.csv"
    );

    #[test]
    fn export_sample_counts_and_fields() {
        let data = std::fs::read(SAMPLE).unwrap();
        let out = parse_all(&DefenderCsv, &data).unwrap();
        // 65 rows: 1 successful logon, 15 outbound network rows, 3 URL clicks.
        assert_eq!(out.records.len(), 19);
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r, _) in &out.skips {
            *by_reason.entry(r.key()).or_default() += 1;
        }
        let want: BTreeMap<String, usize> = [
            ("irrelevant: no network destination", 41),
            ("irrelevant: logon not successful", 2),
            ("irrelevant: inbound connection", 2),
            ("irrelevant: no remote endpoint", 1),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        assert_eq!(by_reason, want);
        let logons: Vec<_> = out.records.iter().filter(|(_, r)| r.kind == RecordKind::Logon).collect();
        assert_eq!(logons.len(), 1);
        let r = &logons[0].1;
        assert_eq!(
            (r.user.as_deref(), r.device.as_deref(), r.ts),
            (Some("test-user@test-company.tld"), Some("test-hostname"), 1_703_182_923)
        );
        let find =
            |host: &str| out.records.iter().map(|(_, r)| r).find(|r| r.dest_host.as_deref() == Some(host)).unwrap();
        let r = find("sync.1rx.io");
        assert_eq!(r.ts, 1_703_188_790);
        assert_eq!(
            (r.dest_ip.as_deref(), r.dest_port, r.url.as_deref()),
            (Some("46.228.174.117"), Some(443), Some("https://sync.1rx.io"))
        );
        assert_eq!((r.user.as_deref(), r.action), (Some("test-user@test-company.tld"), Action::Allowed));
        let r = find("tiktok.com");
        assert_eq!((r.url.as_deref(), r.ts), (Some("https://tiktok.com/@pheromania.co"), 1_703_160_003));
        assert_eq!(r.vendor_app.as_deref(), Some("TikTok"));
        assert_eq!(find("x1.c.lencr.org").dest_port, Some(80));
        let r = find("t.co");
        assert_eq!((r.action, r.ts, r.src_ip.as_deref()), (Action::Blocked, 1_703_168_340, Some("212.18.129.200")));
        assert!(find("www.dropbox.com").url.as_deref().unwrap().starts_with("https://www.dropbox.com/scl/"));
        // IPv4-mapped IPv6 is unmapped; the firewall block is Blocked.
        assert!(out.records.iter().any(|(_, r)| r.dest_ip.as_deref() == Some("172.64.149.247")));
        let blocked = out.records.iter().find(|(_, r)| r.dest_ip.as_deref() == Some("95.166.126.90")).unwrap();
        assert_eq!(
            (blocked.1.action, blocked.1.user.as_deref()),
            (Action::Blocked, Some("nt authority\\network service"))
        );
        // Positions point at the physical lines; the last offset is the file length.
        assert_eq!(
            out.skips.last().unwrap().0.offset_end.max(out.records.last().unwrap().0.offset_end),
            data.len() as u64
        );
    }

    #[test]
    fn quoted_newlines_and_positions() {
        let data = "\u{feff}Timestamp,DeviceName,ActionType,RemoteIP,RemotePort,RemoteUrl,InitiatingProcessCommandLine\n\
2024-01-01T00:00:00Z,pc1,ConnectionSuccess,1.2.3.4,443,https://zoom.us,\"a\nb \"\"q\"\"\"\n\
2024-01-01T00:00:01Z,pc1,ConnectionSuccess,1.2.3.5,443,chat.openai.com,x\n\
bad-time,pc1,ConnectionSuccess,1.2.3.5,443,x.com,x\n";
        let lines: Vec<&str> = data.lines().collect();
        assert_eq!(
            registry::detect(&[lines[0].trim_start_matches('\u{feff}')]).map(|f| f.name()),
            Some("defender-csv")
        );
        let out = parse_all(&DefenderCsv, data.as_bytes()).unwrap();
        let got: Vec<_> = out.records.iter().map(|(p, r)| (p.line, r.dest_host.clone().unwrap())).collect();
        assert_eq!(got, vec![(2, "zoom.us".into()), (4, "chat.openai.com".into())]);
        assert_eq!(
            out.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect::<Vec<_>>(),
            vec![(5, SkipReason::BadTimestamp)]
        );
        let second_end = data.find("chat.openai.com,x\n").unwrap() + "chat.openai.com,x\n".len();
        assert_eq!(out.records[1].0.offset_end, second_end as u64);
    }

    #[test]
    fn unterminated_quote_is_bounded() {
        let mut data =
            b"Timestamp,DeviceName,ActionType,RemoteIP\n2024-01-01T00:00:00Z,pc,ConnectionSuccess,\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', util_b::MAX_CSV_RECORD + 200_000));
        let out = parse_all(&DefenderCsv, &data).unwrap();
        assert!(out.records.is_empty());
        assert_eq!(out.skips.len(), 1);
        assert_eq!(out.skips[0].1, SkipReason::TooLong);
    }

    #[test]
    fn sample_is_detected() {
        assert_eq!(crate::ingest::test_support::detected_from_header(SAMPLE), Some("defender-csv"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), row in "[ -~\n\"]{0,200}") {
            let _ = parse_all(&DefenderCsv, &data);
            let with_header = format!("Timestamp,ActionType,RemoteUrl,RemoteIP,Url,AccountName,DeviceName\n{row}");
            let _ = parse_all(&DefenderCsv, with_header.as_bytes());
        }
    }
}
