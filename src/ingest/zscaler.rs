//! Zscaler NSS web logs: the JSON feed (`zscaler`) and the default quoted-CSV / TSV feed
//! layout (`zscaler-csv`).
//!
//! Zone rule: NSS writes `time` in ctime form without a zone. `epochtime` wins when present;
//! otherwise `tz` (`GMT`, `UTC`, `+05:30`, `GMT-0500`) is applied; with neither, or with a zone
//! name we cannot resolve offline, the time is taken as UTC (the NSS default is GMT).
use std::borrow::Cow;

use base64::Engine;
use serde_json::{Map, Value};

use super::util_b::{self, clean, dest_of};
use super::{
    ChunkParser, LineOutcome, LineParser, LineParserAdapter, LogFormat, Parser, Record, RecordKind, SkipReason,
};

pub static FORMATS: &[&dyn LogFormat] = &[&ZscalerJson, &ZscalerCsv];

pub struct ZscalerJson;
pub struct ZscalerCsv;

impl LogFormat for ZscalerJson {
    fn name(&self) -> &'static str {
        "zscaler"
    }
    fn description(&self) -> &'static str {
        "Zscaler NSS web log, JSON feed ({\"sourcetype\":\"zscalernss-web\",\"event\":{...}})"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let Some(first) = lines.first() else { return 0 };
        let t = first.trim_start();
        if !t.starts_with('{') {
            return 0;
        }
        if t.contains("zscalernss-web") {
            return 95;
        }
        let keys = ["\"eurl\"", "\"b64url\"", "\"appclass\"", "\"urlcat\"", "\"devicehostname\"", "\"respsize\""];
        let hits = keys.iter().filter(|k| t.contains(*k)).count();
        if t.contains("\"event\"") && hits >= 3 { 80 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(JsonLines))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(JsonLines)))
    }
}

/// The NSS default web feed field order (`"%s{time}","%s{login}",...`).
pub const DEFAULT_CSV_FIELDS: &[&str] = &[
    "time",
    "login",
    "proto",
    "eurl",
    "action",
    "appname",
    "appclass",
    "reqsize",
    "respsize",
    "urlclass",
    "urlsupercat",
    "urlcat",
    "malwarecat",
    "threatname",
    "riskscore",
    "dlpeng",
    "dlpdict",
    "location",
    "dept",
    "cip",
    "sip",
    "reqmethod",
    "respcode",
    "ua",
    "ereferer",
    "ruletype",
    "rulelabel",
    "contenttype",
    "unscannabletype",
    "deviceowner",
    "devicehostname",
];

impl LogFormat for ZscalerCsv {
    fn name(&self) -> &'static str {
        "zscaler-csv"
    }
    fn description(&self) -> &'static str {
        "Zscaler NSS web log, default feed layout (quoted comma- or tab-separated: time, login, proto, eurl, action, ...)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let Some(first) = lines.first() else { return 0 };
        let fields = split_csv_line(first);
        if fields.len() < 9 {
            return 0;
        }
        let time_ok = util_b::parse_ctime(&fields[0]).is_some();
        let action_ok = matches!(fields[4].as_str(), "Allowed" | "Blocked");
        let sizes_ok = fields[7].bytes().all(|b| b.is_ascii_digit()) && fields[8].bytes().all(|b| b.is_ascii_digit());
        match (time_ok, action_ok, sizes_ok) {
            (true, true, true) => 90,
            (true, true, false) | (true, false, true) => 60,
            _ => 0,
        }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(CsvLines))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(CsvLines)))
    }
}

struct JsonLines;

impl LineParser for JsonLines {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return LineOutcome::Skip(SkipReason::Malformed("not json"));
        };
        let event = match v.get("event") {
            Some(Value::Object(m)) => m,
            _ => match &v {
                Value::Object(m) if m.contains_key("eurl") || m.contains_key("b64url") || m.contains_key("host") => m,
                _ => return LineOutcome::Skip(SkipReason::Malformed("no event object")),
            },
        };
        let get = |k: &str| event.get(k).and_then(util_b::json_str);
        match event_record(&get, event) {
            Ok(r) => LineOutcome::Record(r.into_owned()),
            Err(reason) => LineOutcome::Skip(reason),
        }
    }
}

fn first_of<'v>(get: &impl Fn(&str) -> Option<Cow<'v, str>>, keys: &[&str]) -> Option<Cow<'v, str>> {
    keys.iter().find_map(|k| get(k))
}

fn decode_b64(s: &str) -> Option<String> {
    let t = s.trim();
    let engines = [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::URL_SAFE];
    let raw = engines.iter().find_map(|e| e.decode(t).ok()).or_else(|| {
        let t = t.trim_end_matches('=');
        [base64::engine::general_purpose::STANDARD_NO_PAD, base64::engine::general_purpose::URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(t).ok())
    })?;
    String::from_utf8(raw).ok()
}

fn event_record<'v>(
    get: &impl Fn(&str) -> Option<Cow<'v, str>>,
    event: &Map<String, Value>,
) -> Result<Record<'v>, SkipReason> {
    let _ = event;
    let ts = timestamp(get)?;
    let mut rec = Record { kind: RecordKind::Traffic, ts, ..Default::default() };
    let url: Option<Cow<'v, str>> =
        get("b64url").and_then(|b| decode_b64(&b)).map(Cow::Owned).or_else(|| first_of(get, &["eurl", "url"]));
    if let Some(u) = &url {
        let d = dest_of(u);
        rec.dest_host = d.host.map(|h| Cow::Owned(h.into_owned()));
        rec.dest_ip = d.ip.map(|h| Cow::Owned(h.into_owned()));
        rec.dest_port = d.port;
    }
    if rec.dest_host.is_none()
        && let Some(h) = first_of(get, &["host", "ehost", "hostname"])
    {
        let d = dest_of(&h);
        rec.dest_host = d.host.map(|h| Cow::Owned(h.into_owned()));
        if rec.dest_ip.is_none() {
            rec.dest_ip = d.ip.map(|h| Cow::Owned(h.into_owned()));
        }
    }
    if rec.dest_ip.is_none() {
        rec.dest_ip = first_of(get, &["sip", "serverip", "srvip"]);
    }
    if rec.dest_host.is_none() && rec.dest_ip.is_none() {
        return Err(SkipReason::Malformed("no destination"));
    }
    rec.url = url;
    rec.user = first_of(get, &["login", "elogin", "user"]);
    rec.device = first_of(get, &["devicehostname", "devhostname"]);
    rec.src_ip = first_of(get, &["cip", "cltip", "cintip", "clientip"]);
    rec.bytes_up = get("reqsize").map(|s| util_b::bytes(&s)).unwrap_or(0);
    rec.bytes_down = get("respsize").map(|s| util_b::bytes(&s)).unwrap_or(0);
    rec.action = get("action").map(|a| util_b::action_of(&a)).unwrap_or_default();
    rec.vendor_app = first_of(get, &["appname"]);
    rec.vendor_category = first_of(get, &["urlcat", "urlcategory", "urlsupercat", "appclass"]);
    Ok(rec)
}

fn timestamp<'v>(get: &impl Fn(&str) -> Option<Cow<'v, str>>) -> Result<i64, SkipReason> {
    if let Some(e) = get("epochtime").and_then(|e| util_b::epoch_auto(&e)) {
        return Ok(e);
    }
    let t = get("time").ok_or(SkipReason::BadTimestamp)?;
    let naive = util_b::parse_ctime(&t).or_else(|| util_b::parse_any_time(&t)).ok_or(SkipReason::BadTimestamp)?;
    let off = get("tz").and_then(|z| util_b::zone_offset(&z)).unwrap_or(0);
    Ok(naive - off)
}

struct CsvLines;

/// Splits one CSV/TSV line of the NSS feed. Tabs win when present (Zscaler recommends them);
/// quotes are honoured either way, `""` is an escaped quote.
fn split_csv_line(line: &str) -> Vec<String> {
    let delim = if line.contains('\t') { b'\t' } else { b',' };
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delim).from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    match rdr.read_record(&mut rec) {
        Ok(true) => rec.iter().map(|f| f.trim().to_string()).collect(),
        _ => Vec::new(),
    }
}

impl LineParser for CsvLines {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let fields = split_csv_line(line);
        if fields.len() < 9 {
            return LineOutcome::Skip(SkipReason::Malformed("too few fields"));
        }
        if fields[0].eq_ignore_ascii_case("time") {
            return LineOutcome::Header;
        }
        let map: Map<String, Value> = DEFAULT_CSV_FIELDS
            .iter()
            .zip(fields)
            .filter_map(|(k, v)| clean(&v).map(|c| (k.to_string(), Value::String(c.to_string()))))
            .collect();
        let get = |k: &str| map.get(k).and_then(util_b::json_str);
        match event_record(&get, &map) {
            Ok(r) => LineOutcome::Record(r.into_owned()),
            Err(reason) => LineOutcome::Skip(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Action, parse_all, registry};

    const SAMPLE: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/elastic-integrations/zscaler/test-web.log");

    #[test]
    fn json_sample_parses_all_six() {
        let data = std::fs::read(SAMPLE).unwrap();
        let out = parse_all(&ZscalerJson, &data).unwrap();
        assert_eq!(out.records.len(), 6);
        assert!(out.skips.is_empty());
        let (pos, r) = &out.records[0];
        assert_eq!(pos.line, 1);
        assert_eq!(r.ts, 1_640_934_427); // Fri Dec 31 07:07:07 2021 taken as UTC
        assert_eq!(r.user.as_deref(), Some("test@example.com"));
        assert_eq!(r.device.as_deref(), Some("TestMachine35"));
        assert_eq!(r.src_ip.as_deref(), Some("81.2.69.193"));
        assert_eq!(r.dest_ip.as_deref(), Some("81.2.69.145"));
        assert_eq!(r.dest_host.as_deref(), Some("www.example.com"));
        assert_eq!((r.bytes_up, r.bytes_down), (600, 65));
        assert_eq!(r.action, Action::Blocked);
        assert_eq!(r.vendor_app.as_deref(), Some("General Browsing"));
        assert_eq!(r.vendor_category.as_deref(), Some("Web Search"));
        let r = &out.records[4].1;
        assert_eq!(r.dest_host.as_deref(), Some("www.example.com.com"));
        assert_eq!((r.bytes_up, r.bytes_down), (297, 14135));
        let r = &out.records[5].1;
        assert_eq!(r.ts, 1_661_764_835); // Thu Aug 29 09:20:35 2022
        assert_eq!((r.dest_host.as_deref(), r.dest_port), (Some("www.example.com"), Some(443)));
        assert_eq!(r.action, Action::Allowed);
    }

    #[test]
    fn v9_feed_decodes_b64url_and_honours_epochtime() {
        let line = r#"{"version":"v9","sourcetype":"zscalernss-web","event":{"datetime":"Mon Oct 16 22:55:48 2023","epochtime":"1697496948","tz":"GMT","login":"jdoe@example.com","b64url":"aHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vbWFpbC91LzAv","host":"mail.google.com","cltip":"10.1.2.3","serverip":"142.250.1.17","reqsize":"1024","respsize":"20480","action":"Allowed","appname":"Gmail","appclass":"Webmail","urlcat":"Web-based Email","devicehostname":"LAPTOP-7","riskscore":"None","recordid":"7"}}"#;
        let out = parse_all(&ZscalerJson, line.as_bytes()).unwrap();
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_697_496_948);
        assert_eq!(r.dest_host.as_deref(), Some("mail.google.com"));
        assert_eq!(r.url.as_deref(), Some("https://mail.google.com/mail/u/0/"));
        assert_eq!(r.src_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(r.dest_ip.as_deref(), Some("142.250.1.17"));
        assert_eq!((r.user.as_deref(), r.device.as_deref()), (Some("jdoe@example.com"), Some("LAPTOP-7")));
        assert_eq!(r.vendor_app.as_deref(), Some("Gmail"));
    }

    #[test]
    fn tz_offset_is_applied_when_no_epochtime() {
        let line = r#"{"sourcetype":"zscalernss-web","event":{"time":"Fri Dec 31 07:07:07 2021","tz":"GMT+01:00","eurl":"a.example.org/x","login":"u@x"}}"#;
        let out = parse_all(&ZscalerJson, line.as_bytes()).unwrap();
        assert_eq!(out.records[0].1.ts, 1_640_934_427 - 3600);
    }

    fn default_csv_line(time: &str, eurl: &str, action: &str) -> String {
        let vals: Vec<String> = DEFAULT_CSV_FIELDS
            .iter()
            .map(|f| match *f {
                "time" => time.to_string(),
                "login" => "alice@corp.example".into(),
                "proto" => "HTTPS".into(),
                "eurl" => eurl.to_string(),
                "action" => action.to_string(),
                "appname" => "Dropbox".into(),
                "appclass" => "File Sharing".into(),
                "reqsize" => "1200".into(),
                "respsize" => "34000".into(),
                "urlcat" => "Online Storage, Backup".into(),
                "cip" => "10.0.0.5".into(),
                "sip" => "162.125.1.1".into(),
                "ua" => "Mozilla/5.0 (Windows NT 10.0; \"x\")".into(),
                "devicehostname" => "PC-ALICE".into(),
                _ => "None".into(),
            })
            .collect();
        vals.iter().map(|v| format!("\"{}\"", v.replace('"', "\"\""))).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn default_csv_layout_parses_with_quoted_commas() {
        let l1 = default_csv_line("Mon Jun 20 15:29:11 2022", "www.dropbox.com/home", "Allowed");
        let l2 = default_csv_line("Mon Jun 20 15:29:12 2022", "content.dropboxapi.com:443", "Blocked");
        let data = format!("{l1}\n{l2}\n\"garbage\"\n");
        let lines: Vec<&str> = data.lines().collect();
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("zscaler-csv"));
        let out = parse_all(&ZscalerCsv, data.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.skips.len(), 1);
        assert_eq!(out.skips[0].1, SkipReason::Malformed("too few fields"));
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_655_738_951);
        assert_eq!(r.dest_host.as_deref(), Some("www.dropbox.com"));
        assert_eq!(r.vendor_category.as_deref(), Some("Online Storage, Backup"));
        assert_eq!((r.bytes_up, r.bytes_down), (1200, 34000));
        assert_eq!((r.user.as_deref(), r.device.as_deref()), (Some("alice@corp.example"), Some("PC-ALICE")));
        let r = &out.records[1].1;
        assert_eq!(
            (r.dest_host.as_deref(), r.dest_port, r.action),
            (Some("content.dropboxapi.com"), Some(443), Action::Blocked)
        );
        // Tab-separated output of the same fields.
        let tsv = split_csv_line(&l1).join("\t");
        let out = parse_all(&ZscalerCsv, tsv.as_bytes()).unwrap();
        assert_eq!(out.records[0].1.dest_host.as_deref(), Some("www.dropbox.com"));
    }

    #[test]
    fn sample_is_detected() {
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(10).collect();
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("zscaler"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), s in "\\PC{0,200}") {
            for f in FORMATS {
                let _ = parse_all(*f, &data);
                let _ = parse_all(*f, s.as_bytes());
                let _ = f.sniff(&[s.as_str()]);
            }
        }
    }
}
