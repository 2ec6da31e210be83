//! Parser of the generated catalog asset (`assets/catalog.tsv`, see tools/gen_catalog.py).
//!
//! One record per line, TAB-separated:
//! `A id name vendor category sources attrs signals` starts an app; the `R kind value attrs`,
//! `V alias` and `I cidr` lines after it belong to that app. `#` lines are comments. Malformed
//! lines are skipped: the asset is ours, but a user file reuses none of this.
use super::matcher::{Rule, RuleKind};
use super::risk::{RiskSignals, base_risk};
use super::{AppIdx, AppMeta, CatalogApp, Category, Cidr};

pub(crate) struct Parsed {
    pub apps: Vec<CatalogApp>,
    pub metas: Vec<AppMeta>,
    pub rules: Vec<Rule>,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()
}

pub(crate) fn parse(text: &str) -> Parsed {
    let mut out = Parsed { apps: Vec::new(), metas: Vec::new(), rules: Vec::with_capacity(9000) };
    for line in text.lines() {
        let mut f = line.split('\t');
        match f.next() {
            Some("A") => {
                let id = f.next().unwrap_or_default();
                if id.is_empty() {
                    continue;
                }
                let name = f.next().unwrap_or(id);
                let vendor = f.next().unwrap_or_default();
                let category = f.next().and_then(Category::parse).unwrap_or(Category::Other);
                let sources = split_list(f.next().unwrap_or_default());
                let mut attributes = split_list(f.next().unwrap_or_default());
                let signals = RiskSignals::parse(f.next().unwrap_or_default());
                if let Some(b) = &signals.breed {
                    attributes.push(format!("breed:{b}"));
                }
                out.apps.push(CatalogApp {
                    id: id.to_string(),
                    name: name.to_string(),
                    vendor: vendor.to_string(),
                    category,
                    domains: Vec::new(),
                    risk: base_risk(category, &signals),
                    attributes,
                    sources,
                });
                out.metas.push(AppMeta { signals, ..AppMeta::default() });
            }
            Some(kind @ ("R" | "V" | "I")) => {
                let Some(idx) = out.apps.len().checked_sub(1) else {
                    continue;
                };
                let (Some(app), Some(meta)) = (out.apps.get_mut(idx), out.metas.get_mut(idx)) else {
                    continue;
                };
                let value = f.next().unwrap_or_default();
                match kind {
                    "R" => {
                        let Some(rk) = RuleKind::parse(value) else {
                            continue;
                        };
                        let Some(v) = f.next().filter(|v| !v.is_empty()) else {
                            continue;
                        };
                        if matches!(rk, RuleKind::Full | RuleKind::Domain) {
                            app.domains.push(v.to_string());
                        }
                        out.rules.push(Rule {
                            kind: rk,
                            value: v.to_string(),
                            attrs: split_list(f.next().unwrap_or_default()),
                            app: AppIdx(idx as u32),
                        });
                    }
                    "V" if !value.is_empty() => meta.aliases.push(value.to_string()),
                    "I" => {
                        if let Some(c) = Cidr::parse(value) {
                            meta.cidrs.push(c);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}
