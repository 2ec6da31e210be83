//! Host matcher with v2fly rule semantics.
//!
//! Precedence, as v2fly's router applies a geosite list: an exact `full:` rule beats every
//! `domain:` rule, the longest matching `domain:` suffix beats a shorter one, and `keyword:` /
//! `regexp:` rules are only consulted when no `full:`/`domain:` rule matched (keywords before
//! regexps, then the earliest rule). The fast path is one hash probe per label suffix of the
//! host, on a borrowed or stack-lowercased key: no allocation on a hit.
use super::AppIdx;
use regex::RegexSet;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

#[derive(Clone)]
pub struct Matcher {
    rules: Vec<Rule>,
    exact: HashMap<Box<str>, Slot, FxBuild>,
    /// Keywords first, then regexps; `pattern_rules[i]` is the rule of pattern `i`.
    patterns: Option<RegexSet>,
    pattern_rules: Vec<u32>,
}

impl Matcher {
    /// Builds the index. When two rules have the same kind and value the LATER one wins, so
    /// user rules appended after the built-in ones override them. Invalid regexps are skipped
    /// (callers that take patterns from people validate them first with [`validate_regex`]).
    pub fn new(rules: Vec<Rule>) -> Matcher {
        let mut exact: HashMap<Box<str>, Slot, FxBuild> = HashMap::default();
        let mut keywords: Vec<(String, u32)> = Vec::new();
        let mut regexps: Vec<(String, u32)> = Vec::new();
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
                RuleKind::Keyword => keywords.push((regex::escape(&r.value), id)),
                RuleKind::Regexp => {
                    if validate_regex(&r.value).is_ok() {
                        regexps.push((r.value.clone(), id));
                    }
                }
            }
        }
        // Later duplicates win for keyword/regexp too: keep the last rule per pattern.
        let mut pats: Vec<(String, u32)> = Vec::new();
        for (p, id) in keywords.into_iter().chain(regexps) {
            match pats.iter_mut().find(|(q, _)| *q == p) {
                Some(slot) => slot.1 = id,
                None => pats.push((p, id)),
            }
        }
        let patterns = if pats.is_empty() { None } else { RegexSet::new(pats.iter().map(|(p, _)| p.as_str())).ok() };
        Matcher { rules, exact, patterns, pattern_rules: pats.into_iter().map(|(_, id)| id).collect() }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.0 as usize)
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
        self.find_pattern(host)
    }

    fn find_pattern(&self, host: &str) -> Option<RuleId> {
        let set = self.patterns.as_ref()?;
        if !set.is_match(host) {
            return None;
        }
        let first = set.matches(host).into_iter().next()?;
        self.pattern_rules.get(first).map(|id| RuleId(*id))
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
