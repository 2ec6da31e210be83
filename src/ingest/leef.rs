//! IBM Log Event Extended Format 1.0 and 2.0 (`leef`), with or without a syslog prefix.
//!
//! LEEF 1.0 separates attributes by tab; 2.0 names its delimiter in the header (one character
//! or a hex form `x5E` / `0x09`, or `\t`). Writers that ignore this and use spaces are read with
//! the CEF-style `key=value` splitter. Zone rule: `devTime` is read with `devTimeFormat` (Java
//! `SimpleDateFormat` subset) when given, otherwise as epoch (s/ms), ISO 8601 or
//! `MMM dd yyyy HH:mm:ss[.SSS] [zone]`; a missing zone, or a zone name we cannot resolve
//! offline (`EST`), means UTC. Without `devTime` a dated syslog prefix is used.
use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime};

use super::util_b::{self, clean, dest_of, split_header, split_kv};
use super::{
    ChunkParser, LineOutcome, LineParser, LineParserAdapter, LogFormat, Parser, Record, RecordKind, SkipReason,
};

pub static FORMATS: &[&dyn LogFormat] = &[&Leef];

pub struct Leef;

fn leef_start(line: &str) -> Option<usize> {
    super::tagged_start(line, "LEEF:")
}

impl LogFormat for Leef {
    fn name(&self) -> &'static str {
        "leef"
    }
    fn description(&self) -> &'static str {
        "IBM QRadar Log Event Extended Format (LEEF 1.0 / 2.0), optional syslog prefix"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        super::tagged_header_score(lines, "LEEF:", 5)
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(LeefLines))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(LeefLines)))
    }
}

/// A LEEF event: header fields (version, vendor, product, version, event id), the attribute
/// delimiter and the unescaped attributes.
#[derive(Debug)]
pub struct LeefEvent<'a> {
    pub prefix: &'a str,
    pub header: Vec<String>,
    pub delimiter: char,
    pub attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl LeefEvent<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).and_then(|(_, v)| clean(v))
    }
}

/// Decodes the LEEF 2.0 delimiter field. None when it is not a delimiter spec at all.
pub fn decode_delimiter(spec: &str) -> Option<char> {
    let s = spec.trim_matches(' ');
    if s.is_empty() || s == "\\t" {
        return Some('\t');
    }
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Some(c);
    }
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .or_else(|| s.strip_prefix('x'))
        .or_else(|| s.strip_prefix('X'))?;
    if hex.is_empty() || hex.len() > 4 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
}

/// Splits one line into a [`LeefEvent`].
pub fn parse_leef(line: &str) -> Result<LeefEvent<'_>, SkipReason> {
    let start = leef_start(line).ok_or(SkipReason::Malformed("no LEEF header"))?;
    let (header, mut tail) =
        split_header(&line[start + 5..], 5).ok_or(SkipReason::Malformed("LEEF header has fewer than 5 fields"))?;
    let mut delimiter = '\t';
    let mut explicit = false;
    if header.first().is_some_and(|v| v.starts_with('2'))
        && let Some(rest) = tail.strip_prefix("||")
    {
        // The delimiter itself is `|`.
        delimiter = '|';
        explicit = true;
        tail = rest;
    } else if header.first().is_some_and(|v| v.starts_with('2'))
        && let Some((spec, rest)) = tail.split_once('|')
        && !spec.contains('=')
        && let Some(d) = decode_delimiter(spec)
    {
        delimiter = d;
        explicit = true;
        tail = rest;
    }
    let attrs = if delimiter == ' ' || (!explicit && !tail.contains('\t')) {
        split_kv(tail, None).into_iter().map(|p| (Cow::Borrowed(p.key), unescape(p.value, ' '))).collect()
    } else {
        split_on(tail, delimiter)
    };
    Ok(LeefEvent { prefix: &line[..start], header, delimiter, attrs })
}

/// `\\` and `\<delimiter>` are escapes; any other backslash (Windows paths) is literal.
fn unescape(v: &str, delim: char) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\'
            && let Some(&n) = it.peek()
            && (n == '\\' || n == delim)
        {
            out.push(n);
            it.next();
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

fn split_on(attrs: &str, delim: char) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut out: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let mut seg_start = 0;
    let mut escaped = false;
    let push = |seg: &'_ str, out: &mut Vec<(Cow<'_, str>, Cow<'_, str>)>| {
        if seg.trim().is_empty() {
            return;
        }
        match seg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.push((Cow::Owned(k.trim().to_string()), Cow::Owned(unescape(v, delim).into_owned())))
            }
            // No '=': the delimiter was part of the previous value.
            _ => {
                if let Some((_, v)) = out.last_mut() {
                    let joined = format!("{v}{delim}{}", unescape(seg, delim));
                    *v = Cow::Owned(joined);
                }
            }
        }
    };
    for (i, c) in attrs.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == delim {
            push(&attrs[seg_start..i], &mut out);
            seg_start = i + c.len_utf8();
        }
    }
    push(&attrs[seg_start..], &mut out);
    out
}

/// Escapes a value for writing LEEF with `delim`.
pub fn escape_value(s: &str, delim: char) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' || c == delim {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Converts the Java `SimpleDateFormat` patterns LEEF uses into a chrono format. Returns the
/// format and whether a zone *name* (`z`) is expected at the end of the value.
fn java_to_chrono(fmt: &str) -> (String, bool) {
    let mut out = String::new();
    let mut zone_name = false;
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('S', _) => "%f",
            ('a', _) => "%p",
            ('E', 4..) => "%A",
            ('E', _) => "%a",
            ('Z', _) => "%z",
            ('X', 1 | 2) => "%z",
            ('X', _) => "%:z",
            ('z', _) => {
                zone_name = true;
                ""
            }
            _ => {
                for _ in 0..n {
                    out.push(if c == '%' { '%' } else { c });
                }
                i += n;
                continue;
            }
        };
        out.push_str(piece);
        i += n;
    }
    (out.trim_end().to_string(), zone_name)
}

fn parse_with_format(value: &str, java_fmt: &str) -> Option<i64> {
    let (fmt, zone_name) = java_to_chrono(java_fmt);
    let (value, off) = if zone_name {
        match value.trim().rsplit_once(' ') {
            Some((v, z)) => (v, util_b::zone_offset(z).unwrap_or(0)),
            None => (value, 0),
        }
    } else {
        (value, 0)
    };
    let value = value.trim();
    let ts = if fmt.contains("%z") || fmt.contains("%:z") {
        DateTime::parse_from_str(value, &fmt).ok()?.timestamp()
    } else {
        NaiveDateTime::parse_from_str(value, &fmt).ok()?.and_utc().timestamp()
    };
    Some(ts - off)
}

/// Maps a parsed event to a record.
pub fn to_record<'a>(ev: &'a LeefEvent<'a>) -> Result<Record<'a>, SkipReason> {
    let b = |s: &'a str| Cow::Borrowed(s);
    let mut rec = Record { kind: RecordKind::Traffic, ..Default::default() };
    let url = ev.get("url").or(ev.get("request"));
    if let Some(u) = url {
        let d = dest_of(u);
        rec.dest_host = d.host;
        rec.dest_ip = d.ip;
        rec.dest_port = d.port;
        rec.url = Some(b(u));
    }
    if rec.dest_host.is_none()
        && let Some(h) =
            ["dhost", "dstHost", "host", "hostname", "destinationHostName", "dstName"].iter().find_map(|k| ev.get(k))
    {
        let d = dest_of(h);
        rec.dest_host = d.host;
        if rec.dest_ip.is_none() {
            rec.dest_ip = d.ip;
        }
    }
    if let Some(ip) = ev.get("dst") {
        rec.dest_ip = Some(b(ip));
    }
    if rec.dest_host.is_none() && rec.dest_ip.is_none() {
        return Err(SkipReason::Irrelevant("no destination"));
    }
    rec.ts = match ev.get("devTime") {
        Some(t) => match ev.get("devTimeFormat") {
            Some(f) => parse_with_format(t, f).or_else(|| util_b::parse_any_time(t)),
            None => util_b::parse_any_time(t),
        },
        None => super::cef::prefix_time(ev.prefix),
    }
    .ok_or(SkipReason::BadTimestamp)?;
    if let Some(p) = ev.get("dstPort").and_then(util_b::port) {
        rec.dest_port = Some(p);
    }
    rec.src_ip = ev.get("src").map(b);
    rec.user = ev.get("usrName").or(ev.get("user")).or(ev.get("suser")).map(b);
    rec.device = ev.get("identHostName").or(ev.get("srcHostName")).or(ev.get("shost")).map(b);
    // Same sense as CEF `in`/`out`: bytesIn flows from source to destination.
    rec.bytes_up = ev.get("srcBytes").or(ev.get("bytesIn")).or(ev.get("reqsize")).map(util_b::bytes).unwrap_or(0);
    rec.bytes_down = ev.get("dstBytes").or(ev.get("bytesOut")).or(ev.get("respsize")).map(util_b::bytes).unwrap_or(0);
    rec.action = ev.get("action").or(ev.get("act")).map(util_b::action_of).unwrap_or_default();
    rec.vendor_app = ev.get("app").or(ev.get("appname")).or(ev.get("application")).map(b);
    rec.vendor_category = ev.get("cat").or(ev.get("urlcategory")).or(ev.get("urlcat")).map(b);
    Ok(rec)
}

struct LeefLines;

impl LineParser for LeefLines {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let ev = match parse_leef(line) {
            Ok(ev) => ev,
            Err(e) => return LineOutcome::Skip(e),
        };
        match to_record(&ev) {
            Ok(r) => LineOutcome::Record(r.into_owned()),
            Err(e) => LineOutcome::Skip(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Action, parse_all, registry};
    use proptest::prelude::*;

    #[test]
    fn leef1_tab_separated() {
        let line = "<13>Jan 18 11:07:53 192.168.1.1 LEEF:1.0|Zscaler|NSSWeblog|5.0|Allowed|devTime=Jan 18 2019 11:07:53 GMT\tsrc=10.1.1.5\tdst=142.250.1.17\tdstPort=443\tusrName=alice@corp.example\turl=https://mail.google.com/mail/u/0/\tproto=HTTPS\tsrcBytes=950\tdstBytes=18000\taction=Allowed\tapp=Gmail\tcat=Web-based Email\tidentHostName=PC-ALICE";
        let lines = [line];
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("leef"));
        let out = parse_all(&Leef, line.as_bytes()).unwrap();
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_547_809_673);
        assert_eq!(
            (r.dest_host.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("mail.google.com"), Some("142.250.1.17"), Some(443))
        );
        assert_eq!((r.bytes_up, r.bytes_down), (950, 18000));
        assert_eq!((r.user.as_deref(), r.device.as_deref()), (Some("alice@corp.example"), Some("PC-ALICE")));
        assert_eq!(
            (r.action, r.vendor_app.as_deref(), r.vendor_category.as_deref()),
            (Action::Allowed, Some("Gmail"), Some("Web-based Email"))
        );
    }

    #[test]
    fn leef2_delimiters_and_formats() {
        let caret = "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21^devTime=1547809673000";
        let hex = "LEEF:2.0|Vendor|Proxy|2.1|web|x7C|devTime=2019-01-18T11:07:53.520+01:00|url=https://www.dropbox.com/s/x|usrName=bob|bytesIn=10|bytesOut=20|action=block";
        let tab = "LEEF:2.0|Vendor|Proxy|2.1|web|0x09|devTimeFormat=yyyy-MM-dd HH:mm:ss.SSS\tdevTime=2019-01-18 11:07:53.520\tdhost=slack.com\tsrc=10.0.0.9";
        let escaped_t = "LEEF:2.0|Vendor|Proxy|2.1|web|\\t|devTimeFormat=MMM dd yyyy HH:mm:ss z\tdevTime=Jan 18 2019 12:07:53 GMT+01:00\tdhost=zoom.us";
        let data = [caret, hex, tab, escaped_t].join("\n");
        let out = parse_all(&Leef, data.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 4, "{:?}", out.skips);
        let r = &out.records[0].1;
        assert_eq!(
            (r.ts, r.dest_ip.as_deref(), r.dest_port, r.src_ip.as_deref()),
            (1_547_809_673, Some("10.0.0.5"), Some(21), Some("10.0.1.8"))
        );
        let r = &out.records[1].1;
        assert_eq!(
            (r.ts, r.dest_host.as_deref(), r.user.as_deref()),
            (1_547_806_073, Some("www.dropbox.com"), Some("bob"))
        );
        assert_eq!((r.bytes_up, r.bytes_down, r.action), (10, 20, Action::Blocked));
        let r = &out.records[2].1;
        assert_eq!((r.ts, r.dest_host.as_deref()), (1_547_809_673, Some("slack.com")));
        let r = &out.records[3].1;
        assert_eq!((r.ts, r.dest_host.as_deref()), (1_547_809_673, Some("zoom.us")));
    }

    #[test]
    fn space_separated_leef1_and_skips() {
        let data = "LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1 dst=2.10.20.20 devTime=1547809673 usrName=joe black\nLEEF:1.0|V|P|1|2|src=1.1.1.1\tsev=5\nLEEF:1.0|broken\n";
        let out = parse_all(&Leef, data.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].1.user.as_deref(), Some("joe black"));
        let reasons: Vec<_> = out.skips.iter().map(|(_, r, _)| r.clone()).collect();
        assert_eq!(
            reasons,
            vec![
                SkipReason::Irrelevant("no destination"),
                SkipReason::Malformed("LEEF header has fewer than 5 fields")
            ]
        );
    }

    fn header_field() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 |\\\\._-]{0,12}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn escaping_round_trips(vendor in header_field(), delim in prop_oneof![Just('\t'), Just('^'), Just('|'), Just(';')],
                                values in proptest::collection::vec("[a-zA-Z0-9 =|^;\\\\./:_-]{0,24}", 1..5)) {
            let keys = ["url", "usrName", "cat", "app", "devTime"];
            let spec = match delim { '\t' => "x09".to_string(), c => c.to_string() };
            let attrs: Vec<String> = values.iter().zip(keys).map(|(v, k)| format!("{k}={}", escape_value(v, delim))).collect();
            let line = format!("LEEF:2.0|{}|Prod|1.0|7|{spec}|{}", vendor.replace('\\', "\\\\").replace('|', "\\|"), attrs.join(&delim.to_string()));
            let ev = parse_leef(&line).unwrap();
            prop_assert_eq!(&ev.header[1], &vendor);
            prop_assert_eq!(ev.delimiter, delim);
            prop_assert_eq!(ev.attrs.len(), values.len());
            for ((k, v), (want_v, want_k)) in ev.attrs.iter().zip(values.iter().zip(keys)) {
                prop_assert_eq!(k.as_ref(), want_k);
                prop_assert_eq!(v.as_ref(), want_v.as_str());
            }
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), s in "(LEEF:[12]\\.0\\|)?[ -~\t]{0,200}") {
            let _ = parse_all(&Leef, &data);
            let _ = parse_all(&Leef, s.as_bytes());
            let _ = Leef.sniff(&[s.as_str()]);
        }
    }
}
