//! Check Point Log Exporter, syslog flavour:
//! `<134>1 2020-03-29T13:19:22Z gw CheckPoint 1930 - [key:"value"; key:"value"; ...]`.
//!
//! The body looks like RFC 5424 structured data but pairs are `key:"value"` separated by `; `.
//! Inside values `\"`, `\]` and `\\` are escapes. Keys can repeat (the first wins) and one key
//! has a double colon (`sys_message::"…"`). A missing closing quote takes the rest of the line.
//!
//! Time: the RFC 5424 header time (ISO 8601 with zone); without it, the `time` key (epoch).
//! Mapping: src, dst, service (destination port), action (Accept/Allow → Allowed,
//! Drop/Reject/Block/Prevent → Blocked), user or src_user_name, src_machine_name as device,
//! resource (URL) → url and dest_host, appi_name → vendor_app, app_category or
//! matched_category → vendor_category, client_outbound_bytes / client_inbound_bytes (else
//! sent_bytes / received_bytes) → bytes up / down. Lines with neither src nor dst (policy
//! installs, update checks, System Monitor) are irrelevant.
use std::borrow::Cow;

use super::util_a::{count, epoch_any_unit, host_or_ip, iso8601, port, present, strip_pri};
use super::{
    Action, ChunkParser, LineOutcome, LineParser, LineParserAdapter, LineVotes, LogFormat, Parser, Record, SkipReason,
    host_of_url,
};

pub struct CheckpointFormat;

pub static FORMATS: &[&dyn LogFormat] = &[&CheckpointFormat];

impl LogFormat for CheckpointFormat {
    fn name(&self) -> &'static str {
        "checkpoint"
    }
    fn description(&self) -> &'static str {
        "Check Point Log Exporter syslog ([key:\"value\"; ...])"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let votes = LineVotes::count(lines, 20, |l| {
            let Some(open) = l.find('[') else {
                return false;
            };
            let body = &l[open..];
            let keys = Pairs::new(body)
                .map(|p| p.key)
                .filter(|k| matches!(*k, "loguid" | "origin" | "product" | "sequencenum" | "originsicname" | "version"))
                .count();
            keys >= 2
        });
        if votes.share_at_least(8, 10) { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(CheckpointParser))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(CheckpointParser)))
    }
}

pub struct CheckpointParser;

/// One `key:"value"` pair; `value` still has its backslash escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    pub key: &'a str,
    pub raw_value: &'a str,
}

impl<'a> Pair<'a> {
    pub fn value(&self) -> Cow<'a, str> {
        super::util_a::unescape_backslash(self.raw_value)
    }
}

/// Iterates the pairs of a body starting at its `[`; stops at the closing `]`.
pub struct Pairs<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Pairs<'a> {
    pub fn new(body: &'a str) -> Self {
        let pos = usize::from(body.starts_with('['));
        Pairs { s: body, pos }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;
    fn next(&mut self) -> Option<Pair<'a>> {
        let b = self.s.as_bytes();
        while self.pos < b.len() && (b[self.pos] == b' ' || b[self.pos] == b';' || b[self.pos] == b'\t') {
            self.pos += 1;
        }
        if self.pos >= b.len() || b[self.pos] == b']' {
            return None;
        }
        let rest = &self.s[self.pos..];
        let sep = rest.find(":\"")?;
        let key = rest[..sep].trim().trim_end_matches(':');
        if key.contains(['"', ']', ';']) {
            self.pos = b.len();
            return None;
        }
        let vstart = self.pos + sep + 2;
        let mut i = vstart;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        let vend = i.min(b.len());
        self.pos = (vend + 1).min(b.len());
        Some(Pair { key, raw_value: &self.s[vstart..vend] })
    }
}

fn cp_action(a: &str) -> Action {
    match a.to_ascii_lowercase().as_str() {
        "accept" | "allow" | "inline" | "ask" | "inform" | "detect" | "bypass" => Action::Allowed,
        "drop" | "reject" | "block" | "prevent" | "deny" => Action::Blocked,
        _ => Action::Unknown,
    }
}

#[derive(Default)]
struct Fields<'a> {
    time: Option<Pair<'a>>,
    src: Option<Pair<'a>>,
    dst: Option<Pair<'a>>,
    service: Option<Pair<'a>>,
    action: Option<Pair<'a>>,
    user: Option<Pair<'a>>,
    src_user_name: Option<Pair<'a>>,
    machine: Option<Pair<'a>>,
    resource: Option<Pair<'a>>,
    appi_name: Option<Pair<'a>>,
    app_category: Option<Pair<'a>>,
    matched_category: Option<Pair<'a>>,
    out_bytes: Option<Pair<'a>>,
    in_bytes: Option<Pair<'a>>,
    sent_bytes: Option<Pair<'a>>,
    received_bytes: Option<Pair<'a>>,
}

fn val<'a>(p: Option<Pair<'a>>) -> Option<Cow<'a, str>> {
    let v = p?.value();
    match v {
        Cow::Borrowed(s) => present(s).map(Cow::Borrowed),
        Cow::Owned(s) => present(&s).map(|t| Cow::Owned(t.to_owned())),
    }
}

impl LineParser for CheckpointParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Some(open) = line.find('[') else {
            return LineOutcome::Skip(SkipReason::Malformed("checkpoint: no [ body"));
        };
        let mut f = Fields::default();
        let mut pairs = 0usize;
        for p in Pairs::new(&line[open..]) {
            pairs += 1;
            let slot = match p.key {
                "time" => &mut f.time,
                "src" => &mut f.src,
                "dst" => &mut f.dst,
                "service" => &mut f.service,
                "action" => &mut f.action,
                "user" => &mut f.user,
                "src_user_name" => &mut f.src_user_name,
                "src_machine_name" => &mut f.machine,
                "resource" => &mut f.resource,
                "appi_name" => &mut f.appi_name,
                "app_category" => &mut f.app_category,
                "matched_category" => &mut f.matched_category,
                "client_outbound_bytes" => &mut f.out_bytes,
                "client_inbound_bytes" => &mut f.in_bytes,
                "sent_bytes" => &mut f.sent_bytes,
                "received_bytes" => &mut f.received_bytes,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(p);
            }
        }
        if pairs == 0 {
            return LineOutcome::Skip(SkipReason::Malformed("checkpoint: no key:\"value\" pairs"));
        }
        if f.src.is_none() && f.dst.is_none() {
            return LineOutcome::Skip(SkipReason::Irrelevant("checkpoint: no connection (src/dst)"));
        }
        // `<PRI>1 TIMESTAMP HOST …`: the header time token.
        let header = strip_pri(&line[..open]);
        let mut toks = header.split_whitespace();
        let mut first = toks.next();
        if first == Some("1") {
            first = toks.next();
        }
        let ts = first
            .and_then(iso8601)
            .or_else(|| f.time.and_then(|t| epoch_any_unit(t.raw_value.trim())))
            .or_else(|| f.time.and_then(|t| iso8601(t.raw_value.trim())));
        let Some(ts) = ts else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let mut rec = Record {
            ts,
            src_ip: val(f.src),
            dest_ip: val(f.dst),
            dest_port: f.service.and_then(|s| port(s.raw_value)),
            action: f.action.map_or(Action::Unknown, |a| cp_action(a.raw_value.trim())),
            user: val(f.user).or_else(|| val(f.src_user_name)),
            device: val(f.machine),
            vendor_app: val(f.appi_name),
            vendor_category: val(f.app_category).or_else(|| val(f.matched_category)),
            bytes_up: count(f.out_bytes.or(f.sent_bytes).map(|p| p.raw_value)),
            bytes_down: count(f.in_bytes.or(f.received_bytes).map(|p| p.raw_value)),
            ..Default::default()
        };
        if let Some(url) = val(f.resource) {
            if let Some(h) = host_of_url(&url) {
                let (name, ip) = host_or_ip(Cow::Owned(h.to_owned()));
                rec.dest_host = name;
                if rec.dest_ip.is_none() {
                    rec.dest_ip = ip;
                }
            }
            rec.url = Some(url);
        }
        LineOutcome::Record(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_all;
    use crate::ingest::test_support::{assert_rejects_others, detected_as, sample};
    use crate::ingest::util_a::civil_to_unix;
    use proptest::prelude::*;

    const SAMPLE: &str = "elastic-integrations/checkpoint/test-checkpoint.lines01-14.log";

    #[test]
    fn sample_counts_and_fields() {
        let s = parse_all(&CheckpointFormat, &sample(SAMPLE)).unwrap();
        // Lines 3,4,5,7,8,10,11,13 are firewall connections; 1,2 (System Monitor),
        // 6,9,12 (Contracts update) and 14 (Application Control update) have no src/dst.
        let lines: Vec<u64> = s.records.iter().map(|(p, _)| p.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 7, 8, 10, 11, 13]);
        let skipped: Vec<u64> = s.skips.iter().map(|(p, _, _)| p.line).collect();
        assert_eq!(skipped, vec![1, 2, 6, 9, 12, 14]);
        assert!(s.skips.iter().all(|(_, r, _)| *r == SkipReason::Irrelevant("checkpoint: no connection (src/dst)")));
        let r = &s.records[1].1;
        assert_eq!(r.ts, civil_to_unix(2020, 3, 29, 13, 19, 22).unwrap());
        assert_eq!(r.src_ip.as_deref(), Some("192.168.1.100"));
        assert_eq!(r.dest_ip.as_deref(), Some("194.29.39.10"));
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.action, Action::Allowed);
        assert_eq!(r.dest_host, None);
        let r = &s.records[4].1; // line 8
        assert_eq!(r.ts, civil_to_unix(2020, 3, 29, 23, 18, 53).unwrap());
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("192.168.2.2"), Some("8.8.8.8"), Some(53))
        );
    }

    #[test]
    fn url_user_and_escapes() {
        let line = r#"<134>1 2021-01-01T00:00:00+01:00 gw CheckPoint 1 - [action:"Drop"; src:"10.0.0.1"; dst:"52.1.1.1"; service:"443"; src_user_name:"Bob \"B\" Smith (bob)"; resource:"https://app.box.com/x?a=\]"; appi_name:"Box"; app_category:"File Storage and Sharing"; client_outbound_bytes:"10"; client_inbound_bytes:"20"; sys_message::"a ] b"]"#;
        let LineOutcome::Record(r) = CheckpointParser.parse_line(line) else { panic!() };
        assert_eq!(r.ts, civil_to_unix(2020, 12, 31, 23, 0, 0).unwrap());
        assert_eq!(r.action, Action::Blocked);
        assert_eq!(r.user.as_deref(), Some("Bob \"B\" Smith (bob)"));
        assert_eq!(r.url.as_deref(), Some("https://app.box.com/x?a=]"));
        assert_eq!(r.dest_host.as_deref(), Some("app.box.com"));
        assert_eq!(r.vendor_app.as_deref(), Some("Box"));
        assert_eq!(r.vendor_category.as_deref(), Some("File Storage and Sharing"));
        assert_eq!((r.bytes_up, r.bytes_down), (10, 20));
        let keys: Vec<_> = Pairs::new(&line[line.find('[').unwrap()..]).map(|p| p.key).collect();
        assert_eq!(keys.last(), Some(&"sys_message"));
        // No header time: the `time` key.
        let LineOutcome::Record(r) =
            CheckpointParser.parse_line(r#"[time:"1585487925"; src:"1.1.1.1"; dst:"2.2.2.2"; action:"Accept"]"#)
        else {
            panic!()
        };
        assert_eq!(r.ts, 1_585_487_925);
        // Unterminated value: the rest of the line, no panic.
        assert!(matches!(
            CheckpointParser.parse_line(r#"<134>1 2020-03-29T13:19:22Z gw CheckPoint 1 - [src:"1.1.1.1"; dst:"2.2"#),
            LineOutcome::Record(_)
        ));
    }

    fn escape(v: &str) -> String {
        let mut out = String::new();
        for c in v.chars() {
            if matches!(c, '\\' | '"' | ']') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn sniff() {
        assert_eq!(detected_as(SAMPLE), Some("checkpoint"));
        assert_rejects_others(&[&CheckpointFormat], &["elastic-integrations/checkpoint/"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn escaping_round_trips(v in "\\PC{0,40}", w in "[\\\\\"\\];: a-z]{0,20}") {
            let body = format!("[a:\"{}\"; b::\"{}\"; c:\"end\"]", escape(&v), escape(&w));
            let pairs: Vec<_> = Pairs::new(&body).collect();
            prop_assert_eq!(pairs.len(), 3);
            prop_assert_eq!(pairs[0].value(), Cow::Borrowed(v.as_str()));
            prop_assert_eq!(pairs[1].key, "b");
            prop_assert_eq!(pairs[1].value(), Cow::Borrowed(w.as_str()));
            prop_assert_eq!(pairs[2].value(), Cow::Borrowed("end"));
        }
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_all(&CheckpointFormat, &bytes);
        }
        #[test]
        fn never_panics_on_bodies(body in "[\\[\\]\\\\\";: a-z0-9]{0,80}") {
            let _ = CheckpointParser.parse_line(&format!("<134>1 2020-03-29T13:19:22Z gw CheckPoint 1 - [src:\"1\"; {body}"));
        }
    }
}
