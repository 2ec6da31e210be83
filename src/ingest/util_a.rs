//! Small helpers shared by the squid, zeek, panos, fortigate, asa, checkpoint and juniper parsers:
//! civil-time arithmetic, syslog header time stamps, IP-versus-host classification, a quoted
//! `key=value` scanner and a quote-aware CSV field splitter. Nothing here allocates unless an
//! escape forces it.
use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Unix seconds for a civil UTC date and time; None when out of range.
pub fn civil_to_unix(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(y, mo, d)?;
    // Leap second 60 is folded onto 59 rather than rejecting the line.
    let dt = date.and_hms_opt(h, mi, s.min(59))?;
    Some(dt.and_utc().timestamp())
}

/// `Jan`..`Dec`, any case.
pub fn month_number(s: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let s = s.get(..3)?;
    MONTHS.iter().position(|m| m.eq_ignore_ascii_case(s)).map(|i| i as u32 + 1)
}

/// Parses a run of ASCII digits (no sign, no spaces); None on anything else or overflow.
pub fn parse_digits(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    // Nineteen digits cannot overflow a u64: only the twentieth needs checked arithmetic.
    let (head, last) = if b.len() == 20 { (&b[..19], Some(b[19])) } else { (b, None) };
    let mut n: u64 = 0;
    for &c in head {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    match last {
        None => Some(n),
        Some(c) if c.is_ascii_digit() => n.checked_mul(10)?.checked_add(u64::from(c - b'0')),
        Some(_) => None,
    }
}

/// Byte counters: digits, or 0 when absent or garbled (a bad counter never drops a record).
pub fn count(s: Option<&str>) -> u64 {
    s.and_then(|v| parse_digits(v.trim())).unwrap_or(0)
}

pub fn port(s: &str) -> Option<u16> {
    parse_digits(s.trim()).and_then(|p| u16::try_from(p).ok())
}

/// Epoch seconds from `secs[.frac]` text (Squid, Zeek): the fraction is dropped.
pub fn epoch_seconds(s: &str) -> Option<i64> {
    let int = match s.bytes().position(|b| b == b'.') {
        Some(dot) => {
            if !s.as_bytes()[dot + 1..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            &s[..dot]
        }
        None => s,
    };
    parse_digits(int).and_then(|v| i64::try_from(v).ok())
}

/// Epoch in seconds, milliseconds, microseconds or nanoseconds, told apart by digit count.
pub fn epoch_any_unit(s: &str) -> Option<i64> {
    let v = i64::try_from(parse_digits(s)?).ok()?;
    Some(match s.len() {
        0..=11 => v,
        12..=14 => v / 1_000,
        15..=17 => v / 1_000_000,
        _ => v / 1_000_000_000,
    })
}

/// `YYYY-MM-DD` + `HH:MM:SS` (either `-` or `/` between date parts).
pub fn date_time(date: &str, time: &str) -> Option<i64> {
    let mut d = date.split(['-', '/']);
    let y: i32 = d.next()?.parse().ok()?;
    let mo: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (h, mi, s) = hms(time)?;
    civil_to_unix(y, mo, day, h, mi, s)
}

/// `HH:MM[:SS[.frac]]`.
pub fn hms(t: &str) -> Option<(u32, u32, u32)> {
    let mut it = t.split(':');
    let h: u32 = it.next()?.parse().ok()?;
    let mi: u32 = it.next()?.parse().ok()?;
    let s: u32 = match it.next() {
        Some(sec) => sec.split('.').next()?.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some((h, mi, s))
}

/// `+HHMM`, `-HH:MM`, `+HH`, `Z`/`UTC`/`GMT` to seconds east of UTC.
pub fn utc_offset(tz: &str) -> Option<i64> {
    let tz = tz.trim();
    if tz.eq_ignore_ascii_case("z") || tz.eq_ignore_ascii_case("utc") || tz.eq_ignore_ascii_case("gmt") {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Common North-American and European zone abbreviations seen in appliance syslog headers.
/// Unknown abbreviations give None (the caller then treats the time as UTC).
pub fn zone_abbrev_offset(abbr: &str) -> Option<i64> {
    let h = match abbr.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "Z" | "WET" => 0,
        "BST" | "CET" | "WEST" => 1,
        "CEST" | "EET" => 2,
        "EEST" => 3,
        "EST" | "CDT" => -5,
        "EDT" => -4,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        "AKST" => -9,
        "HST" => -10,
        "JST" => 9,
        _ => return None,
    };
    Some(h * 3600)
}

/// RFC 3339 / ISO 8601 (`2020-03-29T13:19:22Z`, `...22.298+02:00`, `...22.298` = UTC).
pub fn iso8601(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp());
        }
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.timestamp());
        }
    }
    None
}

/// Strips a leading `<PRI>` (1-3 digits); returns the rest unchanged when there is none.
pub fn strip_pri(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('<')
        && let Some(end) = rest.find('>')
        && (1..=3).contains(&end)
        && rest[..end].bytes().all(|b| b.is_ascii_digit())
    {
        return &rest[end + 1..];
    }
    line
}

/// A BSD-syslog style stamp at the start of `s`: `Mon DD [YYYY] HH:MM:SS[.frac] [ZONE]` or an
/// ISO 8601 token. Returns the UTC seconds and the rest of the text after the stamp. A stamp
/// without a year gets `default_year`. A trailing zone abbreviation or `+hh:mm` is applied
/// when recognised, otherwise the time is taken as UTC.
pub fn syslog_stamp(s: &str, default_year: i32) -> Option<(i64, &str)> {
    let s = s.trim_start();
    let mut toks = Tokens::new(s);
    let first = toks.next()?;
    if first.len() >= 10 && first.as_bytes().get(4) == Some(&b'-') {
        let ts = iso8601(first.trim_end_matches(':'))?;
        return Some((ts, toks.rest()));
    }
    let mo = month_number(first)?;
    if first.len() > 3 && !first[3..].starts_with('.') {
        return None;
    }
    let day: u32 = toks.next()?.parse().ok()?;
    let mut tok = toks.next()?;
    let mut year = default_year;
    if tok.len() == 4 && tok.bytes().all(|b| b.is_ascii_digit()) {
        year = tok.parse().ok()?;
        tok = toks.next()?;
    }
    let tok = tok.trim_end_matches(':');
    let (h, mi, sec) = hms(tok)?;
    let mut ts = civil_to_unix(year, mo, day, h, mi, sec)?;
    let after_time = toks.rest();
    let mut look = Tokens::new(after_time);
    if let Some(zone) = look.next() {
        let z = zone.trim_end_matches(':');
        if let Some(off) =
            zone_abbrev_offset(z).or_else(|| if z.starts_with(['+', '-']) { utc_offset(z) } else { None })
        {
            ts -= off;
            return Some((ts, look.rest()));
        }
    }
    Some((ts, after_time))
}

/// Whitespace tokenizer that can hand back the untouched remainder.
pub struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    pub fn new(s: &'a str) -> Self {
        Tokens { rest: s }
    }
    pub fn rest(&self) -> &'a str {
        self.rest.trim_start()
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start();
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        self.rest = &s[end..];
        Some(&s[..end])
    }
}

/// True for text that is an IP address or is shaped like one (dotted digits such as the
/// sanitised `172.888.184.81`, or hex-and-colon IPv6). Such values belong in `dest_ip`.
pub fn looks_like_ip(s: &str) -> bool {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    if s.is_empty() {
        return false;
    }
    // The dotted-quad shape first: it is the common case, and cheaper than a full parse.
    if dotted_quad(s.as_bytes()) || s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    s.contains(':') && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// Four dot-separated groups of one to three digits (not range-checked: `999.1.1.1` counts).
pub(crate) fn dotted_quad(b: &[u8]) -> bool {
    let (mut dots, mut digits) = (0, 0);
    for &c in b {
        match c {
            b'.' if digits > 0 => (dots, digits) = (dots + 1, 0),
            b'0'..=b'9' if digits < 3 => digits += 1,
            _ => return false,
        }
    }
    dots == 3 && digits > 0
}

/// None for empty and the usual placeholders for "no value".
pub fn present(s: &str) -> Option<&str> {
    let t = s.trim();
    match t {
        "" | "-" | "N/A" | "n/a" | "None" | "none" | "(empty)" | "UNKNOWN" => None,
        _ => Some(t),
    }
}

/// Splits a host-or-IP value into `(dest_host, dest_ip)`.
pub fn host_or_ip(v: Cow<'_, str>) -> (Option<Cow<'_, str>>, Option<Cow<'_, str>>) {
    if looks_like_ip(&v) { (None, Some(v)) } else { (Some(v), None) }
}

/// One `key=value` pair from [`KvScanner`]. `value` still holds any backslash escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kv<'a> {
    pub key: &'a str,
    pub value: &'a str,
    /// The value was quoted and its closing quote was missing (ran to end of input).
    pub unterminated: bool,
}

/// Scans space-separated `key=value` / `key="quoted value"` pairs (FortiGate, Juniper SD).
/// Words without `=` are passed over. A quote with no closing quote takes the rest of the text.
/// `\"` inside a quoted value does not end it.
pub struct KvScanner<'a> {
    s: &'a str,
    pos: usize,
    /// Stop at an unquoted `]` (end of an RFC 5424 structured-data element).
    stop_at_bracket: bool,
}

impl<'a> KvScanner<'a> {
    pub fn new(s: &'a str) -> Self {
        KvScanner { s, pos: 0, stop_at_bracket: false }
    }
    pub fn structured(s: &'a str) -> Self {
        KvScanner { s, pos: 0, stop_at_bracket: true }
    }
    /// Byte offset just past the last pair read (or the `]` that ended the element).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for KvScanner<'a> {
    type Item = Kv<'a>;
    fn next(&mut self) -> Option<Kv<'a>> {
        let b = self.s.as_bytes();
        loop {
            while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return None;
            }
            if self.stop_at_bracket && b[self.pos] == b']' {
                self.pos += 1;
                return None;
            }
            let start = self.pos;
            while self.pos < b.len()
                && b[self.pos] != b'='
                && !b[self.pos].is_ascii_whitespace()
                && !(self.stop_at_bracket && b[self.pos] == b']')
            {
                self.pos += 1;
            }
            if self.pos >= b.len() || b[self.pos] != b'=' {
                // A bare word (syslog header, message text): skip it.
                continue;
            }
            let key = &self.s[start..self.pos];
            self.pos += 1;
            if b.get(self.pos) == Some(&b'"') {
                self.pos += 1;
                let vstart = self.pos;
                let mut i = self.pos;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if i >= b.len() {
                    self.pos = b.len();
                    return Some(Kv { key, value: &self.s[vstart..], unterminated: true });
                }
                self.pos = i + 1;
                return Some(Kv { key, value: &self.s[vstart..i], unterminated: false });
            }
            let vstart = self.pos;
            while self.pos < b.len()
                && !b[self.pos].is_ascii_whitespace()
                && !(self.stop_at_bracket && b[self.pos] == b']')
            {
                self.pos += 1;
            }
            return Some(Kv { key, value: &self.s[vstart..self.pos], unterminated: false });
        }
    }
}

/// Removes backslash escapes (`\"`, `\\`, `\]`, …); borrowed when there are none.
pub fn unescape_backslash(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits one CSV record (RFC 4180 quoting, `""` inside quotes). A missing closing quote
/// takes the rest of the line rather than failing.
pub fn split_csv(line: &str, sep: u8) -> Vec<Cow<'_, str>> {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(72);
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut has_escape = false;
            loop {
                match b.get(j) {
                    None => break,
                    Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                        has_escape = true;
                        j += 2;
                    }
                    Some(b'"') => break,
                    Some(_) => j += 1,
                }
            }
            let end = j.min(b.len());
            let raw = &line[start..end];
            out.push(if has_escape { Cow::Owned(raw.replace("\"\"", "\"")) } else { Cow::Borrowed(raw) });
            // Skip to the separator after the closing quote (tolerating junk before it).
            let mut k = end;
            while k < b.len() && b[k] != sep {
                k += 1;
            }
            if k >= b.len() {
                return out;
            }
            i = k + 1;
        } else {
            let end = memchr::memchr(sep, &b[i..]).map(|p| i + p);
            match end {
                Some(e) => {
                    out.push(Cow::Borrowed(&line[i..e]));
                    i = e + 1;
                }
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return out;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_offsets() {
        assert_eq!(civil_to_unix(2020, 3, 29, 13, 19, 22), Some(1_585_487_962));
        assert_eq!(utc_offset("-0500"), Some(-18_000));
        assert_eq!(utc_offset("+05:30"), Some(19_800));
        let (ts, rest) = syslog_stamp("Apr 15 2014 09:34:34 EDT: %ASA-x", 1970).unwrap();
        assert_eq!(ts, civil_to_unix(2014, 4, 15, 13, 34, 34).unwrap());
        assert_eq!(rest, "%ASA-x");
        let (ts, rest) = syslog_stamp("Nov 30 16:09:08 PA-220 1,", 2018).unwrap();
        assert_eq!(ts, civil_to_unix(2018, 11, 30, 16, 9, 8).unwrap());
        assert_eq!(rest, "PA-220 1,");
        assert_eq!(iso8601("2019-12-27T09:48:23.298Z"), Some(1_577_440_103));
        assert_eq!(epoch_any_unit("1587230269052907555"), Some(1_587_230_269));
        assert_eq!(epoch_any_unit("1592961368"), Some(1_592_961_368));
    }

    #[test]
    fn ip_shapes() {
        assert!(looks_like_ip("172.888.184.81"));
        assert!(looks_like_ip("2001:db8::1"));
        assert!(!looks_like_ip("example.com"));
        assert!(!looks_like_ip("cafe"));
    }

    proptest::proptest! {
        /// The byte-level dotted-quad test agrees with the split-based definition it replaced.
        #[test]
        fn dotted_quad_matches_split_definition(s in "[0-9.a]{0,16}") {
            let by_split = s.split('.').count() == 4
                && s.split('.').all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
            proptest::prop_assert_eq!(dotted_quad(s.as_bytes()), by_split);
        }
    }

    #[test]
    fn kv_scanner_handles_quotes_and_unterminated() {
        let kv: Vec<_> = KvScanner::new(r#"<1>x a=1 b="x = y, z:w" c="open \"q\" d=2"#).collect();
        assert_eq!(kv[0], Kv { key: "a", value: "1", unterminated: false });
        assert_eq!(kv[1].value, "x = y, z:w");
        assert!(kv[2].unterminated);
        assert_eq!(kv.len(), 3);
    }

    #[test]
    fn csv_split_quotes() {
        let f = split_csv(r#"1,"a,b",,"say ""hi""",x"#, b',');
        assert_eq!(f, vec!["1", "a,b", "", "say \"hi\"", "x"]);
    }
}
