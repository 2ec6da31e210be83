//! v2fly domain-list-community list files: parsing and `include:` resolution.
//!
//! The built-in asset is generated offline, but the same semantics are needed to read a v2fly
//! `data/` directory directly (and to test the generator's interpretation against the source):
//! a file is a list named by its file name; `#` starts a comment anywhere on a line; a line is
//! `domain` / `domain:x` / `full:x` / `keyword:x` / `regexp:x` (the README's `regex:` too) with
//! optional `@attr`s, or `include:list` with optional filters `@attr` (keep only rules with the
//! attribute) and `@-attr` (drop rules with it). Include cycles and missing lists are ignored.
use super::AppIdx;
use super::matcher::Rule;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Rule(Rule),
    Include { list: String, filters: Vec<String> },
}

/// A rule with the list it was written in.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRule {
    pub list: String,
    pub rule: Rule,
}

#[derive(Debug, Clone, Default)]
pub struct ListSet {
    lists: HashMap<String, Vec<Entry>>,
}

/// Parses one list file.
pub fn parse_list(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("include:") {
            let mut parts = rest.split_whitespace();
            let Some(list) = parts.next() else { continue };
            let filters = parts.filter_map(|p| p.strip_prefix('@')).map(str::to_string).collect();
            out.push(Entry::Include { list: list.to_string(), filters });
        } else if let Some(rule) = Rule::parse_v2fly(line, AppIdx(0)) {
            out.push(Entry::Rule(rule));
        }
    }
    out
}

fn passes(filters: &[String], attrs: &[String]) -> bool {
    filters.iter().all(|f| match f.strip_prefix('-') {
        Some(neg) => !attrs.iter().any(|a| a == neg),
        None => attrs.iter().any(|a| a == f),
    })
}

impl ListSet {
    pub fn insert(&mut self, name: &str, text: &str) {
        self.lists.insert(name.to_string(), parse_list(text));
    }

    /// Reads every regular file of a `data/` directory.
    pub fn from_dir(dir: &Path) -> std::io::Result<ListSet> {
        let mut set = ListSet::default();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if !e.file_type()?.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(e.path())?;
            if let Some(name) = e.file_name().to_str() {
                set.insert(name, &text);
            }
        }
        Ok(set)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.lists.keys().map(String::as_str)
    }

    pub fn entries(&self, name: &str) -> Option<&[Entry]> {
        self.lists.get(name).map(Vec::as_slice)
    }

    /// Every rule of `name` with `include:` chains expanded and filters applied.
    pub fn resolve(&self, name: &str) -> Vec<ListRule> {
        let mut out = Vec::new();
        let mut stack = HashSet::new();
        self.resolve_into(name, &[], &mut stack, &mut out);
        out
    }

    fn resolve_into(&self, name: &str, filters: &[String], stack: &mut HashSet<String>, out: &mut Vec<ListRule>) {
        let Some(entries) = self.lists.get(name) else {
            return;
        };
        if !stack.insert(name.to_string()) {
            return;
        }
        for e in entries {
            match e {
                Entry::Rule(r) if passes(filters, &r.attrs) => {
                    out.push(ListRule { list: name.to_string(), rule: r.clone() })
                }
                Entry::Rule(_) => {}
                Entry::Include { list, filters: inner } => {
                    let combined: Vec<String> = filters.iter().chain(inner).cloned().collect();
                    self.resolve_into(list, &combined, stack, out);
                }
            }
        }
        stack.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::RuleKind;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/v2fly-domain-list-community/data");

    #[test]
    fn include_chains_and_filters_resolve() {
        let mut set = ListSet::default();
        set.insert("a", "include:b\nfull:a.example # comment\n");
        set.insert("b", "include:c @ads\nb.example @cn\ninclude:a\n");
        set.insert("c", "ads.c.example @ads\nplain.c.example\nkeyword:trk @ads @cn\nregex:^x$\n");
        set.insert("d", "include:c @-ads\ninclude:missing\n");
        let vals = |l: &str| set.resolve(l).into_iter().map(|r| r.rule.value).collect::<Vec<_>>();
        assert_eq!(vals("a"), ["ads.c.example", "trk", "b.example", "a.example"]);
        assert_eq!(vals("d"), ["plain.c.example", "^x$"]);
        let c = set.resolve("c");
        assert_eq!(c.get(2).map(|r| r.rule.kind), Some(RuleKind::Keyword));
        assert_eq!(c.get(3).map(|r| r.rule.kind), Some(RuleKind::Regexp));
        assert_eq!(c.get(2).map(|r| r.rule.attrs.clone()), Some(vec!["ads".to_string(), "cn".to_string()]));
    }

    #[test]
    fn real_category_lists_resolve_and_builtin_agrees() {
        let set = ListSet::from_dir(Path::new(DATA)).unwrap();
        assert_eq!(set.names().count(), 271);
        // Every include in the shipped subset resolves.
        for name in set.names() {
            for e in set.entries(name).unwrap() {
                if let Entry::Include { list, .. } = e {
                    assert!(set.entries(list).is_some(), "{name} includes missing {list}");
                }
            }
        }
        let netdisk = set.resolve("category-netdisk-!cn");
        let lists: HashSet<&str> = netdisk.iter().map(|r| r.list.as_str()).collect();
        assert!(lists.contains("dropbox") && lists.contains("mega") && lists.contains("onedrive"));
        // The generated catalog puts every domain of those lists in Cloud storage apps unless a
        // more specific product (curated) claims it.
        let cat = crate::catalog::Catalog::builtin();
        for r in netdisk.iter().filter(|r| r.rule.kind == RuleKind::Domain) {
            let Some((idx, _)) = cat.match_host(&r.rule.value) else { panic!("{} unmatched", r.rule.value) };
            let app = cat.get(idx);
            if ["dropbox", "mega", "terabox", "pikpak", "usersdrive"].contains(&r.list.as_str()) {
                assert_eq!(app.category, crate::catalog::Category::CloudStorage, "{} -> {}", r.rule.value, app.id);
            }
        }
        // category-dev reaches github through include; github's own rules map to `github`.
        let dev = set.resolve("category-dev");
        assert!(dev.iter().any(|r| r.list == "github" && r.rule.value == "github.com"));
    }
}
