//! Blue Coat / Symantec ProxySG access log, W3C ELFF (`bluecoat`).
//!
//! Column order comes from the `#Fields:` header when there is one; without it the default
//! `bcreportermain_v1` order plus the three fields Sentinel's export carries is assumed.
//! Zone rule: ELFF `date`/`time` are UTC by definition (`x-timestamp-unix` wins when present).
use std::borrow::Cow;

use super::util_b::{self, clean, dest_of, percent_decode};
use super::{Action, LineOutcome, LineParser, LineParserAdapter, LogFormat, Parser, Record, RecordKind, SkipReason};

pub static FORMATS: &[&dyn LogFormat] = &[&BlueCoat];

pub struct BlueCoat;

/// bcreportermain_v1, then listener port, client country and `cs-threat-risk` (Sentinel order).
pub const DEFAULT_FIELDS: &[&str] = &[
    "date",
    "time",
    "time-taken",
    "c-ip",
    "cs-username",
    "cs-auth-group",
    "x-exception-id",
    "sc-filter-result",
    "cs-categories",
    "cs(Referer)",
    "sc-status",
    "s-action",
    "cs-method",
    "rs(Content-Type)",
    "cs-uri-scheme",
    "cs-host",
    "cs-uri-port",
    "cs-uri-path",
    "cs-uri-query",
    "cs-uri-extension",
    "cs(User-Agent)",
    "s-ip",
    "sc-bytes",
    "cs-bytes",
    "x-virus-id",
    "x-bluecoat-application-name",
    "x-bluecoat-application-operation",
    "x-listener-port",
    "x-client-country",
    "cs-threat-risk",
];

const FILTER_RESULTS: &[&str] = &["OBSERVED", "PROXIED", "DENIED"];

fn is_bluecoat_fields_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("#Fields:") else {
        return false;
    };
    let l = rest.to_ascii_lowercase();
    l.contains("x-bluecoat") || l.contains("sc-filter-result") || l.contains("s-action") || l.contains("cs-categories")
}

impl LogFormat for BlueCoat {
    fn name(&self) -> &'static str {
        "bluecoat"
    }
    fn description(&self) -> &'static str {
        "Blue Coat / Symantec ProxySG access log (W3C ELFF, #Fields header or default bcreportermain_v1 order)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let mut score = 0u8;
        for l in lines.iter().take(20) {
            if l.starts_with("#Software: SGOS") || is_bluecoat_fields_header(l) {
                return 95;
            }
            if l.starts_with('#') {
                continue;
            }
            let toks = tokenize(l);
            let looks = toks.len() >= 20
                && toks.first().is_some_and(|d| is_date(d))
                && toks.get(1).is_some_and(|t| t.len() == 8 && t.as_bytes().get(2) == Some(&b':'))
                && toks.get(7).is_some_and(|f| FILTER_RESULTS.contains(&f.as_ref()));
            score = if looks { 85 } else { 0 };
            break;
        }
        score
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(ElffParser { fields: None }))
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Splits an ELFF line: whitespace-separated, `"..."` groups a value with spaces.
pub fn tokenize(line: &str) -> Vec<Cow<'_, str>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            let mut has_escape = false;
            // A quote ends the value only when followed by a separator or the end of line;
            // `""` inside stays an escaped quote.
            loop {
                match line[j..].find('"') {
                    None => {
                        j = b.len();
                        break;
                    }
                    Some(k) => {
                        let q = j + k;
                        if b.get(q + 1) == Some(&b'"') {
                            has_escape = true;
                            j = q + 2;
                            continue;
                        }
                        if q + 1 >= b.len() || b[q + 1] == b' ' || b[q + 1] == b'\t' {
                            j = q;
                            break;
                        }
                        j = q + 1;
                    }
                }
            }
            let v = &line[start..j.min(b.len())];
            out.push(if has_escape { Cow::Owned(v.replace("\"\"", "\"")) } else { Cow::Borrowed(v) });
            i = j + 1;
        } else {
            let start = i;
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            out.push(Cow::Borrowed(&line[start..i]));
        }
    }
    out
}

struct ElffParser {
    fields: Option<Vec<String>>,
}

impl LineParser for ElffParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        if let Some(rest) = line.strip_prefix("#Fields:") {
            self.fields = Some(rest.split_whitespace().map(|f| f.to_ascii_lowercase()).collect());
            return LineOutcome::Header;
        }
        if line.starts_with('#') {
            return LineOutcome::Header;
        }
        let toks = tokenize(line);
        let names: Vec<&str> = match &self.fields {
            Some(f) => f.iter().map(String::as_str).collect(),
            None => DEFAULT_FIELDS.to_vec(),
        };
        if toks.len() < names.len().min(12) {
            return LineOutcome::Skip(SkipReason::Malformed("too few fields"));
        }
        let row = Row { names: &names, toks: &toks };
        match build(&|name| row.get(name)) {
            Ok(r) => LineOutcome::Record(r),
            Err(e) => LineOutcome::Skip(e),
        }
    }
}

struct Row<'r, 't> {
    names: &'r [&'r str],
    toks: &'r [Cow<'t, str>],
}

impl<'r> Row<'r, '_> {
    fn get(&self, name: &str) -> Option<&'r str> {
        let i = self.names.iter().position(|n| n.eq_ignore_ascii_case(name))?;
        self.toks.get(i).and_then(|t| clean(t))
    }
}

fn build<'g>(get: &dyn Fn(&str) -> Option<&'g str>) -> Result<Record<'static>, SkipReason> {
    let own = |s: Option<&str>| s.map(|v| Cow::Owned(percent_decode(v).into_owned()));
    let ts = match get("x-timestamp-unix").and_then(util_b::epoch_auto) {
        Some(t) => t,
        None => {
            let (d, t) = get("date").zip(get("time")).ok_or(SkipReason::BadTimestamp)?;
            util_b::parse_iso(&format!("{d}T{t}")).ok_or(SkipReason::BadTimestamp)?
        }
    };
    let mut rec = Record { kind: RecordKind::Traffic, ts, ..Default::default() };
    let host = get("cs-host").or_else(|| get("cs-uri").and_then(super::host_of_url)).or_else(|| get("r-dns"));
    if let Some(h) = host {
        let d = dest_of(h);
        rec.dest_host = d.host.map(|v| Cow::Owned(v.into_owned()));
        rec.dest_ip = d.ip.map(|v| Cow::Owned(v.into_owned()));
        rec.dest_port = d.port;
    }
    if rec.dest_ip.is_none() {
        rec.dest_ip = own(get("r-ip"));
    }
    if rec.dest_host.is_none() && rec.dest_ip.is_none() {
        return Err(SkipReason::Malformed("no destination host"));
    }
    if let Some(p) = get("cs-uri-port").and_then(util_b::port) {
        rec.dest_port = Some(p);
    }
    rec.url = match get("cs-uri") {
        Some(u) => own(Some(u)),
        None => {
            let scheme = get("cs-uri-scheme").map(str::to_ascii_lowercase);
            match (scheme.as_deref(), host) {
                (Some(s @ ("http" | "https" | "ftp")), Some(h)) => {
                    let path = get("cs-uri-path").unwrap_or("/");
                    let query =
                        get("cs-uri-query").map(|q| if q.starts_with('?') { q.to_string() } else { format!("?{q}") });
                    let port = match (s, rec.dest_port) {
                        ("http", Some(80)) | ("https", Some(443)) | ("ftp", Some(21)) | (_, None) => String::new(),
                        (_, Some(p)) => format!(":{p}"),
                    };
                    Some(Cow::Owned(format!("{s}://{h}{port}{path}{}", query.unwrap_or_default())))
                }
                _ => None,
            }
        }
    };
    rec.src_ip = own(get("c-ip"));
    rec.user = own(get("cs-username").or_else(|| get("cs-userdn")));
    rec.bytes_up = get("cs-bytes").map(util_b::bytes).unwrap_or(0);
    rec.bytes_down = get("sc-bytes").map(util_b::bytes).unwrap_or(0);
    let filter = get("sc-filter-result").unwrap_or("");
    let s_action = get("s-action").unwrap_or("");
    rec.action = if filter.eq_ignore_ascii_case("DENIED") || s_action.to_ascii_uppercase().contains("DENIED") {
        Action::Blocked
    } else if filter.eq_ignore_ascii_case("OBSERVED") || filter.eq_ignore_ascii_case("PROXIED") {
        Action::Allowed
    } else {
        Action::Unknown
    };
    rec.vendor_app = own(get("x-bluecoat-application-name"));
    rec.vendor_category = own(get("cs-categories").or_else(|| get("sc-categories")));
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{parse_all, registry};

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/azure-sentinel/bluecoat-proxysg/SymantecProxySG.syslogmessages.records01-09.log"
    );

    #[test]
    fn headerless_sample_uses_default_order() {
        let data = std::fs::read(SAMPLE).unwrap();
        let out = parse_all(&BlueCoat, &data).unwrap();
        assert_eq!(out.records.len(), 9);
        assert!(out.skips.is_empty());
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_588_385_800); // 2020-05-02 02:16:40 UTC
        assert_eq!(r.dest_host.as_deref(), Some("xxx-xxxx-xxxx-xxxx.oms.opinsights.azure.com"));
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.src_ip.as_deref(), Some("172.188.21.165"));
        assert_eq!((r.bytes_down, r.bytes_up), (5414, 2416));
        assert_eq!(r.action, Action::Allowed);
        assert_eq!(r.vendor_category.as_deref(), Some("Technology/Internet"));
        assert_eq!(r.vendor_app, None);
        assert_eq!(r.url, None);
        // An impossible client IP is kept as text.
        assert_eq!(out.records[1].1.src_ip.as_deref(), Some("172.888.184.81"));
        let r = &out.records[3].1;
        assert_eq!(r.dest_host.as_deref(), Some("download.windowsupdate.com"));
        assert_eq!(r.vendor_app.as_deref(), Some("Microsoft Update"));
        assert_eq!(
            r.url.as_deref().map(|u| u.starts_with("http://download.windowsupdate.com/d/msdownload/")),
            Some(true)
        );
        assert_eq!((r.bytes_down, r.bytes_up), (6290, 374));
        let r = &out.records[5].1;
        assert_eq!((r.user.as_deref(), r.dest_host.as_deref()), (Some("user76"), Some("px.moatads.com")));
        let r = &out.records[6].1;
        assert_eq!((r.dest_host.as_deref(), r.dest_port), (Some("http-proxy.abcd.com"), Some(31415)));
        assert_eq!(r.vendor_category.as_deref(), Some("WhiteList samplewhitelist sample-data-Domains Finance"));
    }

    #[test]
    fn fields_header_sets_column_order_and_denied_blocks() {
        let data = "#Software: SGOS 6.7.4.1\n#Version: 1.0\n#Date: 2021-03-01 10:00:00\n\
#Fields: date time time-taken c-ip cs-username cs-auth-group s-supplier-name s-supplier-ip s-supplier-country s-supplier-failures x-exception-id sc-filter-result cs-categories cs(Referer) sc-status s-action cs-method rs(Content-Type) cs-uri-scheme cs-host cs-uri-port cs-uri-path cs-uri-query cs-uri-extension cs(User-Agent) s-ip sc-bytes cs-bytes x-virus-id x-bluecoat-application-name x-bluecoat-application-operation cs-threat-risk\n\
2021-03-01 10:00:01 45 10.1.1.20 CORP\\bob \"Domain Users\" winatp-gw-eus.microsoft.com 52.1.2.3 US - - OBSERVED \"Computers/Internet;Technology/Internet\" - 200 TCP_TUNNELED CONNECT - tcp winatp-gw-eus.microsoft.com 443 / - - \"Mozilla/5.0 (Windows NT 10.0)\" 10.0.0.1 7000 1500 - \"Microsoft Defender\" \"none\" 2\n\
2021-03-01 10:00:02 3 10.1.1.21 - - - - - - policy_denied DENIED \"Personal%20Sites\" - 403 TCP_DENIED GET text/html https 52.9.9.9 443 /upload ?a=1 - - 10.0.0.1 300 900 - \"none\" \"none\" 5\n";
        let lines: Vec<&str> = data.lines().collect();
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("bluecoat"));
        let out = parse_all(&BlueCoat, data.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 2);
        assert!(out.skips.is_empty());
        let r = &out.records[0].1;
        assert_eq!(r.dest_host.as_deref(), Some("winatp-gw-eus.microsoft.com"));
        assert_eq!(r.user.as_deref(), Some("CORP\\bob"));
        assert_eq!(r.vendor_app.as_deref(), Some("Microsoft Defender"));
        assert_eq!((r.bytes_down, r.bytes_up), (7000, 1500));
        let r = &out.records[1].1;
        assert_eq!((r.dest_host.as_deref(), r.dest_ip.as_deref()), (None, Some("52.9.9.9")));
        assert_eq!(r.action, Action::Blocked);
        assert_eq!(r.vendor_category.as_deref(), Some("Personal Sites"));
        assert_eq!(r.url.as_deref(), Some("https://52.9.9.9/upload?a=1"));
    }

    #[test]
    fn sample_is_detected() {
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let lines: Vec<&str> = text.lines().take(10).collect();
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("bluecoat"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), s in "[ -~\"]{0,200}") {
            let _ = parse_all(&BlueCoat, &data);
            let with_header = format!("#Fields: date time cs-host\n{s}\n2020-01-01 {s}");
            let _ = parse_all(&BlueCoat, with_header.as_bytes());
            let _ = BlueCoat.sniff(&[s.as_str()]);
        }
    }
}
