//! ArcSight Common Event Format (`cef`), with or without a syslog prefix.
//!
//! Also accepts the non-conforming Cisco Firepower variant whose extension pairs are separated
//! by `;`. Zone rule: `rt`/`start`/`end` in epoch milliseconds are UTC by definition; the
//! `MMM dd yyyy HH:mm:ss` form is taken as UTC unless a zone follows it. Lines with no time at
//! all (no `rt`/`start`/`end` and no dated syslog prefix) are skipped as `bad_timestamp`.
use std::borrow::Cow;

use super::util_b::{
    self, Dest, KvStart, RawPair, cef_unescape_value, clean, dest_of, header_end, kv_key_starts, kv_pair, split_header,
};
use super::{
    ChunkParser, LineOutcome, LineParser, LineParserAdapter, LogFormat, Parser, Record, RecordKind, SkipReason,
};

pub static FORMATS: &[&dyn LogFormat] = &[&Cef];

pub struct Cef;

/// Where `CEF:<digit>` starts in a line, if anywhere.
fn cef_start(line: &str) -> Option<usize> {
    super::tagged_start(line, "CEF:")
}

impl LogFormat for Cef {
    fn name(&self) -> &'static str {
        "cef"
    }
    fn description(&self) -> &'static str {
        "ArcSight Common Event Format (CEF:0/1), optional syslog prefix; Cisco Firepower ';' variant"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        super::tagged_header_score(lines, "CEF:", 7)
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(CefLines::default()))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(CefLines::default())))
    }
}

/// A CEF event split into its parts; extension values are unescaped.
#[derive(Debug)]
pub struct CefEvent<'a> {
    pub prefix: &'a str,
    /// Version, vendor, product, device version, signature id, name, severity.
    pub header: Vec<String>,
    pub ext: Vec<(&'a str, Cow<'a, str>)>,
}

impl CefEvent<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.ext.iter().rev().find(|(k, _)| *k == key).and_then(|(_, v)| clean(v))
    }
}

/// Splits one line into a [`CefEvent`].
pub fn parse_cef(line: &str) -> Result<CefEvent<'_>, SkipReason> {
    let start = cef_start(line).ok_or(SkipReason::Malformed("no CEF header"))?;
    let (header, ext) = split_header(line.get(start + 4..).unwrap_or_default(), 7)
        .ok_or(SkipReason::Malformed("CEF header has fewer than 7 fields"))?;
    let mut bufs = PairBufs::default();
    let (sep, starts) = bufs.split(ext);
    let ext = (0..starts.len())
        .filter_map(|n| kv_pair(ext, sep, starts, n))
        .map(|p| (p.key, cef_unescape_value(p.value)))
        .collect();
    Ok(CefEvent { prefix: line.get(..start).unwrap_or_default(), header, ext })
}

/// Key-start buffers reused from line to line.
#[derive(Default)]
struct PairBufs {
    spaced: Vec<KvStart>,
    semi: Vec<KvStart>,
}

impl PairBufs {
    /// Splits an extension on whitespace or, for the Firepower variant, on `;`; returns the
    /// separator chosen and the key starts.
    fn split(&mut self, ext: &str) -> (Option<u8>, &[KvStart]) {
        kv_key_starts(ext, None, &mut self.spaced);
        let spaced = self.spaced.len();
        // Firepower writes `k=v;k=v`: only then does splitting on ';' find far more keys (and
        // without a ';' in the extension there is nothing to try).
        // Each key needs an '=', so the ';' split cannot win unless there are enough of them:
        // counting them is far cheaper than a second split of every ordinary line.
        let could_win = || memchr::memchr_iter(b'=', ext.as_bytes()).count() > 2 * spaced + 1;
        if memchr::memchr(b';', ext.as_bytes()).is_some() && could_win() {
            kv_key_starts(ext, Some(b';'), &mut self.semi);
            if self.semi.len() > 2 * spaced + 1 {
                return (Some(b';'), &self.semi);
            }
        }
        (None, &self.spaced)
    }
}

/// The extension keys the record mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Request,
    ServiceName,
    Dhost,
    Dst,
    Rt,
    Start,
    End,
    Dpt,
    Src,
    C6a2,
    Suser,
    Shost,
    In,
    Out,
    Act,
    App,
    Cat,
    Cs1Label,
    Cs2Label,
    Cs3Label,
    Cs4Label,
    Cs5Label,
    Cs6Label,
    Cs1,
    Cs2,
    Cs3,
    Cs4,
    Cs5,
    Cs6,
}

const KEYS: usize = Key::Cs6 as usize + 1;

/// Custom string labels and their values, in the order they are searched for a category.
const CUSTOM: [(Key, Key); 6] = [
    (Key::Cs1Label, Key::Cs1),
    (Key::Cs2Label, Key::Cs2),
    (Key::Cs3Label, Key::Cs3),
    (Key::Cs4Label, Key::Cs4),
    (Key::Cs5Label, Key::Cs5),
    (Key::Cs6Label, Key::Cs6),
];

impl Key {
    fn of(name: &str) -> Option<Key> {
        Some(match name {
            "request" => Key::Request,
            "destinationServiceName" => Key::ServiceName,
            "dhost" => Key::Dhost,
            "dst" => Key::Dst,
            "rt" => Key::Rt,
            "start" => Key::Start,
            "end" => Key::End,
            "dpt" => Key::Dpt,
            "src" => Key::Src,
            "c6a2" => Key::C6a2,
            "suser" => Key::Suser,
            "shost" => Key::Shost,
            "in" => Key::In,
            "out" => Key::Out,
            "act" => Key::Act,
            "app" => Key::App,
            "cat" => Key::Cat,
            "cs1Label" => Key::Cs1Label,
            "cs2Label" => Key::Cs2Label,
            "cs3Label" => Key::Cs3Label,
            "cs4Label" => Key::Cs4Label,
            "cs5Label" => Key::Cs5Label,
            "cs6Label" => Key::Cs6Label,
            "cs1" => Key::Cs1,
            "cs2" => Key::Cs2,
            "cs3" => Key::Cs3,
            "cs4" => Key::Cs4,
            "cs5" => Key::Cs5,
            "cs6" => Key::Cs6,
            _ => return None,
        })
    }
}

/// One extension value as the line holds it (still escaped) or as [`parse_cef`] decoded it.
#[derive(Clone, Copy)]
enum Val<'e, 'l> {
    Raw(&'l str),
    Unescaped(&'e Cow<'l, str>),
}

/// The last value of each key the mapping reads, so each is found once instead of by a scan of
/// all pairs per look-up.
struct Slots<'e, 'l>([Option<Val<'e, 'l>>; KEYS]);

impl<'e, 'l> Slots<'e, 'l> {
    fn new() -> Self {
        Slots([None; KEYS])
    }

    fn set(&mut self, key: Key, val: Val<'e, 'l>) {
        if let Some(slot) = self.0.get_mut(key as usize) {
            *slot = Some(val);
        }
    }

    /// The value unescaped and cleaned: borrowed from the line unless unescaping changed it.
    fn get(&self, key: Key) -> Option<Cow<'l, str>> {
        let unescaped = match (*self.0.get(key as usize)?)? {
            Val::Raw(raw) => cef_unescape_value(raw),
            Val::Unescaped(v) => match v {
                Cow::Borrowed(b) => Cow::Borrowed(*b),
                Cow::Owned(o) => return clean(o).map(|c| Cow::Owned(c.to_owned())),
            },
        };
        match unescaped {
            Cow::Borrowed(b) => clean(b).map(Cow::Borrowed),
            Cow::Owned(o) => clean(&o).map(|c| Cow::Owned(c.to_owned())),
        }
    }
}

/// [`dest_of`] on a value that may not outlive this call.
fn dest_of_cow<'l>(v: &Cow<'l, str>) -> Dest<'l> {
    match v {
        Cow::Borrowed(b) => dest_of(b),
        Cow::Owned(o) => {
            let d = dest_of(o);
            let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
            Dest { host: own(d.host), ip: own(d.ip), port: d.port }
        }
    }
}

fn mentions_category(label: &str) -> bool {
    label.as_bytes().windows(7).any(|w| w.eq_ignore_ascii_case(b"categor"))
}

/// Escapes a header field for writing CEF.
pub fn escape_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

/// Escapes an extension value for writing CEF.
pub fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\n', "\\n").replace('\r', "\\r")
}

fn time_of(v: &str) -> Option<i64> {
    util_b::parse_any_time(v).or_else(|| {
        // Firepower glues junk after the number (`1691731769000;"/file...`).
        let digits: &str = &v[..v.bytes().take_while(u8::is_ascii_digit).count()];
        (digits.len() >= 10).then(|| util_b::epoch_auto(digits)).flatten()
    })
}

/// A dated syslog prefix: RFC 5424 (`<134>1 2020-03-29T13:19:22Z host`) or
/// `MMM dd yyyy HH:mm:ss`. Year-less BSD stamps are ambiguous and ignored.
pub(crate) fn prefix_time(prefix: &str) -> Option<i64> {
    let p = prefix.trim_start();
    let p = match p.strip_prefix('<') {
        Some(r) => r.split_once('>').map(|(_, rest)| rest).unwrap_or(r),
        None => p,
    };
    let toks: Vec<&str> = p.split_whitespace().collect();
    for (i, t) in toks.iter().enumerate().take(3) {
        if t.len() >= 19 && t.as_bytes().get(4) == Some(&b'-') {
            return util_b::parse_iso(t);
        }
        if util_b::month_of(t).is_some() && toks.len() >= i + 4 {
            return util_b::parse_mmm_dd_yyyy(&toks[i..i + 4].join(" "));
        }
    }
    None
}

/// Maps a parsed event to a record.
pub fn to_record<'a>(ev: &CefEvent<'a>) -> Result<Record<'a>, SkipReason> {
    let mut slots = Slots::new();
    for (k, v) in &ev.ext {
        if let Some(k) = Key::of(k) {
            slots.set(k, Val::Unescaped(v));
        }
    }
    record_of(&slots, ev.prefix)
}

fn record_of<'l>(ev: &Slots<'_, 'l>, prefix: &str) -> Result<Record<'l>, SkipReason> {
    let mut rec = Record { kind: RecordKind::Traffic, ..Default::default() };
    if let Some(u) = ev.get(Key::Request) {
        let d = dest_of_cow(&u);
        rec.dest_host = d.host;
        rec.dest_ip = d.ip;
        rec.dest_port = d.port;
        rec.url = Some(u);
    }
    let service = ev.get(Key::ServiceName);
    if rec.dest_host.is_none() {
        let named = ev.get(Key::Dhost).or_else(|| service.clone().filter(|s| s.contains('.')));
        if let Some(h) = named {
            let d = dest_of_cow(&h);
            rec.dest_host = d.host;
            if rec.dest_ip.is_none() {
                rec.dest_ip = d.ip;
            }
        }
    }
    if let Some(ip) = ev.get(Key::Dst) {
        rec.dest_ip = Some(ip);
    }
    if rec.dest_host.is_none() && rec.dest_ip.is_none() {
        return Err(SkipReason::Irrelevant("no destination"));
    }
    rec.ts = [Key::Rt, Key::Start, Key::End]
        .iter()
        .find_map(|k| ev.get(*k).and_then(|v| time_of(&v)))
        .or_else(|| prefix_time(prefix))
        .ok_or(SkipReason::BadTimestamp)?;
    if let Some(p) = ev.get(Key::Dpt).and_then(|v| util_b::port(&v)) {
        rec.dest_port = Some(p);
    }
    rec.src_ip = ev.get(Key::Src).or_else(|| ev.get(Key::C6a2));
    // Firepower puts a Python dict in suser; that is not a user name.
    rec.user = ev.get(Key::Suser).filter(|u| !u.starts_with('{'));
    rec.device = ev.get(Key::Shost);
    rec.bytes_up = ev.get(Key::In).map(|v| util_b::bytes(&v)).unwrap_or(0);
    rec.bytes_down = ev.get(Key::Out).map(|v| util_b::bytes(&v)).unwrap_or(0);
    rec.action = ev.get(Key::Act).map(|v| util_b::action_of(&v)).unwrap_or_default();
    rec.vendor_app = ev.get(Key::App).or_else(|| service.filter(|s| !s.contains('.')));
    rec.vendor_category = ev.get(Key::Cat).or_else(|| {
        CUSTOM.iter().find_map(|(label, value)| {
            let label = ev.get(*label)?;
            if mentions_category(&label) { ev.get(*value) } else { None }
        })
    });
    Ok(rec)
}

/// Reads each line in place: no header fields are built and values are only unescaped (and
/// copied) when they carry a backslash and the mapping reads them.
#[derive(Default)]
struct CefLines {
    bufs: PairBufs,
}

impl LineParser for CefLines {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let Some(start) = cef_start(line) else {
            return LineOutcome::Skip(SkipReason::Malformed("no CEF header"));
        };
        let after_tag = line.get(start + 4..).unwrap_or_default();
        let Some(ext) = header_end(after_tag, 7).and_then(|i| after_tag.get(i..)) else {
            return LineOutcome::Skip(SkipReason::Malformed("CEF header has fewer than 7 fields"));
        };
        let (sep, starts) = self.bufs.split(ext);
        let mut slots = Slots::new();
        for n in 0..starts.len() {
            // Only known keys need their value cut out and trimmed.
            if let Some(&KvStart { key, eq }) = starts.get(n)
                && let Some(k) = ext.get(key..eq).and_then(Key::of)
                && let Some(RawPair { value, .. }) = kv_pair(ext, sep, starts, n)
            {
                slots.set(k, Val::Raw(value));
            }
        }
        match record_of(&slots, line.get(..start).unwrap_or_default()) {
            Ok(r) => LineOutcome::Record(r),
            Err(e) => LineOutcome::Skip(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Action, parse_all, registry};
    use proptest::prelude::*;

    const ELASTIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/elastic-integrations/cef/test-cef.log");
    const FIREPOWER: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/azure-sentinel/cef/Cisco_Firepower_ASimWebSession_RawLogs.txt"
    );

    #[test]
    fn elastic_sample_has_no_times_and_one_event_without_destination() {
        let data = std::fs::read(ELASTIC).unwrap();
        let out = parse_all(&Cef, &data).unwrap();
        assert_eq!(out.records.len(), 0);
        let reasons: Vec<_> = out.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect();
        assert_eq!(
            reasons,
            vec![
                (1, SkipReason::BadTimestamp),
                (2, SkipReason::BadTimestamp),
                (3, SkipReason::Irrelevant("no destination")),
                (4, SkipReason::BadTimestamp),
            ]
        );
        // The fields themselves are read correctly.
        let text = std::fs::read_to_string(ELASTIC).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let ev = parse_cef(lines[0]).unwrap();
        assert_eq!(ev.header[1..3], ["Elastic".to_string(), "Vaporware".to_string()]);
        let e1 = to_record(&ev).unwrap_err();
        assert_eq!(e1, SkipReason::BadTimestamp);
        assert_eq!(ev.get("request"), Some("https://www.example.com/cart"));
        let ev = parse_cef(lines[3]).unwrap();
        assert_eq!(ev.get("message"), Some("This event is padded with whitespace"));
        assert_eq!(ev.get("src"), Some("192.168.3.4"));
        let ev = parse_cef(lines[1]).unwrap();
        assert_eq!((ev.get("suser"), ev.get("dpt")), (Some("bob"), Some("443")));
    }

    #[test]
    fn elastic_lines_with_rt_become_records() {
        let line = "CEF:0|Elastic|Vaporware|1.0.0-alpha|18|Web request|low|eventId=3457 rt=1694428385000 src=89.160.20.156 spt=33876 dst=192.168.10.1 dpt=443 request=https://www.example.com/cart suser=bob in=1200 out=45000 act=allowed app=HTTPS cat=Shopping";
        let out = parse_all(&Cef, line.as_bytes()).unwrap();
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_694_428_385);
        assert_eq!(
            (r.dest_host.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("www.example.com"), Some("192.168.10.1"), Some(443))
        );
        assert_eq!((r.bytes_up, r.bytes_down), (1200, 45000));
        assert_eq!((r.user.as_deref(), r.action), (Some("bob"), Action::Allowed));
        assert_eq!((r.vendor_app.as_deref(), r.vendor_category.as_deref()), (Some("HTTPS"), Some("Shopping")));
        let line = "Jan 17 2020 08:52:10 fw01 CEF:0|Forcepoint|NGFW|6.5|70018|Connection_Allowed|0|deviceExternalId=fw01 node 1 dvc=10.1.1.1 rt=Jan 17 2020 08:52:10 src=10.0.0.8 dst=52.1.1.1 dpt=443 dhost=slack.com suser=CORP\\\\alice msg=frag\\=0x4000 act=Block destinationServiceName=HTTPS";
        let out = parse_all(&Cef, line.as_bytes()).unwrap();
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_579_251_130);
        assert_eq!((r.dest_host.as_deref(), r.user.as_deref()), (Some("slack.com"), Some("CORP\\alice")));
        assert_eq!((r.action, r.vendor_app.as_deref()), (Action::Blocked, Some("HTTPS")));
        let ev = parse_cef(line).unwrap();
        assert_eq!((ev.get("msg"), ev.get("deviceExternalId")), (Some("frag=0x4000"), Some("fw01 node 1")));
    }

    #[test]
    fn firepower_semicolon_variant_is_accepted() {
        let data = std::fs::read(FIREPOWER).unwrap();
        let out = parse_all(&Cef, &data).unwrap();
        assert_eq!(out.records.len(), 11);
        assert!(out.skips.is_empty());
        let r = &out.records[0].1;
        assert_eq!(r.ts, 1_687_855_290);
        assert_eq!(
            (r.dest_host.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (Some("www.google.com"), Some("2.3.4.5"), Some(90))
        );
        assert_eq!((r.src_ip.as_deref(), r.user.as_deref(), r.action), (Some("1.2.3.4"), Some("abc"), Action::Blocked));
        assert_eq!(r.vendor_app.as_deref(), Some("HTTP"));
        // The Python-dict suser is dropped, the glued rt still gives the time.
        let r = &out.records[3].1;
        assert_eq!(
            (r.ts, r.user.as_deref(), r.dest_ip.as_deref(), r.dest_port),
            (1_691_731_769, None, Some("1.2.3.4"), Some(80))
        );
        let r = &out.records[10].1;
        assert_eq!(r.dest_host.as_deref(), Some("ctldl.windowsupdate.com"));
        assert_eq!(r.ts, 1_691_988_234);
    }

    #[test]
    fn samples_are_detected() {
        for path in [ELASTIC, FIREPOWER] {
            let text = std::fs::read_to_string(path).unwrap();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(10).collect();
            assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("cef"), "{path}");
        }
    }

    /// The parser as it was before it read lines in place, kept as the reference.
    mod reference {
        use super::super::{CefEvent, cef_start, prefix_time, time_of};
        use crate::ingest::util_b::{self, RawPair, cef_unescape_value, dest_of, split_header, split_kv};
        use crate::ingest::{Record, RecordKind, SkipReason};
        use std::borrow::Cow;

        pub fn parse_cef(line: &str) -> Result<CefEvent<'_>, SkipReason> {
            let start = cef_start(line).ok_or(SkipReason::Malformed("no CEF header"))?;
            let (header, ext) = split_header(&line[start + 4..], 7)
                .ok_or(SkipReason::Malformed("CEF header has fewer than 7 fields"))?;
            let spaced = split_kv(ext, None);
            let could_win = || memchr::memchr_iter(b'=', ext.as_bytes()).count() > 2 * spaced.len() + 1;
            let pairs: Vec<RawPair<'_>> = if ext.contains(';') && could_win() {
                let semi = split_kv(ext, Some(b';'));
                if semi.len() > 2 * spaced.len() + 1 { semi } else { spaced }
            } else {
                spaced
            };
            let ext = pairs.into_iter().map(|p| (p.key, cef_unescape_value(p.value))).collect();
            Ok(CefEvent { prefix: &line[..start], header, ext })
        }

        pub fn to_record<'a>(ev: &'a CefEvent<'a>) -> Result<Record<'a>, SkipReason> {
            let b = |s: &'a str| Cow::Borrowed(s);
            let mut rec = Record { kind: RecordKind::Traffic, ..Default::default() };
            let request = ev.get("request");
            if let Some(u) = request {
                let d = dest_of(u);
                rec.dest_host = d.host;
                rec.dest_ip = d.ip;
                rec.dest_port = d.port;
                rec.url = Some(b(u));
            }
            let service = ev.get("destinationServiceName");
            if rec.dest_host.is_none() {
                let named = ev.get("dhost").or(service.filter(|s| s.contains('.')));
                if let Some(h) = named {
                    let d = dest_of(h);
                    rec.dest_host = d.host;
                    if rec.dest_ip.is_none() {
                        rec.dest_ip = d.ip;
                    }
                }
            }
            if let Some(ip) = ev.get("dst") {
                rec.dest_ip = Some(b(ip));
            }
            if rec.dest_host.is_none() && rec.dest_ip.is_none() {
                return Err(SkipReason::Irrelevant("no destination"));
            }
            rec.ts = ["rt", "start", "end"]
                .iter()
                .find_map(|k| ev.get(k).and_then(time_of))
                .or_else(|| prefix_time(ev.prefix))
                .ok_or(SkipReason::BadTimestamp)?;
            if let Some(p) = ev.get("dpt").and_then(util_b::port) {
                rec.dest_port = Some(p);
            }
            rec.src_ip = ev.get("src").or(ev.get("c6a2")).map(b);
            rec.user = ev.get("suser").filter(|u| !u.starts_with('{')).map(b);
            rec.device = ev.get("shost").map(b);
            rec.bytes_up = ev.get("in").map(util_b::bytes).unwrap_or(0);
            rec.bytes_down = ev.get("out").map(util_b::bytes).unwrap_or(0);
            rec.action = ev.get("act").map(util_b::action_of).unwrap_or_default();
            rec.vendor_app = ev.get("app").or(service.filter(|s| !s.contains('.'))).map(b);
            const CUSTOM: [(&str, &str); 6] = [
                ("cs1Label", "cs1"),
                ("cs2Label", "cs2"),
                ("cs3Label", "cs3"),
                ("cs4Label", "cs4"),
                ("cs5Label", "cs5"),
                ("cs6Label", "cs6"),
            ];
            let labelled_category = CUSTOM.iter().find_map(|(label, value)| {
                let label = ev.get(label)?;
                if label.to_ascii_lowercase().contains("categor") { ev.get(value) } else { None }
            });
            rec.vendor_category = ev.get("cat").or(labelled_category).map(b);
            Ok(rec)
        }

        pub fn outcome(line: &str) -> Result<Record<'static>, SkipReason> {
            let ev = parse_cef(line)?;
            to_record(&ev).map(Record::into_owned)
        }
    }

    fn fast_outcome(parser: &mut CefLines, line: &str) -> Result<Record<'static>, SkipReason> {
        match parser.parse_line(line) {
            LineOutcome::Record(r) => Ok(r.into_owned()),
            LineOutcome::Skip(e) => Err(e),
            LineOutcome::Header => Err(SkipReason::Malformed("header")),
        }
    }

    const KEY_NAMES: &[&str] = &[
        "request",
        "destinationServiceName",
        "dhost",
        "dst",
        "rt",
        "start",
        "end",
        "dpt",
        "src",
        "c6a2",
        "suser",
        "shost",
        "in",
        "out",
        "act",
        "app",
        "cat",
        "cs1Label",
        "cs2Label",
        "cs3Label",
        "cs4Label",
        "cs5Label",
        "cs6Label",
        "cs1",
        "cs2",
        "cs3",
        "cs4",
        "cs5",
        "cs6",
    ];

    #[test]
    fn every_mapped_key_has_a_slot() {
        assert_eq!(KEY_NAMES.len(), KEYS);
        for (i, name) in KEY_NAMES.iter().enumerate() {
            assert_eq!(Key::of(name).map(|k| k as usize), Some(i), "{name}");
        }
        assert_eq!(Key::of("Request"), None);
    }

    fn any_key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(KEY_NAMES).prop_map(str::to_string),
            1 => prop::sample::select(&["msg", "spt", "cs1Labelx", "Request", "a.b", "x[1]"][..]).prop_map(str::to_string),
        ]
    }

    fn any_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(
                &[
                    "1694428385000",
                    "1691731769000;\"/file",
                    "Jan 17 2020 08:52:10",
                    "2020-03-29T13:19:22Z",
                    "https://www.example.com:8443/x?a=b",
                    "http://[2001:db8::1]:8080/",
                    "slack.com",
                    "10.0.0.1",
                    "::ffff:1.2.3.4",
                    "HTTPS",
                    "a\\=b",
                    "CORP\\\\alice",
                    "{'x': 1}",
                    "-",
                    "null",
                    " ",
                    "",
                    "Category Name",
                    "DynCategory",
                    "blocked",
                    "permitted",
                    "1200",
                    "-5",
                    "1e3",
                    "443",
                    "0",
                    "x\\nY",
                    "sl\\=ack.com",
                    " padded ",
                    "C:\\Windows",
                    "\\",
                    "é.example",
                ][..]
            )
            .prop_map(str::to_string),
            "[a-zA-Z0-9 .:/\\\\=;|{}-]{0,16}",
        ]
    }

    fn any_line() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(
            &[
                "",
                "<14>Mar  1 00:00:00 host ",
                "Jan 17 2020 08:52:10 fw01 ",
                "<134>1 2020-03-29T13:19:22Z host ",
                "<14>junk ",
                "Mar 1 2021 ",
                "CEF:x ",
            ][..],
        );
        let header = prop::sample::select(
            &["CEF:0|V|P|1|100|N|5|", "CEF:1|V\\|x|P|1|100|N|5|", "CEF:0|V|P|1|100|N|", "CEF:0|a\\\\|b|c|d|e|f|g|"][..],
        );
        let sep = prop::sample::select(&[" ", " ", ";", " ;", "\t", "  "][..]);
        let pairs = prop::collection::vec((any_key(), any_value(), sep.clone()), 0..12);
        // Most lines get a destination, a time and a labelled category so that the mapping
        // past the early skips is exercised too.
        let base = prop::collection::vec(
            (
                prop::sample::select(&["dst", "dhost", "rt", "cs2Label", "cs2", "destinationServiceName"][..]),
                any_value(),
                sep,
            ),
            0..6,
        );
        let label = prop::sample::select(&["", "cs3Label=Web Category cs3=News ", "cs1Label=categorY cs1=\\=x "][..]);
        (prefix, header, label, base, pairs).prop_map(|(prefix, header, label, base, pairs)| {
            let base: String = base.iter().map(|(k, v, s)| format!("{k}={v}{s}")).collect();
            let ext: String = pairs.iter().map(|(k, v, s)| format!("{k}={v}{s}")).collect();
            format!("{prefix}{header}{label}{base}{ext}")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn in_place_parser_matches_the_reference(line in any_line()) {
            let want = reference::outcome(&line);
            prop_assert_eq!(&fast_outcome(&mut CefLines::default(), &line), &want);
            let public = parse_cef(&line).and_then(|ev| to_record(&ev).map(Record::into_owned));
            prop_assert_eq!(&public, &want);
            if let (Ok(ev), Ok(old)) = (parse_cef(&line), reference::parse_cef(&line)) {
                prop_assert_eq!(ev.header, old.header);
                prop_assert_eq!(ev.ext, old.ext);
                prop_assert_eq!(ev.prefix, old.prefix);
            }
        }

        #[test]
        fn in_place_parser_matches_the_reference_on_any_text(line in "(CEF:0\\|)?[ -~]{0,200}") {
            prop_assert_eq!(fast_outcome(&mut CefLines::default(), &line), reference::outcome(&line));
        }

        #[test]
        fn buffers_carry_nothing_between_lines(a in any_line(), b in any_line()) {
            let mut parser = CefLines::default();
            let _ = parser.parse_line(&a);
            prop_assert_eq!(fast_outcome(&mut parser, &b), reference::outcome(&b));
        }
    }

    fn header_field() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 |\\\\=._-]{0,12}"
    }

    fn ext_value() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 |\\\\=.:/_\n-]{1,24}".prop_filter("no edge spaces", |s| s.trim() == s && !s.is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn escaping_round_trips(vendor in header_field(), product in header_field(), name in header_field(),
                                values in proptest::collection::vec(ext_value(), 1..5)) {
            let keys = ["request", "suser", "msg", "cs1", "dhost"];
            let ext: Vec<String> = values.iter().zip(keys).map(|(v, k)| format!("{k}={}", escape_value(v))).collect();
            let line = format!("CEF:0|{}|{}|1.0|100|{}|5|{}", escape_header(&vendor), escape_header(&product), escape_header(&name), ext.join(" "));
            let ev = parse_cef(&line).unwrap();
            prop_assert_eq!(&ev.header[1], &vendor);
            prop_assert_eq!(&ev.header[2], &product);
            prop_assert_eq!(&ev.header[5], &name);
            prop_assert_eq!(ev.ext.len(), values.len());
            for ((k, v), (want_v, want_k)) in ev.ext.iter().zip(values.iter().zip(keys)) {
                prop_assert_eq!(*k, want_k);
                prop_assert_eq!(v.as_ref(), want_v.as_str());
            }
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), s in "(CEF:0\\|)?[ -~]{0,200}") {
            let _ = parse_all(&Cef, &data);
            let _ = parse_all(&Cef, s.as_bytes());
            let _ = Cef.sniff(&[s.as_str()]);
        }
    }
}
