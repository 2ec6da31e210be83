//! Log import: one module per format behind [`LogFormat`], a bounded line reader shared by all,
//! and the pipeline that turns records into per-day aggregates in the cache (`pipeline`).
use std::borrow::Cow;
use std::io::{self, BufRead};
use std::ops::Range;

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
mod name_ids;
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

/// Sniff score of a tagged-header format (CEF, LEEF): 92 when at least half of the first lines
/// carry `tag` followed by `fields` `|`-separated header fields, 60 when some do, else 0.
pub(crate) fn tagged_header_score(lines: &[&str], tag: &str, fields: usize) -> u8 {
    let votes = LineVotes::count(lines, 10, |l| {
        tagged_start(l, tag)
            .and_then(|i| l.get(i + tag.len()..))
            .and_then(|h| util_b::split_header(h, fields))
            .is_some()
    });
    if votes.hits == 0 {
        0
    } else if votes.share_at_least(1, 2) {
        92
    } else {
        60
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
    /// For formats whose every line parses on its own (no header, nothing carried from one line
    /// to the next): a parser of chunks of lines, so that an import can split the input between
    /// threads. It must agree with `parser` on every input (tested on every sample).
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        None
    }
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
        for_each_line(input, |pos, line| dispatch_line(&mut self.0, pos, line, sink))
    }
}

/// One line from the reader through a line parser into the sink.
fn dispatch_line(p: &mut (impl LineParser + ?Sized), pos: Position, line: Line<'_>, sink: &mut dyn RecordSink) {
    match line {
        Line::Text(text) => match p.parse_line(text) {
            LineOutcome::Record(rec) => sink.record(pos, rec),
            LineOutcome::Header => {}
            LineOutcome::Skip(reason) => sink.skip(pos, reason, text.as_bytes()),
        },
        Line::TooLong(prefix) => sink.skip(pos, SkipReason::TooLong, prefix),
        Line::NotUtf8(raw) => sink.skip(pos, SkipReason::NotUtf8, raw),
    }
}

/// Parses the lines of one [`Chunk`], reporting each with its place in the whole input: the
/// calls the format's [`Parser`] makes for those lines when it reads the input whole.
pub trait ChunkParser: Send {
    fn parse_chunk(&mut self, chunk: &Chunk, sink: &mut dyn RecordSink);
}

impl<P: LineParser + Send> ChunkParser for LineParserAdapter<P> {
    fn parse_chunk(&mut self, chunk: &Chunk, sink: &mut dyn RecordSink) {
        chunk.for_each_line(|pos, line| dispatch_line(&mut self.0, pos, line, sink));
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
/// line numbers); `\r\n` endings and a UTF-8 BOM on the first line are removed. Lines that lie
/// whole in the reader's buffer are handed out in place; only a line cut by the buffer's end is
/// copied (at most [`MAX_LINE`] + 1 bytes of it).
pub fn for_each_line(input: &mut dyn BufRead, mut f: impl FnMut(Position, Line<'_>)) -> io::Result<()> {
    let mut line_no: u64 = 0;
    let mut offset: u64 = 0;
    // The start of a line the buffer cut, and how many bytes of it were consumed in all.
    let mut carry: Vec<u8> = Vec::new();
    let mut carried: u64 = 0;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let n = chunk.len();
        if n == 0 {
            if carried > 0 {
                line_no += 1;
                offset += carried;
                deliver(&mut f, Position { line: line_no, offset_end: offset }, &carry, carried);
            }
            return Ok(());
        }
        let mut at = 0;
        if carried > 0 {
            let Some(i) = memchr::memchr(b'\n', chunk) else {
                keep_bounded(&mut carry, chunk);
                carried += n as u64;
                input.consume(n);
                continue;
            };
            keep_bounded(&mut carry, &chunk[..=i]);
            carried += i as u64 + 1;
            line_no += 1;
            offset += carried;
            deliver(&mut f, Position { line: line_no, offset_end: offset }, &carry, carried);
            carry.clear();
            carried = 0;
            at = i + 1;
        }
        let base = at;
        for i in memchr::memchr_iter(b'\n', &chunk[base..]) {
            let end = base + i + 1;
            line_no += 1;
            offset += (end - at) as u64;
            deliver(&mut f, Position { line: line_no, offset_end: offset }, &chunk[at..end], (end - at) as u64);
            at = end;
        }
        if at < n {
            keep_bounded(&mut carry, &chunk[at..]);
            carried = (n - at) as u64;
        }
        input.consume(n);
    }
}

/// Appends to a cut line no more than one byte past [`MAX_LINE`]: enough to know it is too long.
fn keep_bounded(carry: &mut Vec<u8>, more: &[u8]) {
    let room = (MAX_LINE + 1).saturating_sub(carry.len());
    carry.extend_from_slice(&more[..more.len().min(room)]);
}

/// The lines of an input held in memory, as ranges of `bytes` (newline included), with their
/// positions after `start`.
fn lines_in(bytes: &[u8], start: Position, mut each: impl FnMut(Position, Range<usize>)) {
    let mut pos = start;
    let mut at = 0;
    // The last line may lack its newline.
    let unended = (!bytes.is_empty() && !bytes.ends_with(b"\n")).then_some(bytes.len());
    for end in memchr::memchr_iter(b'\n', bytes).map(|i| i + 1).chain(unended) {
        pos.line += 1;
        pos.offset_end += (end - at) as u64;
        each(pos, at..end);
        at = end;
    }
}

/// One raw line (newline included, `raw_len` bytes before any bounding) to the callback.
fn deliver(f: &mut impl FnMut(Position, Line<'_>), pos: Position, raw: &[u8], raw_len: u64) {
    match line_body(pos, raw, raw_len) {
        Body::TooLong => f(pos, Line::TooLong(&raw[..raw.len().min(120)])),
        Body::Blank => {}
        Body::At(a, b) => match std::str::from_utf8(&raw[a..b]) {
            Ok(text) => f(pos, Line::Text(text)),
            Err(_) => f(pos, Line::NotUtf8(&raw[a..b])),
        },
    }
}

/// [`deliver`] for a line of text already checked as UTF-8 (with the rest of its chunk). The
/// text is cut only at ASCII bytes and after a whole BOM, always a char boundary, so `get`
/// does not fail; too-long and blank lines (and a failed `get`, if it ever did) go the bytes way.
fn deliver_text(f: &mut impl FnMut(Position, Line<'_>), pos: Position, raw: &str) {
    if let Body::At(a, b) = line_body(pos, raw.as_bytes(), raw.len() as u64)
        && let Some(text) = raw.get(a..b)
    {
        return f(pos, Line::Text(text));
    }
    deliver(f, pos, raw.as_bytes(), raw.len() as u64);
}

/// What a raw line (with its newline) comes to before it is checked as UTF-8.
enum Body {
    TooLong,
    /// Empty or only whitespace: passed over.
    Blank,
    /// The line's text is `raw[start..end]`: without its `\n`, `\r` and, on the first line, a BOM.
    At(usize, usize),
}

/// Where a raw line's text lies in it, or why it has none.
fn line_body(pos: Position, raw: &[u8], raw_len: u64) -> Body {
    if raw_len > MAX_LINE as u64 {
        return Body::TooLong;
    }
    let mut end = raw.len();
    if raw[..end].ends_with(b"\n") {
        end -= 1;
    }
    if raw[..end].ends_with(b"\r") {
        end -= 1;
    }
    let start = if pos.line == 1 && raw[..end].starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if raw[start..end].iter().all(|b| b.is_ascii_whitespace()) {
        return Body::Blank;
    }
    Body::At(start, end)
}

/// Whole lines cut from the input, for one of several parser threads: a chunk parses the same
/// wherever it is cut, given where it starts.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Order in the input, from 0.
    pub seq: u64,
    /// The lines and bytes before the chunk.
    pub start: Position,
    /// The chunk's buffer: `data[begin..len]` are whole lines, each with its `\n` (the input's
    /// last line may lack it). The rest is room the reader reads into.
    data: Vec<u8>,
    begin: usize,
    len: usize,
    /// Bytes of the chunk's last line that were not kept because it is longer than [`MAX_LINE`]
    /// (it is skipped as too long all the same); a chunk ends after such a line.
    pub dropped: u64,
    /// Newlines in the chunk's lines.
    pub lines: u64,
    /// The input ends with this chunk.
    pub last: bool,
}

impl Chunk {
    /// The chunk's lines.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.begin..self.len]
    }

    /// The buffer, for [`ChunkReader::give_back`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.data
    }

    /// Where the input stands after this chunk.
    pub fn end(&self) -> Position {
        let partial = u64::from(self.bytes().last().is_some_and(|b| *b != b'\n'));
        Position {
            line: self.start.line + self.lines + partial,
            offset_end: self.start.offset_end + self.bytes().len() as u64 + self.dropped,
        }
    }

    /// The chunk's lines, as [`for_each_line`] hands them out when it reads the whole input.
    pub fn for_each_line(&self, mut f: impl FnMut(Position, Line<'_>)) {
        let kept_end = self.start.offset_end + self.bytes().len() as u64;
        let mut f = |mut pos: Position, line: Line<'_>| {
            if pos.offset_end == kept_end {
                pos.offset_end += self.dropped;
            }
            f(pos, line)
        };
        // One UTF-8 check of the whole chunk, not one a line (per-line calls on short lines were
        // ~2.7 % of a Squid import's CPU); a chunk with any invalid byte is checked line by line,
        // so each bad line is still told apart.
        let bytes = self.bytes();
        let text = std::str::from_utf8(bytes).ok();
        lines_in(bytes, self.start, |pos, r| match text.and_then(|t| t.get(r.clone())) {
            Some(raw) => deliver_text(&mut f, pos, raw),
            None => deliver(&mut f, pos, &bytes[r.clone()], r.len() as u64),
        });
    }
}

/// Read size of an input: the capacity of its `BufReader` and the largest read into a chunk.
/// Small enough that what the kernel just wrote is still in the reading core's L2 when it is
/// scanned (at 1 MiB, the kernel copy ran from and to memory and was 14 % of a Squid import's
/// CPU time; at 128 KiB it is 1 %). Equal, so that a chunk's reads are never smaller than the
/// `BufReader` and go straight into the chunk's buffer (a copy out of the `BufReader` in
/// between was ~3 % of the CPU time).
pub(crate) const READ_SIZE: usize = 128 * 1024;

/// Cuts an input into [`Chunk`]s of up to `max_lines` lines and about `max_bytes` bytes. Like
/// [`for_each_line`], it holds a line that the input's buffer cuts to at most [`MAX_LINE`] + 1
/// bytes, so a file without newlines cannot exhaust memory.
pub struct ChunkReader<'a> {
    input: &'a mut dyn BufRead,
    max_lines: u64,
    max_bytes: usize,
    next: Chunk,
    /// Where the line being read starts in `next`.
    line_start: usize,
    /// Newlines before this index of `next` are counted.
    scanned: usize,
    /// Passing over the rest of a line longer than [`MAX_LINE`], after its first bytes.
    skipping: bool,
    /// Buffers of chunks already parsed, for the next chunks: fresh multi-megabyte buffers on
    /// every chunk, freed on other threads, fragmented the allocator (~50 MB more peak memory).
    spare: Vec<Vec<u8>>,
    done: bool,
}

impl<'a> ChunkReader<'a> {
    pub fn new(input: &'a mut dyn BufRead, max_lines: u64, max_bytes: usize) -> ChunkReader<'a> {
        let max_bytes = max_bytes.max(1);
        ChunkReader {
            input,
            max_lines: max_lines.max(1),
            max_bytes,
            next: Chunk { data: vec![0; Self::buffer_len(max_bytes)], ..Default::default() },
            line_start: 0,
            scanned: 0,
            skipping: false,
            spare: Vec::new(),
            done: false,
        }
    }

    /// Room for a full chunk and the longest line kept past its end, plus its newline: a chunk
    /// is cut at the first newline at or past `max_bytes`, and a line is cut to `MAX_LINE` + 1
    /// bytes, so the buffer is never full while a chunk is being read. Zeroed, so untouched
    /// pages stay unmapped.
    fn buffer_len(max_bytes: usize) -> usize {
        max_bytes.saturating_add(MAX_LINE + 2)
    }

    /// The next chunk; the last one has `last` set (and may be empty). None after it.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        loop {
            if self.skipping {
                let buf = match self.input.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if buf.is_empty() {
                    return Ok(Some(self.cut_last()));
                }
                let found = memchr::memchr(b'\n', buf);
                let n = buf.len();
                if found.is_some() {
                    self.make_room()?;
                }
                let c = &mut self.next;
                match found {
                    Some(i) => {
                        c.dropped += i as u64;
                        c.data[c.len] = b'\n';
                        c.len += 1;
                        c.lines += 1;
                        self.input.consume(i + 1);
                        return Ok(Some(self.cut(self.next.len)));
                    }
                    None => {
                        c.dropped += n as u64;
                        self.input.consume(n);
                    }
                }
                continue;
            }
            if let Some(end) = self.scan() {
                return Ok(Some(self.cut(end)));
            }
            let c = &mut self.next;
            if c.len - self.line_start > MAX_LINE {
                // Keep what tells that the line is too long; pass over the rest.
                let keep = self.line_start + MAX_LINE + 1;
                c.dropped += (c.len - keep) as u64;
                c.len = keep;
                self.scanned = keep;
                self.skipping = true;
                continue;
            }
            self.make_room()?;
            let c = &mut self.next;
            let room_end = (c.len + READ_SIZE).min(c.data.len());
            match self.input.read(&mut c.data[c.len..room_end]) {
                Ok(0) => return Ok(Some(self.cut_last())),
                Ok(n) => c.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the chunk being read to the front of its buffer when the buffer is full, which
    /// happens only when a cut left the chunk at an offset (see [`ChunkReader::buffer_len`]).
    fn make_room(&mut self) -> io::Result<()> {
        let c = &mut self.next;
        if c.len < c.data.len() {
            return Ok(());
        }
        let begin = c.begin;
        if begin == 0 {
            return Err(io::Error::other("chunk buffer full"));
        }
        c.data.copy_within(begin..c.len, 0);
        c.len -= begin;
        c.begin = 0;
        self.line_start -= begin;
        self.scanned -= begin;
        Ok(())
    }

    /// Counts the newlines read since the last scan, up to the one that fills the chunk;
    /// returns where the chunk ends if one does.
    fn scan(&mut self) -> Option<usize> {
        let c = &mut self.next;
        let from = self.scanned;
        for i in memchr::memchr_iter(b'\n', &c.data[from..c.len]) {
            let at = from + i + 1;
            c.lines += 1;
            self.line_start = at;
            if c.lines >= self.max_lines || at - c.begin >= self.max_bytes {
                self.scanned = at;
                return Some(at);
            }
        }
        self.scanned = c.len;
        None
    }

    /// Hands back the buffer of a chunk that has been parsed, to be filled again.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 4 && buf.len() == Self::buffer_len(self.max_bytes) {
            self.spare.push(buf);
        }
    }

    /// The input has ended: what is read so far is the last chunk.
    fn cut_last(&mut self) -> Chunk {
        self.done = true;
        self.next.last = true;
        let len = self.next.len;
        self.cut(len)
    }

    /// Ends the chunk being read at `end`; what was read past it starts the next one. The
    /// smaller part is copied: what was read past the end (usually part of a line) to a new
    /// buffer, or else the chunk itself (short chunks of a small `max_lines`), which keeps
    /// the cost of cutting linear in the input.
    fn cut(&mut self, end: usize) -> Chunk {
        let c = &mut self.next;
        let carried = c.len - end;
        let (data, begin, len) = if carried > end - c.begin {
            let lines = c.data[c.begin..end].to_vec();
            let read = std::mem::replace(&mut c.data, lines);
            let read_len = c.len;
            (c.begin, c.len) = (0, end - c.begin);
            (read, end, read_len)
        } else {
            let mut data = self.spare.pop().unwrap_or_else(|| vec![0; Self::buffer_len(self.max_bytes)]);
            data[..carried].copy_from_slice(&c.data[end..c.len]);
            c.len = end;
            (data, 0, carried)
        };
        let start = c.end();
        let seq = c.seq + 1;
        let chunk = std::mem::replace(c, Chunk { seq, start, data, begin, len, ..Default::default() });
        self.line_start = begin;
        self.scanned = begin;
        self.skipping = false;
        chunk
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
    use proptest::prelude::*;

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

    /// Everything `for_each_line` reports, owned.
    fn lines_of(input: &mut dyn BufRead) -> Vec<(Position, String)> {
        let mut out = Vec::new();
        for_each_line(input, |pos, line| {
            let text = match line {
                Line::Text(t) => format!("text:{t}"),
                Line::TooLong(p) => format!("long:{}", p.len()),
                Line::NotUtf8(b) => format!("raw:{b:?}"),
            };
            out.push((pos, text));
        })
        .unwrap();
        out
    }

    proptest! {
        /// Lines cut by the reader's buffer (at any size, down to one byte) come out exactly
        /// as lines read whole: same numbers, offsets, text and too-long verdicts.
        #[test]
        fn lines_cut_by_the_buffer_read_as_whole_lines(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..40),
                    Just(b"\xEF\xBB\xBFa\r\n \n\n".to_vec()),
                    (MAX_LINE - 2..MAX_LINE + 3).prop_map(|n| { let mut v = vec![b'x'; n]; v.push(b'\n'); v }),
                ],
                0..6,
            ),
            cap in 1usize..300,
        ) {
            let data: Vec<u8> = parts.concat();
            let whole = lines_of(&mut &data[..]);
            let cut = lines_of(&mut std::io::BufReader::with_capacity(cap, &data[..]));
            prop_assert_eq!(cut, whole);
        }
    }

    /// Everything the chunks of `data` report, owned, as `lines_of` reports it for the whole.
    fn chunked_lines_of(data: &[u8], cap: usize, max_lines: u64, max_bytes: usize) -> Vec<(Position, String)> {
        let mut input = std::io::BufReader::with_capacity(cap, data);
        let mut reader = ChunkReader::new(&mut input, max_lines, max_bytes);
        let mut out = Vec::new();
        let mut expect_start = Position::default();
        let mut seq = 0;
        while let Some(chunk) = reader.next_chunk().unwrap() {
            assert_eq!(chunk.seq, seq);
            assert_eq!(chunk.start, expect_start, "chunks follow each other");
            assert!(chunk.bytes().len() <= max_bytes.max(1) + MAX_LINE + 2, "bounded chunk");
            expect_start = chunk.end();
            seq += 1;
            chunk.for_each_line(|pos, line| {
                let text = match line {
                    Line::Text(t) => format!("text:{t}"),
                    Line::TooLong(p) => format!("long:{}", p.len()),
                    Line::NotUtf8(b) => format!("raw:{b:?}"),
                };
                out.push((pos, text));
            });
            if chunk.last {
                assert_eq!(chunk.end().offset_end, data.len() as u64);
            }
        }
        out
    }

    /// A chunk of valid text is checked as UTF-8 once; its lines, blank lines, `\r\n` ends, BOM
    /// and unended last line come out as when read line by line.
    #[test]
    fn a_text_chunk_reads_as_its_lines() {
        let data = "\u{feff}caf\u{e9}.example\r\n\n  \n\u{20ac} x\n\u{feff}not first\nlast".as_bytes();
        let chunked = chunked_lines_of(data, 4096, 1000, 1 << 20);
        assert_eq!(chunked, lines_of(&mut &data[..]));
        let texts: Vec<&str> = chunked.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["text:caf\u{e9}.example", "text:\u{20ac} x", "text:\u{feff}not first", "text:last"]);
        let lines: Vec<u64> = chunked.iter().map(|(p, _)| p.line).collect();
        assert_eq!(lines, [1, 4, 5, 6]);
        assert_eq!(chunked.last().map(|(p, _)| p.offset_end), Some(data.len() as u64));
    }

    #[test]
    fn a_line_without_end_is_held_bounded_and_skipped_whole() {
        let mut data = b"a.com\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
        data.extend_from_slice(b"\nb.com\n");
        let mut input = std::io::BufReader::with_capacity(4096, &data[..]);
        let mut reader = ChunkReader::new(&mut input, 1000, 1 << 20);
        let first = reader.next_chunk().unwrap().unwrap();
        assert!(first.bytes().len() <= MAX_LINE + 8, "{}", first.bytes().len());
        assert_eq!(first.dropped as usize + first.bytes().len(), 6 + 3 * MAX_LINE + 1);
        let second = reader.next_chunk().unwrap().unwrap();
        assert_eq!((second.start.line, second.bytes(), second.last), (2, &b"b.com\n"[..], true));
        assert_eq!(chunked_lines_of(&data, 4096, 1000, 1 << 20), lines_of(&mut &data[..]));
    }

    proptest! {
        /// Chunks cut anywhere (any buffer, line and byte limits) report exactly the lines,
        /// numbers, offsets and verdicts of the whole input read at once.
        #[test]
        fn chunks_read_as_the_whole_input(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..40),
                    Just(b"\xEF\xBB\xBFa\r\n \n\n".to_vec()),
                    Just(b"x y z\n".to_vec()),
                    // Valid text (most chunks are checked as UTF-8 whole), multi-byte included.
                    "[a-z\u{e9}\u{20ac}\u{1F600} \t\r]{0,30}\n?".prop_map(String::into_bytes),
                    (MAX_LINE - 2..MAX_LINE + 3).prop_map(|n| { let mut v = vec![b'x'; n]; v.push(b'\n'); v }),
                    // A too-long line whose kept part may end inside a character.
                    (MAX_LINE / 2 - 1..MAX_LINE / 2 + 2).prop_map(|n| format!("{}\n", "\u{e9}".repeat(n)).into_bytes()),
                    (MAX_LINE * 2..MAX_LINE * 2 + 3).prop_map(|n| vec![b'y'; n]),
                ],
                0..7,
            ),
            cap in 1usize..300,
            max_lines in 1u64..6,
            max_bytes in 1usize..200,
        ) {
            let data: Vec<u8> = parts.concat();
            prop_assert_eq!(chunked_lines_of(&data, cap, max_lines, max_bytes), lines_of(&mut &data[..]));
        }
    }

    /// One-line chunks of an input read 128 KiB at a time: most of each read lies past the
    /// chunk's end, so cuts hand out copies and the buffer is compacted when it fills.
    #[test]
    fn tiny_chunks_of_large_reads_read_as_the_whole_input() {
        let data: Vec<u8> =
            (0..30_000).flat_map(|i| format!("line {i} host{}.example\n", i % 97).into_bytes()).collect();
        assert!(data.len() > 4 * READ_SIZE);
        for (max_lines, max_bytes) in [(1, 1 << 20), (7, 1 << 20), (50_000, 300), (50_000, 1 << 20)] {
            let chunked = chunked_lines_of(&data, 1 << 17, max_lines, max_bytes);
            assert_eq!(chunked.len(), 30_000);
            assert_eq!(chunked, lines_of(&mut &data[..]), "{max_lines} lines, {max_bytes} bytes");
        }
    }

    /// A too-long line that starts where a cut left the chunk at an offset and runs to the end
    /// of the buffer: the buffer is compacted before the line's newline is kept.
    #[test]
    fn a_long_line_after_an_offset_cut_fits_its_buffer() {
        let mut data = b"aaaa\nccccc\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 2 * MAX_LINE));
        data.extend_from_slice(b"\nz\n");
        for max_bytes in [9, 10, 11, 12] {
            assert_eq!(chunked_lines_of(&data, 1 << 17, 1, max_bytes), lines_of(&mut &data[..]), "{max_bytes}");
        }
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
