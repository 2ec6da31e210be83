//! FortiGate (FortiOS 6/7) `key=value` logs, with or without a `<PRI>` or syslog header.
//!
//! Values may be quoted (FortiOS 7 quotes nearly every string) and quoted values may hold
//! spaces, `=`, `,` and `:`. A quote with no closing quote runs to the end of the line: the
//! record is still imported (counted nowhere as an error) because every field before it is sound.
//!
//! Time: `eventtime` (epoch seconds, ms, µs or ns, told apart by length) when present, since it
//! is absolute. Otherwise `date` + `time` shifted by `tz=` (`-0500`) when present, else UTC.
//!
//! `type=traffic` and `type=utm` (webfilter, app-ctrl, dns, ssl, …) become records;
//! `type=event` (system, vpn, user …) is irrelevant. Mapping: srcip, dstip, dstport, sentbyte
//! (up), rcvdbyte (down), user (or unauthuser), srcname as device, app → vendor_app,
//! catdesc or appcat → vendor_category, hostname (webfilter/app-ctrl) or qname (dns) →
//! dest_host, hostname + url → url.
use std::borrow::Cow;

use super::util_a::{
    KvScanner, count, date_time, epoch_any_unit, host_or_ip, looks_like_ip, port, present, strip_pri, utc_offset,
};
use super::{
    Action, ChunkParser, LineOutcome, LineParser, LineParserAdapter, LineVotes, LogFormat, Parser, Record, SkipReason,
};

pub struct FortigateFormat;

pub static FORMATS: &[&dyn LogFormat] = &[&FortigateFormat];

impl LogFormat for FortigateFormat {
    fn name(&self) -> &'static str {
        "fortigate"
    }
    fn description(&self) -> &'static str {
        "FortiGate key=value logs (traffic, utm webfilter/app-ctrl/dns, events)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let votes = LineVotes::count(lines, 20, |l| {
            let mut logid = false;
            let mut typ = false;
            let mut dev = false;
            for kv in KvScanner::new(strip_pri(l)) {
                match kv.key {
                    "logid" => logid = true,
                    "type" => typ = true,
                    "devid" | "devname" | "eventtime" | "vd" => dev = true,
                    _ => {}
                }
            }
            logid && typ && dev
        });
        if votes.share_at_least(8, 10) { 95 } else { 0 }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(FortigateParser))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(FortigateParser)))
    }
}

pub struct FortigateParser;

#[derive(Default)]
struct Fields<'a> {
    date: Option<&'a str>,
    time: Option<&'a str>,
    eventtime: Option<&'a str>,
    tz: Option<&'a str>,
    log_type: Option<&'a str>,
    subtype: Option<&'a str>,
    srcip: Option<&'a str>,
    dstip: Option<&'a str>,
    dstport: Option<&'a str>,
    sentbyte: Option<&'a str>,
    rcvdbyte: Option<&'a str>,
    user: Option<&'a str>,
    unauthuser: Option<&'a str>,
    srcname: Option<&'a str>,
    app: Option<&'a str>,
    appcat: Option<&'a str>,
    catdesc: Option<&'a str>,
    hostname: Option<&'a str>,
    qname: Option<&'a str>,
    url: Option<&'a str>,
    action: Option<&'a str>,
    service: Option<&'a str>,
}

/// FortiOS escapes only the quote inside quoted values; a backslash in `DOMAIN\user` is data.
fn cow(s: Option<&str>) -> Option<Cow<'_, str>> {
    s.and_then(present).map(|v| if v.contains("\\\"") { Cow::Owned(v.replace("\\\"", "\"")) } else { Cow::Borrowed(v) })
}

fn forti_action(a: &str) -> Action {
    match a.to_ascii_lowercase().as_str() {
        "deny" | "blocked" | "block" | "drop" | "dropped" | "reject" | "reset" => Action::Blocked,
        "accept" | "allow" | "allowed" | "pass" | "passthrough" | "permit" | "close" | "timeout" | "client-rst"
        | "server-rst" | "start" | "dns" | "monitored" => Action::Allowed,
        _ => Action::Unknown,
    }
}

impl LineParser for FortigateParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let mut f = Fields::default();
        let mut pairs = 0usize;
        for kv in KvScanner::new(strip_pri(line)) {
            pairs += 1;
            let slot = match kv.key {
                "date" => &mut f.date,
                "time" => &mut f.time,
                "eventtime" => &mut f.eventtime,
                "tz" => &mut f.tz,
                "type" => &mut f.log_type,
                "subtype" => &mut f.subtype,
                "srcip" => &mut f.srcip,
                "dstip" => &mut f.dstip,
                "dstport" => &mut f.dstport,
                "sentbyte" => &mut f.sentbyte,
                "rcvdbyte" => &mut f.rcvdbyte,
                "user" => &mut f.user,
                "unauthuser" => &mut f.unauthuser,
                "srcname" => &mut f.srcname,
                "app" => &mut f.app,
                "appcat" => &mut f.appcat,
                "catdesc" => &mut f.catdesc,
                "hostname" => &mut f.hostname,
                "qname" => &mut f.qname,
                "url" => &mut f.url,
                "action" => &mut f.action,
                "service" => &mut f.service,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(kv.value);
            }
        }
        if pairs < 3 {
            return LineOutcome::Skip(SkipReason::Malformed("fortigate: not key=value"));
        }
        match f.log_type.map(str::to_ascii_lowercase).as_deref() {
            Some("traffic" | "utm") => {}
            Some("event") => {
                return LineOutcome::Skip(SkipReason::Irrelevant("fortigate: event log"));
            }
            Some(_) if f.dstip.is_some() => {}
            Some(_) => {
                return LineOutcome::Skip(SkipReason::Irrelevant("fortigate: log type without destination"));
            }
            None => return LineOutcome::Skip(SkipReason::Malformed("fortigate: no type")),
        }
        let ts = f.eventtime.and_then(epoch_any_unit).or_else(|| {
            let local = date_time(f.date?, f.time?)?;
            Some(local - f.tz.and_then(utc_offset).unwrap_or(0))
        });
        let Some(ts) = ts else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        let mut rec = Record {
            ts,
            src_ip: cow(f.srcip),
            dest_ip: cow(f.dstip),
            dest_port: f.dstport.and_then(port),
            bytes_up: count(f.sentbyte),
            bytes_down: count(f.rcvdbyte),
            user: cow(f.user).or_else(|| cow(f.unauthuser)),
            device: cow(f.srcname),
            action: f.action.map_or(Action::Unknown, forti_action),
            vendor_app: cow(f.app),
            vendor_category: cow(f.catdesc).or_else(|| {
                cow(f.appcat).filter(|c| !c.eq_ignore_ascii_case("unscanned") && !c.eq_ignore_ascii_case("unknown"))
            }),
            ..Default::default()
        };
        let host = cow(f.hostname).or_else(|| cow(f.qname));
        if let Some(h) = host {
            let (name, ip) = host_or_ip(h);
            if rec.dest_ip.is_none() {
                rec.dest_ip = ip;
            }
            if let Some(name) = name {
                if let Some(path) = cow(f.url) {
                    let https =
                        f.service.is_some_and(|s| s.eq_ignore_ascii_case("https")) || rec.dest_port == Some(443);
                    let scheme = if https { "https" } else { "http" };
                    let sep = if path.starts_with('/') { "" } else { "/" };
                    rec.url = Some(Cow::Owned(format!("{scheme}://{name}{sep}{path}")));
                }
                rec.dest_host = Some(name);
            }
        } else if let Some(u) = cow(f.url).filter(|u| u.contains("://")) {
            if let Some(h) = super::host_of_url(&u).filter(|h| !looks_like_ip(h)) {
                rec.dest_host = Some(Cow::Owned(h.to_owned()));
            }
            rec.url = Some(u);
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

    const SAMPLE: &str = "elastic-integrations/fortigate/test-fortinet.head29.log";

    #[test]
    fn sample_counts_and_fields() {
        let s = parse_all(&FortigateFormat, &sample(SAMPLE)).unwrap();
        // Lines 1-11 are utm (webfilter 2, app-ctrl 3, dns 4, ssl 1) plus one traffic (line 2),
        // lines 12-24 are 13 `type="event"` lines, lines 25-29 are traffic.
        assert_eq!(s.records.len(), 16);
        assert_eq!(s.skips.len(), 13);
        assert!(s.skips.iter().all(|(_, r, _)| *r == SkipReason::Irrelevant("fortigate: event log")));
        let lines: Vec<u64> = s.skips.iter().map(|(p, _, _)| p.line).collect();
        assert_eq!(lines, (12..=24).collect::<Vec<u64>>());

        let r = &s.records[0].1; // webfilter, blocked, eventtime in ns
        assert_eq!(r.ts, 1_587_230_269);
        assert_eq!(r.dest_host.as_deref(), Some("elastic.co"));
        assert_eq!(r.url.as_deref(), Some("https://elastic.co/config/"));
        assert_eq!(r.vendor_category.as_deref(), Some("Internet Telephony"));
        assert_eq!(r.user.as_deref(), Some("elasticuser"));
        assert_eq!(r.src_ip.as_deref(), Some("192.168.2.1"));
        assert_eq!(r.dest_ip.as_deref(), Some("67.43.156.13"));
        assert_eq!((r.bytes_up, r.bytes_down), (1152, 1130));
        assert_eq!(r.action, Action::Blocked);

        let r = &s.records[1].1; // traffic deny, eventtime in seconds, no tz
        assert_eq!(r.ts, 1_592_961_368);
        assert_eq!(r.dest_port, Some(161));
        assert_eq!(r.action, Action::Blocked);
        assert_eq!(r.vendor_category, None);

        let r = &s.records[3].1; // app-ctrl
        assert_eq!(r.vendor_app.as_deref(), Some("HTTPS.BROWSER"));
        assert_eq!(r.vendor_category.as_deref(), Some("Web.Client"));
        assert_eq!(r.dest_host.as_deref(), Some("elastic.co"));
        assert_eq!(r.action, Action::Allowed);

        let r = &s.records[5].1; // dns
        assert_eq!(r.dest_host.as_deref(), Some("elastic.example.com"));
        assert_eq!(r.vendor_category.as_deref(), Some("Web-based Email"));

        let r = &s.records[12].1; // traffic accept with bytes (line 26)
        assert_eq!((r.bytes_up, r.bytes_down), (438_650, 65_446));
        assert_eq!(r.dest_port, Some(6000));
        let r = &s.records[15].1; // line 29: user on a traffic log
        assert_eq!(r.user.as_deref(), Some("elasticsuper"));
        assert_eq!(r.dest_ip.as_deref(), Some("192.168.100.100"));
    }

    #[test]
    fn no_pri_fortios7_quoting_tz_and_unterminated() {
        let mut p = FortigateParser;
        let line = r#"date=2023-01-02 time=10:00:00 logid="0000000013" type="traffic" subtype="forward" tz="+0100" srcip=10.1.1.1 dstip=52.1.1.1 dstport=443 app="Microsoft.Teams" appcat="Collaboration" user="CORP\bob" sentbyte=10 rcvdbyte=20 msg="a=b, c:d"#;
        let LineOutcome::Record(r) = p.parse_line(line) else { panic!() };
        assert_eq!(r.ts, civil_to_unix(2023, 1, 2, 9, 0, 0).unwrap());
        assert_eq!(r.vendor_app.as_deref(), Some("Microsoft.Teams"));
        assert_eq!(r.user.as_deref(), Some("CORP\\bob"));
        let line = r#"<189>date=2023-01-02 time=10:00:00 type="utm" subtype="webfilter" srcip=10.1.1.1 hostname="x.com" url="/a b"#;
        let LineOutcome::Record(r) = p.parse_line(line) else { panic!() };
        assert_eq!(r.url.as_deref(), Some("http://x.com/a b"));
        assert_eq!(r.ts, civil_to_unix(2023, 1, 2, 10, 0, 0).unwrap());
        assert!(matches!(p.parse_line("hello world"), LineOutcome::Skip(SkipReason::Malformed(_))));
    }

    #[test]
    fn sniff() {
        assert_eq!(detected_as(SAMPLE), Some("fortigate"));
        assert_rejects_others(&[&FortigateFormat], &["elastic-integrations/fortigate/"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_all(&FortigateFormat, &bytes);
        }
        #[test]
        fn never_panics_on_kv_lines(pairs in proptest::collection::vec(("[a-z]{1,8}", "[ -~]{0,12}"), 0..30)) {
            let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let line = format!("type=traffic eventtime=1 {}", line.join(" "));
            let _ = FortigateParser.parse_line(&line);
        }
    }
}
