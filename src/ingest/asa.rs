//! Cisco ASA syslog (`%ASA-<sev>-<msgid>: text`, also `%ASA-session-5-…`, `%FTD-`, `%PIX-`).
//!
//! The prefix before the tag varies (`Apr 15 2013 09:36:50:`, `… EDT:`, `… HOST :`, `<IP>:`,
//! `<166>…`); its time stamp is read with the year when present (the current year otherwise).
//! A trailing zone abbreviation (EDT, CET, …) or `+hh:mm` is applied; without one the time is
//! taken as UTC (ASA `logging timestamp` defaults to the device clock, usually UTC).
//!
//! Messages that become records (everything else is irrelevant, counted by reason):
//! - 302013/302015 Built and 302014/302016 Teardown TCP/UDP connection. Built says
//!   inbound/outbound: for outbound the initiator is the `to` side, for inbound the `for` side.
//!   Teardown has no direction: the side carrying the identity-firewall user is the source,
//!   else the side whose port is the only one below 1024 is the destination, else the `for`
//!   (lower-security) side is. Teardown `bytes` is the session total: ASA does not split it,
//!   so it is reported as `bytes_down`.
//! - 106023 (Deny … by access-group) → Blocked; 106100 (access-list permitted/denied).
//! - 304001 (URL accessed: the only message with a host name) and 304002 (URL denied).
//! - 305011/305012 NAT translations carry no destination: with an identity-firewall user they
//!   become a `Logon` record (user ↔ source IP), without one they are irrelevant.
//!
//! Users come in parentheses as `LOCAL\user`, `DOMAIN\user`, `user@domain` or plain names
//! (spaces and UTF-8 allowed); the `LOCAL\` marker of the ASA's own user database is removed.
//! Destinations are IPs (or ASA object names such as `OCSP_Server`, kept as text in `dest_ip`).
//! A tag whose message id is not followed by a colon is malformed.
use std::borrow::Cow;

use chrono::Datelike;

use super::util_a::{host_or_ip, parse_digits, port, strip_pri, syslog_stamp};
use super::{
    Action, ChunkParser, LineOutcome, LineParser, LineParserAdapter, LineVotes, LogFormat, Parser, Record, RecordKind,
    SkipReason, host_of_url,
};

pub struct AsaFormat;

pub static FORMATS: &[&dyn LogFormat] = &[&AsaFormat];

const TAGS: &[&str] = &["%ASA-", "%FTD-", "%PIX-", "%FWSM-"];

fn find_tag(line: &str) -> Option<(usize, usize)> {
    TAGS.iter().filter_map(|t| line.find(t).map(|i| (i, t.len()))).min()
}

impl LogFormat for AsaFormat {
    fn name(&self) -> &'static str {
        "asa"
    }
    fn description(&self) -> &'static str {
        "Cisco ASA / FTD syslog (%ASA-n-NNNNNN)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let votes = LineVotes::count(lines, 20, |l| {
            find_tag(l).is_some_and(|(i, n)| {
                let tok = l[i + n..].split_whitespace().next().unwrap_or("");
                let id = tok.trim_end_matches(':').rsplit('-').next().unwrap_or("");
                id.len() == 6 && parse_digits(id).is_some()
            })
        });
        if votes.share_at_least(8, 10) { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(AsaParser { default_year: chrono::Utc::now().year() }))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(AsaParser { default_year: chrono::Utc::now().year() })))
    }
}

pub struct AsaParser {
    default_year: i32,
}

impl AsaParser {
    /// For tests and replays of old files whose stamps have no year.
    pub fn with_default_year(year: i32) -> Self {
        AsaParser { default_year: year }
    }
}

/// An address as ASA prints it, with any identity-firewall user glued to it.
#[derive(Debug, Default, Clone, PartialEq)]
struct Side<'a> {
    ip: Option<&'a str>,
    port: Option<u16>,
    user: Option<&'a str>,
}

/// `LOCAL\user` → `user`; `DOMAIN\user`, `user@dom` and plain names stay as they are.
fn clean_user(u: &str) -> Option<&str> {
    let u = u.trim();
    let u = u.strip_prefix("LOCAL\\").unwrap_or(u);
    if u.is_empty() || u == "-" { None } else { Some(u) }
}

/// `iface:ip/port` (or bare `ip/port`) followed by `(mapped/port)` and `(user)` groups; user
/// names may contain spaces.
fn parse_side(text: &str) -> Side<'_> {
    let text = text.trim();
    let (addr, rest) = match text.find([' ', '(']) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let (ip_part, port_part) = addr.rsplit_once('/').unwrap_or((addr, ""));
    let ip = if ip_part.parse::<std::net::IpAddr>().is_ok() {
        ip_part
    } else {
        ip_part.split_once(':').map_or(ip_part, |(_, r)| r)
    };
    let mut side = Side { ip: (!ip.is_empty()).then_some(ip), port: port(port_part), user: None };
    let mut r = rest;
    while let Some(open) = r.find('(') {
        let Some(close) = r[open..].find(')').map(|c| open + c) else {
            break;
        };
        let inner = &r[open + 1..close];
        let mapped = inner.rsplit_once('/').is_some_and(|(_, p)| port(p).is_some());
        if !mapped && side.user.is_none() {
            side.user = clean_user(inner);
        }
        r = &r[close + 1..];
    }
    side
}

/// Splits `iface/ip(port)` of message 106100.
fn parse_acl_side(text: &str) -> Side<'_> {
    let text = text.trim();
    let mut side = Side::default();
    let addr = match text.split_once('/') {
        Some((_, a)) => a,
        None => text,
    };
    let (ip, rest) = match addr.find('(') {
        Some(i) => (&addr[..i], &addr[i..]),
        None => (addr, ""),
    };
    side.ip = Some(ip);
    let mut r = rest;
    while let Some(open) = r.find('(') {
        let Some(close) = r[open..].find(')').map(|c| open + c) else {
            break;
        };
        let inner = &r[open + 1..close];
        if side.port.is_none() && port(inner).is_some() {
            side.port = port(inner);
        } else if side.user.is_none() {
            side.user = clean_user(inner);
        }
        r = &r[close + 1..];
    }
    side
}

/// The last parenthesised group of a message (the trailing user of Built/Teardown).
fn trailing_user(msg: &str) -> Option<&str> {
    let msg = msg.trim_end();
    if !msg.ends_with(')') {
        return None;
    }
    let open = msg.rfind(" (")?;
    let inner = &msg[open + 2..msg.len() - 1];
    if inner.contains('/') && inner.rsplit('/').next().and_then(port).is_some() {
        return None;
    }
    clean_user(inner)
}

fn traffic<'a>(ts: i64, src: Side<'a>, dst: Side<'a>, user: Option<&'a str>, action: Action) -> Record<'a> {
    Record {
        ts,
        src_ip: src.ip.map(Cow::Borrowed),
        dest_ip: dst.ip.map(Cow::Borrowed),
        dest_port: dst.port,
        user: src.user.or(user).or(dst.user).map(Cow::Borrowed),
        action,
        ..Default::default()
    }
}

impl AsaParser {
    fn connection<'a>(&self, ts: i64, msg: &'a str, built: bool) -> Option<Record<'a>> {
        let for_at = msg.find(" for ")?;
        let after_for = &msg[for_at + 5..];
        let to_at = after_for.find(" to ")?;
        let for_text = &after_for[..to_at];
        let after_to = &after_for[to_at + 4..];
        let (to_text, tail) = match after_to.find(" duration ") {
            Some(d) => (&after_to[..d], &after_to[d..]),
            None => (after_to, ""),
        };
        let for_side = parse_side(for_text);
        let to_side = parse_side(to_text);
        let trailing = trailing_user(if built { after_to } else { tail });
        let (src, dst) = if built {
            if msg[..for_at].contains("outbound") { (to_side, for_side) } else { (for_side, to_side) }
        } else if for_side.user.is_some() && to_side.user.is_none() {
            (for_side, to_side)
        } else if to_side.user.is_some() && for_side.user.is_none() {
            (to_side, for_side)
        } else {
            let low = |s: &Side| s.port.is_some_and(|p| p < 1024);
            if low(&to_side) && !low(&for_side) { (for_side, to_side) } else { (to_side, for_side) }
        };
        let mut rec = traffic(ts, src, dst, trailing, Action::Allowed);
        if !built && let Some(b) = tail.split(" bytes ").nth(1) {
            rec.bytes_down = parse_digits(b.split_whitespace().next().unwrap_or("")).unwrap_or(0);
        }
        Some(rec)
    }

    fn acl_106100<'a>(&self, ts: i64, msg: &'a str) -> Option<Record<'a>> {
        // access-list NAME permitted|denied|est-allowed PROTO IF/IP(PORT) [(user)] -> IF/IP(PORT) …
        let mut words = msg.split_whitespace();
        words.next()?;
        words.next()?;
        let verdict = words.next()?;
        let arrow = msg.find(" -> ")?;
        let left = &msg[..arrow];
        let proto_end = left.find(verdict)? + verdict.len();
        let left = left[proto_end..].trim_start();
        let left = left.split_once(' ').map_or(left, |(_, r)| r);
        let right = &msg[arrow + 4..];
        let right = right.split(" hit-cnt").next().unwrap_or(right);
        let action = if verdict.starts_with("denied") { Action::Blocked } else { Action::Allowed };
        Some(traffic(ts, parse_acl_side(left), parse_acl_side(right), None, action))
    }

    fn deny_106023<'a>(&self, ts: i64, msg: &'a str) -> Option<Record<'a>> {
        let s = msg.find(" src ")? + 5;
        let d_rel = msg[s..].find(" dst ")?;
        let src = parse_side(&msg[s..s + d_rel]);
        let dst_text = &msg[s + d_rel + 5..];
        let dst_text = dst_text.split_once(' ').map_or(dst_text, |(a, _)| a);
        Some(traffic(ts, src, parse_side(dst_text), None, Action::Blocked))
    }

    fn url_304001<'a>(&self, ts: i64, msg: &'a str) -> Option<Record<'a>> {
        let (left, right) = msg.split_once(" Accessed ")?;
        let right = right.split_once("URL ")?.1.trim();
        // `dest:url`, where the URL starts with `/` or `scheme://`.
        let mut url_at = None;
        for (i, _) in right.match_indices(':') {
            let rest = &right[i + 1..];
            let scheme_len = rest.find("://").unwrap_or(usize::MAX);
            if rest.starts_with('/') || (scheme_len < 10 && rest[..scheme_len].bytes().all(|b| b.is_ascii_alphabetic()))
            {
                url_at = Some(i);
                break;
            }
        }
        let i = url_at?;
        let (dest, url) = (&right[..i], &right[i + 1..]);
        let left = left.trim();
        let (who, paren_user) = match left.find('(') {
            Some(p) => (&left[..p], left[p + 1..].strip_suffix(')').and_then(clean_user)),
            None => (left, None),
        };
        let (at_user, src) = match who.rsplit_once('@') {
            Some((u, ip)) => (clean_user(u), ip),
            None => (None, who),
        };
        let mut rec = Record {
            ts,
            src_ip: Some(Cow::Borrowed(src)),
            dest_ip: Some(Cow::Borrowed(dest)),
            user: paren_user.or(at_user).map(Cow::Borrowed),
            url: Some(Cow::Borrowed(url)),
            action: Action::Allowed,
            ..Default::default()
        };
        if url.contains("://")
            && let Some(h) = host_of_url(url)
        {
            let (name, _) = host_or_ip(Cow::Borrowed(h));
            rec.dest_host = name;
        }
        Some(rec)
    }

    fn url_304002<'a>(&self, ts: i64, msg: &'a str) -> Option<Record<'a>> {
        let url = msg.split_once("URL ")?.1.split_whitespace().next()?;
        let src = msg.split_once(" SRC ").and_then(|(_, r)| r.split_whitespace().next());
        let dst = msg.split_once(" DEST ").and_then(|(_, r)| r.split_whitespace().next());
        let (name, ip) = host_of_url(url).map_or((None, None), |h| host_or_ip(Cow::Borrowed(h)));
        Some(Record {
            ts,
            src_ip: src.map(Cow::Borrowed),
            dest_ip: dst.map(Cow::Borrowed).or(ip),
            dest_host: name,
            url: Some(Cow::Borrowed(url)),
            action: Action::Blocked,
            ..Default::default()
        })
    }

    fn nat<'a>(&self, ts: i64, msg: &'a str) -> Option<LineOutcome<'a>> {
        let from = msg.find(" from ")? + 6;
        let to = msg[from..].find(" to ").map_or(msg.len(), |t| from + t);
        let side = parse_side(&msg[from..to]);
        Some(match side.user {
            Some(u) => LineOutcome::Record(Record {
                kind: RecordKind::Logon,
                ts,
                user: Some(Cow::Borrowed(u)),
                src_ip: side.ip.map(Cow::Borrowed),
                ..Default::default()
            }),
            None => LineOutcome::Skip(SkipReason::Irrelevant("asa: nat translation without user")),
        })
    }
}

impl LineParser for AsaParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Some((at, tag_len)) = find_tag(line) else {
            return LineOutcome::Skip(SkipReason::Malformed("asa: no %ASA- tag"));
        };
        let after = &line[at + tag_len..];
        let tok_end = after.find(char::is_whitespace).unwrap_or(after.len());
        let tok = &after[..tok_end];
        let Some(tag) = tok.strip_suffix(':') else {
            return LineOutcome::Skip(SkipReason::Malformed("asa: message id without colon"));
        };
        let msgid = tag.rsplit('-').next().unwrap_or("");
        if msgid.len() != 6 || parse_digits(msgid).is_none() {
            return LineOutcome::Skip(SkipReason::Malformed("asa: bad message id"));
        }
        let msg = after[tok_end..].trim();
        let mut prefix = strip_pri(line[..at].trim_start()).trim_start();
        if let Some(rest) = prefix.strip_prefix("1 ") {
            prefix = rest;
        }
        let Some((ts, _)) = syslog_stamp(prefix, self.default_year) else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let rec = match msgid {
            "302013" | "302015" => self.connection(ts, msg, true),
            "302014" | "302016" => self.connection(ts, msg, false),
            "106100" => self.acl_106100(ts, msg),
            "106023" => self.deny_106023(ts, msg),
            "304001" => self.url_304001(ts, msg),
            "304002" => self.url_304002(ts, msg),
            "305011" | "305012" => {
                return self.nat(ts, msg).unwrap_or(LineOutcome::Skip(SkipReason::Malformed("asa: nat message shape")));
            }
            _ => return LineOutcome::Skip(SkipReason::Irrelevant("asa: message id not used")),
        };
        match rec {
            Some(r) => LineOutcome::Record(r),
            None => LineOutcome::Skip(SkipReason::Malformed("asa: message text shape")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_all;
    use crate::ingest::test_support::{assert_rejects_others, detected_as, sample};
    use crate::ingest::util_a::civil_to_unix;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const SAMPLE: &str = "elastic-integrations/cisco_asa/test-sample.log";

    fn rec_at(s: &crate::ingest::CollectSink, line: u64) -> &Record<'static> {
        &s.records.iter().find(|(p, _)| p.line == line).unwrap().1
    }

    #[test]
    fn sample_counts() {
        let s = parse_all(&AsaFormat, &sample(SAMPLE)).unwrap();
        // 106023 ×8, 106100 ×21, Built ×15, Teardown ×13, 304001 ×3, 304002 ×1,
        // NAT with a user ×2 (Logon).
        assert_eq!(s.records.len(), 63);
        let logons = s.records.iter().filter(|(_, r)| r.kind == RecordKind::Logon).count();
        assert_eq!(logons, 2);
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r, _) in &s.skips {
            *by_reason.entry(r.key()).or_default() += 1;
        }
        let want: BTreeMap<String, usize> = [
            // 302020/302021 ICMP ×5, 106006/106007 ×3, 106015 ×2, 106016 ×8, 313001/313004 ×2,
            // 338002/338004/338008 ×3, 602304 ×1.
            ("irrelevant: asa: message id not used".to_string(), 24),
            ("irrelevant: asa: nat translation without user".to_string(), 4),
            ("malformed: asa: message id without colon".to_string(), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(by_reason, want);
        assert_eq!(s.skips.iter().find(|(_, r, _)| matches!(r, SkipReason::Malformed(_))).unwrap().0.line, 54);
    }

    #[test]
    fn sample_fields() {
        let s = parse_all(&AsaFormat, &sample(SAMPLE)).unwrap();
        let r = rec_at(&s, 1);
        assert_eq!(r.ts, civil_to_unix(2013, 4, 15, 9, 36, 50).unwrap());
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("10.1.2.30"), Some("192.168.0.8"), Some(53))
        );
        assert_eq!(r.action, Action::Blocked);
        let r = rec_at(&s, 3); // EDT stamp, %ASA-session-5-106100
        assert_eq!(r.ts, civil_to_unix(2014, 4, 15, 13, 34, 34).unwrap());
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("10.1.2.16"), Some("192.168.0.89"), Some(2000))
        );
        assert_eq!(r.action, Action::Allowed);
        assert_eq!(rec_at(&s, 4).action, Action::Blocked);
        let r = rec_at(&s, 7); // outbound: initiator is the `to` side
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("10.123.3.42"), Some("192.168.2.43"), Some(443))
        );
        let r = rec_at(&s, 72); // inbound with LOCAL\ user
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("10.2.3.4"), Some("81.2.69.144"), Some(80))
        );
        assert_eq!(r.user.as_deref(), Some("username"));
        let r = rec_at(&s, 83); // teardown, user on the `for` side, domain kept
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("67.43.156.15"), Some("1.128.3.4"), Some(443))
        );
        assert_eq!(r.user.as_deref(), Some("domain\\USER001"));
        assert_eq!(r.bytes_down, 9610);
        let r = rec_at(&s, 89);
        assert_eq!(r.user.as_deref(), Some("Speciäl Ö01"));
        assert_eq!(r.bytes_down, 27_451);
        let r = rec_at(&s, 12); // teardown without user: the port-53 side is the destination
        assert_eq!((r.dest_ip.as_deref(), r.dest_port), (Some("192.168.2.222"), Some(53)));
        assert_eq!(r.bytes_down, 140);
        let r = rec_at(&s, 43); // object name instead of an IP, kept as text
        assert_eq!(r.src_ip.as_deref(), Some("OCSP_Server"));
        let r = rec_at(&s, 81); // IPv6 and an e-mail user
        assert_eq!(r.src_ip.as_deref(), Some("2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"));
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.user.as_deref(), Some("soc@danskecommodities.com"));
        let r = rec_at(&s, 70);
        assert_eq!(r.dest_host.as_deref(), Some("example.com"));
        assert_eq!(r.dest_ip.as_deref(), Some("192.168.2.32"));
        assert_eq!(r.src_ip.as_deref(), Some("10.5.111.32"));
        let r = rec_at(&s, 69);
        assert_eq!((r.dest_host.as_deref(), r.url.as_deref()), (None, Some("/app")));
        let r = rec_at(&s, 73);
        assert_eq!(r.user.as_deref(), Some("USER001"));
        assert_eq!(r.src_ip.as_deref(), Some("192.168.0.1"));
        assert_eq!(r.dest_host.as_deref(), Some("testingserver.com"));
        let r = rec_at(&s, 71);
        assert_eq!((r.dest_host.as_deref(), r.action), (Some("www.example.net"), Action::Blocked));
        let r = rec_at(&s, 79);
        assert_eq!(
            (r.kind, r.user.as_deref(), r.src_ip.as_deref()),
            (RecordKind::Logon, Some("USER001"), Some("192.168.0.1"))
        );
    }

    #[test]
    fn other_prefixes() {
        let mut p = AsaParser::with_default_year(2020);
        let LineOutcome::Record(r) = p.parse_line(
            "Oct 10 2018 12:34:56 localhost CiscoASA[999]: %ASA-6-302013: Built outbound TCP connection 1 for outside:52.1.1.1/443 (52.1.1.1/443) to inside:10.0.0.5/50000 (1.2.3.4/50000)",
        ) else {
            panic!()
        };
        assert_eq!(r.ts, civil_to_unix(2018, 10, 10, 12, 34, 56).unwrap());
        assert_eq!(r.dest_ip.as_deref(), Some("52.1.1.1"));
        let LineOutcome::Record(r) = p.parse_line(
            "<166>Mar  1 01:02:03 fw %ASA-4-106023: Deny udp src a:1.1.1.1/5 dst b:2.2.2.2/53 by access-group \"x\"",
        ) else {
            panic!()
        };
        assert_eq!(r.ts, civil_to_unix(2020, 3, 1, 1, 2, 3).unwrap());
        assert!(matches!(p.parse_line("no tag here"), LineOutcome::Skip(SkipReason::Malformed(_))));
        assert!(matches!(p.parse_line("garbage %ASA-6-302013: x"), LineOutcome::Skip(SkipReason::BadTimestamp)));
    }

    #[test]
    fn sniff() {
        assert_eq!(detected_as(SAMPLE), Some("asa"));
        assert_rejects_others(&[&AsaFormat], &["elastic-integrations/cisco_asa/"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_all(&AsaFormat, &bytes);
        }
        #[test]
        fn never_panics_on_asaish(id in prop::sample::select(vec!["302013", "302014", "106100", "106023", "304001", "304002", "305011"]), body in "[ -~äÖ]{0,80}") {
            let line = format!("Apr 15 2013 09:36:50: %ASA-6-{id}: {body}");
            let _ = AsaParser::with_default_year(2020).parse_line(&line);
            let line = format!("Apr 15 2013 09:36:50: %ASA-6-{id}: Built inbound TCP connection 1 for {body} to {body} duration 1 bytes (");
            let _ = AsaParser::with_default_year(2020).parse_line(&line);
        }
    }
}
