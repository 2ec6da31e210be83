//! Squid native `access.log` (the default `squid` logformat):
//! `time elapsed client code/status bytes method URL ident hierarchy/peer mimetype`.
//!
//! Fields are split on runs of whitespace; exactly ten are required, so custom logformats
//! (extra ports, header sizes, quoted referer/UA) are counted as malformed instead of having
//! their columns mis-mapped. Time is epoch seconds with milliseconds (already UTC). Squid logs
//! only the reply size, so `bytes` goes to `bytes_down`. This is the hot path: no allocation
//! and no regex per line, every field is a slice of the input line.
use std::borrow::Cow;

use super::util_a::{dotted_quad, epoch_seconds, looks_like_ip, parse_digits, port};
use super::{Action, ChunkParser, LineOutcome, LineParser, LineParserAdapter, LogFormat, Parser, Record, SkipReason};

pub struct SquidFormat;

pub static FORMATS: &[&dyn LogFormat] = &[&SquidFormat];

impl LogFormat for SquidFormat {
    fn name(&self) -> &'static str {
        "squid"
    }
    fn description(&self) -> &'static str {
        "Squid native access.log (10 whitespace-separated fields)"
    }
    fn sniff(&self, lines: &[&str]) -> u8 {
        let mut native = 0usize;
        let mut custom = 0usize;
        let mut total = 0usize;
        for line in lines.iter().filter(|l| !l.starts_with('#')).take(20) {
            total += 1;
            match split_fields(line) {
                Some(f) if looks_native(&f) => native += 1,
                _ if looks_custom(line) => custom += 1,
                _ => {}
            }
        }
        if total == 0 {
            return 0;
        }
        if native * 10 >= total * 8 {
            95
        } else if (native + custom) * 10 >= total * 8 {
            // A Squid log in a custom logformat: claim it so the import reports every line as
            // malformed instead of "unknown format"; any real format scores higher.
            55
        } else {
            0
        }
    }
    fn parser(&self) -> Box<dyn Parser> {
        Box::new(LineParserAdapter(SquidParser))
    }
    fn chunk_parser(&self) -> Option<Box<dyn ChunkParser>> {
        Some(Box::new(LineParserAdapter(SquidParser)))
    }
}

pub struct SquidParser;

const FIELDS: usize = 10;

/// Splits into exactly ten whitespace-separated fields; None for any other count.
fn split_fields(line: &str) -> Option<[&str; FIELDS]> {
    let mut out = [""; FIELDS];
    split_fields_into(line, &mut out).then_some(out)
}

/// [`split_fields`] into the caller's array, for the hot path: returning the 160-byte array
/// by value cost a `memmove` call per line (2 % of a Squid import's CPU).
fn split_fields_into<'a>(line: &'a str, out: &mut [&'a str; FIELDS]) -> bool {
    let b = line.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        i = next_space(b, i);
        if n == FIELDS {
            return false;
        }
        out[n] = &line[start..i];
        n += 1;
    }
    n == FIELDS
}

/// Index of the first ASCII whitespace byte at or after `i`, or `b.len()`. Eight bytes at a
/// time: most words of a line hold no byte below `!`, and the lowest flagged byte of the test
/// below is exact (a borrow only ever flags bytes above a true hit).
fn next_space(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    while let Some(word) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let below_bang = w.wrapping_sub(ONES * 0x21) & !w & (ONES * 0x80);
        if below_bang == 0 {
            i += 8;
            continue;
        }
        let j = i + (below_bang.trailing_zeros() / 8) as usize;
        if b[j].is_ascii_whitespace() {
            return j;
        }
        // A control character inside a field: not a separator, look on.
        i = j + 1;
    }
    while i < b.len() && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn is_epoch_millis(s: &str) -> bool {
    match s.split_once('.') {
        Some((i, f)) => {
            (9..=11).contains(&i.len())
                && i.bytes().all(|b| b.is_ascii_digit())
                && !f.is_empty()
                && f.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// `TCP_MISS/200`: upper-case letters and `_`, a slash, digits.
fn is_result_code(s: &str) -> bool {
    let b = s.as_bytes();
    let code = b.iter().take_while(|c| c.is_ascii_uppercase() || **c == b'_').count();
    code > 0 && b.get(code) == Some(&b'/') && b[code + 1..].iter().all(u8::is_ascii_digit)
}

fn looks_native(f: &[&str; FIELDS]) -> bool {
    is_epoch_millis(f[0])
        && parse_digits(f[1]).is_some()
        && is_result_code(f[3])
        && parse_digits(f[4]).is_some()
        && f[8].contains('/')
}

/// Epoch-millis time, elapsed, client, then a Squid result code within the next few fields.
fn looks_custom(line: &str) -> bool {
    let mut it = line.split_ascii_whitespace();
    let Some(t) = it.next() else { return false };
    is_epoch_millis(t)
        && it.take(5).any(|f| {
            is_result_code(f)
                && (f.starts_with("TCP_") || f.starts_with("UDP_") || f.starts_with("NONE") || f.starts_with("TAG_"))
        })
}

impl LineParser for SquidParser {
    fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        if let Some(native) = scan_native(line) {
            return LineOutcome::Record(native.record());
        }
        if line.starts_with('#') {
            return LineOutcome::Header;
        }
        let mut f = [""; FIELDS];
        if !split_fields_into(line, &mut f) {
            return LineOutcome::Skip(SkipReason::Malformed("squid: not 10 fields"));
        }
        let [time, elapsed, client, code, bytes, method, url, ident, hier, _mime] = f;
        let (true, Some(bytes), Some(_)) = (is_result_code(code), parse_digits(bytes), parse_digits(elapsed)) else {
            return LineOutcome::Skip(SkipReason::Malformed("squid: field shape"));
        };
        let Some(ts) = epoch_seconds(time) else {
            return LineOutcome::Skip(SkipReason::BadTimestamp);
        };
        LineOutcome::Record(Native { ts, client, bytes, blocked: denied(code), method, url, ident, hier }.record())
    }
}

/// What a record is made of: the fields of a well-formed native line, numbers parsed.
struct Native<'a> {
    ts: i64,
    client: &'a str,
    bytes: u64,
    blocked: bool,
    method: &'a str,
    url: &'a str,
    ident: &'a str,
    hier: &'a str,
}

impl<'a> Native<'a> {
    fn record(self) -> Record<'a> {
        let Native { ts, client, bytes, blocked, method, url, ident, hier } = self;
        let mut rec = Record { ts, src_ip: Some(Cow::Borrowed(client)), bytes_down: bytes, ..Default::default() };
        if ident != "-" && !ident.is_empty() {
            rec.user = Some(Cow::Borrowed(ident));
        }
        rec.action = if blocked { Action::Blocked } else { Action::Allowed };
        let connect = method.eq_ignore_ascii_case("CONNECT");
        let auth = authority(url);
        if let Some(host) = auth.host {
            if auth.host_is_ip(host) {
                rec.dest_ip = Some(Cow::Borrowed(host));
            } else {
                rec.dest_host = Some(Cow::Borrowed(host));
            }
        }
        rec.dest_port = auth.port.or(match auth.scheme {
            Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
            Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
            Some(s) if s.eq_ignore_ascii_case("ftp") => Some(21),
            _ => None,
        });
        if !connect && url != "-" {
            rec.url = Some(Cow::Borrowed(url));
        }
        // `DIRECT/1.2.3.4` / `HIER_DIRECT/1.2.3.4`: the server Squid actually connected to.
        if rec.dest_ip.is_none()
            && let Some(slash) = hier.bytes().position(|b| b == b'/')
            && let peer = &hier[slash + 1..]
            && peer != "-"
            && !peer.is_empty()
            && looks_like_ip_fast(peer)
        {
            rec.dest_ip = Some(Cow::Borrowed(peer));
        }
        rec
    }
}

/// An ordinary native line in one pass: each number parsed as it is scanned, each other field
/// end found a word at a time, where the general path splits the line and then scans each
/// field again. `None` for anything less ordinary (a header, a leading blank, a number of
/// twenty digits, a field of another shape, not ten fields), which the general path then
/// judges: so the two cannot disagree on what they both accept.
fn scan_native(line: &str) -> Option<Native<'_>> {
    let mut s = Scan { line, i: 0 };
    let ts = s.epoch()?;
    s.number()?;
    let client = s.token()?;
    let blocked = s.result_code()?;
    let bytes = s.number()?;
    let method = s.token()?;
    let url = s.token()?;
    let ident = s.token()?;
    let hier = s.token()?;
    s.token()?;
    s.only_blanks_left()?;
    Some(Native { ts, client, bytes, blocked, method, url, ident, hier })
}

/// A cursor over one line; the readers of every field after the first skip the blanks before it.
struct Scan<'a> {
    line: &'a str,
    i: usize,
}

impl<'a> Scan<'a> {
    fn byte(&self) -> Option<u8> {
        self.line.as_bytes().get(self.i).copied()
    }
    fn digits(&mut self, max: usize) -> Option<u64> {
        let b = self.line.as_bytes();
        let start = self.i;
        let mut n = 0u64;
        while let Some(&c) = b.get(self.i)
            && c.is_ascii_digit()
        {
            // Nineteen digits cannot overflow: longer numbers go the checked, general way.
            if self.i - start == max {
                return None;
            }
            n = n * 10 + u64::from(c - b'0');
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }
    fn number(&mut self) -> Option<u64> {
        self.gap()?;
        self.digits(19)
    }
    /// Skips the bytes `keep` holds for; how many.
    fn skip(&mut self, keep: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.byte().is_some_and(&keep) {
            self.i += 1;
        }
        self.i - start
    }
    /// `seconds[.fraction]`: the fraction is checked, not kept.
    fn epoch(&mut self) -> Option<i64> {
        // Eighteen digits always fit an i64.
        let secs = self.digits(18)? as i64;
        if self.byte() == Some(b'.') {
            self.i += 1;
            self.skip(|c| c.is_ascii_digit());
        }
        Some(secs)
    }
    /// `CODE/status`: upper-case letters and `_`, a slash, digits; whether it says `_DENIED`.
    fn result_code(&mut self) -> Option<bool> {
        self.gap()?;
        let b = self.line.as_bytes();
        let start = self.i;
        let mut denied = false;
        while let Some(&c) = b.get(self.i)
            && (c.is_ascii_uppercase() || c == b'_')
        {
            // The next byte first: every code has a `_`, few a `D` after it.
            denied |= c == b'_' && b.get(self.i + 1) == Some(&b'D') && b[self.i..].starts_with(b"_DENIED");
            self.i += 1;
        }
        if self.i == start || self.byte() != Some(b'/') {
            return None;
        }
        self.i += 1;
        self.skip(|c| c.is_ascii_digit());
        Some(denied)
    }
    /// At least one blank, skipped.
    fn gap(&mut self) -> Option<()> {
        (self.skip(|c| c.is_ascii_whitespace()) > 0).then_some(())
    }
    fn token(&mut self) -> Option<&'a str> {
        self.gap()?;
        let start = self.i;
        self.i = next_space(self.line.as_bytes(), start);
        // A whitespace byte is ASCII, so `i` is a char boundary.
        (self.i > start).then(|| &self.line[start..self.i])
    }
    fn only_blanks_left(&self) -> Option<()> {
        self.line.as_bytes()[self.i..].iter().all(u8::is_ascii_whitespace).then_some(())
    }
}

/// Scheme, host and explicit port of an absolute URL or a `host:port` authority.
#[derive(Debug, Default, PartialEq)]
struct Authority<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<u16>,
    /// The host has a `:` in it (an IPv6 address, or something odder).
    host_colon: bool,
}

impl Authority<'_> {
    /// Whether the host is an address rather than a name. A host that ends in a letter (its TLD)
    /// and has no colon is a name, told at once from what the authority's scan already saw.
    fn host_is_ip(&self, host: &str) -> bool {
        match host.as_bytes().last() {
            Some(c) if c.is_ascii_alphabetic() && !self.host_colon => false,
            _ => looks_like_ip_fast(host),
        }
    }
}

/// The bytes that end an authority (`/`, `?`, `#`) or split it (`@`, `:`).
static AUTHORITY_MARK: [bool; 256] = {
    let mut marks = [false; 256];
    marks[b'/' as usize] = true;
    marks[b'?' as usize] = true;
    marks[b'#' as usize] = true;
    marks[b'@' as usize] = true;
    marks[b':' as usize] = true;
    marks
};

/// Byte-level equivalent of `host_of_url` plus the port, in one pass over the authority that
/// finds its end, the user-info `@` and the port's `:` together: this runs once per line on
/// the hot path, on pieces too short for `memchr` to pay off.
fn authority(url: &str) -> Authority<'_> {
    let b = url.as_bytes();
    let mut out = Authority::default();
    let mut start = 0;
    if let Some(c) = b[..b.len().min(16)].iter().position(|&c| c == b':')
        && b.get(c + 1..c + 3) == Some(b"//")
    {
        out.scheme = url.get(..c);
        start = c + 3;
    }
    let rest = &url[start..];
    let r = rest.as_bytes();
    let (mut end, mut from, mut last_colon, mut colons) = (r.len(), 0, None, 0);
    let mut i = 0;
    loop {
        // Ordinary bytes skipped by one table look-up each, rather than a branch per mark.
        while r.get(i).is_some_and(|&c| !AUTHORITY_MARK[usize::from(c)]) {
            i += 1;
        }
        match r.get(i) {
            None => break,
            Some(b'/' | b'?' | b'#') => {
                end = i;
                break;
            }
            // User info ends at the last `@`; only the colons after it belong to the host.
            Some(b'@') => (from, last_colon, colons) = (i + 1, None, 0),
            _ => (last_colon, colons) = (Some(i), colons + 1),
        }
        i += 1;
    }
    let auth = &rest[from..end];
    let host = if let Some(v6) = auth.strip_prefix('[') {
        let (h, after) = v6.split_once(']').unwrap_or((v6, ""));
        out.port = after.strip_prefix(':').and_then(port);
        out.host_colon = h.contains(':');
        h
    } else {
        // The port: digits after the last colon (none at all when the host ends the text).
        match last_colon {
            Some(i) if r[i + 1..end].iter().all(u8::is_ascii_digit) => {
                out.port = port(&rest[i + 1..end]);
                out.host_colon = colons > 1;
                &rest[from..i]
            }
            _ => {
                out.host_colon = colons > 0;
                auth
            }
        }
    };
    let dots = host.bytes().rev().take_while(|&c| c == b'.').count();
    let host = &host[..host.len() - dots];
    out.host = (!host.is_empty()).then_some(host);
    out
}

/// `TCP_DENIED/403`, `TCP_DENIED_REPLY/403`, `NONE_DENIED/…`: a `_DENIED` anywhere in the code.
fn denied(code: &str) -> bool {
    code.as_bytes().windows(7).any(|w| w == b"_DENIED")
}

/// Host names end in a letter (their TLD); only then is the full IP check skipped, and a
/// dotted quad (the usual peer) is told at once.
fn looks_like_ip_fast(s: &str) -> bool {
    match s.as_bytes().last() {
        Some(c) if c.is_ascii_alphabetic() && !s.contains(':') => false,
        Some(c) if c.is_ascii_digit() && dotted_quad(s.as_bytes()) => true,
        _ => looks_like_ip(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser as it was before its hot path was tuned, kept as the reference the tuned one
    /// must agree with line for line.
    mod reference {
        use super::super::*;
        use crate::ingest::util_a::looks_like_ip;

        pub struct ReferenceParser;

        impl LineParser for ReferenceParser {
            fn parse_line<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
                if line.starts_with('#') {
                    return LineOutcome::Header;
                }
                let Some(f) = split_fields(line) else {
                    return LineOutcome::Skip(SkipReason::Malformed("squid: not 10 fields"));
                };
                let [time, elapsed, client, code, bytes, method, url, ident, hier, _mime] = f;
                let (true, Some(bytes), Some(_)) = (is_result_code(code), parse_digits(bytes), parse_digits(elapsed))
                else {
                    return LineOutcome::Skip(SkipReason::Malformed("squid: field shape"));
                };
                let Some(ts) = epoch_seconds(time) else {
                    return LineOutcome::Skip(SkipReason::BadTimestamp);
                };
                let mut rec =
                    Record { ts, src_ip: Some(Cow::Borrowed(client)), bytes_down: bytes, ..Default::default() };
                if ident != "-" && !ident.is_empty() {
                    rec.user = Some(Cow::Borrowed(ident));
                }
                rec.action = if memchr::memchr_iter(b'_', code.as_bytes()).any(|i| code[i..].starts_with("_DENIED")) {
                    Action::Blocked
                } else {
                    Action::Allowed
                };
                let connect = method.eq_ignore_ascii_case("CONNECT");
                let auth = reference_authority(url);
                if let Some(host) = auth.host {
                    if reference_looks_like_ip_fast(host) {
                        rec.dest_ip = Some(Cow::Borrowed(host));
                    } else {
                        rec.dest_host = Some(Cow::Borrowed(host));
                    }
                }
                rec.dest_port = auth.port.or(match auth.scheme {
                    Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
                    Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
                    Some(s) if s.eq_ignore_ascii_case("ftp") => Some(21),
                    _ => None,
                });
                if !connect && url != "-" {
                    rec.url = Some(Cow::Borrowed(url));
                }
                // `DIRECT/1.2.3.4` / `HIER_DIRECT/1.2.3.4`: the server Squid actually connected to.
                if rec.dest_ip.is_none()
                    && let Some((_, peer)) = hier.split_once('/')
                    && peer != "-"
                    && !peer.is_empty()
                    && reference_looks_like_ip_fast(peer)
                {
                    rec.dest_ip = Some(Cow::Borrowed(peer));
                }
                LineOutcome::Record(rec)
            }
        }

        fn reference_authority(url: &str) -> Authority<'_> {
            let b = url.as_bytes();
            let mut out = Authority::default();
            let head = &b[..b.len().min(16)];
            let mut start = 0;
            if let Some(c) = memchr::memchr(b':', head)
                && b.get(c + 1..c + 3) == Some(b"//")
            {
                out.scheme = url.get(..c);
                start = c + 3;
            }
            let rest = &b[start..];
            let end = rest.iter().position(|&c| matches!(c, b'/' | b'?' | b'#')).unwrap_or(rest.len());
            let mut auth = &url[start..start + end];
            if let Some(at) = memchr::memrchr(b'@', auth.as_bytes()) {
                auth = &auth[at + 1..];
            }
            let host = if let Some(v6) = auth.strip_prefix('[') {
                let (h, after) = v6.split_once(']').unwrap_or((v6, ""));
                out.port = after.strip_prefix(':').and_then(port);
                h
            } else {
                match memchr::memrchr(b':', auth.as_bytes()) {
                    Some(i) if auth.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit) => {
                        out.port = port(&auth[i + 1..]);
                        &auth[..i]
                    }
                    _ => auth,
                }
            };
            let host = host.trim_end_matches('.');
            out.host = (!host.is_empty()).then_some(host);
            out
        }

        fn reference_looks_like_ip_fast(s: &str) -> bool {
            match s.as_bytes().last() {
                Some(c) if c.is_ascii_alphabetic() && !s.contains(':') => false,
                _ => looks_like_ip(s),
            }
        }
    }
    use crate::ingest::test_support::{assert_rejects_others, sample};
    use crate::ingest::{SkipReason, parse_all, registry};
    use proptest::prelude::*;

    #[test]
    fn native_sample_all_records() {
        let sink = parse_all(&SquidFormat, &sample("elastic-integrations/squid/test-access.log")).unwrap();
        assert_eq!(sink.records.len(), 100);
        assert!(sink.skips.is_empty());
        let (_, r) = &sink.records[0];
        assert_eq!(r.ts, 1_157_689_312);
        assert_eq!(r.src_ip.as_deref(), Some("10.105.21.199"));
        assert_eq!(r.dest_host.as_deref(), Some("login.yahoo.com"));
        assert_eq!(r.dest_port, Some(443));
        assert_eq!(r.dest_ip.as_deref(), Some("175.16.199.115"));
        assert_eq!(r.user.as_deref(), Some("badeyek"));
        assert_eq!(r.bytes_down, 19_763);
        assert_eq!(r.bytes_up, 0);
        assert_eq!(r.url, None);
        assert_eq!(r.action, Action::Allowed);
        let (_, r) = &sink.records[1];
        assert_eq!(r.url.as_deref(), Some("http://www.goonernews.com/"));
        assert_eq!(r.dest_host.as_deref(), Some("www.goonernews.com"));
        assert_eq!(r.dest_port, Some(80));
        // TCP_HIT served from cache: NONE/- gives no server IP.
        let (_, r) = &sink.records[3];
        assert_eq!(r.dest_ip, None);
        assert_eq!(r.bytes_down, 1464);
        let denied: Vec<_> = sink.records.iter().filter(|(_, r)| r.action == Action::Blocked).collect();
        assert_eq!(denied.len(), 15);
        let (_, d) = denied[0];
        assert_eq!(d.dest_host.as_deref(), Some("hi5.com"));
        assert_eq!(d.user, None);
        assert_eq!(d.src_ip.as_deref(), Some("10.105.47.218"));
        let users = sink.records.iter().filter(|(_, r)| r.user.is_some()).count();
        assert_eq!(users, 85);
    }

    #[test]
    fn custom_logformat_is_rejected_not_mismapped() {
        let sink = parse_all(&SquidFormat, &sample("elastic-integrations/squid/test-access-extensive.log")).unwrap();
        assert!(sink.records.is_empty());
        assert_eq!(sink.skips.len(), 11);
        assert!(sink.skips.iter().all(|(_, r, _)| *r == SkipReason::Malformed("squid: not 10 fields")));
    }

    #[test]
    fn ipv6_client_and_connect_ip() {
        let mut p = SquidParser;
        let LineOutcome::Record(r) =
            p.parse_line("1157689312.049  5 2001:db8::1 TCP_TUNNEL/200 10 CONNECT [2001:db8::2]:8443 u@d.com HIER_DIRECT/2001:db8::2  -")
        else {
            panic!()
        };
        assert_eq!(r.src_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(r.dest_ip.as_deref(), Some("2001:db8::2"));
        assert_eq!(r.dest_host, None);
        assert_eq!(r.dest_port, Some(8443));
        assert_eq!(r.user.as_deref(), Some("u@d.com"));
    }

    #[test]
    fn sniff_detects_own_samples_only() {
        let text = String::from_utf8(sample("elastic-integrations/squid/test-access.log")).unwrap();
        let lines: Vec<&str> = text.lines().take(20).collect();
        assert_eq!(registry::detect(&lines).map(|f| f.name()), Some("squid"));
        let text = String::from_utf8(sample("elastic-integrations/squid/test-access-extensive.log")).unwrap();
        let lines: Vec<&str> = text.lines().take(20).collect();
        assert_eq!(SquidFormat.sniff(&lines), 55);
        assert_rejects_others(&[&SquidFormat], &["elastic-integrations/squid/"]);
    }

    /// Throughput check, run by hand: `cargo test --release --lib squid::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        struct Count(u64, u64);
        impl crate::ingest::RecordSink for Count {
            fn record(&mut self, _: crate::ingest::Position, r: Record<'_>) {
                self.0 += r.bytes_down.min(1);
            }
            fn skip(&mut self, _: crate::ingest::Position, _: SkipReason, _: &[u8]) {
                self.1 += 1;
            }
        }
        let sample = sample("elastic-integrations/squid/test-access.log");
        let mut big = Vec::with_capacity(sample.len() * 2000);
        for _ in 0..2000 {
            big.extend_from_slice(&sample);
        }
        let lines: u64 = 100 * 2000;
        let start = std::time::Instant::now();
        let mut sink = Count(0, 0);
        SquidFormat.parser().parse(&mut &big[..], &mut sink).unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(sink.1, 0);
        // The shared line reader alone, for comparison.
        let start = std::time::Instant::now();
        let mut n = 0u64;
        crate::ingest::for_each_line(&mut &big[..], |_, _| n += 1).unwrap();
        let reader = start.elapsed().as_secs_f64();
        assert_eq!(n, lines);
        println!(
            "squid: {lines} lines in {secs:.3}s = {:.2} M lines/s ({:.0} MB/s); reader alone {:.3}s",
            lines as f64 / secs / 1e6,
            big.len() as f64 / secs / 1e6,
            reader
        );
    }

    /// The one-pass scan takes every line of the real sample (so it is the path measured) and
    /// leaves each kind of odd line to the general path.
    #[test]
    fn one_pass_scan_takes_ordinary_lines_only() {
        let bytes = sample("elastic-integrations/squid/test-access.log");
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 100);
        for line in &lines {
            let n = scan_native(line).unwrap_or_else(|| panic!("not scanned: {line}"));
            assert!(n.ts > 1_000_000_000 && !n.url.is_empty() && !n.hier.is_empty(), "{line}");
        }
        let n = scan_native(lines[0]).unwrap();
        assert_eq!((n.ts, n.client, n.bytes, n.method), (1_157_689_312, "10.105.21.199", 19_763, "CONNECT"));
        assert_eq!(
            (n.url, n.ident, n.hier, n.blocked),
            ("login.yahoo.com:443", "badeyek", "DIRECT/175.16.199.115", false)
        );
        let good = "1157689312.049   5006 10.1.2.3 TCP_DENIED/403 19763 GET http://a.b/ - NONE/- text/html";
        assert!(scan_native(good).is_some_and(|n| n.blocked));
        for odd in [
            "#Fields: x",
            " 1157689312.049 5006 10.1.2.3 TCP_MISS/200 1 GET http://a.b/ - NONE/- -",
            "1157689312.049 5006 10.1.2.3 TCP_MISS/200 1 GET http://a.b/ - NONE/- - extra",
            "1157689312.049 5006 10.1.2.3 TCP_MISS/200 1 GET http://a.b/ - NONE/-",
            "1157689312.049 5006 10.1.2.3 tcp_miss/200 1 GET http://a.b/ - NONE/- -",
            "1157689312.049 5006 10.1.2.3 TCP_MISS/2x0 1 GET http://a.b/ - NONE/- -",
            "1157689312.0.4 5006 10.1.2.3 TCP_MISS/200 1 GET http://a.b/ - NONE/- -",
            "1157689312.049 5006 10.1.2.3 TCP_MISS/200 12345678901234567890 GET http://a.b/ - NONE/- -",
            "1157689312.049 5006 10.1.2.3 TCP_MISS/200 99999999999999999999 GET http://a.b/ - NONE/- -",
            "1157689312.049 5006 10.1.2.3 TCP_MISS/200 999999999999999999999 GET http://a.b/ - NONE/- -",
            "9999999999999999999.049 5006 10.1.2.3 TCP_MISS/200 1 GET http://a.b/ - NONE/- -",
            "1157689312.049 -1 10.1.2.3 TCP_MISS/200 1 GET http://a.b/ - NONE/- -",
        ] {
            assert!(scan_native(odd).is_none(), "{odd}");
            agree(odd).unwrap();
        }
    }

    #[test]
    fn authority_matches_host_of_url() {
        for u in [
            "http://www.yahoo.com/index.html?",
            "login.live.com:443",
            "https://user@[2001:db8::1]:8443/x",
            "ftp://a.b./c",
            "/",
            "http://h:80x/",
        ] {
            assert_eq!(authority(u).host, crate::ingest::host_of_url(u), "{u}");
        }
        assert_eq!(authority("https://user@[2001:db8::1]:8443/x").port, Some(8443));
        assert_eq!(authority("login.live.com:443").port, Some(443));
        assert_eq!(authority("HTTP://x.com/").scheme, Some("HTTP"));
        for (u, colon) in
            [("a:b@[fe80::1]:443", true), ("u:p@host.example:8080/x", false), ("fe80::1", true), ("h:x", true)]
        {
            assert_eq!(authority(u).host_colon, colon, "{u}");
        }
    }

    /// Every line the reference and the tuned parser see, they must turn into the same outcome.
    fn agree(line: &str) -> Result<(), TestCaseError> {
        let want = format!("{:?}", reference::ReferenceParser.parse_line(line));
        let got = format!("{:?}", SquidParser.parse_line(line));
        prop_assert_eq!(got, want, "{:?}", line);
        Ok(())
    }

    #[test]
    fn tuned_parser_agrees_with_the_reference_on_every_sample_line() {
        let mut n = 0;
        for rel in crate::ingest::test_support::all_samples() {
            let bytes = sample(&rel);
            for line in String::from_utf8_lossy(&bytes).lines() {
                agree(line).unwrap();
                n += 1;
            }
        }
        assert!(n > 1000, "{n} lines");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The word-at-a-time splitter agrees with `split_ascii_whitespace`, control bytes and
        /// all whitespace kinds included.
        #[test]
        fn split_fields_matches_std(parts in proptest::collection::vec("[a-z\\x00-\\x20\\x7f/.é]{0,14}", 0..14)) {
            let line = parts.concat();
            let std: Vec<&str> = line.split_ascii_whitespace().collect();
            let want = (std.len() == FIELDS).then(|| std.clone());
            prop_assert_eq!(split_fields(&line).map(|f| f.to_vec()), want);
        }

        /// Squid-shaped lines with odd times, counts, codes, URLs, idents and peers.
        #[test]
        fn tuned_parser_agrees_with_the_reference(
            time in "[0-9]{0,12}(\\.[0-9a]{0,4})?",
            elapsed in "[0-9 ]{0,7}|-1",
            code in "(TCP|NONE|TAG)_(MISS|DENIED|DENIED_REPLY|HIT|x)?(_ABORTED)?/[0-9]{0,3}|[a-z_/]{0,8}",
            bytes in "[0-9]{0,21}|x",
            method in "CONNECT|connect|GET|POST|-",
            url in "((https?|ftp|HTTP|x)://)?([a-z]{1,3}@)?(\\[[0-9a-f:]{0,8}\\]|[a-z0-9.]{0,12}|[0-9]{1,3}(\\.[0-9]{1,3}){3})(:[0-9a-z]{0,6})?\\.?(/[a-z?#:.]{0,6})?|-",
            ident in "[a-z@.]{0,8}|-",
            hier in "(HIER_)?(DIRECT|NONE|PARENT)/([0-9.]{0,16}|[a-z.:]{0,9}|-)|[a-z]{0,4}",
            sep in "[ \t]{1,2}",
        ) {
            let line = [time.as_str(), &elapsed, "10.0.0.1", &code, &bytes, &method, &url, &ident, &hier, "-"].join(&sep);
            agree(&line)?;
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_all(&SquidFormat, &bytes);
        }
        #[test]
        fn authority_agrees_with_host_of_url(
            u in "(https?://)?([a-z0-9:]{1,3}@)?(\\[[0-9a-f:]{0,6}\\]|[a-z0-9.:]{0,10})(:[0-9a-z]{0,5})?(/[a-z?#:@]{0,5})?"
        ) {
            let a = authority(&u);
            prop_assert_eq!(a.host, crate::ingest::host_of_url(&u));
            // What the scan saw of the host's colons, as the host's own text says.
            if let Some(h) = a.host {
                prop_assert_eq!(a.host_colon, h.contains(':'), "{}", u);
            }
        }
        #[test]
        fn never_panics_on_squidish_lines(fields in proptest::collection::vec("[ -~]{0,12}", 10)) {
            let line = fields.join(" ");
            let _ = SquidParser.parse_line(&line);
        }
    }
}
