//! Juniper SRX session logs: RT_FLOW_SESSION_CREATE / CLOSE / DENY and APPTRACK_SESSION_CREATE /
//! CLOSE, in structured-data form (`sd-syslog`) and in the plain BSD-syslog text form.
//!
//! Structured: `<14>1 2019-12-27T09:48:23.298Z fw RT_FLOW - RT_FLOW_SESSION_CLOSE
//! [junos@2636.1.1.1.2.28 reason="…" source-address="…" source-port="…"
//! destination-address="…" destination-port="…" service-name="…" … bytes-from-client="…"
//! bytes-from-server="…" application="…" nested-application="…" username="…" …]`, also with a
//! BSD header (`<14>Dec 17 14:46:29 fw RT_FLOW: APPTRACK_SESSION_CLOSE [junos@… …]`).
//! Text: `RT_FLOW_SESSION_CLOSE: session closed REASON: src/port->dst/port SERVICE nat… PROTO
//! POLICY FROM TO SESSION pkts(bytes) pkts(bytes) ELAPSED APP NESTED USER(ROLES) …`.
//! Logical-system variants (`…_LS`) count as their base event.
//!
//! Time: the RFC 5424 header time (ISO 8601 with its zone); a BSD header time without zone is
//! UTC, without a year the current year. Mapping: source-address, destination-address,
//! destination-port, bytes-from-client (up), bytes-from-server (down), nested-application
//! (else application) → vendor_app, category / sub-category → vendor_category, username;
//! DENY → Blocked, others Allowed. Interim APPTRACK_SESSION_VOL_UPDATE / ROUTE_UPDATE lines
//! would count bytes twice (CLOSE carries the totals) and other Junos events carry no session:
//! both are irrelevant.
use std::borrow::Cow;

use chrono::Datelike;

use super::util_a::{KvScanner, count, port, present, strip_pri, syslog_stamp};
use super::{
    Action, ChunkParser, LineOutcome, LineParser, LineParserAdapter, LineVotes, LogFormat, Parser, Record, SkipReason,
};

pub struct JuniperFormat;

pub static FORMATS: &[&dyn LogFormat] = &[&JuniperFormat];

impl LogFormat for JuniperFormat {
    fn name(&self) -> &'static str {
        "juniper"
    }
    fn description(&self) -> &'static str {
        "Juniper SRX RT_FLOW / APPTRACK session logs (structured or text syslog)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let votes = LineVotes::count(lines, 20, |l| l.contains("[junos@2636") || find_event(l).is_some());
        if votes.share_at_least(1, 2) { 92 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(JuniperParser { default_year: chrono::Utc::now().year() }))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(JuniperParser { default_year: chrono::Utc::now().year() })))
    }
}

pub struct JuniperParser {
    default_year: i32,
}

impl JuniperParser {
    pub fn with_default_year(year: i32) -> Self {
        JuniperParser { default_year: year }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Create,
    Close,
    Deny,
    Interim,
}

/// The event word (`RT_FLOW_SESSION_CLOSE`, `APPTRACK_SESSION_CREATE_LS`, …) and where it ends.
fn find_event(line: &str) -> Option<(Event, usize)> {
    for prefix in ["RT_FLOW_SESSION_", "APPTRACK_SESSION_"] {
        let mut from = 0;
        while let Some(i) = line[from..].find(prefix).map(|i| from + i) {
            let rest = &line[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(rest.len());
            let word = rest[..end].strip_suffix("_LS").unwrap_or(&rest[..end]);
            let ev = match word {
                "CREATE" => Some(Event::Create),
                "CLOSE" => Some(Event::Close),
                "DENY" => Some(Event::Deny),
                "VOL_UPDATE" | "ROUTE_UPDATE" => Some(Event::Interim),
                _ => None,
            };
            if let Some(ev) = ev {
                return Some((ev, i + prefix.len() + end));
            }
            from = i + prefix.len();
        }
    }
    None
}

fn app(v: Option<&str>) -> Option<&str> {
    v.and_then(present).filter(|a| !a.eq_ignore_ascii_case("unknown") && !a.eq_ignore_ascii_case("none"))
}

impl JuniperParser {
    fn timestamp(&self, header: &str) -> Option<i64> {
        let mut h = strip_pri(header.trim_start()).trim_start();
        if let Some(rest) = h.strip_prefix("1 ") {
            h = rest;
        }
        syslog_stamp(h, self.default_year).map(|(ts, _)| ts)
    }

    fn structured<'a>(&self, ts: i64, ev: Event, sd: &'a str) -> Record<'a> {
        let mut f: [Option<&'a str>; 10] = [None; 10];
        const KEYS: [&str; 10] = [
            "source-address",
            "destination-address",
            "destination-port",
            "bytes-from-client",
            "bytes-from-server",
            "application",
            "nested-application",
            "username",
            "category",
            "sub-category",
        ];
        for kv in KvScanner::structured(sd) {
            if let Some(i) = KEYS.iter().position(|k| *k == kv.key)
                && let Some(slot) = f.get_mut(i)
                && slot.is_none()
            {
                *slot = Some(kv.value);
            }
        }
        let [src, dst, dport, up, down, application, nested, user, cat, subcat] = f;
        Record {
            ts,
            src_ip: src.and_then(present).map(Cow::Borrowed),
            dest_ip: dst.and_then(present).map(Cow::Borrowed),
            dest_port: dport.and_then(port),
            bytes_up: count(up),
            bytes_down: count(down),
            vendor_app: app(nested).or(app(application)).map(Cow::Borrowed),
            vendor_category: app(subcat).or(app(cat)).map(Cow::Borrowed),
            user: user.and_then(present).map(Cow::Borrowed),
            action: if ev == Event::Deny { Action::Blocked } else { Action::Allowed },
            ..Default::default()
        }
    }

    /// The positional text form; None when no `src/port->dst/port` tuple is found.
    fn text<'a>(&self, ts: i64, ev: Event, msg: &'a str) -> Option<Record<'a>> {
        let toks: Vec<&'a str> = msg.split_whitespace().collect();
        let tuple_at = toks.iter().position(|t| t.contains("->") && t.contains('/'))?;
        let (src, dst) = toks.get(tuple_at)?.split_once("->")?;
        let (src_ip, _) = src.rsplit_once('/')?;
        let (dst_ip, dst_port) = dst.rsplit_once('/')?;
        let mut rec = Record {
            ts,
            src_ip: Some(Cow::Borrowed(src_ip)),
            dest_ip: Some(Cow::Borrowed(dst_ip)),
            dest_port: port(dst_port),
            action: if ev == Event::Deny { Action::Blocked } else { Action::Allowed },
            ..Default::default()
        };
        let is_count = |t: &str| {
            t.split_once('(').is_some_and(|(a, b)| {
                a.bytes().all(|c| c.is_ascii_digit())
                    && !a.is_empty()
                    && b.strip_suffix(')').is_some_and(|b| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
            })
        };
        let counts: Vec<usize> =
            (tuple_at + 1..toks.len()).filter(|&i| toks.get(i).is_some_and(|t| is_count(t))).collect();
        if ev == Event::Close && counts.len() >= 2 {
            let bytes_of = |i: usize| toks.get(i).and_then(|t| t.split_once('(')).map(|(_, b)| b.trim_end_matches(')'));
            rec.bytes_up = count(counts.first().and_then(|&i| bytes_of(i)));
            rec.bytes_down = count(counts.get(1).and_then(|&i| bytes_of(i)));
        }
        // USER(ROLES) is the first `name(…)` token that is not a packet(byte) count or the
        // DENY protocol `17(0)`; the application and nested application come just before it.
        let user_at = (tuple_at + 1..toks.len()).find(|&i| {
            toks.get(i).is_some_and(|t| t.ends_with(')') && t.contains('(') && !is_count(t) && !t.starts_with('('))
        });
        if let Some(u) = user_at {
            rec.user = toks.get(u).and_then(|t| t.split_once('(')).map(|(n, _)| n).and_then(present).map(Cow::Borrowed);
            let application = u.checked_sub(2).and_then(|i| toks.get(i)).copied();
            let nested = u.checked_sub(1).and_then(|i| toks.get(i)).copied();
            rec.vendor_app = app(nested).or(app(application)).map(Cow::Borrowed);
        }
        Some(rec)
    }
}

impl LineParser for JuniperParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Some((ev, end)) = find_event(line) else {
            return if line.contains("junos@2636") || line.contains("RT_") {
                LineOutcome::Skip(SkipReason::Irrelevant("juniper: not a session event"))
            } else {
                LineOutcome::Skip(SkipReason::Malformed("juniper: no RT_FLOW/APPTRACK event"))
            };
        };
        if ev == Event::Interim {
            return LineOutcome::Skip(SkipReason::Irrelevant("juniper: interim session update"));
        }
        let Some(ts) = self.timestamp(&line[..end]) else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let rest = &line[end..];
        let rec = match rest.find("[junos@") {
            Some(i) => {
                let sd = &rest[i + 1..];
                let sd = sd.find(char::is_whitespace).map_or("", |s| &sd[s..]);
                Some(self.structured(ts, ev, sd))
            }
            None => self.text(ts, ev, rest),
        };
        match rec {
            Some(r) => LineOutcome::Record(r),
            None => LineOutcome::Skip(SkipReason::Malformed("juniper: no address tuple")),
        }
    }
}

#[cfg(test)]
mod tests {
    //! No sample file exists in shared/data: these lines are written from Juniper's session
    //! log field reference (Create/Close/Deny tables) and the published sd-syslog layout.
    use super::*;
    use crate::ingest::test_support::assert_rejects_others;
    use crate::ingest::util_a::civil_to_unix;
    use crate::ingest::{parse_all, registry};
    use proptest::prelude::*;

    const LINES: &str = r#"<14>1 2019-12-27T09:48:23.298Z fw01 RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@2636.1.1.1.2.28 reason="idle Timeout" source-address="10.40.186.212" source-port="38812" destination-address="41.202.217.132" destination-port="53" connection-tag="0" service-name="junos-dns-udp" nat-source-address="41.202.207.5" nat-source-port="23329" nat-destination-address="41.202.217.132" nat-destination-port="53" nat-connection-tag="0" src-nat-rule-type="source rule" src-nat-rule-name="rule_1" dst-nat-rule-type="N/A" dst-nat-rule-name="N/A" protocol-id="17" policy-name="Gi_TO_Untrust_1" source-zone-name="Gi-SZ" destination-zone-name="Untrust" session-id-32="94942576" packets-from-client="1" bytes-from-client="70" packets-from-server="1" bytes-from-server="130" elapsed-time="3" application="UNKNOWN" nested-application="UNKNOWN" username="N/A" roles="N/A" packet-incoming-interface="reth0.100" encrypted="No"]
<14>1 2023-02-01T08:03:28+02:00 srx1 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="10.0.1.5" source-port="41234" destination-address="52.96.1.2" destination-port="443" connection-tag="0" service-name="junos-https" nat-source-address="172.16.1.1" nat-source-port="12345" protocol-id="6" policy-name="allow-web" source-zone-name="trust" destination-zone-name="untrust" session-id="4242" username="CORP\alice" roles="N/A" packet-incoming-interface="ge-0/0/0.0" application="HTTP" nested-application="OFFICE365-CREATE-CONVERSATION"]
<14>1 2023-02-01T08:03:29Z srx1 RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.129 source-address="10.0.1.6" source-port="5000" destination-address="104.16.1.1" destination-port="443" connection-tag="0" service-name="junos-https" protocol-id="6" icmp-type="0" policy-name="deny-p2p" source-zone-name="trust" destination-zone-name="untrust" application="BITTORRENT" nested-application="UNKNOWN" username="bob" roles="N/A" packet-incoming-interface="ge-0/0/0.0" encrypted="No" reason="policy deny"]
<14>Dec 17 14:46:29 srx1 RT_FLOW: APPTRACK_SESSION_CLOSE [junos@2636.1.1.1.2.26 reason="TCP RST" source-address="4.0.0.3" source-port="13175" destination-address="5.0.0.7" destination-port="48334" service-name="None" application="HTTP" nested-application="Facebook" nat-source-address="10.110.110.10" nat-source-port="13175" protocol-id="6" policy-name="dmz-out" source-zone-name="DMZ" destination-zone-name="Internet" session-id-32="44292" packets-from-client="7" bytes-from-client="1421" packets-from-server="6" bytes-from-server="1133" elapsed-time="4" username="Frank" roles="Engineering" category="Web" sub-category="Social-Networking"]
<14>1 2023-02-01T08:04:00Z srx1 RT_FLOW - APPTRACK_SESSION_VOL_UPDATE [junos@2636.1.1.1.2.129 source-address="4.0.0.3" destination-address="5.0.0.7" bytes-from-client="100"]
Sep  6 02:52:30 srx1 RT_FLOW: RT_FLOW_SESSION_CLOSE: session closed TCP FIN: 10.10.4.23/52811->20.190.1.2/443 0x0 junos-https 10.10.4.23/52811->20.190.1.2/443 0x0 N/A N/A N/A N/A 6 users-out users untrust 81234 12(1840) 10(9211) 3 SSL MICROSOFT-LOGIN dave(Staff) ge-0/0/1.0 UNKNOWN
Sep  6 02:52:31 srx1 RT_FLOW: RT_FLOW_SESSION_DENY: session denied 10.10.4.24/5353->52.1.1.1/8080 0x0 None 6(0) deny-all users untrust UNKNOWN UNKNOWN N/A(N/A) ge-0/0/1.0 No policy deny
<14>1 2023-02-01T08:05:00Z srx1 RT_IDS - RT_SCREEN_TCP [junos@2636.1.1.1.2.129 attack-name="SYN flood"]
<14>1 XXXX srx1 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="1.1.1.1"]
"#;

    #[test]
    fn documented_lines() {
        let s = parse_all(&JuniperFormat, LINES.as_bytes()).unwrap();
        let recs: Vec<_> = s.records.iter().map(|(p, r)| (p.line, r)).collect();
        assert_eq!(recs.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 2, 3, 4, 6, 7]);
        let skips: Vec<_> = s.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect();
        assert_eq!(
            skips,
            vec![
                (5, SkipReason::Irrelevant("juniper: interim session update")),
                (8, SkipReason::Irrelevant("juniper: not a session event")),
                (9, SkipReason::BadTimestamp),
            ]
        );
        let r = recs[0].1;
        assert_eq!(r.ts, civil_to_unix(2019, 12, 27, 9, 48, 23).unwrap());
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("10.40.186.212"), Some("41.202.217.132"), Some(53))
        );
        assert_eq!((r.bytes_up, r.bytes_down), (70, 130));
        assert_eq!((r.vendor_app.as_deref(), r.user.as_deref()), (None, None));
        assert_eq!(r.action, Action::Allowed);
        let r = recs[1].1;
        assert_eq!(r.ts, civil_to_unix(2023, 2, 1, 6, 3, 28).unwrap());
        assert_eq!(r.vendor_app.as_deref(), Some("OFFICE365-CREATE-CONVERSATION"));
        assert_eq!(r.user.as_deref(), Some("CORP\\alice"));
        let r = recs[2].1;
        assert_eq!(r.action, Action::Blocked);
        assert_eq!(r.vendor_app.as_deref(), Some("BITTORRENT"));
        assert_eq!(r.user.as_deref(), Some("bob"));
        let r = recs[3].1;
        assert_eq!(r.vendor_app.as_deref(), Some("Facebook"));
        assert_eq!(r.vendor_category.as_deref(), Some("Social-Networking"));
        assert_eq!((r.bytes_up, r.bytes_down), (1421, 1133));
        assert_eq!(r.user.as_deref(), Some("Frank"));
        let r = recs[4].1; // text CLOSE
        assert_eq!(
            (r.src_ip.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("10.10.4.23"), Some("20.190.1.2"), Some(443))
        );
        assert_eq!((r.bytes_up, r.bytes_down), (1840, 9211));
        assert_eq!(r.vendor_app.as_deref(), Some("MICROSOFT-LOGIN"));
        assert_eq!(r.user.as_deref(), Some("dave"));
        let r = recs[5].1; // text DENY
        assert_eq!(r.action, Action::Blocked);
        assert_eq!((r.dest_ip.as_deref(), r.dest_port), (Some("52.1.1.1"), Some(8080)));
        assert_eq!((r.user.as_deref(), r.vendor_app.as_deref()), (None, None));
    }

    #[test]
    fn sniff() {
        let lines: Vec<&str> = LINES.lines().collect();
        assert_eq!(registry::detect(&lines).map(|x| x.name()), Some("juniper"));
        assert_rejects_others(&[&JuniperFormat], &[]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_all(&JuniperFormat, &bytes);
        }
        #[test]
        fn never_panics_on_event_lines(body in "[ -~]{0,120}", ev in prop::sample::select(vec!["RT_FLOW_SESSION_CLOSE", "RT_FLOW_SESSION_DENY_LS", "APPTRACK_SESSION_CREATE"])) {
            let mut p = JuniperParser::with_default_year(2020);
            let _ = p.parse_line(&format!("<14>1 2023-02-01T08:03:28Z h RT_FLOW - {ev} [junos@2636.1 {body}"));
            let _ = p.parse_line(&format!("Sep  6 02:52:30 h RT_FLOW: {ev}: session closed {body}"));
        }
    }
}
