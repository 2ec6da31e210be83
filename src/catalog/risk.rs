//! Risk score 0–10 on MDCA's scale (10 = safest), built from named factors.
//!
//! The score is the sum of every factor's delta, clamped to 0–10 and rounded to one decimal.
//! The first factor is always the baseline, so `factors` explains the whole score.
//!
//! | group      | factor (signal)                                   | delta |
//! |------------|---------------------------------------------------|-------|
//! | General    | baseline                                          | +7.0  |
//! | General    | category: VPN / proxy (anonymiser, policy bypass) | −3.0  |
//! | General    | category: Remote access                           | −2.5  |
//! | General    | category: Unknown (not in the catalog)            | −2.0  |
//! | General    | category: Cloud storage (file sharing)            | −1.5  |
//! | General    | category: Generative AI                           | −1.5  |
//! | General    | category: Ad tracking                             | −1.5  |
//! | General    | category: Social network, Webmail                 | −1.0  |
//! | General    | category: Media, Communication, Developer tools, Other | −0.5 |
//! | General    | category: Collaboration, Productivity, CRM, CDN   | 0.0   |
//! | General    | category: Security                                | +0.5  |
//! | General    | established enterprise vendor (curated list)      | +1.5  |
//! | Security   | nDPI breed SAFE                                   | +0.5  |
//! | Security   | nDPI breed ACCEPTABLE / not rated by nDPI         | 0.0   |
//! | Security   | nDPI breed FUN / UNRATED                          | −0.5  |
//! | Security   | nDPI breed TRACKER_ADS                            | −1.0  |
//! | Security   | nDPI breed UNSAFE                                 | −2.5  |
//! | Security   | nDPI breed POTENTIALLY_DANGEROUS                  | −3.0  |
//! | Security   | Sentinel AI risk type Document                    | −1.0  |
//! | Security   | Sentinel AI risk type Chat / API / Developer      | −0.5  |
//! | Security   | Sentinel AI risk type Image / Video / Audio       | −0.25 |
//! | Security   | vendor runs its own public PKI (v2fly pki/trust list) | +0.5 |
//! | Compliance | not sanctioned in Sentinel's AI-governance list   | −0.5  |
//! | Compliance | business / enterprise tier (Sentinel product)     | +0.5  |
//! | Compliance | personal data processed for advertising           | −0.5  |
//! | Legal      | mostly served from mainland China (v2fly `@cn`)   | −1.5  |
//! | Evidence   | not in the catalog (only when the base lacks it)  | −2.0  |
//! | Evidence   | first seen ≤ 7 days ago / ≤ 30 days ago           | −1.0 / −0.5 |
//! | Evidence   | uploaded ≥ 1 GiB / ≥ 100 MiB / ≥ 10 MiB           | −1.5 / −1.0 / −0.5 |
//! | Evidence   | used by 1–2 users only                            | −0.5  |
//!
//! A user catalog file may pin a score (`score = 3.0`): it becomes a single General factor
//! "score set by the user catalog" replacing the computed ones.
use super::{Category, RiskBreakdown, RiskFactor, RiskGroup};
use crate::domain::RiskScore;

/// Facts about an app that feed the risk model, as the catalog asset carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskSignals {
    /// nDPI breed (`SAFE`, `ACCEPTABLE`, `FUN`, `TRACKER_ADS`, `UNSAFE`, `POTENTIALLY_DANGEROUS`,
    /// `UNRATED`).
    pub breed: Option<String>,
    /// Sentinel `RiskType` (`Chat`, `API`, `Developer`, `Document`, `Image`, …).
    pub ai_risk: Option<String>,
    /// Sentinel `Sanctioned` column.
    pub sanctioned: Option<bool>,
    pub enterprise_tier: bool,
    pub major_vendor: bool,
    pub vendor_pki: bool,
    /// Most of the app's v2fly rules carry `@cn`.
    pub mostly_cn: bool,
}

impl RiskSignals {
    /// Parses the asset's `k=v,k=v` signal field; unknown keys are ignored.
    pub fn parse(s: &str) -> RiskSignals {
        let mut out = RiskSignals::default();
        for kv in s.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k.trim() {
                "breed" => out.breed = Some(v.trim().to_ascii_uppercase()),
                "ai_risk" => out.ai_risk = Some(v.trim().to_string()),
                "sanctioned" => out.sanctioned = Some(v.trim().eq_ignore_ascii_case("true")),
                "enterprise" => out.enterprise_tier = v.trim() == "yes",
                "major_vendor" => out.major_vendor = v.trim() == "yes",
                "vendor_pki" => out.vendor_pki = v.trim() == "yes",
                "cn" => out.mostly_cn = v.trim() == "majority",
                _ => {}
            }
        }
        out
    }
}

const BASELINE: f32 = 7.0;

fn factor(group: RiskGroup, label: impl Into<String>, delta: f32) -> RiskFactor {
    RiskFactor { group, label: label.into(), delta }
}

fn category_delta(c: Category) -> f32 {
    match c {
        Category::VpnProxy => -3.0,
        Category::RemoteAccess => -2.5,
        Category::Unknown => -2.0,
        Category::CloudStorage | Category::GenerativeAi | Category::AdTracking => -1.5,
        Category::SocialNetwork | Category::Webmail => -1.0,
        Category::Media | Category::Communication | Category::DeveloperTools | Category::Other => -0.5,
        Category::Collaboration | Category::Productivity | Category::Crm | Category::Cdn => 0.0,
        Category::Security => 0.5,
    }
}

fn breed_delta(breed: &str) -> Option<f32> {
    Some(match breed {
        "SAFE" => 0.5,
        "ACCEPTABLE" => 0.0,
        "FUN" | "UNRATED" => -0.5,
        "TRACKER_ADS" => -1.0,
        "UNSAFE" => -2.5,
        "POTENTIALLY_DANGEROUS" => -3.0,
        _ => return None,
    })
}

fn ai_risk_delta(kind: &str) -> f32 {
    match kind.to_ascii_lowercase().as_str() {
        "document" => -1.0,
        "chat" | "api" | "developer" => -0.5,
        _ => -0.25,
    }
}

/// Sum of the factors, clamped and rounded to one decimal.
pub fn score_of(factors: &[RiskFactor]) -> RiskScore {
    let sum: f32 = factors.iter().map(|f| f.delta).sum();
    RiskScore::clamped((sum * 10.0).round() / 10.0)
}

/// The catalog risk of an app from its category and signals.
pub fn base_risk(category: Category, s: &RiskSignals) -> RiskBreakdown {
    use RiskGroup::*;
    let mut f = vec![factor(General, "baseline", BASELINE)];
    f.push(factor(General, format!("category: {}", category.label()), category_delta(category)));
    if s.major_vendor {
        f.push(factor(General, "established enterprise vendor", 1.5));
    }
    match s.breed.as_deref().and_then(|b| breed_delta(b).map(|d| (b, d))) {
        Some((b, d)) => f.push(factor(Security, format!("nDPI risk class {b}"), d)),
        None => f.push(factor(Security, "not rated by nDPI", 0.0)),
    }
    if let Some(kind) = &s.ai_risk {
        f.push(factor(Security, format!("AI risk type: {kind}"), ai_risk_delta(kind)));
    }
    if s.vendor_pki {
        f.push(factor(Security, "vendor runs its own public PKI", 0.5));
    }
    if s.sanctioned == Some(false) {
        f.push(factor(Compliance, "not sanctioned in the AI-governance list", -0.5));
    }
    if s.enterprise_tier {
        f.push(factor(Compliance, "business / enterprise tier", 0.5));
    }
    if category == Category::AdTracking {
        f.push(factor(Compliance, "personal data processed for advertising", -0.5));
    }
    if s.mostly_cn {
        f.push(factor(Legal, "mostly served from mainland China", -1.5));
    }
    RiskBreakdown { score: score_of(&f), factors: f }
}

/// A score pinned by a user catalog file.
pub fn pinned_risk(score: f32) -> RiskBreakdown {
    let f = vec![factor(RiskGroup::General, "score set by the user catalog", score)];
    RiskBreakdown { score: score_of(&f), factors: f }
}

/// What the local cache knows about an app's use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalEvidence {
    /// Not identified by the catalog.
    pub unknown: bool,
    pub first_seen_days_ago: Option<u32>,
    pub upload_bytes: u64,
    pub users: u64,
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `base` adjusted by local evidence. Earlier Evidence factors in `base` are replaced, so the
/// function can be applied repeatedly as evidence changes.
pub fn risk_with_evidence(base: &RiskBreakdown, ev: &LocalEvidence) -> RiskBreakdown {
    use RiskGroup::Evidence;
    let mut f: Vec<RiskFactor> = base.factors.iter().filter(|x| x.group != Evidence).cloned().collect();
    let already_unknown = f.iter().any(|x| x.label == format!("category: {}", Category::Unknown.label()));
    if ev.unknown && !already_unknown {
        f.push(factor(Evidence, "not in the catalog", -2.0));
    }
    match ev.first_seen_days_ago {
        Some(d) if d <= 7 => f.push(factor(Evidence, format!("first seen {d} days ago"), -1.0)),
        Some(d) if d <= 30 => f.push(factor(Evidence, format!("first seen {d} days ago"), -0.5)),
        _ => {}
    }
    let up = ev.upload_bytes;
    let upload = if up >= GIB {
        Some(("≥ 1 GiB", -1.5))
    } else if up >= 100 * MIB {
        Some(("≥ 100 MiB", -1.0))
    } else if up >= 10 * MIB {
        Some(("≥ 10 MiB", -0.5))
    } else {
        None
    };
    if let Some((what, d)) = upload {
        f.push(factor(Evidence, format!("uploaded {what}"), d));
    }
    if (1..=2).contains(&ev.users) {
        f.push(factor(Evidence, format!("used by {} user(s) only", ev.users), -0.5));
    }
    RiskBreakdown { score: score_of(&f), factors: f }
}

/// Risk of a host the catalog does not know.
pub fn unknown_risk() -> RiskBreakdown {
    base_risk(Category::Unknown, &RiskSignals::default())
}
