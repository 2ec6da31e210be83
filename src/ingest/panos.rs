//! Palo Alto Networks PAN-OS logs: the syslog CSV feed ([`PanosSyslogFormat`], `panos`) and
//! the web-UI CSV export with a header row ([`PanosCsvFormat`], `panos-csv`).
//!
//! Syslog: an optional BSD/RFC 5424 header, then a CSV record whose field 1 is the receive time,
//! field 3 the type and field 4 the subtype. Positions (zero-based, PAN-OS 8+ layout): 7 src,
//! 8 dst, 12 source user, 14 application (App-ID), 25 destination port, 30 action; TRAFFIC then
//! has 31 bytes, 32 bytes sent, 33 bytes received, 37 URL category; THREAT has 31 the URL
//! (`host/path`, no scheme) and 33 the category. Only TRAFFIC (start/end/drop/deny) and THREAT
//! `url` lines become records; other THREAT subtypes and other log types are irrelevant; an
//! empty subtype or the subtype `test` is malformed.
//!
//! CSV export: columns are found by their documented header names ("Receive Time", "Type",
//! "Threat/Content Type", "Source address", "Destination address", "Source User",
//! "Application", "Destination Port", "Action", "Bytes Sent", "Bytes Received", "Category",
//! "URL/Filename"), never by position.
//!
//! Zone rule: PAN-OS writes the receive time in the firewall's local time with no zone. It is
//! taken as UTC unless the format is built with an explicit offset
//! ([`PanosSyslogFormat::with_utc_offset`] / [`PanosCsvFormat::with_utc_offset`], seconds east
//! of UTC, subtracted from the civil time).
use std::borrow::Cow;

use super::util_a::{count, date_time, host_or_ip, port, present, split_csv};
use super::{
    Action, ChunkParser, LineOutcome, LineParser, LineParserAdapter, LineVotes, LogFormat, Parser, Record, SkipReason,
    host_of_url,
};

pub struct PanosSyslogFormat {
    utc_offset_secs: i64,
}

pub struct PanosCsvFormat {
    utc_offset_secs: i64,
}

impl PanosSyslogFormat {
    /// Receive times are local to the firewall; `secs` east of UTC (e.g. -18000 for EST).
    pub const fn with_utc_offset(secs: i64) -> Self {
        PanosSyslogFormat { utc_offset_secs: secs }
    }
}

impl PanosCsvFormat {
    pub const fn with_utc_offset(secs: i64) -> Self {
        PanosCsvFormat { utc_offset_secs: secs }
    }
}

static PANOS: PanosSyslogFormat = PanosSyslogFormat::with_utc_offset(0);
static PANOS_CSV: PanosCsvFormat = PanosCsvFormat::with_utc_offset(0);

pub static FORMATS: &[&dyn LogFormat] = &[&PANOS, &PANOS_CSV];

const LOG_TYPES: &[&str] = &[
    "TRAFFIC",
    "THREAT",
    "SYSTEM",
    "CONFIG",
    "HIPMATCH",
    "HIP-MATCH",
    "GLOBALPROTECT",
    "USERID",
    "AUTH",
    "DECRYPTION",
    "CORRELATION",
    "TUNNEL",
    "SCTP",
    "IPTAG",
    "GTP",
];

/// The CSV part of a syslog line: from the start of the token holding the first comma.
fn csv_part(line: &str) -> Option<&str> {
    let comma = line.find(',')?;
    let start = line[..comma].rfind([' ', '>']).map_or(0, |i| i + 1);
    Some(&line[start..])
}

fn receive_time(s: &str, offset: i64) -> Option<i64> {
    let (d, t) = s.trim().split_once(' ')?;
    Some(date_time(d, t.trim())? - offset)
}

impl LogFormat for PanosSyslogFormat {
    fn name(&self) -> &'static str {
        "panos"
    }
    fn description(&self) -> &'static str {
        "Palo Alto PAN-OS syslog CSV (TRAFFIC, THREAT/url)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let votes = LineVotes::count(lines, 20, |l| {
            let Some(csv) = csv_part(l) else { return false };
            let f = split_csv(csv, b',');
            f.len() > 8
                && f.get(1).is_some_and(|t| receive_time(t, 0).is_some())
                && f.get(3).is_some_and(|t| LOG_TYPES.contains(&t.as_ref()))
        });
        if votes.share_at_least(8, 10) { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(PanosSyslogParser { utc_offset_secs: self.utc_offset_secs }))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(PanosSyslogParser { utc_offset_secs: self.utc_offset_secs })))
    }
}

pub struct PanosSyslogParser {
    utc_offset_secs: i64,
}

/// The fields of one PAN-OS log entry that we use, wherever they came from.
#[derive(Default)]
struct PanRow<'a> {
    log_type: Option<Cow<'a, str>>,
    subtype: Option<Cow<'a, str>>,
    receive_time: Option<Cow<'a, str>>,
    src: Option<Cow<'a, str>>,
    dst: Option<Cow<'a, str>>,
    user: Option<Cow<'a, str>>,
    app: Option<Cow<'a, str>>,
    dport: Option<Cow<'a, str>>,
    action: Option<Cow<'a, str>>,
    bytes_sent: Option<Cow<'a, str>>,
    bytes_received: Option<Cow<'a, str>>,
    category: Option<Cow<'a, str>>,
    url: Option<Cow<'a, str>>,
}

fn take<'a>(f: &mut [Cow<'a, str>], i: usize) -> Option<Cow<'a, str>> {
    f.get_mut(i).map(std::mem::take)
}

fn nonempty(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.and_then(|c| match c {
        Cow::Borrowed(s) => present(s).map(Cow::Borrowed),
        Cow::Owned(s) => present(&s).map(|t| Cow::Owned(t.to_owned())),
    })
}

fn pan_action(a: &str) -> Action {
    match a.to_ascii_lowercase().as_str() {
        "allow" | "alert" | "continue" | "override" => Action::Allowed,
        "" => Action::Unknown,
        a if a.starts_with("block")
            || a.starts_with("reset")
            || a.starts_with("drop")
            || a == "deny"
            || a == "sinkhole"
            || a == "override-lockout" =>
        {
            Action::Blocked
        }
        _ => Action::Unknown,
    }
}

impl<'a> PanRow<'a> {
    fn into_outcome(self, offset: i64) -> LineOutcome<'a> {
        let log_type = self.log_type.as_deref().unwrap_or("").trim().to_ascii_uppercase();
        let subtype = self.subtype.as_deref().unwrap_or("").trim().to_ascii_lowercase();
        if log_type.is_empty() {
            return LineOutcome::Skip(SkipReason::Malformed("panos: missing log type"));
        }
        let is_threat = match log_type.as_str() {
            "TRAFFIC" => match subtype.as_str() {
                "start" | "end" | "drop" | "deny" => false,
                "" => return LineOutcome::Skip(SkipReason::Malformed("panos: empty subtype")),
                _ => {
                    return LineOutcome::Skip(SkipReason::Malformed("panos: unknown traffic subtype"));
                }
            },
            "THREAT" => match subtype.as_str() {
                "url" => true,
                "" => return LineOutcome::Skip(SkipReason::Malformed("panos: empty subtype")),
                "test" => {
                    return LineOutcome::Skip(SkipReason::Malformed("panos: unknown threat subtype"));
                }
                _ => {
                    return LineOutcome::Skip(SkipReason::Irrelevant("panos: threat subtype other than url"));
                }
            },
            t if LOG_TYPES.contains(&t) => {
                return LineOutcome::Skip(SkipReason::Irrelevant("panos: log type"));
            }
            _ => return LineOutcome::Skip(SkipReason::Malformed("panos: unknown log type")),
        };
        let Some(ts) = self.receive_time.as_deref().and_then(|t| receive_time(t, offset)) else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let mut rec = Record {
            ts,
            src_ip: nonempty(self.src),
            dest_ip: nonempty(self.dst),
            user: nonempty(self.user),
            dest_port: self.dport.as_deref().and_then(port),
            action: self.action.as_deref().map_or(Action::Unknown, pan_action),
            bytes_up: count(self.bytes_sent.as_deref()),
            bytes_down: count(self.bytes_received.as_deref()),
            vendor_app: nonempty(self.app)
                .filter(|a| !matches!(a.as_ref(), "incomplete" | "insufficient-data" | "not-applicable")),
            vendor_category: nonempty(self.category).filter(|c| c != "any"),
            ..Default::default()
        };
        if is_threat && let Some(url) = nonempty(self.url) {
            let host = host_of_url(&url).map(str::to_owned);
            if let Some(h) = host {
                let (name, ip) = host_or_ip(Cow::Owned(h));
                rec.dest_host = name;
                if let Some(ip) = ip {
                    rec.dest_ip = Some(ip);
                }
            }
            rec.url = Some(url);
        }
        LineOutcome::Record(rec)
    }
}

impl LineParser for PanosSyslogParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Some(csv) = csv_part(line) else {
            return LineOutcome::Skip(SkipReason::Malformed("panos: no CSV record"));
        };
        let mut f = split_csv(csv, b',');
        if f.len() < 31 {
            return LineOutcome::Skip(SkipReason::Malformed("panos: too few fields"));
        }
        let threat = f.get(3).is_some_and(|t| t == "THREAT");
        let row = PanRow {
            log_type: take(&mut f, 3),
            subtype: take(&mut f, 4),
            receive_time: take(&mut f, 1),
            src: take(&mut f, 7),
            dst: take(&mut f, 8),
            user: take(&mut f, 12),
            app: take(&mut f, 14),
            dport: take(&mut f, 25),
            action: take(&mut f, 30),
            bytes_sent: if threat { None } else { take(&mut f, 32) },
            bytes_received: if threat { None } else { take(&mut f, 33) },
            category: if threat { take(&mut f, 33) } else { take(&mut f, 37) },
            url: if threat { take(&mut f, 31) } else { None },
        };
        row.into_outcome(self.utc_offset_secs)
    }
}

impl LogFormat for PanosCsvFormat {
    fn name(&self) -> &'static str {
        "panos-csv"
    }
    fn description(&self) -> &'static str {
        "Palo Alto PAN-OS web UI CSV export (header row with column names)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        match lines.first() {
            Some(h) => match Header::parse(h) {
                Some(hd) if hd.src.is_some() && hd.dst.is_some() => 95,
                _ => 0,
            },
            None => 0,
        }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(PanosCsvParser { utc_offset_secs: self.utc_offset_secs, header: None }))
    }
}

/// Column positions from the export's header row.
#[derive(Debug, Default, Clone)]
struct Header {
    receive_time: Option<usize>,
    log_type: Option<usize>,
    subtype: Option<usize>,
    src: Option<usize>,
    dst: Option<usize>,
    user: Option<usize>,
    app: Option<usize>,
    dport: Option<usize>,
    action: Option<usize>,
    bytes_sent: Option<usize>,
    bytes_received: Option<usize>,
    category: Option<usize>,
    url: Option<usize>,
}

impl Header {
    /// None unless the row names a receive (or generate) time and a source address.
    fn parse(line: &str) -> Option<Header> {
        let names: Vec<String> = split_csv(line, b',').iter().map(|n| n.trim().to_ascii_lowercase()).collect();
        let find = |cands: &[&str]| cands.iter().find_map(|c| names.iter().position(|n| n == c));
        let h = Header {
            receive_time: find(&["receive time", "generate time", "time generated"]),
            log_type: find(&["type"]),
            subtype: find(&["threat/content type", "subtype", "content type"]),
            src: find(&["source address", "source ip", "source"]),
            dst: find(&["destination address", "destination ip", "destination"]),
            user: find(&["source user"]),
            app: find(&["application"]),
            dport: find(&["destination port"]),
            action: find(&["action"]),
            bytes_sent: find(&["bytes sent"]),
            bytes_received: find(&["bytes received"]),
            category: find(&["url category", "category"]),
            url: find(&["url/filename", "url"]),
        };
        (h.receive_time.is_some() && h.src.is_some()).then_some(h)
    }
}

pub struct PanosCsvParser {
    utc_offset_secs: i64,
    header: Option<Header>,
}

impl LineParser for PanosCsvParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Some(h) = self.header.as_ref() else {
            return match Header::parse(line) {
                Some(h) => {
                    self.header = Some(h);
                    LineOutcome::Header
                }
                None => LineOutcome::Skip(SkipReason::Malformed("panos-csv: row before header")),
            };
        };
        let mut f = split_csv(line, b',');
        let mut get = |i: Option<usize>| i.and_then(|i| take(&mut f, i));
        let mut row = PanRow {
            log_type: get(h.log_type),
            subtype: get(h.subtype),
            receive_time: get(h.receive_time),
            src: get(h.src),
            dst: get(h.dst),
            user: get(h.user),
            app: get(h.app),
            dport: get(h.dport),
            action: get(h.action),
            bytes_sent: get(h.bytes_sent),
            bytes_received: get(h.bytes_received),
            category: get(h.category),
            url: get(h.url),
        };
        // An export of one log view may omit Type / subtype columns: infer them.
        if h.log_type.is_none() {
            row.log_type =
                Some(Cow::Borrowed(if h.url.is_some() && h.bytes_sent.is_none() { "THREAT" } else { "TRAFFIC" }));
        }
        if h.subtype.is_none() {
            let threat = row.log_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("THREAT"));
            row.subtype = Some(Cow::Borrowed(if threat { "url" } else { "end" }));
        }
        row.into_outcome(self.utc_offset_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::test_support::{assert_rejects_others, head, sample};
    use crate::ingest::util_a::civil_to_unix;
    use crate::ingest::{parse_all, registry};
    use proptest::prelude::*;

    #[test]
    fn traffic_sample() {
        let s = parse_all(&PANOS, &sample("elastic-integrations/paloalto/test-panw-panos-traffic-sample.head34.log"))
            .unwrap();
        assert_eq!(s.records.len(), 32);
        let reasons: Vec<_> = s.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect();
        assert_eq!(
            reasons,
            vec![
                (26, SkipReason::Malformed("panos: empty subtype")),
                (27, SkipReason::Malformed("panos: unknown traffic subtype"))
            ]
        );
        let r = &s.records[0].1;
        assert_eq!(r.ts, civil_to_unix(2018, 11, 30, 16, 9, 7).unwrap());
        assert_eq!(r.src_ip.as_deref(), Some("192.168.15.207"));
        assert_eq!(r.dest_ip.as_deref(), Some("175.16.199.1"));
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.vendor_app.as_deref(), Some("apple-maps"));
        assert_eq!(r.vendor_category.as_deref(), Some("computer-and-internet-info"));
        assert_eq!((r.bytes_up, r.bytes_down), (1758, 5976));
        assert_eq!(r.action, Action::Allowed);
        assert_eq!(r.user, None);
        assert_eq!(r.dest_host, None);
        let r = &s.records[5].1;
        assert_eq!(r.vendor_app.as_deref(), Some("ssl"));
        assert_eq!(r.vendor_category.as_deref(), Some("web-advertisements"));
        assert_eq!((r.bytes_up, r.bytes_down), (20_642, 21_111));
    }

    #[test]
    fn threat_url_sample_and_offset() {
        let bytes = sample("elastic-integrations/paloalto/test-panw-panos-threat-url-no-xff-sample.log");
        let s = parse_all(&PANOS, &bytes).unwrap();
        assert_eq!((s.records.len(), s.skips.len()), (1, 0));
        let r = &s.records[0].1;
        assert_eq!(r.dest_host.as_deref(), Some("consent.cmp.oath.com"));
        assert_eq!(r.url.as_deref(), Some("consent.cmp.oath.com/"));
        assert_eq!(r.vendor_app.as_deref(), Some("ssl"));
        assert_eq!(r.vendor_category.as_deref(), Some("Web-URL-Allowlist"));
        assert_eq!(r.action, Action::Allowed);
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.ts, civil_to_unix(2018, 11, 30, 16, 44, 36).unwrap());
        let est = PanosSyslogFormat::with_utc_offset(-5 * 3600);
        let s = parse_all(&est, &bytes).unwrap();
        assert_eq!(s.records[0].1.ts, civil_to_unix(2018, 11, 30, 21, 44, 36).unwrap());
    }

    const EXPORT: &str = "\"Domain\",\"Receive Time\",\"Serial #\",\"Type\",\"Threat/Content Type\",\"Source address\",\"Destination address\",\"Source User\",\"Application\",\"Destination Port\",\"Action\",\"Bytes\",\"Bytes Sent\",\"Bytes Received\",\"Category\",\"URL/Filename\"\n\
\"1\",\"2018/11/30 16:09:07\",\"0128\",\"TRAFFIC\",\"end\",\"10.0.0.5\",\"52.1.2.3\",\"corp\\alice\",\"slack-base\",\"443\",\"allow\",\"300\",\"100\",\"200\",\"business-and-economy\",\"\"\n\
\"1\",\"2018/11/30 16:10:00\",\"0128\",\"THREAT\",\"url\",\"10.0.0.6\",\"52.1.2.4\",\"\",\"web-browsing\",\"80\",\"block-url\",\"\",\"\",\"\",\"file-sharing\",\"www.dropbox.com/s/x,y\"\n\
\"1\",\"2018/11/30 16:11:00\",\"0128\",\"TRAFFIC\",\"\",\"10.0.0.7\",\"52.1.2.5\",\"\",\"ssl\",\"443\",\"allow\",\"1\",\"1\",\"0\",\"any\",\"\"\n\
\"1\",\"2018/11/30 16:12:00\",\"0128\",\"SYSTEM\",\"general\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"\n";

    #[test]
    fn web_ui_export() {
        let s = parse_all(&PANOS_CSV, EXPORT.as_bytes()).unwrap();
        assert_eq!(s.records.len(), 2);
        let r = &s.records[0].1;
        assert_eq!(r.user.as_deref(), Some("corp\\alice"));
        assert_eq!(r.vendor_app.as_deref(), Some("slack-base"));
        assert_eq!((r.bytes_up, r.bytes_down), (100, 200));
        assert_eq!(r.ts, civil_to_unix(2018, 11, 30, 16, 9, 7).unwrap());
        let r = &s.records[1].1;
        assert_eq!(r.action, Action::Blocked);
        assert_eq!(r.dest_host.as_deref(), Some("www.dropbox.com"));
        assert_eq!(r.url.as_deref(), Some("www.dropbox.com/s/x,y"));
        let reasons: Vec<_> = s.skips.iter().map(|(_, r, _)| r.clone()).collect();
        assert_eq!(
            reasons,
            vec![SkipReason::Malformed("panos: empty subtype"), SkipReason::Irrelevant("panos: log type")]
        );
        let lines: Vec<&str> = EXPORT.lines().collect();
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("panos-csv"));
    }

    #[test]
    fn sniff() {
        for f in [
            "elastic-integrations/paloalto/test-panw-panos-traffic-sample.head34.log",
            "elastic-integrations/paloalto/test-panw-panos-threat-url-no-xff-sample.log",
        ] {
            let lines = head(f);
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(registry::detect(&refs).map(|x| x.name()), Some("panos"), "{f}");
        }
        assert_rejects_others(&[&PANOS, &PANOS_CSV], &["elastic-integrations/paloalto/"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_all(&PANOS, &bytes);
            let mut csv = EXPORT.lines().next().unwrap().as_bytes().to_vec();
            csv.push(b'\n');
            csv.extend(&bytes);
            let _ = parse_all(&PANOS_CSV, &csv);
        }
        #[test]
        fn never_panics_on_csvish_lines(fields in proptest::collection::vec("[ -~]{0,8}", 0..70)) {
            let line = format!("Nov 30 16:09:08 PA-220 1,2018/11/30 16:09:07,0,TRAFFIC,{}", fields.join(","));
            let _ = PanosSyslogParser { utc_offset_secs: 0 }.parse_line(&line);
        }
    }
}
