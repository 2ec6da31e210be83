//! Host matcher with v2fly rule semantics.
//!
//! Precedence, as v2fly's router applies a geosite list: an exact `full:` rule beats every
//! `domain:` rule, the longest matching `domain:` suffix beats a shorter one, and `keyword:` /
//! `regexp:` rules are only consulted when no `full:`/`domain:` rule matched (keywords before
//! regexps, then the earliest rule). The fast path is one hash probe per label suffix of the
//! host, on a borrowed or stack-lowercased key: no allocation on a hit.
use super::AppIdx;
use regex::{Regex, RegexSet};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

/// Kind of a match rule (v2fly's line kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    /// `full:host` — the exact host only.
    Full,
    /// `domain` / `domain:` — the domain and all its subdomains.
    Domain,
    /// `keyword:` — substring of the host.
    Keyword,
    /// `regexp:` — RE2-style pattern over the host.
    Regexp,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Full => "full",
            RuleKind::Domain => "domain",
            RuleKind::Keyword => "keyword",
            RuleKind::Regexp => "regexp",
        }
    }
    pub fn parse(s: &str) -> Option<RuleKind> {
        match s {
            "full" => Some(RuleKind::Full),
            "domain" => Some(RuleKind::Domain),
            "keyword" => Some(RuleKind::Keyword),
            "regexp" => Some(RuleKind::Regexp),
            _ => None,
        }
    }
}

/// One match rule of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    /// Lowercase host / suffix / substring, or the pattern for `Regexp`.
    pub value: String,
    /// v2fly `@attrs` (without the `@`).
    pub attrs: Vec<String>,
    pub app: AppIdx,
}

impl Rule {
    /// Parses v2fly syntax: `example.com`, `domain:x`, `full:x`, `keyword:x`, `regexp:x`,
    /// optionally followed by ` @attr` tokens.
    pub fn parse_v2fly(text: &str, app: AppIdx) -> Option<Rule> {
        let mut parts = text.split_whitespace();
        let head = parts.next()?;
        let attrs = parts.filter_map(|p| p.strip_prefix('@')).filter(|a| !a.is_empty()).map(str::to_string).collect();
        let (kind, value) = match head.split_once(':') {
            // v2fly's README spells the prefix `regex:`, its data `regexp:`.
            Some(("regex", v)) => (RuleKind::Regexp, v),
            Some((k, v)) => (RuleKind::parse(k)?, v),
            None => (RuleKind::Domain, head),
        };
        let value = match kind {
            RuleKind::Regexp => value.to_string(),
            _ => value.trim_end_matches('.').to_ascii_lowercase(),
        };
        if value.is_empty() {
            return None;
        }
        Some(Rule { kind, value, attrs, app })
    }

    /// `kind:value`, the form shown in reports and `Identified::App::rule`.
    pub fn display(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.value)
    }
}

/// Index of a rule inside the matcher's rule table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleId(pub u32);

/// FxHash-style hasher: the keys are short host names we produced ourselves (no HashDoS
/// exposure worth SipHash's cost on the hot path).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Slot {
    full: u32,
    domain: u32,
}

/// Longest host name we lowercase on the stack (DNS names are at most 253 octets).
const MAX_HOST: usize = 256;

/// Entry of the label index: a run of whole labels (`google`, `mail.google`) that nDPI-style
/// `(^|\.)google\.` patterns look for anywhere before the last label.
#[derive(Clone, Copy)]
struct LabelSlot {
    rule: u32,
    /// Some longer key starts with this one.
    longer: bool,
}

/// Label-shaped regexps, matched with hash probes instead of a regex engine. Each form is
/// exactly equivalent to the regexp it came from.
#[derive(Clone, Default)]
struct LabelIndex {
    /// `(^|\.)a\.b\.` : labels `a.b` followed by at least one more label.
    runs: HashMap<Box<str>, LabelSlot, FxBuild>,
    /// `(^|\.)abc-` : a label starting with `abc-`.
    prefixes: HashMap<Box<str>, u32, FxBuild>,
    /// `-abc\.` : a label ending in `-abc` followed by another label.
    dash_suffixes: HashMap<Box<str>, u32, FxBuild>,
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

impl LabelIndex {
    /// Takes the pattern when it has one of the three label shapes.
    fn try_add(&mut self, pattern: &str, rule: u32) -> bool {
        let plain = |body: &str| body.split("\\.").all(|l| !l.is_empty() && l.bytes().all(is_label_byte));
        if let Some(body) = pattern.strip_prefix(r"(^|\.)") {
            if let Some(run) = body.strip_suffix(r"\.")
                && plain(run)
            {
                let run = run.replace("\\.", ".");
                let mut end = 0;
                for (i, b) in run.bytes().enumerate() {
                    if b == b'.' {
                        let key = run.get(..i).unwrap_or_default();
                        let slot = self.runs.entry(key.into()).or_insert(LabelSlot { rule: NONE, longer: false });
                        slot.longer = true;
                    }
                    end = i + 1;
                }
                let slot = self
                    .runs
                    .entry(run.get(..end).unwrap_or_default().into())
                    .or_insert(LabelSlot { rule: NONE, longer: false });
                if slot.rule == NONE || rule < slot.rule {
                    slot.rule = rule;
                }
                return true;
            }
            if body.ends_with('-') && !body.contains('\\') && body.bytes().all(is_label_byte) {
                self.prefixes.entry(body.into()).or_insert(rule);
                return true;
            }
        }
        if let Some(body) = pattern.strip_suffix(r"\.")
            && body.starts_with('-')
            && body.bytes().all(is_label_byte)
        {
            self.dash_suffixes.entry(body.into()).or_insert(rule);
            return true;
        }
        false
    }

    fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.prefixes.is_empty() && self.dash_suffixes.is_empty()
    }

    /// Lowest rule id among the label patterns matching `host`.
    fn find(&self, host: &str) -> Option<u32> {
        let mut best = NONE;
        let len = host.len();
        let mut start = 0;
        while start < len {
            let label_end = host.get(start..).and_then(|r| r.find('.')).map_or(len, |i| start + i);
            // Runs of labels starting here; each must be followed by another label.
            let mut end = label_end;
            while end < len {
                let Some(slot) = host.get(start..end).and_then(|k| self.runs.get(k)) else { break };
                if slot.rule < best {
                    best = slot.rule;
                }
                if !slot.longer {
                    break;
                }
                end = host.get(end + 1..).and_then(|r| r.find('.')).map_or(len, |i| end + 1 + i);
            }
            if let Some(label) = host.get(start..label_end) {
                for (i, _) in label.match_indices('-') {
                    if let Some(r) = label.get(..=i).and_then(|k| self.prefixes.get(k))
                        && *r < best
                    {
                        best = *r;
                    }
                    if label_end < len
                        && let Some(r) = label.get(i..).and_then(|k| self.dash_suffixes.get(k))
                        && *r < best
                    {
                        best = *r;
                    }
                }
            }
            start = label_end + 1;
        }
        (best != NONE).then_some(best)
    }
}

/// `keyword:` rules and the regexps that do not have a label shape; built on first use so
/// catalog load does not pay for regex compilation.
struct Patterns {
    keywords: Vec<(memchr::memmem::Finder<'static>, u32)>,
    complex: Vec<(Regex, u32)>,
    /// One literal every match of `complex[owner]` must contain: a cheap multi-literal
    /// prefilter so most misses never run a regex.
    literals: Option<RegexSet>,
    literal_owner: Vec<usize>,
    /// Complex patterns without an extractable literal: always tried.
    always: Vec<usize>,
}

impl Patterns {
    fn build(rules: &[Rule], skip: &[bool]) -> Patterns {
        let mut keywords = Vec::new();
        let mut complex: Vec<(Regex, u32)> = Vec::new();
        let mut lits: Vec<String> = Vec::new();
        let mut literal_owner = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if skip.get(i).copied().unwrap_or(false) {
                continue;
            }
            match r.kind {
                RuleKind::Keyword => {
                    keywords.push((memchr::memmem::Finder::new(r.value.as_bytes()).into_owned(), i as u32))
                }
                RuleKind::Regexp => {
                    let Ok(re) = regex::RegexBuilder::new(&r.value).size_limit(1 << 20).build() else { continue };
                    match required_literal(&r.value) {
                        Some(lit) => {
                            lits.push(regex::escape(&lit));
                            literal_owner.push(complex.len());
                        }
                        None => always.push(complex.len()),
                    }
                    complex.push((re, i as u32));
                }
                _ => {}
            }
        }
        let literals = if lits.is_empty() { None } else { RegexSet::new(&lits).ok() };
        if literals.is_none() {
            always.append(&mut literal_owner);
        }
        Patterns { keywords, complex, literals, literal_owner, always }
    }

    fn find(&self, host: &str, mut best: u32) -> Option<u32> {
        // v2fly order: any keyword beats any regexp; within a kind the earliest rule wins.
        let mut kw = NONE;
        for (f, id) in &self.keywords {
            if *id < kw && f.find(host.as_bytes()).is_some() {
                kw = *id;
            }
        }
        if kw != NONE {
            return Some(kw);
        }
        let mut try_complex = |ci: usize| {
            if let Some((re, id)) = self.complex.get(ci)
                && *id < best
                && re.is_match(host)
            {
                best = *id;
            }
        };
        for ci in &self.always {
            try_complex(*ci);
        }
        if let Some(set) = &self.literals
            && set.is_match(host)
        {
            for li in set.matches(host).iter() {
                if let Some(ci) = self.literal_owner.get(li) {
                    try_complex(*ci);
                }
            }
        }
        (best != NONE).then_some(best)
    }
}

/// A literal that every match of `pattern` contains, when one is easy to prove: the longest run
/// of plain characters at the top level (outside groups and classes) of a pattern without a
/// top-level `|`, minus a last character that a quantifier applies to.
fn required_literal(pattern: &str) -> Option<String> {
    let b = pattern.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let mut best = String::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, best: &mut String| {
        if cur.len() > best.len() {
            *best = cur.clone();
        }
        cur.clear();
    };
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => {
                let next = *b.get(i + 1)?;
                if depth == 0 && next.is_ascii_punctuation() {
                    cur.push(next as char);
                } else {
                    flush(&mut cur, &mut best);
                }
                i += 2;
                continue;
            }
            b'(' | b'[' => {
                flush(&mut cur, &mut best);
                depth += 1;
            }
            b')' | b']' => {
                depth = depth.saturating_sub(1);
            }
            b'|' if depth == 0 => return None,
            b'?' | b'*' | b'{' if depth == 0 => {
                cur.pop();
                flush(&mut cur, &mut best);
            }
            b'+' | b'.' | b'^' | b'$' if depth == 0 => flush(&mut cur, &mut best),
            _ if depth == 0 && (c.is_ascii_alphanumeric() || c == b'-' || c == b'_') => cur.push(c as char),
            _ if depth == 0 => flush(&mut cur, &mut best),
            _ => {}
        }
        i += 1;
    }
    flush(&mut cur, &mut best);
    (best.len() >= 3).then_some(best)
}

#[derive(Clone)]
pub struct Matcher {
    rules: Vec<Rule>,
    exact: HashMap<Box<str>, Slot, FxBuild>,
    labels: LabelIndex,
    /// Rules the label index (or a later duplicate) took over.
    skip: Vec<bool>,
    patterns: Arc<OnceLock<Patterns>>,
}

impl Matcher {
    /// Builds the index. When two rules have the same kind and value the LATER one wins, so
    /// user rules appended after the built-in ones override them. Invalid regexps are skipped
    /// (callers that take patterns from people validate them first with [`validate_regex`]).
    pub fn new(rules: Vec<Rule>) -> Matcher {
        let mut exact: HashMap<Box<str>, Slot, FxBuild> = HashMap::default();
        let mut labels = LabelIndex::default();
        let mut skip = vec![false; rules.len()];
        let mut last_pattern: HashMap<(RuleKind, &str), usize, FxBuild> = HashMap::default();
        for (i, r) in rules.iter().enumerate() {
            let id = i as u32;
            match r.kind {
                RuleKind::Full | RuleKind::Domain => {
                    let slot = exact.entry(r.value.as_str().into()).or_insert(Slot { full: NONE, domain: NONE });
                    if r.kind == RuleKind::Full {
                        slot.full = id;
                    } else {
                        slot.domain = id;
                    }
                }
                RuleKind::Keyword | RuleKind::Regexp => {
                    if let Some(prev) = last_pattern.insert((r.kind, r.value.as_str()), i)
                        && let Some(s) = skip.get_mut(prev)
                    {
                        *s = true;
                    }
                }
            }
        }
        // The label index keeps the lowest rule id per key, so feed it only the surviving
        // (last) duplicate of each pattern.
        for (i, r) in rules.iter().enumerate() {
            if r.kind == RuleKind::Regexp
                && !skip.get(i).copied().unwrap_or(true)
                && labels.try_add(&r.value, i as u32)
                && let Some(s) = skip.get_mut(i)
            {
                *s = true;
            }
        }
        Matcher { rules, exact, labels, skip, patterns: Arc::new(OnceLock::new()) }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.0 as usize)
    }

    /// Compiles the keyword/regexp rules now instead of on the first miss.
    pub fn warm_up(&self) {
        let _ = self.patterns();
    }

    fn patterns(&self) -> &Patterns {
        self.patterns.get_or_init(|| Patterns::build(&self.rules, &self.skip))
    }

    /// Finds the rule matching `host`. Accepts any case, a trailing dot, a `:port` suffix and
    /// surrounding whitespace. No allocation unless the host is longer than 256 bytes.
    pub fn find(&self, host: &str) -> Option<RuleId> {
        let host = normalise_borrowed(host);
        if host.is_empty() {
            return None;
        }
        if !host.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.find_lower(host);
        }
        let mut buf = [0u8; MAX_HOST];
        match buf.get_mut(..host.len()) {
            Some(dst) => {
                dst.copy_from_slice(host.as_bytes());
                dst.make_ascii_lowercase();
                // ASCII lowercasing keeps UTF-8 valid.
                std::str::from_utf8(dst).ok().and_then(|h| self.find_lower(h))
            }
            None => self.find_lower(&host.to_ascii_lowercase()),
        }
    }

    fn find_lower(&self, host: &str) -> Option<RuleId> {
        if let Some(slot) = self.exact.get(host) {
            if slot.full != NONE {
                return Some(RuleId(slot.full));
            }
            if slot.domain != NONE {
                return Some(RuleId(slot.domain));
            }
        }
        let bytes = host.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'.'
                && let Some(suffix) = host.get(i + 1..)
                && let Some(slot) = self.exact.get(suffix)
                && slot.domain != NONE
            {
                return Some(RuleId(slot.domain));
            }
        }
        let label = if self.labels.is_empty() { NONE } else { self.labels.find(host).unwrap_or(NONE) };
        self.patterns().find(host, label).map(RuleId)
    }
}

/// Checks that a `regexp:` pattern compiles (and is not absurdly large).
pub fn validate_regex(p: &str) -> Result<(), String> {
    regex::RegexBuilder::new(p).size_limit(1 << 20).build().map(|_| ()).map_err(|e| e.to_string())
}

/// Strips whitespace, a trailing root dot and a `:port` (but leaves IPv6 literals alone).
fn normalise_borrowed(host: &str) -> &str {
    let mut h = host.trim();
    if let Some(rest) = h.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        return rest.get(..end).unwrap_or(rest);
    }
    if let Some((name, port)) = h.rsplit_once(':')
        && !name.contains(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        h = name;
    }
    h.trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str, app: u32) -> Rule {
        Rule::parse_v2fly(text, AppIdx(app)).unwrap()
    }

    fn app_of(m: &Matcher, host: &str) -> Option<u32> {
        m.find(host).and_then(|id| m.rule(id)).map(|r| r.app.0)
    }

    #[test]
    fn full_beats_domain_and_longest_suffix_wins() {
        let m = Matcher::new(vec![
            rule("example.com", 1),
            rule("full:www.example.com", 2),
            rule("domain:cdn.example.com", 3),
        ]);
        assert_eq!(app_of(&m, "example.com"), Some(1));
        assert_eq!(app_of(&m, "a.b.example.com"), Some(1));
        assert_eq!(app_of(&m, "www.example.com"), Some(2));
        // full: is exact only: a subdomain of a full: host falls back to the domain rule.
        assert_eq!(app_of(&m, "x.www.example.com"), Some(1));
        assert_eq!(app_of(&m, "img.cdn.example.com"), Some(3));
        assert_eq!(app_of(&m, "notexample.com"), None);
        assert_eq!(app_of(&m, "WWW.Example.COM.:443"), Some(2));
    }

    #[test]
    fn keyword_and_regexp_only_after_suffix_miss() {
        let m = Matcher::new(vec![
            rule("regexp:^api[0-9]+\\.", 4),
            rule("keyword:tracker", 5),
            rule("tracker.example.org", 6),
        ]);
        assert_eq!(app_of(&m, "tracker.example.org"), Some(6), "domain beats keyword");
        assert_eq!(app_of(&m, "mytracker.net"), Some(5));
        assert_eq!(app_of(&m, "api7.tracker-cdn.io"), Some(5), "keyword before regexp");
        assert_eq!(app_of(&m, "api7.example.io"), Some(4));
        assert_eq!(app_of(&m, "api.example.io"), None);
    }

    #[test]
    fn later_duplicate_overrides_and_attrs_parse() {
        let m = Matcher::new(vec![rule("dup.com @ads @cn", 1), rule("dup.com", 2)]);
        assert_eq!(app_of(&m, "x.dup.com"), Some(2));
        let r = rule("full:ads.example.com @ads @!cn", 0);
        assert_eq!(r.kind, RuleKind::Full);
        assert_eq!(r.attrs, vec!["ads".to_string(), "!cn".to_string()]);
        assert!(Rule::parse_v2fly("bogus:thing", AppIdx(0)).is_none());
    }

    #[test]
    fn label_shaped_regexps_match_like_the_regex() {
        let pats = [r"(^|\.)google\.", r"(^|\.)mail\.google\.", r"(^|\.)skypeecs-", r"-speedtest\.", r"^x[0-9]+\.y$"];
        let rules: Vec<Rule> = pats.iter().enumerate().map(|(i, p)| rule(&format!("regexp:{p}"), i as u32)).collect();
        let m = Matcher::new(rules);
        assert_eq!(m.skip.iter().filter(|s| **s).count(), 4, "four label-shaped patterns indexed");
        let hosts = [
            "google.com",
            "www.google.co.uk",
            "google",
            "x.google",
            "mail.google.com",
            "mail.googlex.com",
            "skypeecs-prod.net",
            "a.skypeecs-1.b",
            "skypeecs.net",
            "foo-speedtest.net",
            "-speedtest.x",
            "speedtest.net",
            "a-speedtest",
            "x12.y",
            "xx12.y",
            "notgoogle.com",
            "a.mail.google.de",
        ];
        for h in hosts {
            let expected = pats.iter().position(|p| regex::Regex::new(p).unwrap().is_match(h)).map(|i| i as u32);
            assert_eq!(app_of(&m, h), expected, "{h}");
        }
    }

    #[test]
    fn required_literals_are_sound() {
        assert_eq!(required_literal(r".+\.awsdns-[0-9][0-9]\.(co\.uk|com|net|org)$").as_deref(), Some(".awsdns-"));
        assert_eq!(
            required_literal(r"^chatgpt-async-webps-prod-\S+-\d+\.webpubsub\.azure\.com$").as_deref(),
            Some("chatgpt-async-webps-prod-")
        );
        assert_eq!(required_literal(r"^abcd?e").as_deref(), Some("abc"));
        assert_eq!(required_literal("a|bcdef"), None);
        assert_eq!(required_literal(r"^[a-z]+$"), None);
    }

    #[test]
    fn bad_regexp_is_skipped_not_fatal() {
        let m = Matcher::new(vec![rule("regexp:(unclosed", 1), rule("ok.com", 2)]);
        assert_eq!(app_of(&m, "ok.com"), Some(2));
        assert_eq!(app_of(&m, "(unclosed"), None);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let m = Matcher::new(vec![rule("example.com", 1)]);
        let long = "a.".repeat(400) + "example.com";
        assert_eq!(app_of(&m, &long.to_uppercase()), Some(1));
        for h in ["", ".", "..", ":", "[::1]:80", "é.example.com", "EXAMPLE.com.:"] {
            let _ = m.find(h);
        }
        assert_eq!(app_of(&m, "É.EXAMPLE.com"), Some(1));
    }
}
