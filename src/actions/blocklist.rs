//! Block lists for network appliances, for when enforcement goes through a proxy or firewall
//! instead of (or besides) MDE.
//!
//! Covers every appliance MDCA's block-script API covers (docs §4.5: Blue Coat 102, Cisco ASA
//! 104, FortiGate 108, Palo Alto 112, Zscaler 120, Juniper SRX 129, Websense 135) and the ones
//! MDCA leaves to manual work (Squid, PAN EDL, Cisco Firepower, Check Point), plus a plain
//! list, a hosts file and the MDE indicator import CSV.
//!
//! Every output is deduplicated and sorted; where the appliance's matching already covers
//! subdomains, a domain under another listed domain is dropped (Squid even refuses such
//! pairs). Domains go through [`normalize_domain`], so nothing but `[a-z0-9.-]` reaches a
//! config line; app names that appear in output are reduced to a safe identifier or
//! sanitised and quoted by a real CSV writer.
use crate::actions::indicators::{IndicatorAction, TITLE_BLOCK, TITLE_WARN};
use crate::actions::{DomainError, normalize_domain};
use crate::domain::Severity;
use crate::sanitize::{csv_safe, display_safe_truncated};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlocklistFormat {
    /// Blue Coat ProxySG CPL: `url.domain=<d> deny` in a `<Proxy>` layer (MDCA format 102).
    BlueCoat,
    /// Cisco ASA HTTP inspection: `regex` + `class-map type regex` + `policy-map type inspect
    /// http` dropping on the Host header (MDCA format 104).
    CiscoAsa,
    /// FortiGate `config webfilter urlfilter`, simple entries (MDCA format 108).
    FortiGate,
    /// PAN-OS custom URL category, `set` commands (MDCA format 112).
    PaloAlto,
    /// Zscaler URL list, `.domain` (domain and subdomains) one per line (MDCA format 120).
    Zscaler,
    /// Juniper SRX UTM `url-pattern` + `custom-url-category` (MDCA format 129).
    JuniperSrx,
    /// Websense / Forcepoint: one host per line for a recategorised-URL import (MDCA 135).
    Websense,
    /// Squid `acl <name> dstdomain .<d>` lines plus the `http_access deny`.
    Squid,
    /// PAN-OS external dynamic list of type Domain: `<d>` and `*.<d>` one per line.
    PaloAltoEdl,
    /// Cisco Firepower custom Security Intelligence DNS/URL list (`.txt`, `#` comments; a
    /// listed domain matches its subdomains).
    CiscoFirepower,
    /// Check Point `mgmt_cli add application-site` per app (url-list of `<d>`, `*.<d>`).
    CheckPoint,
    /// One domain per line.
    PlainDomains,
    /// `0.0.0.0 <d>` per line (exact names only: hosts files have no wildcards).
    Hosts,
    /// MDE indicator import CSV (the portal's "Import" template).
    MdeIndicatorCsv,
}

impl BlocklistFormat {
    pub const ALL: [BlocklistFormat; 14] = [
        BlocklistFormat::BlueCoat,
        BlocklistFormat::CiscoAsa,
        BlocklistFormat::FortiGate,
        BlocklistFormat::PaloAlto,
        BlocklistFormat::Zscaler,
        BlocklistFormat::JuniperSrx,
        BlocklistFormat::Websense,
        BlocklistFormat::Squid,
        BlocklistFormat::PaloAltoEdl,
        BlocklistFormat::CiscoFirepower,
        BlocklistFormat::CheckPoint,
        BlocklistFormat::PlainDomains,
        BlocklistFormat::Hosts,
        BlocklistFormat::MdeIndicatorCsv,
    ];

    /// Stable machine name (CLI argument, golden file name).
    pub fn name(self) -> &'static str {
        match self {
            BlocklistFormat::BlueCoat => "bluecoat",
            BlocklistFormat::CiscoAsa => "cisco-asa",
            BlocklistFormat::FortiGate => "fortigate",
            BlocklistFormat::PaloAlto => "paloalto",
            BlocklistFormat::Zscaler => "zscaler",
            BlocklistFormat::JuniperSrx => "juniper-srx",
            BlocklistFormat::Websense => "websense",
            BlocklistFormat::Squid => "squid",
            BlocklistFormat::PaloAltoEdl => "paloalto-edl",
            BlocklistFormat::CiscoFirepower => "cisco-firepower",
            BlocklistFormat::CheckPoint => "checkpoint",
            BlocklistFormat::PlainDomains => "domains",
            BlocklistFormat::Hosts => "hosts",
            BlocklistFormat::MdeIndicatorCsv => "mde-csv",
        }
    }

    /// Human label for menus.
    pub fn label(self) -> &'static str {
        match self {
            BlocklistFormat::BlueCoat => "Blue Coat ProxySG (CPL)",
            BlocklistFormat::CiscoAsa => "Cisco ASA (regex / HTTP inspect)",
            BlocklistFormat::FortiGate => "Fortinet FortiGate (URL filter)",
            BlocklistFormat::PaloAlto => "Palo Alto (custom URL category)",
            BlocklistFormat::Zscaler => "Zscaler (URL list)",
            BlocklistFormat::JuniperSrx => "Juniper SRX (UTM custom URL category)",
            BlocklistFormat::Websense => "Websense / Forcepoint (URL list)",
            BlocklistFormat::Squid => "Squid (dstdomain ACL)",
            BlocklistFormat::PaloAltoEdl => "Palo Alto external dynamic list (domains)",
            BlocklistFormat::CiscoFirepower => "Cisco Firepower (Security Intelligence list)",
            BlocklistFormat::CheckPoint => "Check Point (mgmt_cli application-site)",
            BlocklistFormat::PlainDomains => "Plain domain list",
            BlocklistFormat::Hosts => "Hosts file (0.0.0.0)",
            BlocklistFormat::MdeIndicatorCsv => "MDE indicator import CSV",
        }
    }

    /// MDCA's `discovery_block_scripts` `format` id, where MDCA has one.
    pub fn mdca_format_id(self) -> Option<u16> {
        match self {
            BlocklistFormat::BlueCoat => Some(102),
            BlocklistFormat::CiscoAsa => Some(104),
            BlocklistFormat::FortiGate => Some(108),
            BlocklistFormat::PaloAlto => Some(112),
            BlocklistFormat::Zscaler => Some(120),
            BlocklistFormat::JuniperSrx => Some(129),
            BlocklistFormat::Websense => Some(135),
            _ => None,
        }
    }

    pub fn file_extension(self) -> &'static str {
        match self {
            BlocklistFormat::MdeIndicatorCsv => "csv",
            BlocklistFormat::Squid | BlocklistFormat::BlueCoat => "conf",
            BlocklistFormat::CheckPoint => "sh",
            _ => "txt",
        }
    }

    /// Accepts the machine name, the MDCA format id and a few common spellings.
    pub fn parse(s: &str) -> Option<BlocklistFormat> {
        let k: String = s.trim().to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let f = match k.as_str() {
            "bluecoat" | "proxysg" | "symantec" | "cpl" | "102" => BlocklistFormat::BlueCoat,
            "ciscoasa" | "asa" | "104" => BlocklistFormat::CiscoAsa,
            "fortigate" | "fortinet" | "fortios" | "108" => BlocklistFormat::FortiGate,
            "paloalto" | "pan" | "panos" | "112" => BlocklistFormat::PaloAlto,
            "zscaler" | "120" => BlocklistFormat::Zscaler,
            "junipersrx" | "juniper" | "srx" | "129" => BlocklistFormat::JuniperSrx,
            "websense" | "forcepoint" | "135" => BlocklistFormat::Websense,
            "squid" => BlocklistFormat::Squid,
            "paloaltoedl" | "edl" | "panedl" => BlocklistFormat::PaloAltoEdl,
            "ciscofirepower" | "firepower" | "fmc" | "ftd" => BlocklistFormat::CiscoFirepower,
            "checkpoint" | "mgmtcli" => BlocklistFormat::CheckPoint,
            "domains" | "plain" | "plaindomains" | "list" => BlocklistFormat::PlainDomains,
            "hosts" | "hostsfile" => BlocklistFormat::Hosts,
            "mdecsv" | "mde" | "indicatorcsv" | "mdeindicatorcsv" => BlocklistFormat::MdeIndicatorCsv,
            _ => return None,
        };
        Some(f)
    }

    /// Whether one entry for a domain also blocks its subdomains, making a listed subdomain
    /// redundant.
    pub fn covers_subdomains(self) -> bool {
        !matches!(
            self,
            BlocklistFormat::Websense
                | BlocklistFormat::PlainDomains
                | BlocklistFormat::Hosts
                | BlocklistFormat::MdeIndicatorCsv
        )
    }

    /// Whether the normalised domain fits the format's length limits.
    fn fits(self, domain: &str) -> bool {
        match self {
            // ASA regexes are capped at 100 characters, and each '.' becomes "\.".
            BlocklistFormat::CiscoAsa => domain.len() + domain.matches('.').count() <= 100,
            _ => true,
        }
    }

    /// CLI-command formats whose skeleton (class-map, category, list) is meaningless with
    /// no entry; they render as empty text instead.
    fn empty_when_no_entries(self) -> bool {
        matches!(
            self,
            BlocklistFormat::CiscoAsa
                | BlocklistFormat::FortiGate
                | BlocklistFormat::PaloAlto
                | BlocklistFormat::JuniperSrx
        )
    }
}

impl std::fmt::Display for BlocklistFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An app to block, with the domains the catalog maps to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedApp {
    pub name: String,
    pub domains: Vec<String>,
}

/// A domain left out of the output, with why (both strings already display-safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedDomain {
    pub app: String,
    pub domain: String,
    pub reason: DomainError,
}

/// Knobs for the formats that carry more than domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// ACL / category / list object name; anything outside `[A-Za-z0-9_-]{1,31}` falls back
    /// to the default.
    pub list_name: String,
    pub mde_action: IndicatorAction,
    pub mde_severity: Severity,
    pub mde_generate_alert: bool,
}

pub const DEFAULT_LIST_NAME: &str = "shadowscope_unsanctioned";

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            list_name: DEFAULT_LIST_NAME.to_owned(),
            mde_action: IndicatorAction::Block,
            mde_severity: Severity::Medium,
            mde_generate_alert: true,
        }
    }
}

/// The rendered text with what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedBlocklist {
    pub text: String,
    /// Domains actually listed (after dedup and collapse).
    pub domains: usize,
    pub rejected: Vec<RejectedDomain>,
}

/// Renders `apps` in `format` with default options; rejected domains are left out (see
/// [`render_report`] for the list).
pub fn render(format: BlocklistFormat, apps: &[BlockedApp]) -> String {
    render_report(format, apps, &RenderOptions::default()).text
}

/// A listed domain and the (first, in input order) app it came from.
struct Entry {
    domain: String,
    app: String,
}

pub fn render_report(format: BlocklistFormat, apps: &[BlockedApp], opts: &RenderOptions) -> RenderedBlocklist {
    let mut rejected = Vec::new();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    // A domain listed by two apps is attributed to the first in input order.
    for app in apps {
        for raw in &app.domains {
            let checked = normalize_domain(raw)
                .and_then(|d| if format.fits(&d) { Ok(d) } else { Err(DomainError::TooLongForFormat) });
            match checked {
                Ok(d) => {
                    owner.entry(d).or_insert_with(|| app.name.clone());
                }
                Err(reason) => rejected.push(RejectedDomain {
                    app: display_safe_truncated(&app.name, 80),
                    domain: display_safe_truncated(raw, 120),
                    reason,
                }),
            }
        }
    }
    let all: BTreeSet<&str> = owner.keys().map(String::as_str).collect();
    let entries: Vec<Entry> = owner
        .iter()
        .filter(|(d, _)| !format.covers_subdomains() || !ancestors(d).any(|p| all.contains(p)))
        .map(|(d, a)| Entry { domain: d.clone(), app: a.clone() })
        .collect();
    let name = list_name(&opts.list_name);
    if entries.is_empty() && format.empty_when_no_entries() {
        return RenderedBlocklist { text: String::new(), domains: 0, rejected };
    }
    let text = match format {
        BlocklistFormat::BlueCoat => bluecoat(&entries),
        BlocklistFormat::CiscoAsa => cisco_asa(&entries, &name),
        BlocklistFormat::FortiGate => fortigate(&entries, &name),
        BlocklistFormat::PaloAlto => paloalto(&entries, &name),
        BlocklistFormat::Zscaler => lines(&entries, |d| format!(".{d}")),
        BlocklistFormat::JuniperSrx => juniper(&entries, &name),
        BlocklistFormat::Websense | BlocklistFormat::PlainDomains => lines(&entries, str::to_owned),
        BlocklistFormat::Squid => squid(&entries, &name),
        BlocklistFormat::PaloAltoEdl => {
            let mut out = String::new();
            for e in &entries {
                let _ = writeln!(out, "{}\n*.{}", e.domain, e.domain);
            }
            out
        }
        BlocklistFormat::CiscoFirepower => {
            let mut out = String::from("# shadowscope unsanctioned apps: Security Intelligence DNS/URL list\n");
            out.push_str(&lines(&entries, str::to_owned));
            out
        }
        BlocklistFormat::CheckPoint => checkpoint(&entries, &name),
        BlocklistFormat::Hosts => {
            let mut out = String::from("# shadowscope unsanctioned apps\n");
            out.push_str(&lines(&entries, |d| format!("0.0.0.0 {d}")));
            out
        }
        BlocklistFormat::MdeIndicatorCsv => mde_csv(&entries, opts),
    };
    RenderedBlocklist { text, domains: entries.len(), rejected }
}

/// Proper parent domains of `d`, nearest first ("a.b.c" → "b.c", "c").
fn ancestors(d: &str) -> impl Iterator<Item = &str> {
    d.match_indices('.').map(move |(i, _)| d.get(i + 1..).unwrap_or(""))
}

fn list_name(requested: &str) -> String {
    let ok = !requested.is_empty()
        && requested.len() <= 31
        && requested.starts_with(|c: char| c.is_ascii_alphabetic())
        && requested.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok { requested.to_owned() } else { DEFAULT_LIST_NAME.to_owned() }
}

fn lines(entries: &[Entry], f: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&f(&e.domain));
        out.push('\n');
    }
    out
}

fn bluecoat(entries: &[Entry]) -> String {
    let mut out = String::from("; shadowscope unsanctioned apps\n<Proxy>\n");
    for e in entries {
        let _ = writeln!(out, "url.domain={} deny", e.domain);
    }
    out
}

fn cisco_asa(entries: &[Entry], name: &str) -> String {
    let mut out = String::new();
    for (i, e) in entries.iter().enumerate() {
        let _ = writeln!(out, "regex {name}_{} \"{}\"", i + 1, e.domain.replace('.', "\\."));
    }
    let _ = writeln!(out, "class-map type regex match-any {name}");
    for i in 0..entries.len() {
        let _ = writeln!(out, " match regex {name}_{}", i + 1);
    }
    let _ = writeln!(out, "policy-map type inspect http {name}_policy");
    out.push_str(" parameters\n");
    let _ = writeln!(out, " match request header host regex class {name}");
    out.push_str("  drop-connection log\n");
    out
}

fn fortigate(entries: &[Entry], name: &str) -> String {
    // `edit 0` lets FortiOS pick the next free id instead of overwriting an existing list.
    let mut out = String::from("config webfilter urlfilter\n    edit 0\n");
    let _ = writeln!(out, "        set name \"{name}\"");
    out.push_str("        config entries\n");
    for e in entries {
        out.push_str("            edit 0\n");
        let _ = writeln!(out, "                set url \"{}\"", e.domain);
        out.push_str("                set type simple\n");
        out.push_str("                set action block\n");
        out.push_str("                set status enable\n");
        out.push_str("            next\n");
    }
    out.push_str("        end\n    next\nend\n");
    out
}

fn paloalto(entries: &[Entry], name: &str) -> String {
    // The trailing '/' stops PAN-OS's implicit suffix match, which would otherwise also hit
    // e.g. "dropbox.com.example.net".
    let mut out = format!("set profiles custom-url-category {name} type \"URL List\"\n");
    for e in entries {
        let _ = writeln!(out, "set profiles custom-url-category {name} list {}/", e.domain);
        let _ = writeln!(out, "set profiles custom-url-category {name} list *.{}/", e.domain);
    }
    out
}

fn juniper(entries: &[Entry], name: &str) -> String {
    let mut out = String::new();
    for e in entries {
        for v in [e.domain.clone(), format!("*.{}", e.domain)] {
            let _ = writeln!(out, "set security utm custom-objects url-pattern {name} value \"{v}\"");
        }
    }
    let _ = writeln!(out, "set security utm custom-objects custom-url-category {name} value {name}");
    out
}

fn squid(entries: &[Entry], name: &str) -> String {
    let mut out = String::from("# shadowscope unsanctioned apps; place above the first allow rule\n");
    for e in entries {
        let _ = writeln!(out, "acl {name} dstdomain .{}", e.domain);
    }
    if !entries.is_empty() {
        let _ = writeln!(out, "http_access deny {name}");
    }
    out
}

/// Check Point object names: letters, digits, `_`, `-`, `.`; never a quote or space, so the
/// value can sit inside mgmt_cli's double quotes without escaping.
fn checkpoint_object(list: &str, app: &str) -> String {
    let mut s: String =
        app.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    s.truncate(60);
    let s = s.trim_matches('_');
    if s.is_empty() { format!("{list}_app") } else { format!("{list}_{s}") }
}

fn checkpoint(entries: &[Entry], name: &str) -> String {
    let mut by_app: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in entries {
        by_app.entry(e.app.clone()).or_default().push(&e.domain);
    }
    let mut used = BTreeSet::new();
    let mut out = String::from(
        "#!/bin/sh\n# shadowscope unsanctioned apps: run on the Security Management Server, then add the\n# objects to a Block rule of the Access Control policy and install the policy.\n",
    );
    for (app, domains) in by_app {
        let base = checkpoint_object(name, &app);
        let mut obj = base.clone();
        let mut n = 2;
        while !used.insert(obj.clone()) {
            obj = format!("{base}_{n}");
            n += 1;
        }
        let _ = write!(
            out,
            "mgmt_cli -r true add application-site name \"{obj}\" primary-category \"Custom_Application_Site\""
        );
        let mut i = 0;
        for d in domains {
            for v in [d.to_owned(), format!("*.{d}")] {
                i += 1;
                let _ = write!(out, " url-list.{i} \"{v}\"");
            }
        }
        out.push_str(" urls-defined-as-regular-expression false\n");
    }
    out
}

/// Columns of the MDE "Import indicators" CSV template.
pub const MDE_CSV_COLUMNS: [&str; 12] = [
    "IndicatorType",
    "IndicatorValue",
    "ExpirationTime",
    "Action",
    "Severity",
    "Title",
    "Description",
    "RecommendedActions",
    "RbacGroups",
    "Category",
    "MitreTechniques",
    "GenerateAlert",
];

fn mde_csv(entries: &[Entry], opts: &RenderOptions) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let _ = w.write_record(MDE_CSV_COLUMNS);
    let title = match opts.mde_action {
        IndicatorAction::Block => TITLE_BLOCK,
        IndicatorAction::Warn => TITLE_WARN,
    };
    for e in entries {
        let app = display_safe_truncated(&e.app, 80);
        let description = format!(
            "{} {app} ({}) is {} by shadowscope.",
            crate::actions::indicators::MANAGED_PREFIX,
            e.domain,
            match opts.mde_action {
                IndicatorAction::Block => "unsanctioned",
                IndicatorAction::Warn => "monitored",
            }
        );
        let description = csv_safe(&description).into_owned();
        let _ = w.write_record([
            "DomainName",
            &e.domain,
            "",
            opts.mde_action.as_str(),
            opts.mde_severity.as_str(),
            title,
            &description,
            "",
            "",
            "",
            "",
            if opts.mde_generate_alert { "TRUE" } else { "FALSE" },
        ]);
    }
    w.into_inner().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Vec<BlockedApp> {
        vec![
            BlockedApp {
                name: "Dropbox".into(),
                domains: vec!["dropbox.com".into(), "www.dropbox.com".into(), "dropboxapi.com".into()],
            },
            BlockedApp {
                name: "Evil\"; rm -rf /\nx".into(),
                domains: vec!["evil.example\nhttp_access allow all".into(), "ok-evil.example".into()],
            },
        ]
    }

    #[test]
    fn names_parse_back() {
        for f in BlocklistFormat::ALL {
            assert_eq!(BlocklistFormat::parse(f.name()), Some(f));
            if let Some(id) = f.mdca_format_id() {
                assert_eq!(BlocklistFormat::parse(&id.to_string()), Some(f));
            }
        }
        assert_eq!(BlocklistFormat::parse("Palo Alto EDL"), Some(BlocklistFormat::PaloAltoEdl));
        assert_eq!(BlocklistFormat::parse("nope"), None);
    }

    #[test]
    fn collapses_only_where_matching_covers_subdomains() {
        let r = render_report(BlocklistFormat::Squid, &apps(), &RenderOptions::default());
        assert!(!r.text.contains("www.dropbox.com"));
        assert_eq!(r.domains, 3);
        let r = render_report(BlocklistFormat::Hosts, &apps(), &RenderOptions::default());
        assert!(r.text.contains("0.0.0.0 www.dropbox.com\n"));
        assert_eq!(r.rejected.len(), 1);
        assert_eq!(r.rejected[0].reason, DomainError::ControlCharacter);
        assert!(!r.rejected[0].app.contains('\n'));
    }

    #[test]
    fn hostile_app_name_cannot_break_checkpoint_quotes() {
        let out = render(BlocklistFormat::CheckPoint, &apps());
        for line in out.lines().filter(|l| l.starts_with("mgmt_cli")) {
            assert_eq!(line.matches('"').count() % 2, 0, "{line}");
            assert!(!line.contains(';'));
        }
        assert!(out.contains("name \"shadowscope_unsanctioned_Evil___rm_-rf___x\""));
    }

    #[test]
    fn bad_list_name_falls_back() {
        let opts = RenderOptions { list_name: "x y\nacl".into(), ..RenderOptions::default() };
        let out = render_report(BlocklistFormat::Squid, &apps(), &opts).text;
        assert!(out.contains("acl shadowscope_unsanctioned dstdomain .dropbox.com"));
    }

    #[test]
    fn asa_rejects_domains_too_long_for_its_regex() {
        // 92 characters with 12 dots: a valid domain whose escaped regex is 104 long.
        let longer = format!("{}{}.example.com", "ab.".repeat(10), "c".repeat(50));
        let r = render_report(
            BlocklistFormat::CiscoAsa,
            &[BlockedApp { name: "x".into(), domains: vec![longer] }],
            &RenderOptions::default(),
        );
        assert_eq!(r.rejected[0].reason, DomainError::TooLongForFormat);
    }

    #[test]
    fn empty_input_renders_valid_empty_lists() {
        for f in BlocklistFormat::ALL {
            let out = render(f, &[]);
            assert!(!out.contains("dstdomain"), "{f}");
        }
    }
}
