//! Helpers shared by the Zscaler, Blue Coat, CEF, LEEF and Defender parsers: value cleaning,
//! host/IP classification, the timestamp shapes these formats use, the CEF/LEEF key=value
//! splitter, a bounded CSV driver and the Defender row mapping used by both Defender formats.
use std::borrow::Cow;
use std::io::{self, BufRead};

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::{Action, Position, Record, RecordKind, RecordSink, SkipReason, host_of_url};

/// Largest CSV record accepted. An unterminated quote would otherwise pull the rest of the
/// file into one record; past this size the record is reported `TooLong` and reading stops.
pub const MAX_CSV_RECORD: usize = 1024 * 1024;

/// Trims and drops the placeholders vendors write for "no value".
pub fn clean(s: &str) -> Option<&str> {
    let t = s.trim();
    if t.is_empty()
        || t == "-"
        || t.eq_ignore_ascii_case("none")
        || t.eq_ignore_ascii_case("null")
        || t.eq_ignore_ascii_case("n/a")
    {
        None
    } else {
        Some(t)
    }
}

/// True for anything shaped like an IPv4 or IPv6 literal, valid or not: sanitised samples
/// carry `172.888.184.81`, which is still an address and never a host name.
pub fn looks_like_ip(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    s.contains(':')
        && s.bytes().filter(|&b| b == b':').count() >= 2
        && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.' || b == b'%')
}

/// `::ffff:1.2.3.4` (IPv4-mapped IPv6, as Defender writes it) becomes `1.2.3.4`.
pub fn unmap_ip(s: &str) -> &str {
    let lower_prefix = s.get(..7).map(|p| p.eq_ignore_ascii_case("::ffff:")).unwrap_or(false);
    if lower_prefix {
        let rest = &s[7..];
        if rest.contains('.') && looks_like_ip(rest) {
            return rest;
        }
    }
    s
}

/// A plausible DNS name: letters, digits, `-`, `_`, `.` and `*` only, at least one letter.
/// Rejects Windows paths and free text that some `RemoteUrl` values carry.
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
        && !looks_like_ip(s)
}

/// The destination named by a URL, `host[:port][/path]` or bare host: either a host name or an
/// IP (never both), plus the port when one is written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Dest<'a> {
    pub host: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub port: Option<u16>,
}

pub fn dest_of(url_or_host: &str) -> Dest<'_> {
    let mut d = Dest::default();
    let Some(host) = host_of_url(url_or_host) else {
        return d;
    };
    d.port = port_of_url(url_or_host);
    if looks_like_ip(host) {
        d.ip = Some(Cow::Borrowed(unmap_ip(host)));
    } else if is_host_name(host) {
        d.host = Some(Cow::Borrowed(host));
    }
    d
}

fn port_of_url(url: &str) -> Option<u16> {
    let rest = match url.find("://") {
        Some(i) => url.get(i + 3..)?,
        None => url,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let port_text = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p).unwrap_or(""),
        None => match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => p,
            _ => "",
        },
    };
    port_text.parse().ok()
}

/// Parses a port; 0 and junk mean "not known".
pub fn port(s: &str) -> Option<u16> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(p) => Some(p),
    }
}

/// Parses a byte count; negative or junk values count as 0.
pub fn bytes(s: &str) -> u64 {
    let t = s.trim();
    t.parse::<u64>()
        .ok()
        .or_else(|| t.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
        .unwrap_or(0)
}

/// Maps vendor action words. Anything unrecognised stays `Unknown`.
pub fn action_of(s: &str) -> Action {
    let t = s.trim().to_ascii_lowercase();
    const BLOCK: &[&str] = &["block", "deny", "denied", "drop", "reject", "prevent", "quarantine", "forbid"];
    const ALLOW: &[&str] = &["allow", "accept", "permit", "pass", "observed", "proxied", "success"];
    if BLOCK.iter().any(|w| t.contains(w)) {
        Action::Blocked
    } else if ALLOW.iter().any(|w| t.contains(w)) {
        Action::Allowed
    } else {
        Action::Unknown
    }
}

/// Decodes `%HH` escapes (and nothing else). Invalid sequences are kept literally; the result is
/// lossy UTF-8 so a bad escape cannot make the line unreadable.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(|c| hex_val(*c)), b.get(i + 2).and_then(|c| hex_val(*c)))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

pub fn month_of(s: &str) -> Option<u32> {
    const M: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let p = s.get(..3)?.to_ascii_lowercase();
    M.iter().position(|m| *m == p).map(|i| i as u32 + 1)
}

/// Seconds east of UTC for `Z`, `UTC`, `GMT`, `+05:30`, `-0500`, `GMT+1`, `UTC-03:00`.
pub fn zone_offset(s: &str) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let upper = t.to_ascii_uppercase();
    let rest = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.parse::<i64>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (digits[..split].parse::<i64>().ok()?, digits[split..].parse::<i64>().ok()?)
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Epoch seconds, milliseconds, microseconds or nanoseconds (by digit count), fraction allowed.
pub fn epoch_auto(s: &str) -> Option<i64> {
    let t = s.trim();
    let int = t.split('.').next()?;
    if int.is_empty() || int.len() > 19 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = int.parse().ok()?;
    let secs = match int.len() {
        0..=11 => v,
        12..=14 => v / 1_000,
        15..=17 => v / 1_000_000,
        _ => v / 1_000_000_000,
    };
    plausible(secs)
}

/// Rejects times outside 1990..2100: they come from garbage, not from logs.
fn plausible(secs: i64) -> Option<i64> {
    (631_152_000..4_102_444_800).contains(&secs).then_some(secs)
}

/// ISO 8601 / RFC 3339 with 0-9 fraction digits, `T` or space, optional zone (none = UTC).
pub fn parse_iso(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return plausible(dt.timestamp());
    }
    let t2 = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t2) {
        return plausible(dt.timestamp());
    }
    // No zone, or a zone without colon (`+0000`), or a trailing ` UTC`.
    let (body, off) = split_zone(&t2);
    let ndt = NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M"))
        .ok()?;
    plausible(ndt.and_utc().timestamp() - off)
}

/// Splits a trailing zone designator off a date-time string; returns its offset (0 if none).
fn split_zone(t: &str) -> (&str, i64) {
    let t = t.trim();
    if let Some(b) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        return (b, 0);
    }
    if let Some((b, z)) = t.rsplit_once(' ')
        && let Some(off) = zone_offset(z)
    {
        return (b.trim_end(), off);
    }
    if let Some(b) = t.strip_suffix("TUTC").or_else(|| t.strip_suffix("TGMT")) {
        return (b, 0);
    }
    // `...T10:00:00+0200` / `-05:00`: the sign must come after the time part.
    if let Some(tpos) = t.find('T')
        && let Some(i) = t[tpos..].rfind(['+', '-']).map(|i| i + tpos)
        && let Some(off) = zone_offset(&t[i..])
    {
        return (&t[..i], off);
    }
    (t, 0)
}

/// `MMM dd yyyy HH:mm:ss[.SSS] [zone]` (CEF `rt`, LEEF default `devTime`), also
/// `MMM dd HH:mm:ss yyyy` is not accepted: a year is required. Zone missing = UTC.
pub fn parse_mmm_dd_yyyy(s: &str) -> Option<i64> {
    let toks: Vec<&str> = s.split_whitespace().collect();
    let [mon, day, year, time, rest @ ..] = toks.as_slice() else {
        return None;
    };
    let month = month_of(mon)?;
    let day: u32 = day.parse().ok()?;
    let year: i32 = year.parse().ok()?;
    let off = match rest {
        [] => 0,
        [z] => zone_offset(z)?,
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f").ok()?;
    plausible(date.and_time(time).and_utc().timestamp() - off)
}

/// ctime layout `Fri Dec 31 07:07:07 2021` (day may be space-padded), no zone: returns the
/// naive value as if UTC; callers apply any zone they know.
pub fn parse_ctime(s: &str) -> Option<i64> {
    let toks: Vec<&str> = s.split_whitespace().collect();
    let [_dow, mon, day, time, year] = toks.as_slice() else {
        return None;
    };
    let month = month_of(mon)?;
    let date = NaiveDate::from_ymd_opt(year.parse().ok()?, month, day.parse().ok()?)?;
    let time = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").ok()?;
    plausible(date.and_time(time).and_utc().timestamp())
}

/// Any of the shapes above, for fields whose format is not fixed.
pub fn parse_any_time(s: &str) -> Option<i64> {
    let t = s.trim();
    epoch_auto(t).or_else(|| parse_iso(t)).or_else(|| parse_mmm_dd_yyyy(t)).or_else(|| parse_ctime(t))
}

/// One `key=value` pair of a CEF extension or a delimiter-less LEEF attribute list, with the
/// value still escaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawPair<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']')
}

/// Where one extension key starts and where its `=` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvStart {
    pub key: usize,
    pub eq: usize,
}

/// Splits `k1=v one k2=v\=2` into pairs. A value runs to the whitespace before the next
/// unescaped ` key=`, so values may contain spaces; `sep` is the pair separator besides
/// whitespace (`;` for the non-conforming Cisco Firepower variant, else none).
pub fn split_kv(ext: &str, sep: Option<u8>) -> Vec<RawPair<'_>> {
    let mut starts = Vec::new();
    kv_key_starts(ext, sep, &mut starts);
    (0..starts.len()).filter_map(|n| kv_pair(ext, sep, &starts, n)).collect()
}

/// The key starts [`split_kv`] splits on, into a buffer the caller can reuse across lines.
/// A key starts at a byte after a separator (or at 0) whose run of key bytes ends in `=`;
/// the byte after a backslash never starts one.
pub fn kv_key_starts(ext: &str, sep: Option<u8>, out: &mut Vec<KvStart>) {
    out.clear();
    let b = ext.as_bytes();
    let is_sep = |c: u8| c == b' ' || c == b'\t' || Some(c) == sep;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let at_boundary = i == 0 || b.get(i - 1).is_some_and(|&p| is_sep(p));
        if at_boundary && is_key_byte(c) {
            let run = b.get(i..).map_or(0, |r| r.iter().position(|&k| !is_key_byte(k)).unwrap_or(r.len()));
            let j = i + run;
            if b.get(j) == Some(&b'=') {
                out.push(KvStart { key: i, eq: j });
                i = j + 1;
                continue;
            }
        }
        if c == b'\\' {
            i += 2;
        } else if is_sep(c) {
            i += 1;
        } else {
            // Until the next separator or backslash no byte can start a key or an escape, so
            // the byte-by-byte walk would only step over them: jump instead.
            let rest = b.get(i + 1..).unwrap_or_default();
            i += 1 + next_sep_or_escape(rest, sep).unwrap_or(rest.len());
        }
    }
}

fn next_sep_or_escape(b: &[u8], sep: Option<u8>) -> Option<usize> {
    let common = memchr::memchr3(b' ', b'\t', b'\\', b);
    match sep {
        Some(s) if !matches!(s, b' ' | b'\t' | b'\\') => {
            let upto = common.unwrap_or(b.len());
            memchr::memchr(s, b.get(..upto).unwrap_or_default()).or(common)
        }
        _ => common,
    }
}

/// Pair `n` of the starts found by [`kv_key_starts`]; its value runs to the next key.
pub fn kv_pair<'a>(ext: &'a str, sep: Option<u8>, starts: &[KvStart], n: usize) -> Option<RawPair<'a>> {
    let KvStart { key: ks, eq } = *starts.get(n)?;
    let vend = starts.get(n + 1).map_or(ext.len(), |next| next.key);
    let key = ext.get(ks..eq)?;
    let mut value = ext.get((eq + 1).min(vend)..vend)?;
    if let Some(s) = sep {
        value = value.strip_suffix(s as char).unwrap_or(value);
    }
    Some(RawPair { key, value: value.trim_matches([' ', '\t']) })
}

/// Undoes CEF extension escaping: `\=`, `\\`, `\n`, `\r`; any other backslash stays.
pub fn cef_unescape_value(v: &str) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.peek() {
                Some('=') | Some('\\') | Some('|') => {
                    if let Some(n) = it.next() {
                        out.push(n);
                    }
                }
                Some('n') => {
                    it.next();
                    out.push('\n');
                }
                Some('r') => {
                    it.next();
                    out.push('\r');
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits a CEF/LEEF header on unescaped `|`, at most `n` fields; the last element is the rest
/// of the line (the extension). Header fields are unescaped (`\|`, `\\`).
pub fn split_header(s: &str, n: usize) -> Option<(Vec<String>, &str)> {
    let b = s.as_bytes();
    let mut fields = Vec::with_capacity(n);
    let mut cur = String::new();
    let mut i = 0;
    let mut seg_start = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if matches!(b.get(i + 1), Some(b'|') | Some(b'\\')) => {
                cur.push_str(&s[seg_start..i]);
                cur.push(b[i + 1] as char);
                i += 2;
                seg_start = i;
            }
            b'|' => {
                cur.push_str(&s[seg_start..i]);
                fields.push(std::mem::take(&mut cur));
                i += 1;
                seg_start = i;
                if fields.len() == n {
                    return Some((fields, &s[i..]));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Where the extension starts after `n` unescaped `|`, splitting exactly as [`split_header`]
/// does but without building the fields (the CEF record mapping never reads them).
pub fn header_end(s: &str, n: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut fields = 0;
    while let Some(off) = memchr::memchr2(b'\\', b'|', b.get(i..)?) {
        let p = i + off;
        if b.get(p) == Some(&b'|') {
            fields += 1;
            i = p + 1;
            if fields == n {
                return Some(i);
            }
        } else if matches!(b.get(p + 1), Some(b'|') | Some(b'\\')) {
            i = p + 2;
        } else {
            i = p + 1;
        }
    }
    None
}

/// Field access by name over a JSON object or a CSV row, so both Defender formats share one
/// mapping. Empty strings and JSON nulls read as None.
pub trait Fields {
    fn get(&self, key: &str) -> Option<Cow<'_, str>>;
    /// `AdditionalFields` decoded, whether it arrived as an object or as a JSON string.
    fn additional(&self) -> Option<serde_json::Map<String, serde_json::Value>>;
}

pub fn json_str<'v>(v: &'v serde_json::Value) -> Option<Cow<'v, str>> {
    match v {
        serde_json::Value::String(s) => clean(s).map(Cow::Borrowed),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
        serde_json::Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// Decodes an `AdditionalFields`-style value that may be an object or a JSON-encoded string.
pub fn json_object(v: &serde_json::Value) -> Option<serde_json::Map<String, serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => Some(m.clone()),
        serde_json::Value::String(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        },
        _ => None,
    }
}

impl Fields for serde_json::Map<String, serde_json::Value> {
    fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        serde_json::Map::get(self, key).and_then(json_str)
    }
    fn additional(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        serde_json::Map::get(self, "AdditionalFields").and_then(json_object)
    }
}

fn owned(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    c.map(|v| Cow::Owned(v.into_owned()))
}

/// Windows account as one string: UPN when known, else `DOMAIN\name`, else `name`.
pub fn account(
    upn: Option<Cow<'_, str>>,
    domain: Option<Cow<'_, str>>,
    name: Option<Cow<'_, str>>,
) -> Option<Cow<'static, str>> {
    if let Some(u) = upn {
        return owned(Some(u));
    }
    match (domain, name) {
        (Some(d), Some(n)) => Some(Cow::Owned(format!("{d}\\{n}"))),
        (None, Some(n)) => owned(Some(n)),
        _ => None,
    }
}

/// What a Defender device-table row turns into.
pub enum DefenderRow {
    Records(Vec<Record<'static>>),
    Skip(SkipReason),
}

fn is_inbound(action: &str, extra: Option<&serde_json::Map<String, serde_json::Value>>) -> bool {
    action.starts_with("Inbound")
        || action == "ListeningConnectionCreated"
        || extra.and_then(|m| m.get("direction")).and_then(|v| v.as_str()).is_some_and(|d| d.eq_ignore_ascii_case("in"))
}

/// DeviceNetworkEvents-shaped row (also the network rows of the CSV union export) → Traffic.
/// Inbound connections are skipped: their remote end is a client, not a service used.
pub fn defender_network(f: &dyn Fields, ts: i64) -> DefenderRow {
    let action_type = f.get("ActionType").map(|c| c.into_owned()).unwrap_or_default();
    let extra = f.additional();
    if is_inbound(&action_type, extra.as_ref()) {
        return DefenderRow::Skip(SkipReason::Irrelevant("inbound connection"));
    }
    let mut rec = Record { kind: RecordKind::Traffic, ts, ..Default::default() };
    if let Some(remote_url) = f.get("RemoteUrl") {
        let d = dest_of(&remote_url);
        if d.host.is_some() || d.ip.is_some() {
            if remote_url.contains("://") {
                rec.url = Some(Cow::Owned(remote_url.to_string()));
            }
            rec.dest_host = owned(d.host);
            rec.dest_ip = owned(d.ip);
            rec.dest_port = d.port;
        }
    }
    if rec.dest_host.is_none()
        && let Some(m) = &extra
    {
        let named =
            ["host", "server_name"].iter().filter_map(|k| m.get(*k)).filter_map(json_str).find(|h| is_host_name(h));
        rec.dest_host = owned(named.and_then(|h| dest_of(&h).host.map(|c| Cow::Owned(c.into_owned()))));
    }
    if let Some(ip) = f.get("RemoteIP") {
        rec.dest_ip = Some(Cow::Owned(unmap_ip(&ip).to_string()));
    }
    if rec.dest_host.is_none() && rec.dest_ip.is_none() {
        return DefenderRow::Skip(SkipReason::Irrelevant("no remote endpoint"));
    }
    if let Some(p) = f.get("RemotePort").and_then(|p| port(&p)) {
        rec.dest_port = Some(p);
    }
    rec.src_ip = f.get("LocalIP").map(|ip| Cow::Owned(unmap_ip(&ip).to_string()));
    rec.device = owned(f.get("DeviceName"));
    rec.user = account(
        f.get("InitiatingProcessAccountUpn"),
        f.get("InitiatingProcessAccountDomain"),
        f.get("InitiatingProcessAccountName"),
    );
    rec.action = if action_type == "ConnectionFailed"
        || (action_type.starts_with("Firewall") && action_type.ends_with("Blocked"))
    {
        Action::Blocked
    } else if action_type == "ConnectionSuccess" {
        Action::Allowed
    } else {
        Action::Unknown
    };
    if let Some(m) = &extra {
        rec.vendor_app = owned(m.get("ApplicationName").and_then(json_str));
    }
    DefenderRow::Records(vec![rec])
}

/// DeviceLogonEvents-shaped row → Logon edge, only for successful logons with both ends known.
pub fn defender_logon(f: &dyn Fields, ts: i64) -> DefenderRow {
    let success = f.get("ActionType").is_some_and(|a| a == "LogonSuccess");
    if !success {
        return DefenderRow::Skip(SkipReason::Irrelevant("logon not successful"));
    }
    let upn = f
        .get("AccountUpn")
        .or_else(|| f.additional().and_then(|m| m.get("Upn").and_then(json_str).map(|c| Cow::Owned(c.into_owned()))));
    let user = account(upn, f.get("AccountDomain"), f.get("AccountName"));
    let device = owned(f.get("DeviceName"));
    match (user, device) {
        (Some(user), Some(device)) => DefenderRow::Records(vec![Record {
            kind: RecordKind::Logon,
            ts,
            user: Some(user),
            device: Some(device),
            src_ip: owned(f.get("IPAddress")).or_else(|| owned(f.get("RemoteIP")).filter(|ip| looks_like_ip(ip))),
            vendor_app: owned(f.get("Application")),
            ..Default::default()
        }]),
        _ => DefenderRow::Skip(SkipReason::Irrelevant("logon without user or device")),
    }
}

/// Reports each row of a CSV stream with the line it starts on and the byte offset just past
/// its last physical line. Records are cut at physical line ends unless a quoted field is still
/// open (RFC 4180 newlines in fields), then each record is parsed by the `csv` crate. A record
/// longer than [`MAX_CSV_RECORD`] is skipped as `TooLong` and reading resumes at the next line.
pub fn drive_csv(
    input: &mut dyn BufRead,
    sink: &mut dyn RecordSink,
    mut row: impl FnMut(&[String], &csv::StringRecord, Position, &mut dyn RecordSink),
) -> io::Result<()> {
    let mut header: Option<Vec<String>> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut quote = QuoteState::FieldStart;
    let (mut line_no, mut offset, mut start_line) = (0u64, 0u64, 0u64);
    loop {
        let scan_from = buf.len();
        let room = MAX_CSV_RECORD.saturating_sub(buf.len());
        let (consumed, truncated) = read_line_bounded(input, &mut buf, room)?;
        if consumed == 0 {
            if !buf.is_empty() {
                let pos = Position { line: start_line, offset_end: offset };
                emit_csv(&buf, start_line == 1, pos, &mut header, sink, &mut row);
            }
            return Ok(());
        }
        line_no += 1;
        offset += consumed;
        if start_line == 0 {
            start_line = line_no;
        }
        let pos = Position { line: start_line, offset_end: offset };
        if truncated {
            sink.skip(pos, SkipReason::TooLong, buf.get(..120).unwrap_or(&buf));
            buf.clear();
            quote = QuoteState::FieldStart;
            start_line = 0;
            continue;
        }
        for &c in &buf[scan_from..] {
            quote = quote.step(c);
        }
        if quote == QuoteState::Quoted {
            continue;
        }
        emit_csv(&buf, start_line == 1, pos, &mut header, sink, &mut row);
        buf.clear();
        quote = QuoteState::FieldStart;
        start_line = 0;
    }
}

/// Just enough of the RFC 4180 state machine to know whether a line end is inside quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    AfterQuote,
}

impl QuoteState {
    fn step(self, c: u8) -> QuoteState {
        match (self, c) {
            (QuoteState::Quoted, b'"') => QuoteState::AfterQuote,
            (QuoteState::Quoted, _) => QuoteState::Quoted,
            (QuoteState::AfterQuote, b'"') => QuoteState::Quoted,
            (QuoteState::FieldStart, b'"') => QuoteState::Quoted,
            (_, b',') | (_, b'\n') => QuoteState::FieldStart,
            _ => QuoteState::Unquoted,
        }
    }
}

/// Appends one physical line (with its newline) to `out`, keeping at most `room` bytes but
/// consuming through the newline. Returns bytes consumed and whether the line was cut.
fn read_line_bounded(input: &mut dyn BufRead, out: &mut Vec<u8>, room: usize) -> io::Result<(u64, bool)> {
    let mut consumed = 0u64;
    let mut kept = 0usize;
    let mut truncated = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((consumed, truncated));
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let keep = take.min(room - kept);
        out.extend_from_slice(&chunk[..keep]);
        kept += keep;
        if keep < take {
            truncated = true;
        }
        input.consume(take);
        consumed += take as u64;
        if done {
            return Ok((consumed, truncated));
        }
    }
}

fn emit_csv(
    raw: &[u8],
    first: bool,
    pos: Position,
    header: &mut Option<Vec<String>>,
    sink: &mut dyn RecordSink,
    row: &mut impl FnMut(&[String], &csv::StringRecord, Position, &mut dyn RecordSink),
) {
    let mut bytes = raw;
    if first {
        bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => {}
        _ => {
            sink.skip(pos, SkipReason::Malformed("csv syntax"), bytes.get(..120).unwrap_or(bytes));
            return;
        }
    }
    let Ok(text) = csv::StringRecord::from_byte_record(rec) else {
        sink.skip(pos, SkipReason::NotUtf8, bytes.get(..120).unwrap_or(bytes));
        return;
    };
    match header {
        None => *header = Some(text.iter().map(|f| f.trim().to_string()).collect()),
        Some(h) => row(h, &text, pos, sink),
    }
}

/// A CSV row as [`Fields`], by header name.
pub struct CsvRow<'r> {
    pub header: &'r [String],
    pub row: &'r csv::StringRecord,
}

impl CsvRow<'_> {
    pub fn raw(&self, key: &str) -> Option<&str> {
        let i = self.header.iter().position(|h| h.eq_ignore_ascii_case(key))?;
        self.row.get(i).and_then(clean)
    }

    /// The first column whose header starts with `prefix` (`Timestamp [UTC]`, `Date (UTC)`).
    pub fn raw_prefix(&self, prefix: &str) -> Option<&str> {
        let i =
            self.header.iter().position(|h| h.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix)))?;
        self.row.get(i).and_then(clean)
    }
}

impl Fields for CsvRow<'_> {
    fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        self.raw(key).map(Cow::Borrowed)
    }
    fn additional(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.raw("AdditionalFields").and_then(|s| match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        })
    }
}

/// The raw text of a CSV row for skip reports.
pub fn row_text(row: &csv::StringRecord) -> String {
    row.iter().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_shape() {
        assert_eq!(parse_iso("2022-11-09T17:43:28.18835Z"), Some(1_668_015_808));
        assert_eq!(parse_iso("2023-07-19T12:17:42.7782364Z"), Some(1_689_769_062));
        assert_eq!(parse_iso("2022-11-22T06:19:37Z"), Some(1_669_097_977));
        assert_eq!(parse_iso("2023-10-25 17:44:53 UTC"), Some(1_698_255_893));
        assert_eq!(parse_iso("2023-10-25T19:44:53+0200"), Some(1_698_255_893));
        assert_eq!(parse_iso("2023-10-25T17:44:53"), Some(1_698_255_893));
        assert_eq!(parse_mmm_dd_yyyy("Jan 17 2020 08:52:10"), Some(1_579_251_130));
        assert_eq!(parse_mmm_dd_yyyy("Jan 17 2020 09:52:10.123 +0100"), Some(1_579_251_130));
        assert_eq!(parse_ctime("Fri Dec 31 07:07:07 2021"), Some(1_640_934_427));
        assert_eq!(parse_ctime("Thu Aug  9 09:20:35 2022"), Some(1_660_036_835));
        assert_eq!(epoch_auto("1694428385000"), Some(1_694_428_385));
        assert_eq!(epoch_auto("1694428385"), Some(1_694_428_385));
        assert_eq!(epoch_auto("12"), None);
        assert_eq!(zone_offset("GMT+05:30"), Some(19_800));
        assert_eq!(zone_offset("-0500"), Some(-18_000));
        assert_eq!(zone_offset("EST"), None);
    }

    #[test]
    fn hosts_and_ips_are_told_apart() {
        assert!(looks_like_ip("172.888.184.81"));
        assert!(looks_like_ip("2001:db8::1"));
        assert!(!looks_like_ip("sync.1rx.io"));
        assert_eq!(unmap_ip("::ffff:172.64.149.247"), "172.64.149.247");
        assert_eq!(unmap_ip("::1"), "::1");
        assert!(!is_host_name("C:\\ProgramData\\x.lnk"));
        let d = dest_of("www.example.com:443");
        assert_eq!((d.host.as_deref(), d.port), (Some("www.example.com"), Some(443)));
        let d = dest_of("https://81.2.69.1:8443/x");
        assert_eq!((d.ip.as_deref(), d.port), (Some("81.2.69.1"), Some(8443)));
        assert_eq!(dest_of("https://[2001:db8::1]:8443/").port, Some(8443));
    }

    #[test]
    fn kv_splitter_keeps_spaces_and_escapes() {
        let p = split_kv("message=This is padded dst=1.2.3.4 x=a\\=b  ", None);
        let got: Vec<_> = p.iter().map(|p| (p.key, p.value)).collect();
        assert_eq!(got, vec![("message", "This is padded"), ("dst", "1.2.3.4"), ("x", "a\\=b")]);
        let p = split_kv("rt=1;start=2 ;src=1.2.3.4", Some(b';'));
        let got: Vec<_> = p.iter().map(|p| (p.key, p.value)).collect();
        assert_eq!(got, vec![("rt", "1"), ("start", "2"), ("src", "1.2.3.4")]);
    }
}

#[cfg(test)]
mod kv_equivalence {
    use super::*;
    use proptest::prelude::*;

    /// The byte-by-byte splitter [`split_kv`] replaced, kept as the reference.
    fn split_kv_reference(ext: &str, sep: Option<u8>) -> Vec<RawPair<'_>> {
        let b = ext.as_bytes();
        let mut starts: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let at_boundary = i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t' || Some(b[i - 1]) == sep;
            if at_boundary && is_key_byte(b[i]) {
                let mut j = i;
                while j < b.len() && is_key_byte(b[j]) {
                    j += 1;
                }
                if j < b.len() && b[j] == b'=' {
                    starts.push((i, j));
                    i = j + 1;
                    continue;
                }
            }
            if b[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        let mut out = Vec::with_capacity(starts.len());
        for (n, &(ks, eq)) in starts.iter().enumerate() {
            let vend = starts.get(n + 1).map(|&(next, _)| next).unwrap_or(b.len());
            let key = &ext[ks..eq];
            let mut value = &ext[(eq + 1).min(vend)..vend];
            if let Some(s) = sep {
                value = value.strip_suffix(s as char).unwrap_or(value);
            }
            out.push(RawPair { key, value: value.trim_matches([' ', '\t']) });
        }
        out
    }

    /// The allocating splitter [`header_end`] mirrors.
    fn header_end_reference(s: &str, n: usize) -> Option<usize> {
        split_header(s, n).map(|(_, rest)| s.len() - rest.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn split_kv_matches_the_byte_walk(ext in "([a-c=;|\\\\ \t.\\[\\]_-]|key|cs1Label|é){0,40}",
                                          sep in prop::sample::select(vec![None, Some(b';'), Some(b' '), Some(b'\\'), Some(b'a'), Some(b'=')])) {
            prop_assert_eq!(split_kv(&ext, sep), split_kv_reference(&ext, sep));
        }

        #[test]
        fn header_end_matches_split_header(s in "([a|\\\\ =]|é){0,30}", n in 0usize..9) {
            prop_assert_eq!(header_end(&s, n), header_end_reference(&s, n));
        }
    }
}

#[cfg(test)]
mod sniff_tests {
    use crate::ingest::LogFormat;

    /// Which of this module group's formats owns a sample file, by path fragment.
    const OWNERS: &[(&str, &str)] = &[
        ("zscaler/", "zscaler"),
        ("bluecoat-proxysg/", "bluecoat"),
        ("cef/", "cef"),
        ("m365_defender/", "defender-json"),
        ("mde-advanced-hunting/", "defender-csv"),
        ("mcas-activity-log/", "mdca-csv"),
    ];

    fn ours() -> Vec<&'static dyn LogFormat> {
        use crate::ingest::{bluecoat, cef, defender_csv, defender_json, leef, mdca_csv, zscaler};
        [
            zscaler::FORMATS,
            bluecoat::FORMATS,
            cef::FORMATS,
            leef::FORMATS,
            defender_json::FORMATS,
            defender_csv::FORMATS,
            mdca_csv::FORMATS,
        ]
        .iter()
        .flat_map(|g| g.iter().copied())
        .collect()
    }

    #[test]
    fn formats_detect_their_samples_and_only_those() {
        let files = crate::ingest::test_support::all_samples();
        assert!(files.len() >= 20, "shared data not found");
        let mut owned_seen = 0;
        for path in files {
            let bytes = crate::ingest::test_support::sample(&path);
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text
                .lines()
                .map(|l| l.trim_start_matches('\u{feff}').trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .take(10)
                .collect();
            let p = &path;
            let owner = OWNERS.iter().find(|(frag, _)| p.contains(frag)).map(|(_, name)| *name);
            if let Some(name) = owner {
                owned_seen += 1;
                assert_eq!(crate::ingest::registry::detect(&lines).map(|f| f.name()), Some(name), "{p}");
            }
            for f in ours() {
                if Some(f.name()) != owner {
                    assert!(f.sniff(&lines) < 50, "{} scores {} on {p}", f.name(), f.sniff(&lines));
                }
            }
        }
        assert_eq!(owned_seen, 8);
    }
}
