//! Core vocabulary shared by every layer: ids, tags, severities, risk.
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}
id_type!(UserId);
id_type!(DeviceId);
id_type!(AppId);
id_type!(DomainId);
id_type!(AlertId);

/// Row id 0 in `users` and `devices` stands for "not known": traffic without a user or device
/// still aggregates under a real key, so the primary keys never hold NULL.
pub const UNKNOWN_USER: UserId = UserId(0);
pub const UNKNOWN_DEVICE: DeviceId = DeviceId(0);

/// Days since the Unix epoch (UTC). The cache aggregates traffic per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Day(pub i32);

impl Day {
    pub fn from_unix(secs: i64) -> Day {
        Day(secs.div_euclid(86_400) as i32)
    }
    pub fn start_unix(self) -> i64 {
        i64::from(self.0) * 86_400
    }
    pub fn date(self) -> chrono::NaiveDate {
        chrono::DateTime::from_timestamp(self.start_unix(), 0).map(|d| d.date_naive()).unwrap_or_default()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.date().format("%Y-%m-%d"))
    }
}

/// The sanction state MDCA gives an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Tag {
    #[default]
    None,
    Sanctioned,
    Unsanctioned,
    Monitored,
}

impl Tag {
    pub const ALL: [Tag; 4] = [Tag::None, Tag::Sanctioned, Tag::Unsanctioned, Tag::Monitored];
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::None => "none",
            Tag::Sanctioned => "sanctioned",
            Tag::Unsanctioned => "unsanctioned",
            Tag::Monitored => "monitored",
        }
    }
    /// Text label so a tag is never shown by colour alone.
    pub fn label(self) -> &'static str {
        match self {
            Tag::None => "-",
            Tag::Sanctioned => "SANCT",
            Tag::Unsanctioned => "UNSANCT",
            Tag::Monitored => "MONITOR",
        }
    }
    pub fn parse(s: &str) -> Option<Tag> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "untag" | "clear" | "-" => Some(Tag::None),
            "sanctioned" | "sanction" | "s" => Some(Tag::Sanctioned),
            "unsanctioned" | "unsanction" | "u" | "block" => Some(Tag::Unsanctioned),
            "monitored" | "monitor" | "m" | "warn" => Some(Tag::Monitored),
            _ => None,
        }
    }
    pub fn from_i64(v: i64) -> Tag {
        match v {
            1 => Tag::Sanctioned,
            2 => Tag::Unsanctioned,
            3 => Tag::Monitored,
            _ => Tag::None,
        }
    }
    pub fn to_i64(self) -> i64 {
        match self {
            Tag::None => 0,
            Tag::Sanctioned => 1,
            Tag::Unsanctioned => 2,
            Tag::Monitored => 3,
        }
    }
}

/// Alert / indicator severity, as Defender for Endpoint names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Severity {
    Informational,
    Low,
    #[default]
    Medium,
    High,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Informational, Severity::Low, Severity::Medium, Severity::High];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }
    /// Short text marker so severity is readable without colour.
    pub fn marker(self) -> &'static str {
        match self {
            Severity::Informational => "[INFO]",
            Severity::Low => "[LOW]",
            Severity::Medium => "[MED]",
            Severity::High => "[HIGH]",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Some(Severity::Informational),
            "low" => Some(Severity::Low),
            "medium" | "med" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }
    pub fn from_i64(v: i64) -> Severity {
        match v {
            0 => Severity::Informational,
            1 => Severity::Low,
            3 => Severity::High,
            _ => Severity::Medium,
        }
    }
    pub fn to_i64(self) -> i64 {
        match self {
            Severity::Informational => 0,
            Severity::Low => 1,
            Severity::Medium => 2,
            Severity::High => 3,
        }
    }
}

/// Identity risk level as Entra ID Protection / MDI report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum IdentityRisk {
    #[default]
    None,
    Low,
    Medium,
    High,
}

impl IdentityRisk {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityRisk::None => "none",
            IdentityRisk::Low => "low",
            IdentityRisk::Medium => "medium",
            IdentityRisk::High => "high",
        }
    }
    pub fn parse(s: &str) -> IdentityRisk {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => IdentityRisk::Low,
            "medium" => IdentityRisk::Medium,
            "high" => IdentityRisk::High,
            _ => IdentityRisk::None,
        }
    }
    pub fn from_i64(v: i64) -> IdentityRisk {
        match v {
            1 => IdentityRisk::Low,
            2 => IdentityRisk::Medium,
            3 => IdentityRisk::High,
            _ => IdentityRisk::None,
        }
    }
    pub fn to_i64(self) -> i64 {
        match self {
            IdentityRisk::None => 0,
            IdentityRisk::Low => 1,
            IdentityRisk::Medium => 2,
            IdentityRisk::High => 3,
        }
    }
}

/// App risk score on MDCA's scale: 0–10, **10 is safest**.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize, Default)]
pub struct RiskScore(pub f32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskLevel {
    High,
    Medium,
    Low,
}

impl RiskScore {
    pub fn clamped(v: f32) -> RiskScore {
        RiskScore(v.clamp(0.0, 10.0))
    }
    /// MDCA's bands: 0–3 high risk, 4–6 medium, 7–10 low.
    pub fn level(self) -> RiskLevel {
        if self.0 < 3.5 {
            RiskLevel::High
        } else if self.0 < 6.5 {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }
}

impl RiskLevel {
    pub fn label(self) -> &'static str {
        match self {
            RiskLevel::High => "High",
            RiskLevel::Medium => "Med",
            RiskLevel::Low => "Low",
        }
    }
}

impl fmt::Display for RiskScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_round_trips_and_handles_pre_epoch() {
        assert_eq!(Day::from_unix(86_399), Day(0));
        assert_eq!(Day::from_unix(86_400), Day(1));
        assert_eq!(Day::from_unix(-1), Day(-1));
        assert_eq!(Day(19_000).to_string(), "2022-01-08");
    }

    #[test]
    fn tag_and_severity_codes_round_trip() {
        for t in Tag::ALL {
            assert_eq!(Tag::from_i64(t.to_i64()), t);
            assert_eq!(Tag::parse(t.as_str()), Some(t));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::from_i64(s.to_i64()), s);
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn risk_bands_follow_mdca_scale() {
        assert_eq!(RiskScore(2.0).level(), RiskLevel::High);
        assert_eq!(RiskScore(5.0).level(), RiskLevel::Medium);
        assert_eq!(RiskScore(9.0).level(), RiskLevel::Low);
        assert_eq!(RiskScore::clamped(14.0).0, 10.0);
    }
}

/// A look-back window ending at the latest day in the cache (not the wall clock, so an old
/// log import still reads naturally). `days == 0` means everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub days: u32,
}

impl Period {
    pub const PRESETS: [Period; 5] =
        [Period { days: 1 }, Period { days: 7 }, Period { days: 30 }, Period { days: 90 }, Period { days: 0 }];
    pub const ALL: Period = Period { days: 0 };
    pub fn label(self) -> String {
        match self.days {
            0 => "all".into(),
            1 => "24h".into(),
            d => format!("{d}d"),
        }
    }
    pub fn parse(s: &str) -> Option<Period> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "all" | "0" => return Some(Period::ALL),
            "24h" | "1d" => return Some(Period { days: 1 }),
            _ => {}
        }
        let n = s.strip_suffix('d').unwrap_or(&s);
        n.parse::<u32>().ok().filter(|d| *d > 0 && *d <= 3650).map(|days| Period { days })
    }
    /// First day included when the latest day in the cache is `latest`.
    pub fn cutoff(self, latest: Day) -> Day {
        if self.days == 0 { Day(i32::MIN) } else { Day(latest.0 - self.days as i32 + 1) }
    }
}

impl Default for Period {
    fn default() -> Self {
        Period { days: 30 }
    }
}
