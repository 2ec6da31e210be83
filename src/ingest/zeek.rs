//! Zeek (Bro) logs: the ASCII/TSV writer ([`ZeekTsvFormat`], `zeek`) and the JSON writer
//! ([`ZeekJsonFormat`], `zeek-json`), for conn, dns, http and ssl logs.
//!
//! TSV: column order comes from `#fields` (schemas differ between Zeek versions), the separator
//! from `#separator` (its `\x09` text is hex-decoded), and `#unset_field` / `#empty_field` give
//! the "no value" markers. Values are `\xNN`-unescaped (and `\\` gives a backslash). `ts` is
//! epoch seconds (UTC); a `ts` that is not a number — the masked `XXXXXXXXXX.XXXXXX` of Zeek's
//! btest baselines — is skipped as `BadTimestamp`. Other log types (files, x509, weird …) are
//! counted as irrelevant.
//!
//! Mapping: conn → `id.resp_h`/`id.resp_p`, `orig_bytes` up, `resp_bytes` down, `service` as
//! vendor_app; http → `host`, `uri`, `request_body_len` up, `response_body_len` down, `username`;
//! ssl → `server_name`; dns → `query` as dest_host (and the first IP answer as dest_ip: the
//! resolver in `id.resp_h` is not the destination).
//!
//! JSON: one object per line with dotted keys; unset fields are omitted; `ts` is a float epoch or
//! an ISO 8601 string. The log type comes from `_path` when present, else from the keys.
use std::borrow::Cow;

use serde::Deserialize;

use super::util_a::{epoch_seconds, host_or_ip, iso8601, looks_like_ip, parse_digits, port};
use super::{
    ChunkParser, LineOutcome, LineParser, LineParserAdapter, LineVotes, LogFormat, Parser, Record, SkipReason,
};

pub struct ZeekTsvFormat;
pub struct ZeekJsonFormat;

pub static FORMATS: &[&dyn LogFormat] = &[&ZeekTsvFormat, &ZeekJsonFormat];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogKind {
    Conn,
    Dns,
    Http,
    Ssl,
    Other,
}

impl LogKind {
    fn from_path(path: &str) -> Option<LogKind> {
        match path {
            "conn" => Some(LogKind::Conn),
            "dns" => Some(LogKind::Dns),
            "http" => Some(LogKind::Http),
            "ssl" => Some(LogKind::Ssl),
            "" => None,
            _ => Some(LogKind::Other),
        }
    }
}

impl LogFormat for ZeekTsvFormat {
    fn name(&self) -> &'static str {
        "zeek"
    }
    fn description(&self) -> &'static str {
        "Zeek/Bro ASCII (TSV) logs with #fields headers: conn, dns, http, ssl"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let head: Vec<&str> = lines.iter().take(12).copied().collect();
        let has_sep = head.iter().any(|l| l.starts_with("#separator"));
        let has_fields = head.iter().any(|l| l.starts_with("#fields") && l.contains("ts"));
        match (has_sep, has_fields) {
            (true, true) => 98,
            (true, false) | (false, true) => 80,
            _ => 0,
        }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(ZeekTsvParser::default()))
    }
}

/// Positions of the columns we read, from `#fields`.
#[derive(Debug, Default, Clone)]
struct Columns {
    count: usize,
    ts: Option<usize>,
    orig_h: Option<usize>,
    resp_h: Option<usize>,
    resp_p: Option<usize>,
    orig_bytes: Option<usize>,
    resp_bytes: Option<usize>,
    service: Option<usize>,
    host: Option<usize>,
    uri: Option<usize>,
    req_len: Option<usize>,
    resp_len: Option<usize>,
    username: Option<usize>,
    server_name: Option<usize>,
    query: Option<usize>,
    answers: Option<usize>,
}

impl Columns {
    fn from_names(names: &[&str]) -> Columns {
        let find = |n: &str| names.iter().position(|c| *c == n);
        Columns {
            count: names.len(),
            ts: find("ts"),
            orig_h: find("id.orig_h"),
            resp_h: find("id.resp_h"),
            resp_p: find("id.resp_p"),
            orig_bytes: find("orig_bytes"),
            resp_bytes: find("resp_bytes"),
            service: find("service"),
            host: find("host"),
            uri: find("uri"),
            req_len: find("request_body_len"),
            resp_len: find("response_body_len"),
            username: find("username"),
            server_name: find("server_name"),
            query: find("query"),
            answers: find("answers"),
        }
    }

    /// The log type when `#path` is missing.
    fn infer_kind(&self) -> LogKind {
        if self.query.is_some() {
            LogKind::Dns
        } else if self.host.is_some() && self.uri.is_some() {
            LogKind::Http
        } else if self.server_name.is_some() {
            LogKind::Ssl
        } else if self.orig_bytes.is_some() && self.resp_h.is_some() {
            LogKind::Conn
        } else {
            LogKind::Other
        }
    }
}

pub struct ZeekTsvParser {
    sep: String,
    set_sep: String,
    empty: String,
    unset: String,
    path: String,
    cols: Option<Columns>,
}

impl Default for ZeekTsvParser {
    fn default() -> Self {
        ZeekTsvParser {
            sep: "\t".into(),
            set_sep: ",".into(),
            empty: "(empty)".into(),
            unset: "-".into(),
            path: String::new(),
            cols: None,
        }
    }
}

/// Decodes Zeek's `\xNN` escapes (and `\\`). Borrowed when the value has no backslash.
pub fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'x')
                && let (Some(h), Some(l)) = (b.get(i + 2).and_then(hex), b.get(i + 3).and_then(hex))
            {
                out.push(h << 4 | l);
                i += 4;
                continue;
            }
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl ZeekTsvParser {
    fn header(&mut self, line: &str) {
        let body = &line[1..];
        let (directive, value) = match body.find([' ', '\t']) {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, ""),
        };
        match directive {
            "separator" => {
                // A new header block (concatenated logs): forget the previous schema.
                *self = ZeekTsvParser::default();
                let sep = unescape(value.trim_matches(' ')).into_owned();
                if !sep.is_empty() {
                    self.sep = sep;
                }
            }
            "set_separator" => self.set_sep = unescape(value).into_owned(),
            "empty_field" => self.empty = value.to_owned(),
            "unset_field" => self.unset = value.to_owned(),
            "path" => self.path = value.trim().to_owned(),
            "fields" => {
                let names: Vec<&str> = value.split(self.sep.as_str()).map(str::trim).collect();
                self.cols = Some(Columns::from_names(&names));
            }
            _ => {}
        }
    }

    fn value<'a>(&self, fields: &[&'a str], idx: Option<usize>) -> Option<Cow<'a, str>> {
        let raw = *fields.get(idx?)?;
        if raw.is_empty() || raw == self.unset || raw == self.empty {
            return None;
        }
        Some(unescape(raw))
    }
}

impl LineParser for ZeekTsvParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        if line.starts_with('#') {
            self.header(line);
            return LineOutcome::Header;
        }
        let Some(cols) = self.cols.as_ref() else {
            return LineOutcome::Skip(SkipReason::Malformed("zeek: data before #fields"));
        };
        let fields: Vec<&'a str> = line.split(self.sep.as_str()).collect();
        if fields.len() != cols.count {
            return LineOutcome::Skip(SkipReason::Malformed("zeek: column count differs from #fields"));
        }
        let kind = LogKind::from_path(&self.path).unwrap_or_else(|| cols.infer_kind());
        if kind == LogKind::Other {
            return LineOutcome::Skip(SkipReason::Irrelevant("zeek: log type not used"));
        }
        let Some(ts) = cols.ts.and_then(|i| fields.get(i)).and_then(|t| epoch_seconds(t)) else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let v = |idx| self.value(&fields, idx);
        let mut rec = Record { ts, src_ip: v(cols.orig_h), ..Default::default() };
        if kind != LogKind::Dns {
            rec.dest_ip = v(cols.resp_h);
            rec.dest_port = v(cols.resp_p).and_then(|p| port(&p));
        }
        match kind {
            LogKind::Conn => {
                rec.bytes_up = v(cols.orig_bytes).and_then(|b| parse_digits(&b)).unwrap_or(0);
                rec.bytes_down = v(cols.resp_bytes).and_then(|b| parse_digits(&b)).unwrap_or(0);
                rec.vendor_app = v(cols.service);
            }
            LogKind::Http => {
                let host = v(cols.host);
                let uri = v(cols.uri);
                if let (Some(h), Some(u)) = (&host, &uri) {
                    rec.url = Some(Cow::Owned(format!("http://{h}{u}")));
                }
                if let Some(h) = host {
                    let (name, ip) = host_or_ip(strip_port(h));
                    rec.dest_host = name;
                    if rec.dest_ip.is_none() {
                        rec.dest_ip = ip;
                    }
                }
                rec.bytes_up = v(cols.req_len).and_then(|b| parse_digits(&b)).unwrap_or(0);
                rec.bytes_down = v(cols.resp_len).and_then(|b| parse_digits(&b)).unwrap_or(0);
                rec.user = v(cols.username);
            }
            LogKind::Ssl => {
                rec.dest_host = v(cols.server_name).filter(|s| !looks_like_ip(s));
            }
            LogKind::Dns => {
                rec.dest_host = v(cols.query);
                rec.dest_ip = v(cols.answers).and_then(|a| {
                    a.split(self.set_sep.as_str()).find(|x| looks_like_ip(x)).map(|x| Cow::Owned(x.to_owned()))
                });
            }
            LogKind::Other => {}
        }
        LineOutcome::Record(rec)
    }
}

/// `host:port` in an HTTP Host header → `host`.
fn strip_port(h: Cow<'_, str>) -> Cow<'_, str> {
    match &h {
        Cow::Borrowed(s) => match super::host_of_url(s) {
            Some(x) => Cow::Borrowed(x),
            None => h,
        },
        Cow::Owned(s) => match super::host_of_url(s) {
            Some(x) if x.len() != s.len() => Cow::Owned(x.to_owned()),
            _ => h,
        },
    }
}

impl LogFormat for ZeekJsonFormat {
    fn name(&self) -> &'static str {
        "zeek-json"
    }
    fn description(&self) -> &'static str {
        "Zeek JSON logs (one object per line, dotted keys): conn, dns, http, ssl"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let votes = LineVotes::count(lines, 10, |l| {
            l.trim_start().starts_with('{')
                && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l)
                    .is_ok_and(|m| m.contains_key("ts") && (m.contains_key("id.orig_h") || m.contains_key("uid")))
        });
        if votes.share_at_least(8, 10) { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(ZeekJsonParser))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(ZeekJsonParser)))
    }
}

pub struct ZeekJsonParser;

#[derive(Deserialize)]
struct JsonLine<'a> {
    ts: Option<serde_json::Value>,
    #[serde(rename = "_path", borrow)]
    path: Option<Cow<'a, str>>,
    #[serde(rename = "id.orig_h", borrow)]
    orig_h: Option<Cow<'a, str>>,
    #[serde(rename = "id.resp_h", borrow)]
    resp_h: Option<Cow<'a, str>>,
    #[serde(rename = "id.resp_p")]
    resp_p: Option<serde_json::Value>,
    orig_bytes: Option<serde_json::Value>,
    resp_bytes: Option<serde_json::Value>,
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    conn_state: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    method: Option<serde::de::IgnoredAny>,
    trans_depth: Option<serde::de::IgnoredAny>,
    request_body_len: Option<serde_json::Value>,
    response_body_len: Option<serde_json::Value>,
    #[serde(borrow)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    server_name: Option<Cow<'a, str>>,
    cipher: Option<serde::de::IgnoredAny>,
    ssl_history: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    query: Option<Cow<'a, str>>,
    #[serde(borrow)]
    answers: Option<Vec<Cow<'a, str>>>,
}

impl JsonLine<'_> {
    fn kind(&self) -> LogKind {
        if let Some(k) = self.path.as_deref().and_then(LogKind::from_path) {
            return k;
        }
        if self.query.is_some() {
            LogKind::Dns
        } else if self.host.is_some() || self.uri.is_some() || self.method.is_some() || self.trans_depth.is_some() {
            LogKind::Http
        } else if self.server_name.is_some() || self.cipher.is_some() || self.ssl_history.is_some() {
            LogKind::Ssl
        } else if self.conn_state.is_some() || self.orig_bytes.is_some() || self.resp_bytes.is_some() {
            LogKind::Conn
        } else {
            LogKind::Other
        }
    }
}

fn json_count(v: Option<&serde_json::Value>) -> u64 {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)).unwrap_or(0),
        Some(serde_json::Value::String(s)) => parse_digits(s).unwrap_or(0),
        _ => 0,
    }
}

fn json_ts(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
        }
        serde_json::Value::String(s) => epoch_seconds(s).or_else(|| iso8601(s)),
        _ => None,
    }
}

impl LineParser for ZeekJsonParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Ok(j) = serde_json::from_str::<JsonLine<'a>>(line) else {
            return LineOutcome::Skip(SkipReason::Malformed("zeek json: not a JSON object"));
        };
        let kind = j.kind();
        if kind == LogKind::Other {
            return LineOutcome::Skip(SkipReason::Irrelevant("zeek: log type not used"));
        }
        let Some(ts) = json_ts(j.ts.as_ref()) else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let mut rec = Record { ts, src_ip: j.orig_h, ..Default::default() };
        if kind != LogKind::Dns {
            rec.dest_ip = j.resp_h;
            rec.dest_port = u16::try_from(json_count(j.resp_p.as_ref())).ok().filter(|p| j.resp_p.is_some() || *p != 0);
        }
        match kind {
            LogKind::Conn => {
                rec.bytes_up = json_count(j.orig_bytes.as_ref());
                rec.bytes_down = json_count(j.resp_bytes.as_ref());
                rec.vendor_app = j.service;
            }
            LogKind::Http => {
                if let (Some(h), Some(u)) = (&j.host, &j.uri) {
                    rec.url = Some(Cow::Owned(format!("http://{h}{u}")));
                }
                if let Some(h) = j.host {
                    let (name, ip) = host_or_ip(strip_port(h));
                    rec.dest_host = name;
                    if rec.dest_ip.is_none() {
                        rec.dest_ip = ip;
                    }
                }
                rec.bytes_up = json_count(j.request_body_len.as_ref());
                rec.bytes_down = json_count(j.response_body_len.as_ref());
                rec.user = j.username.filter(|u| !u.is_empty() && u != "-");
            }
            LogKind::Ssl => rec.dest_host = j.server_name.filter(|s| !looks_like_ip(s)),
            LogKind::Dns => {
                rec.dest_host = j.query;
                rec.dest_ip = j.answers.and_then(|a| a.into_iter().find(|x| looks_like_ip(x)));
            }
            LogKind::Other => {}
        }
        LineOutcome::Record(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::test_support::{assert_rejects_others, head, sample};
    use crate::ingest::{CollectSink, parse_all, registry};
    use proptest::prelude::*;

    fn tsv(path: &str) -> CollectSink {
        parse_all(&ZeekTsvFormat, &sample(path)).unwrap()
    }

    fn only_bad_ts(sink: &CollectSink, n: usize) {
        assert!(sink.records.is_empty());
        assert_eq!(sink.skips.len(), n);
        assert!(sink.skips.iter().all(|(_, r, _)| *r == SkipReason::BadTimestamp));
    }

    #[test]
    fn zat_conn() {
        let s = tsv("zat/conn.log");
        assert_eq!((s.records.len(), s.skips.len()), (360, 0));
        let r = &s.records[0].1;
        assert_eq!(r.ts, 1_379_288_667);
        assert_eq!(r.src_ip.as_deref(), Some("192.168.33.10"));
        assert_eq!(r.dest_ip.as_deref(), Some("54.245.228.191"));
        assert_eq!(r.dest_port, Some(80));
        assert_eq!((r.bytes_up, r.bytes_down), (601, 38_393));
        assert_eq!(r.vendor_app.as_deref(), Some("http"));
        assert_eq!(r.dest_host, None);
    }

    #[test]
    fn zat_dns_and_http() {
        let s = tsv("zat/dns.log");
        assert_eq!((s.records.len(), s.skips.len()), (54, 0));
        let r = &s.records[0].1;
        assert_eq!(r.dest_host.as_deref(), Some("guyspy.com"));
        assert_eq!(r.dest_ip.as_deref(), Some("54.245.228.191"));
        assert_eq!(r.ts, 1_379_288_667);
        let s = tsv("zat/http.log");
        assert_eq!((s.records.len(), s.skips.len()), (150, 0));
        let r = &s.records[0].1;
        assert_eq!(r.dest_host.as_deref(), Some("guyspy.com"));
        assert_eq!(r.url.as_deref(), Some("http://guyspy.com/"));
        assert_eq!((r.bytes_up, r.bytes_down), (0, 184));
        assert_eq!(r.dest_port, Some(80));
    }

    #[test]
    fn zeek_cut_conn_current_writer() {
        let s = tsv("zeek/zeek-cut-logs/conn.log");
        assert_eq!((s.records.len(), s.skips.len()), (5, 0));
        let r = &s.records[0].1;
        assert_eq!(r.ts, 1_329_843_175);
        assert_eq!(r.dest_ip.as_deref(), Some("199.233.217.249"));
        assert_eq!(r.dest_port, Some(56666));
        assert_eq!((r.bytes_up, r.bytes_down), (0, 342));
    }

    #[test]
    fn btest_baselines_have_masked_timestamps() {
        only_bad_ts(&tsv("zeek/btest-baseline/opt.basic_conn.log"), 34);
        only_bad_ts(&tsv("zeek/btest-baseline/opt.basic_dns.log"), 34);
        only_bad_ts(&tsv("zeek/btest-baseline/opt.basic_http.log"), 14);
        only_bad_ts(
            &tsv("zeek/btest-baseline/scripts.base.files.x509.disable-certificate-events-known-certs_ssl.log"),
            8,
        );
        only_bad_ts(&tsv("zeek/btest-baseline/scripts.base.protocols.ssl.tls13-encrypted-client-hello_ssl.log"), 2);
    }

    #[test]
    fn current_schema_columns_are_found_when_timestamps_are_real() {
        // The btest http baseline with its masked time replaced: proves column mapping by name.
        let text = String::from_utf8(sample("zeek/btest-baseline/opt.basic_http.log"))
            .unwrap()
            .replace("XXXXXXXXXX.XXXXXX", "1300475168.843894");
        let s = parse_all(&ZeekTsvFormat, text.as_bytes()).unwrap();
        assert_eq!(s.records.len(), 14);
        let r = &s.records[0].1;
        assert_eq!(r.dest_host.as_deref(), Some("bits.wikimedia.org"));
        assert_eq!(r.url.as_deref(), Some("http://bits.wikimedia.org/skins-1.5/monobook/main.css"));
        assert_eq!(r.dest_ip.as_deref(), Some("208.80.152.118"));
        let text = String::from_utf8(sample(
            "zeek/btest-baseline/scripts.base.protocols.ssl.tls13-encrypted-client-hello_ssl.log",
        ))
        .unwrap()
        .replace("XXXXXXXXXX.XXXXXX", "1700000000.5");
        let s = parse_all(&ZeekTsvFormat, text.as_bytes()).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[0].1.dest_host.as_deref(), Some("cloudflare-ech.com"));
        assert_eq!(s.records[0].1.dest_port, Some(443));
        assert_eq!(s.records[0].1.ts, 1_700_000_000);
    }

    #[test]
    fn zat_json() {
        let s = parse_all(&ZeekJsonFormat, &sample("zat/json/conn.log")).unwrap();
        assert_eq!((s.records.len(), s.skips.len()), (50, 0));
        let r = &s.records[0].1;
        assert_eq!(r.ts, 1_575_413_096);
        assert_eq!(r.dest_ip.as_deref(), Some("10.18.20.8"));
        assert_eq!(r.dest_port, Some(88));
        assert_eq!((r.bytes_up, r.bytes_down), (242, 283));
        let s = parse_all(&ZeekJsonFormat, &sample("zat/json/dns.log")).unwrap();
        assert_eq!((s.records.len(), s.skips.len()), (50, 0));
        assert_eq!(
            s.records[0].1.dest_host.as_deref(),
            Some("_ldap._tcp.default-first-site-name._sites.icemaiden-dc.icemaiden.com")
        );
        let s = parse_all(&ZeekJsonFormat, &sample("zat/json/http.log")).unwrap();
        assert_eq!((s.records.len(), s.skips.len()), (28, 0));
        let r = &s.records[0].1;
        assert_eq!(r.dest_host.as_deref(), Some("mail.aol.com"));
        assert_eq!(r.url.as_deref(), Some("http://mail.aol.com/"));
        assert_eq!((r.bytes_up, r.bytes_down), (0, 303));
        assert_eq!(r.ts, 1_575_413_155);
        // Two records name the server by IP (kept in dest_ip, never as a host) and one has no
        // host/uri/method at all: still a record, typed as http by its other keys.
        let no_host: Vec<_> = s.records.iter().filter(|(_, r)| r.dest_host.is_none()).collect();
        assert_eq!(no_host.len(), 3);
        assert!(no_host.iter().all(|(_, r)| r.dest_ip.as_deref() == Some("8.208.24.139")));
    }

    #[test]
    fn json_iso_ts_and_ssl_and_path() {
        let mut p = ZeekJsonParser;
        let LineOutcome::Record(r) = p.parse_line(
            r#"{"_path":"ssl","ts":"2019-12-03T22:44:56.052279Z","id.orig_h":"10.0.0.1","id.resp_h":"1.2.3.4","id.resp_p":443,"server_name":"www.example.org"}"#,
        ) else {
            panic!()
        };
        assert_eq!(r.ts, 1_575_413_096);
        assert_eq!(r.dest_host.as_deref(), Some("www.example.org"));
        assert!(matches!(p.parse_line(r#"{"_path":"files","ts":1.0}"#), LineOutcome::Skip(SkipReason::Irrelevant(_))));
        assert!(matches!(p.parse_line("{nope"), LineOutcome::Skip(SkipReason::Malformed(_))));
    }

    #[test]
    fn separator_variants_and_data_before_fields() {
        let text =
            "x\n#separator\t\\x09\n#path\thttp\n#fields\tts\thost\turi\n1.5\ta\\x20b.com\t/\\x09x\n1.5\tonly-two\n";
        let s = parse_all(&ZeekTsvFormat, text.as_bytes()).unwrap();
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.records[0].1.dest_host.as_deref(), Some("a b.com"));
        assert_eq!(s.records[0].1.url.as_deref(), Some("http://a b.com/\tx"));
        let reasons: Vec<_> = s.skips.iter().map(|(_, r, _)| r.clone()).collect();
        assert_eq!(
            reasons,
            vec![
                SkipReason::Malformed("zeek: data before #fields"),
                SkipReason::Malformed("zeek: column count differs from #fields")
            ]
        );
    }

    #[test]
    fn concatenated_logs_switch_schema() {
        let mut text = sample("zat/dns.log");
        text.extend(sample("zat/http.log"));
        let s = parse_all(&ZeekTsvFormat, &text).unwrap();
        assert_eq!((s.records.len(), s.skips.len()), (54 + 150, 0));
        assert_eq!(s.records[54].1.url.as_deref(), Some("http://guyspy.com/"));
    }

    /// Zeek's ASCII writer escaping: the separator, backslash and non-printables as `\xNN`.
    fn escape(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c == '\\' || c.is_ascii_control() {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn sniff() {
        for f in [
            "zat/conn.log",
            "zat/dns.log",
            "zat/http.log",
            "zeek/zeek-cut-logs/conn.log",
            "zeek/btest-baseline/opt.basic_dns.log",
        ] {
            let lines = head(f);
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(registry::detect(&refs).map(|x| x.name()), Some("zeek"), "{f}");
            assert_eq!(ZeekJsonFormat.sniff(&refs), 0);
        }
        for f in ["zat/json/conn.log", "zat/json/dns.log", "zat/json/http.log"] {
            let lines = head(f);
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(registry::detect(&refs).map(|x| x.name()), Some("zeek-json"), "{f}");
            assert_eq!(ZeekTsvFormat.sniff(&refs), 0);
        }
        assert_rejects_others(&[&ZeekTsvFormat, &ZeekJsonFormat], &["zat/", "zeek/"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn escaping_round_trips(host in "\\PC{0,20}", uri in "[\\x00-\\x7f]{0,20}") {
            let line = format!("1.0\t{}\t{}", escape(&host), escape(&uri));
            let mut p = ZeekTsvParser::default();
            let _ = p.parse_line("#path\thttp");
            let _ = p.parse_line("#fields\tts\thost\turi");
            let host_val = unescape(&escape(&host)).into_owned();
            prop_assert_eq!(&host_val, &host);
            match p.parse_line(&line) {
                LineOutcome::Record(r) => {
                    let marker = |s: &str| s.is_empty() || s == "-" || s == "(empty)";
                    if !marker(&host) && !marker(&uri) {
                        let want = format!("http://{host}{uri}");
                        prop_assert_eq!(r.url.as_deref(), Some(want.as_str()));
                    }
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        #[test]
        fn tsv_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut data = b"#separator \\x09\n#fields\tts\tid.orig_h\tid.resp_h\tid.resp_p\torig_bytes\n".to_vec();
            data.extend(bytes);
            let _ = parse_all(&ZeekTsvFormat, &data);
        }
        #[test]
        fn json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_all(&ZeekJsonFormat, &bytes);
        }
    }
}
