//! App catalog: which cloud app is behind a host, URL, appliance app name or IP, and how risky
//! it is (0–10, 10 = safest, MDCA's scale).
//!
//! NOTE: this is the interim built-in list; the generated catalog replaces it.
use crate::domain::RiskScore;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The fixed category taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Category {
    Collaboration,
    CloudStorage,
    GenerativeAi,
    SocialNetwork,
    Webmail,
    Communication,
    RemoteAccess,
    VpnProxy,
    DeveloperTools,
    AdTracking,
    Productivity,
    Crm,
    Media,
    Security,
    Cdn,
    Other,
    Unknown,
}

impl Category {
    pub const ALL: [Category; 17] = [
        Category::Collaboration,
        Category::CloudStorage,
        Category::GenerativeAi,
        Category::SocialNetwork,
        Category::Webmail,
        Category::Communication,
        Category::RemoteAccess,
        Category::VpnProxy,
        Category::DeveloperTools,
        Category::AdTracking,
        Category::Productivity,
        Category::Crm,
        Category::Media,
        Category::Security,
        Category::Cdn,
        Category::Other,
        Category::Unknown,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Category::Collaboration => "Collaboration",
            Category::CloudStorage => "Cloud storage",
            Category::GenerativeAi => "Generative AI",
            Category::SocialNetwork => "Social network",
            Category::Webmail => "Webmail",
            Category::Communication => "Communication",
            Category::RemoteAccess => "Remote access",
            Category::VpnProxy => "VPN / proxy",
            Category::DeveloperTools => "Developer tools",
            Category::AdTracking => "Ad tracking",
            Category::Productivity => "Productivity",
            Category::Crm => "CRM",
            Category::Media => "Media",
            Category::Security => "Security",
            Category::Cdn => "CDN / hosting",
            Category::Other => "Other",
            Category::Unknown => "Unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.label().eq_ignore_ascii_case(s.trim()) || format!("{c:?}").eq_ignore_ascii_case(s.trim()))
    }
}

/// Index of an app inside a [`Catalog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppIdx(pub u32);

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogApp {
    /// Stable slug (`dropbox`, `openai-chatgpt`): the key the cache stores.
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub category: Category,
    pub domains: Vec<String>,
    pub risk: RiskBreakdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RiskGroup {
    General,
    Security,
    Compliance,
    Legal,
    Evidence,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RiskFactor {
    pub group: RiskGroup,
    pub label: String,
    /// Added to the score (negative = riskier).
    pub delta: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RiskBreakdown {
    pub score: RiskScore,
    pub factors: Vec<RiskFactor>,
}

/// How a host was identified.
#[derive(Debug, Clone, PartialEq)]
pub enum Identified {
    App {
        idx: AppIdx,
        rule: String,
    },
    /// Not in the catalog: grouped by registrable domain (Public Suffix List).
    Unknown {
        registrable: String,
    },
}

pub struct Catalog {
    apps: Vec<CatalogApp>,
    by_domain: HashMap<String, AppIdx>,
}

#[allow(clippy::type_complexity)]
const INTERIM: &[(&str, &str, &str, Category, f32, &[&str])] = &[
    ("dropbox", "Dropbox", "Dropbox", Category::CloudStorage, 7.0, &["dropbox.com", "dropboxapi.com"]),
    ("wetransfer", "WeTransfer", "WeTransfer", Category::CloudStorage, 4.0, &["wetransfer.com"]),
    ("mega", "MEGA", "Mega Limited", Category::CloudStorage, 2.0, &["mega.nz", "mega.io"]),
    ("box", "Box", "Box", Category::CloudStorage, 9.0, &["box.com"]),
    ("google-drive", "Google Drive", "Google", Category::CloudStorage, 8.0, &["drive.google.com"]),
    ("onedrive", "Microsoft OneDrive", "Microsoft", Category::CloudStorage, 10.0, &["onedrive.live.com", "1drv.ms"]),
    ("chatgpt", "ChatGPT", "OpenAI", Category::GenerativeAi, 6.0, &["chatgpt.com", "openai.com"]),
    ("claude", "Claude", "Anthropic", Category::GenerativeAi, 7.0, &["claude.ai", "anthropic.com"]),
    ("deepseek", "DeepSeek", "DeepSeek", Category::GenerativeAi, 2.0, &["deepseek.com"]),
    ("gemini", "Gemini", "Google", Category::GenerativeAi, 7.0, &["gemini.google.com"]),
    ("slack", "Slack", "Salesforce", Category::Collaboration, 9.0, &["slack.com"]),
    ("teams", "Microsoft Teams", "Microsoft", Category::Collaboration, 10.0, &["teams.microsoft.com"]),
    ("zoom", "Zoom", "Zoom", Category::Communication, 8.0, &["zoom.us"]),
    ("gmail", "Gmail", "Google", Category::Webmail, 8.0, &["mail.google.com", "gmail.com"]),
    ("yahoo-mail", "Yahoo Mail", "Yahoo", Category::Webmail, 5.0, &["yahoo.com"]),
    ("outlook", "Outlook.com", "Microsoft", Category::Webmail, 9.0, &["live.com", "outlook.com"]),
    ("facebook", "Facebook", "Meta", Category::SocialNetwork, 5.0, &["facebook.com", "fbcdn.net"]),
    ("tiktok", "TikTok", "ByteDance", Category::SocialNetwork, 3.0, &["tiktok.com"]),
    ("hi5", "hi5", "hi5", Category::SocialNetwork, 3.0, &["hi5.com"]),
    ("anydesk", "AnyDesk", "AnyDesk", Category::RemoteAccess, 3.0, &["anydesk.com"]),
    ("teamviewer", "TeamViewer", "TeamViewer", Category::RemoteAccess, 5.0, &["teamviewer.com"]),
    ("nordvpn", "NordVPN", "Nord Security", Category::VpnProxy, 2.0, &["nordvpn.com"]),
    ("github", "GitHub", "Microsoft", Category::DeveloperTools, 9.0, &["github.com", "githubusercontent.com"]),
    ("ngrok", "ngrok", "ngrok", Category::DeveloperTools, 3.0, &["ngrok.io", "ngrok.com"]),
    ("google-analytics", "Google Analytics", "Google", Category::AdTracking, 6.0, &["google-analytics.com"]),
    ("salesforce", "Salesforce", "Salesforce", Category::Crm, 9.0, &["salesforce.com"]),
    ("notion", "Notion", "Notion Labs", Category::Productivity, 7.0, &["notion.so"]),
    ("office365", "Microsoft 365", "Microsoft", Category::Productivity, 10.0, &["office.com", "microsoft.com"]),
];

impl Catalog {
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let apps: Vec<CatalogApp> = INTERIM
                .iter()
                .map(|(id, name, vendor, category, score, domains)| CatalogApp {
                    id: (*id).into(),
                    name: (*name).into(),
                    vendor: (*vendor).into(),
                    category: *category,
                    domains: domains.iter().map(|d| (*d).to_string()).collect(),
                    risk: RiskBreakdown {
                        score: RiskScore(*score),
                        factors: vec![RiskFactor {
                            group: RiskGroup::General,
                            label: "interim catalog score".into(),
                            delta: 0.0,
                        }],
                    },
                })
                .collect();
            Catalog::from_apps(apps)
        })
    }

    pub fn from_apps(apps: Vec<CatalogApp>) -> Catalog {
        let mut by_domain = HashMap::new();
        for (i, app) in apps.iter().enumerate() {
            for d in &app.domains {
                by_domain.insert(d.clone(), AppIdx(i as u32));
            }
        }
        Catalog { apps, by_domain }
    }

    pub fn apps(&self) -> &[CatalogApp] {
        &self.apps
    }

    pub fn get(&self, idx: AppIdx) -> &CatalogApp {
        &self.apps[idx.0 as usize]
    }

    pub fn find_by_id(&self, id: &str) -> Option<AppIdx> {
        self.apps.iter().position(|a| a.id == id).map(|i| AppIdx(i as u32))
    }

    /// Identifies a host name (case-insensitive, trailing dot ignored).
    pub fn identify_host(&self, host: &str) -> Identified {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut h = host.as_str();
        loop {
            if let Some(idx) = self.by_domain.get(h) {
                return Identified::App { idx: *idx, rule: format!("domain:{h}") };
            }
            match h.find('.') {
                Some(i) => h = &h[i + 1..],
                None => break,
            }
        }
        Identified::Unknown { registrable: registrable_domain(&host) }
    }

    /// Maps an appliance's own app name (PAN App-ID, FortiGate app, Zscaler appname …).
    pub fn identify_vendor_app(&self, name: &str) -> Option<AppIdx> {
        let n = name.trim().to_ascii_lowercase();
        self.apps.iter().position(|a| a.id == n || a.name.to_ascii_lowercase() == n).map(|i| AppIdx(i as u32))
    }

    /// Risk of an app not in the catalog.
    pub fn unknown_risk(&self) -> RiskBreakdown {
        RiskBreakdown {
            score: RiskScore(4.0),
            factors: vec![RiskFactor { group: RiskGroup::General, label: "not in the catalog".into(), delta: -3.0 }],
        }
    }
}

/// Registrable domain ("eTLD+1") by the Public Suffix List; the host itself when it has none
/// (an IP address, a bare name).
pub fn registrable_domain(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    if lower.parse::<std::net::IpAddr>().is_ok() {
        return lower;
    }
    match psl::domain_str(&lower) {
        Some(d) => d.to_string(),
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_hosts_group_by_registrable_domain() {
        let c = Catalog::builtin();
        assert_eq!(c.identify_host("a.b.example.co.uk"), Identified::Unknown { registrable: "example.co.uk".into() });
        match c.identify_host("Www.DropBox.com.") {
            Identified::App { idx, .. } => assert_eq!(c.get(idx).id, "dropbox"),
            other => panic!("{other:?}"),
        }
    }
}
