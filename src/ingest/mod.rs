//! Log import: one module per format behind [`LogFormat`], a bounded line reader shared by all,
//! and the pipeline that turns records into per-day aggregates in the cache (`pipeline`).
use std::borrow::Cow;
use std::io::{self, BufRead};

pub mod pipeline;
pub mod registry;

pub mod asa;
pub mod bluecoat;
pub mod cef;
pub mod checkpoint;
pub mod defender_csv;
pub mod defender_json;
pub mod fortigate;
pub mod juniper;
pub mod leef;
pub mod mdca_csv;
pub mod panos;
pub mod squid;
#[cfg(test)]
pub mod test_support;
pub mod util_a;
pub mod util_b;
pub mod zeek;
pub mod zscaler;

/// Longest line any parser sees. Longer lines are skipped and counted, never buffered whole,
/// so a 100 MB line or a file of garbage without newlines cannot exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Action {
    #[default]
    Unknown,
    Allowed,
    Blocked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordKind {
    /// A connection or web request: counts as traffic to `dest_host` / `dest_ip`.
    #[default]
    Traffic,
    /// A logon (or device ownership) record: feeds the user↔device edges only.
    Logon,
}

/// One normalised log record. Borrowed from the input line where possible.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record<'a> {
    pub kind: RecordKind,
    /// Unix seconds, UTC. Each format documents how it gets there (zone rules).
    pub ts: i64,
    pub user: Option<Cow<'a, str>>,
    pub src_ip: Option<Cow<'a, str>>,
    pub device: Option<Cow<'a, str>>,
    /// Destination host name (not an IP), lower-case is not required: the pipeline folds case.
    pub dest_host: Option<Cow<'a, str>>,
    pub dest_ip: Option<Cow<'a, str>>,
    pub dest_port: Option<u16>,
    pub url: Option<Cow<'a, str>>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub action: Action,
    /// The appliance's own application name (PAN App-ID, FortiGate `app`, Zscaler `appname` …).
    pub vendor_app: Option<Cow<'a, str>>,
    pub vendor_category: Option<Cow<'a, str>>,
}

/// Why a line was not imported. Stable snake_case names: they are the keys of `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The line does not have the shape of the format.
    Malformed(&'static str),
    /// Well-formed, but a message type that carries no discovery data (an ASA interface event).
    Irrelevant(&'static str),
    TooLong,
    BadTimestamp,
    NotUtf8,
    /// Already imported by an earlier run (resume after a kill).
    AlreadyImported,
}

impl SkipReason {
    pub fn key(&self) -> String {
        match self {
            SkipReason::Malformed(what) => format!("malformed: {what}"),
            SkipReason::Irrelevant(what) => format!("irrelevant: {what}"),
            SkipReason::TooLong => "line_too_long".into(),
            SkipReason::BadTimestamp => "bad_timestamp".into(),
            SkipReason::NotUtf8 => "not_utf8".into(),
            SkipReason::AlreadyImported => "already_imported".into(),
        }
    }
}

/// Where in the input a record or skip came from. `offset_end` is the byte offset just past the
/// line (in the decompressed stream), used as the resume checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u64,
    pub offset_end: u64,
}

/// Receives what a parser finds. The pipeline implements it; tests collect into a Vec.
pub trait RecordSink {
    fn record(&mut self, pos: Position, rec: Record<'_>);
    fn skip(&mut self, pos: Position, reason: SkipReason, raw: &[u8]);
}

/// Line-by-line format detection: how many of the first lines a format accepts, out of how many
/// were looked at. Most formats say "mine" when a large enough share of the sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineVotes {
    pub hits: usize,
    pub of: usize,
}

impl LineVotes {
    pub(crate) fn count(lines: &[&str], take: usize, accepts: impl Fn(&str) -> bool) -> LineVotes {
        let sample = &lines[..lines.len().min(take)];
        LineVotes { hits: sample.iter().filter(|l| accepts(l)).count(), of: sample.len() }
    }

    /// At least `num / den` of a non-empty sample.
    pub(crate) fn share_at_least(self, num: usize, den: usize) -> bool {
        self.of > 0 && self.hits * den >= self.of * num
    }
}

/// Where a `TAG<digit>` header (`CEF:0`, `LEEF:2`) starts in a line, if anywhere: after a
/// syslog prefix, and not fooled by the tag appearing without a version.
pub(crate) fn tagged_start(line: &str, tag: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = line.get(from..)?.find(tag) {
        let at = from + i;
        if line.as_bytes().get(at + tag.len()).is_some_and(u8::is_ascii_digit) {
            return Some(at);
        }
        from = at + tag.len();
    }
    None
}

/// A log format. `sniff` scores the first lines of a file for auto-detection; `parser` makes
/// a fresh, possibly stateful parser (Zeek and ELFF read their column order from header lines).
pub trait LogFormat: Send + Sync {
    /// Short stable name used by `--format` (e.g. `squid`, `zeek`, `panos`).
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// 0 = not this format, 100 = certain. `lines` are the first non-empty lines (BOM stripped).
    fn sniff(&self, lines: &[&str]) -> u8;
    fn parser(&self) -> Box<dyn Parser>;
}

pub trait Parser {
    /// Reads the whole stream, reporting every record and every skipped line to `sink`.
    fn parse(&mut self, input: &mut dyn BufRead, sink: &mut dyn RecordSink) -> io::Result<()>;
}

/// A line-oriented parser: implement this and wrap it in [`LineParserAdapter`] to get [`Parser`].
pub trait LineParser {
    /// Parses one line (without its newline, `\r` trimmed, BOM stripped on line 1).
    /// Header and comment lines return `LineOutcome::Header` and are not counted as records.
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a>;
}

#[derive(Debug)]
pub enum LineOutcome<'a> {
    Record(Record<'a>),
    /// Header / comment / blank: not a record, not counted.
    Header,
    Skip(SkipReason),
}

pub struct LineParserAdapter<P: LineParser>(pub P);

impl<P: LineParser> Parser for LineParserAdapter<P> {
    fn parse(&mut self, input: &mut dyn BufRead, sink: &mut dyn RecordSink) -> io::Result<()> {
        for_each_line(input, |pos, line| match line {
            Line::Text(text) => match self.0.parse_line(text) {
                LineOutcome::Record(rec) => sink.record(pos, rec),
                LineOutcome::Header => {}
                LineOutcome::Skip(reason) => sink.skip(pos, reason, text.as_bytes()),
            },
            Line::TooLong(prefix) => sink.skip(pos, SkipReason::TooLong, prefix),
            Line::NotUtf8(raw) => sink.skip(pos, SkipReason::NotUtf8, raw),
        })
    }
}

/// One physical line as the shared reader hands it out.
pub enum Line<'a> {
    Text(&'a str),
    /// Longer than [`MAX_LINE`]; carries the first bytes only, for the skip report.
    TooLong(&'a [u8]),
    NotUtf8(&'a [u8]),
}

/// Streams `input` line by line with bounded memory. Blank lines are passed over (but counted in
/// line numbers); `\r\n` endings and a UTF-8 BOM on the first line are removed.
pub fn for_each_line(input: &mut dyn BufRead, mut f: impl FnMut(Position, Line<'_>)) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut line_no: u64 = 0;
    let mut offset: u64 = 0;
    loop {
        buf.clear();
        let mut too_long = false;
        let mut consumed_total = 0u64;
        // Read up to the newline, keeping at most MAX_LINE bytes.
        loop {
            let chunk = match input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                let room = MAX_LINE + 1 - buf.len().min(MAX_LINE + 1);
                let keep = take.min(room);
                buf.extend_from_slice(&chunk[..keep]);
                if buf.len() > MAX_LINE {
                    too_long = true;
                }
            }
            input.consume(take);
            consumed_total += take as u64;
            if done {
                break;
            }
        }
        if consumed_total == 0 {
            return Ok(());
        }
        line_no += 1;
        offset += consumed_total;
        let pos = Position { line: line_no, offset_end: offset };
        if too_long {
            let prefix = &buf[..buf.len().min(120)];
            f(pos, Line::TooLong(prefix));
            continue;
        }
        let mut bytes: &[u8] = &buf;
        if let [rest @ .., b'\n'] = bytes {
            bytes = rest;
        }
        if let [rest @ .., b'\r'] = bytes {
            bytes = rest;
        }
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => f(pos, Line::Text(text)),
            Err(_) => f(pos, Line::NotUtf8(bytes)),
        }
    }
}

/// Test and tooling helper: a sink that keeps owned copies of everything.
#[derive(Debug, Default)]
pub struct CollectSink {
    pub records: Vec<(Position, Record<'static>)>,
    pub skips: Vec<(Position, SkipReason, String)>,
}

impl RecordSink for CollectSink {
    fn record(&mut self, pos: Position, rec: Record<'_>) {
        self.records.push((pos, rec.into_owned()));
    }
    fn skip(&mut self, pos: Position, reason: SkipReason, raw: &[u8]) {
        self.skips.push((pos, reason, crate::sanitize::display_safe_bytes(raw)));
    }
}

fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    c.map(|v| Cow::Owned(v.into_owned()))
}

impl Record<'_> {
    pub fn into_owned(self) -> Record<'static> {
        Record {
            kind: self.kind,
            ts: self.ts,
            user: own(self.user),
            src_ip: own(self.src_ip),
            device: own(self.device),
            dest_host: own(self.dest_host),
            dest_ip: own(self.dest_ip),
            dest_port: self.dest_port,
            url: own(self.url),
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
            action: self.action,
            vendor_app: own(self.vendor_app),
            vendor_category: own(self.vendor_category),
        }
    }
}

/// Parses a whole in-memory input with `format` and collects the results (tests, `catalog`).
pub fn parse_all(format: &dyn LogFormat, data: &[u8]) -> io::Result<CollectSink> {
    let mut sink = CollectSink::default();
    let mut reader = io::BufReader::new(data);
    format.parser().parse(&mut reader, &mut sink)?;
    Ok(sink)
}

/// Extracts the host from a URL or `host:port` (scheme, userinfo, port, path and query removed).
/// Returns None for an empty host. IPv6 literals keep no brackets.
pub fn host_of_url(url: &str) -> Option<&str> {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut authority = &rest[..end];
    if let Some(at) = authority.rfind('@') {
        authority = &authority[at + 1..];
    }
    let host = if let Some(stripped) = authority.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        match authority.rfind(':') {
            Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &authority[..i],
            _ => authority,
        }
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() { None } else { Some(host) }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl LineParser for Echo {
        fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
            if line.starts_with('#') {
                return LineOutcome::Header;
            }
            if line == "bad" {
                return LineOutcome::Skip(SkipReason::Malformed("bad"));
            }
            LineOutcome::Record(Record { dest_host: Some(Cow::Borrowed(line)), ..Default::default() })
        }
    }

    #[test]
    fn reader_tracks_lines_offsets_and_bounds() {
        let mut data = b"\xEF\xBB\xBF#h\r\na.com\r\n\nbad\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        data.extend_from_slice(b"\nb.com\n\xff\xfe\nc.com");
        let mut sink = CollectSink::default();
        LineParserAdapter(Echo).parse(&mut &data[..], &mut sink).unwrap();
        let hosts: Vec<_> = sink.records.iter().map(|(p, r)| (p.line, r.dest_host.clone().unwrap())).collect();
        assert_eq!(hosts, vec![(2, "a.com".into()), (6, "b.com".into()), (8, "c.com".into())]);
        let reasons: Vec<_> = sink.skips.iter().map(|(p, r, _)| (p.line, r.clone())).collect();
        assert_eq!(
            reasons,
            vec![(4, SkipReason::Malformed("bad")), (5, SkipReason::TooLong), (7, SkipReason::NotUtf8)]
        );
        assert_eq!(sink.records.last().unwrap().0.offset_end, data.len() as u64);
    }

    #[test]
    fn host_of_url_handles_schemes_ports_and_ipv6() {
        assert_eq!(host_of_url("http://www.yahoo.com/index.html?"), Some("www.yahoo.com"));
        assert_eq!(host_of_url("login.live.com:443"), Some("login.live.com"));
        assert_eq!(host_of_url("https://user@[2001:db8::1]:8443/x"), Some("2001:db8::1"));
        assert_eq!(host_of_url("consent.cmp.oath.com/"), Some("consent.cmp.oath.com"));
        assert_eq!(host_of_url("https://sync.1rx.io"), Some("sync.1rx.io"));
        assert_eq!(host_of_url("/"), None);
    }
}
