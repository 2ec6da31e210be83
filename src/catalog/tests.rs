//! Catalog tests on the real samples and the generated asset.
use super::*;
use std::io::Write;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn app_of(host: &str) -> (&'static CatalogApp, String) {
    let c = Catalog::builtin();
    match c.identify_host(host) {
        Identified::App { idx, rule } => (c.get(idx), rule),
        other => panic!("{host}: {other:?}"),
    }
}

fn assert_app(host: &str, id: &str, cat: Category) {
    let (app, rule) = app_of(host);
    assert_eq!((app.id.as_str(), app.category), (id, cat), "{host} matched via {rule}");
}

#[test]
fn builtin_is_large_and_well_formed() {
    let c = Catalog::builtin();
    assert!(c.apps().len() >= 600, "{}", c.apps().len());
    assert!(c.rules().len() >= 8000);
    let mut ids = std::collections::HashSet::new();
    for (i, a) in c.apps().iter().enumerate() {
        assert!(ids.insert(a.id.as_str()), "duplicate id {}", a.id);
        assert_eq!(c.find_by_id(&a.id), Some(AppIdx(i as u32)));
        assert!(!a.name.is_empty() && !a.vendor.is_empty(), "{}", a.id);
        assert!((0.0..=10.0).contains(&a.risk.score.0));
        let sum: f32 = a.risk.factors.iter().map(|f| f.delta).sum();
        assert!((sum.clamp(0.0, 10.0) - a.risk.score.0).abs() < 0.051, "{}", a.id);
    }
    // The demo generator picks apps by category: each needs well-known members.
    let want: &[(Category, &[&str])] = &[
        (Category::CloudStorage, &["dropbox", "box", "google-drive", "onedrive", "wetransfer", "mega"]),
        (Category::GenerativeAi, &["chatgpt", "claude", "gemini", "deepseek", "perplexity", "le-chat"]),
        (Category::Collaboration, &["slack", "teams", "atlassian", "asana", "miro"]),
        (Category::Webmail, &["gmail", "outlook", "yahoo-mail", "protonmail"]),
        (Category::SocialNetwork, &["facebook", "tiktok", "linkedin", "instagram", "twitter"]),
        (Category::RemoteAccess, &["anydesk", "teamviewer", "logmein"]),
        (Category::VpnProxy, &["nordvpn", "tor", "expressvpn", "ngrok"]),
        (Category::DeveloperTools, &["github", "gitlab", "docker"]),
        (Category::AdTracking, &["google-analytics", "scorecardresearch", "criteo"]),
    ];
    for (cat, ids) in want {
        for id in *ids {
            let idx = c.find_by_id(id).unwrap_or_else(|| panic!("missing {id}"));
            assert_eq!(c.get(idx).category, *cat, "{id}");
        }
    }
    let name = |id: &str| c.get(c.find_by_id(id).unwrap()).name.clone();
    assert_eq!(name("dropbox"), "Dropbox");
    assert_eq!(name("chatgpt"), "ChatGPT");
    assert_eq!(name("claude"), "Claude");
}

#[test]
fn asset_parses_quickly() {
    let t = std::time::Instant::now();
    let c = Catalog::parse_builtin();
    // Debug builds are slow; the release figure is in examples/bench_catalog.rs.
    assert!(t.elapsed().as_millis() < 2_000);
    assert_eq!(c.apps().len(), Catalog::builtin().apps().len());
}

#[test]
fn squid_sample_hosts() {
    let log = std::fs::read_to_string(format!("{DATA}/elastic-integrations/squid/test-access.log")).unwrap();
    let hosts: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_whitespace().nth(6))
        .map(|u| {
            let u = u.split("://").nth(1).unwrap_or(u);
            u.split(['/', ':']).next().unwrap_or(u).to_string()
        })
        .collect();
    for h in ["radio.launch.yahoo.com", "hi5.com", "login.live.com", "uk.f250.mail.yahoo.com"] {
        assert!(hosts.iter().any(|x| x == h), "{h} not in the sample");
    }
    assert_app("radio.launch.yahoo.com", "yahoo", Category::Media);
    assert_app("us.js2.yimg.com", "yahoo", Category::Media);
    assert_app("uk.f250.mail.yahoo.com", "yahoo-mail", Category::Webmail);
    assert_app("insider.msg.yahoo.com", "yahoo-messenger", Category::Communication);
    assert_app("hi5.com", "hi5", Category::SocialNetwork);
    assert_app("images.hi5.com", "hi5", Category::SocialNetwork);
    assert_app("login.live.com", "microsoft-account", Category::Security);
    assert_app("www.google-analytics.com", "google-analytics", Category::AdTracking);
    // Every sample host either matches or groups under its registrable domain.
    for h in &hosts {
        if let Identified::Unknown { registrable } = Catalog::builtin().identify_host(h) {
            assert!(!registrable.is_empty() && h.ends_with(&registrable), "{h} -> {registrable}");
        }
    }
}

#[test]
fn proxysg_zscaler_and_mde_hosts() {
    assert_app("winatp-gw-eus.microsoft.com", "defender-endpoint", Category::Security);
    assert_app("winatp-gw-zzz9.microsoft.com", "microsoft", Category::Productivity);
    assert_app("xxx-xxxx-xxxx-xxxx.oms.opinsights.azure.com", "azure-monitor", Category::Cdn);
    assert_app("download.windowsupdate.com", "windows-update", Category::Other);
    assert_app("mail.google.com", "gmail", Category::Webmail);
    assert_app("tiktok.com", "tiktok", Category::SocialNetwork);
    assert_app("b.scorecardresearch.com", "scorecardresearch", Category::AdTracking);
    assert_app("sb.scorecardresearch.com", "scorecardresearch", Category::AdTracking);
    assert_app("google-analytics.com", "google-analytics", Category::AdTracking);
    assert_app("ssl.google-analytics.com", "google-analytics", Category::AdTracking);
    let sample =
        std::fs::read_to_string(format!("{DATA}/plaso/mde-advanced-hunting/advanced_hunting_test_002.rows-odd.csv"))
            .unwrap();
    assert!(sample.contains("https://tiktok.com/@pheromania.co"));
}

#[test]
fn well_known_products_split_from_vendor_lists() {
    assert_app("drive.google.com", "google-drive", Category::CloudStorage);
    assert_app("www.google.com", "google", Category::Other);
    assert_app("chatgpt.com", "chatgpt", Category::GenerativeAi);
    assert_app("api.openai.com", "openai-api", Category::GenerativeAi);
    assert_app("claude.ai", "claude", Category::GenerativeAi);
    assert_app("chat.deepseek.com", "deepseek", Category::GenerativeAi);
    assert_app("www.dropbox.com", "dropbox", Category::CloudStorage);
    assert_app("dl.dropboxusercontent.com", "dropbox", Category::CloudStorage);
    assert_app("onedrive.live.com", "onedrive", Category::CloudStorage);
    assert_app("contoso.sharepoint.com", "office365", Category::Productivity);
    assert_app("anydesk.com", "anydesk", Category::RemoteAccess);
}

#[test]
fn v2fly_rule_kinds_in_builtin() {
    let c = Catalog::builtin();
    // full: from the dropbox list (an S3 bucket host under amazonaws.com).
    let (app, rule) = app_of("paper-attachments.s3.amazonaws.com");
    assert_eq!((app.id.as_str(), rule.as_str()), ("dropbox", "full:paper-attachments.s3.amazonaws.com"));
    // regexp: is only consulted after the suffix path misses: category-container's ECR
    // pattern never fires for *.amazonaws.com because aws's `amazonaws.com` domain rule wins.
    let (app, rule) = app_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
    assert_eq!((app.id.as_str(), rule.as_str()), ("aws", "domain:amazonaws.com"));
    let (app, rule) = app_of("ns-1234.awsdns-15.co.uk");
    assert_eq!((app.id.as_str(), rule.as_str()), ("aws", "regexp:.+\\.awsdns-[0-9][0-9]\\.(co\\.uk|com|net|org)$"));
    // nDPI `instagram.` (any TLD) becomes a boundary-anchored regexp.
    assert_eq!(app_of("www.instagram.co.uk").0.id, "instagram");
    // keyword: catches unlisted Defender gateways once the suffix path misses.
    let (app, rule) = app_of("winatp-gw-abc.example.net");
    assert_eq!((app.id.as_str(), rule.as_str()), ("defender-endpoint", "keyword:winatp-gw-"));
    // @ads rules of a vendor list form the vendor's ad-tracking app with the attribute kept.
    let idx = c.find_by_id("alibaba-ads").unwrap();
    assert_eq!(c.get(idx).category, Category::AdTracking);
    assert!(c.get(idx).attributes.iter().any(|a| a == "ads"));
    // @cn attributes are carried to the app and feed the Legal factor.
    let aws_cn = c.get(c.find_by_id("aws-cn").unwrap());
    assert!(aws_cn.attributes.iter().any(|a| a == "cn"));
    assert!(aws_cn.risk.factors.iter().any(|f| f.group == RiskGroup::Legal));
    let aws = c.get(c.find_by_id("aws").unwrap());
    assert!(!aws.risk.factors.iter().any(|f| f.group == RiskGroup::Legal));
}

#[test]
fn unknown_hosts_group_by_registrable_domain() {
    let c = Catalog::builtin();
    assert_eq!(c.identify_host("a.b.example.co.uk"), Identified::Unknown { registrable: "example.co.uk".into() });
    assert_eq!(c.identify_host("10.1.2.3"), Identified::Unknown { registrable: "10.1.2.3".into() });
    match c.identify_host("Www.DropBox.com.") {
        Identified::App { idx, .. } => assert_eq!(c.get(idx).id, "dropbox"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn vendor_app_names_map_to_apps() {
    let c = Catalog::builtin();
    let id = |n: &str| c.identify_vendor_app(n).map(|i| c.get(i).id.clone());
    assert_eq!(id("facebook-base").as_deref(), Some("facebook"));
    assert_eq!(id("dropbox").as_deref(), Some("dropbox"));
    assert_eq!(id("Dropbox").as_deref(), Some("dropbox"));
    assert_eq!(id("ms-onedrive").as_deref(), Some("onedrive"));
    assert_eq!(id("ms-onedrive-uploading").as_deref(), Some("onedrive"));
    assert_eq!(id("Dropbox_File.Upload").as_deref(), Some("dropbox"));
    assert_eq!(id("MS_OneDrive").as_deref(), Some("onedrive"));
    assert_eq!(id("gmail-base").as_deref(), Some("gmail"));
    assert_eq!(id("claude.exe").as_deref(), Some("claude-code"));
    assert_eq!(id("GitHub Copilot").as_deref(), Some("github-copilot"));
    assert_eq!(id("General Browsing"), None);
    assert_eq!(id(""), None);
    assert_eq!(id("x"), None);
}

#[test]
fn ip_ranges() {
    let c = Catalog::builtin();
    let id = |ip: &str| c.identify_ip(ip).map(|i| c.get(i).id.clone());
    assert_eq!(id("149.154.167.91").as_deref(), Some("telegram"));
    assert_eq!(id("140.82.121.4").as_deref(), Some("github"));
    assert_eq!(id("8.8.8.8").as_deref(), Some("google-public-dns"));
    assert_eq!(id("[2001:4860:4860::8888]").as_deref(), Some("google-public-dns"));
    assert_eq!(id("192.0.2.1"), None);
    assert_eq!(id("not-an-ip"), None);
    assert!(c.lookup_report("149.154.167.91").contains("via ip:149.154.160.0/20"));
}

#[test]
fn lookup_report_is_one_safe_line() {
    let c = Catalog::builtin();
    let r = c.lookup_report("www.dropbox.com");
    assert!(r.starts_with("www.dropbox.com -> dropbox \"Dropbox\" [Cloud storage] score "), "{r}");
    assert!(r.ends_with("via domain:dropbox.com"), "{r}");
    let r = c.lookup_report("evil\u{1b}[2J.example.org");
    assert!(!r.contains('\u{1b}') && !r.contains('\n') && r.contains("unknown"), "{r}");
}

#[test]
fn risk_model_orders_apps_sensibly() {
    let c = Catalog::builtin();
    let score = |id: &str| c.get(c.find_by_id(id).unwrap()).risk.score.0;
    assert!(score("office365") > score("dropbox"));
    assert!(score("dropbox") > score("mega"));
    assert!(score("mega") > score("nordvpn"));
    assert!(score("nordvpn") > score("tor"));
    assert!(score("box") > score("wetransfer"));
    assert!(score("teams") > score("anydesk"));
    assert_eq!(c.get(c.find_by_id("tor").unwrap()).risk.score.level(), crate::domain::RiskLevel::High);
    assert_eq!(c.get(c.find_by_id("office365").unwrap()).risk.score.level(), crate::domain::RiskLevel::Low);
    // All four groups appear somewhere, each factor labelled.
    let groups: std::collections::HashSet<RiskGroup> =
        c.apps().iter().flat_map(|a| a.risk.factors.iter().map(|f| f.group)).collect();
    for g in [RiskGroup::General, RiskGroup::Security, RiskGroup::Compliance, RiskGroup::Legal] {
        assert!(groups.contains(&g), "{g:?}");
    }
    let gpt = &c.get(c.find_by_id("chatgpt").unwrap()).risk;
    assert!(gpt.factors.iter().any(|f| f.label == "AI risk type: Chat" && f.delta < 0.0));
    assert!(gpt.factors.iter().any(|f| f.group == RiskGroup::Compliance));
}

#[test]
fn local_evidence_lowers_scores() {
    let c = Catalog::builtin();
    let m365 = &c.get(c.find_by_id("office365").unwrap()).risk;
    let big =
        risk_with_evidence(m365, &LocalEvidence { users: 500, first_seen_days_ago: Some(400), ..Default::default() });
    let unknown = risk_with_evidence(
        &c.unknown_risk(),
        &LocalEvidence { unknown: true, first_seen_days_ago: Some(2), upload_bytes: 3 << 30, users: 1 },
    );
    assert!(unknown.score.0 < big.score.0);
    assert!(unknown.score.0 <= 2.0, "{unknown:?}");
    assert_eq!(big.score, m365.score);
    let ev: Vec<&str> =
        unknown.factors.iter().filter(|f| f.group == RiskGroup::Evidence).map(|f| f.label.as_str()).collect();
    assert_eq!(ev, ["first seen 2 days ago", "uploaded ≥ 1 GiB", "used by 1 user(s) only"]);
    // Re-applying replaces the evidence instead of stacking it.
    let again = risk_with_evidence(&unknown, &LocalEvidence::default());
    assert_eq!(again.score, c.unknown_risk().score);
    // Unknown flag on a catalog base adds the not-in-catalog factor once.
    let odd = risk_with_evidence(m365, &LocalEvidence { unknown: true, ..Default::default() });
    assert!((m365.score.0 - odd.score.0 - 2.0).abs() < 0.01);
}

fn temp_file(ext: &str, body: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    f.write_all(body.as_bytes()).unwrap();
    f
}

#[test]
fn user_file_toml_adds_and_overrides() {
    let f = temp_file(
        ".toml",
        r#"
[[app]]
id = "acme-drive"
name = "Acme Drive"
vendor = "Acme Corp"
category = "Cloud storage"
domains = ["acmedrive.example", "full:up.acme.example", "keyword:acmedrv", 'regexp:^cdn[0-9]+\.acme\.net$']
aliases = ["acme-drive-base"]
ips = ["203.0.113.0/24"]
score = 2.5

[[app]]
id = "dropbox"
category = "Collaboration"
domains = ["www.dropbox.com"]
"#,
    );
    let c = Catalog::with_user_file(f.path()).unwrap();
    let acme = c.find_by_id("acme-drive").unwrap();
    let id = |h: &str| match c.identify_host(h) {
        Identified::App { idx, rule } => (c.get(idx).id.clone(), rule),
        other => panic!("{other:?}"),
    };
    assert_eq!(id("x.acmedrive.example").0, "acme-drive");
    assert_eq!(id("up.acme.example").1, "full:up.acme.example");
    assert_eq!(id("myacmedrv.io").0, "acme-drive");
    assert_eq!(id("cdn12.acme.net").0, "acme-drive");
    assert_eq!(c.identify_vendor_app("acme-drive-base"), Some(acme));
    assert_eq!(c.identify_ip("203.0.113.9"), Some(acme));
    assert_eq!(c.get(acme).risk.score.0, 2.5);
    assert_eq!(c.get(acme).category, Category::CloudStorage);
    let dbx = c.get(c.find_by_id("dropbox").unwrap());
    assert_eq!((dbx.name.as_str(), dbx.category), ("Dropbox", Category::Collaboration));
    assert!(dbx.sources.iter().any(|s| s.starts_with("user:")));
    // The built-in catalog is untouched.
    assert!(Catalog::builtin().find_by_id("acme-drive").is_none());
}

#[test]
fn user_file_csv_adds_and_overrides() {
    let f = temp_file(
        ".csv",
        "id,name,vendor,category,domains,aliases,score\n\
         acme-chat,Acme Chat,Acme,Generative AI,acmechat.example;full:api.acmechat.example,Acme Chat Web;acme-chat-base,\n\
         # comment line\n\
         hi5,,,Media,,,9\n",
    );
    let c = Catalog::with_user_file(f.path()).unwrap();
    let acme = c.find_by_id("acme-chat").unwrap();
    assert_eq!(c.get(acme).category, Category::GenerativeAi);
    assert_eq!(c.identify_vendor_app("Acme Chat Web"), Some(acme));
    assert!(matches!(c.identify_host("api.acmechat.example"), Identified::App { idx, .. } if idx == acme));
    let hi5 = c.get(c.find_by_id("hi5").unwrap());
    assert_eq!((hi5.category, hi5.risk.score.0), (Category::Media, 9.0));
}

#[test]
fn user_file_errors_name_line_or_key() {
    let bad_csv = temp_file(".csv", "id,category,domains\nok-app,Webmail,ok.example\nbad-app,Spaceships,x.example\n");
    let e = Catalog::with_user_file(bad_csv.path()).err().unwrap().to_string();
    assert!(e.contains(".csv:3: category: unknown category \"Spaceships\""), "{e}");

    let bad_regex = temp_file(".csv", "id,domains\nr,regexp:(open\n");
    let e = Catalog::with_user_file(bad_regex.path()).err().unwrap().to_string();
    assert!(e.contains(".csv:2: domains: bad regexp"), "{e}");

    let bad_toml = temp_file(".toml", "[[app]]\nid = \"a\"\n\n[[app]]\nid = \"b\"\nscore = \"high\"\n");
    let e = Catalog::with_user_file(bad_toml.path()).err().unwrap().to_string();
    assert!(e.contains(".toml:6: app[1].score: expected a number"), "{e}");

    let syntax = temp_file(".toml", "[[app]]\nid = \"a\"\ndomains = [\"x\"\n");
    let e = Catalog::with_user_file(syntax.path()).err().unwrap().to_string();
    assert!(e.contains(".toml:3: ") || e.contains(".toml:4: "), "{e}");

    let unknown_key = temp_file(".toml", "[[app]]\nid = \"a\"\ndomain = \"x.example\"\n");
    let e = Catalog::with_user_file(unknown_key.path()).err().unwrap().to_string();
    assert!(e.contains(".toml:3: app[0].domain: unknown key"), "{e}");

    let missing = Catalog::with_user_file("/nonexistent/catalog.toml").err().unwrap();
    assert!(matches!(missing, CatalogError::Io { .. }));
}

#[test]
fn from_apps_accepts_rule_prefixes() {
    let c = Catalog::from_apps(vec![CatalogApp {
        id: "t".into(),
        name: "T".into(),
        vendor: "T".into(),
        category: Category::Other,
        domains: vec!["t.example".into(), "full:x.other.example".into(), "keyword:tee".into()],
        ..CatalogApp::default()
    }]);
    assert!(matches!(c.identify_host("a.t.example"), Identified::App { .. }));
    assert!(matches!(c.identify_host("x.other.example"), Identified::App { .. }));
    assert!(matches!(c.identify_host("y.other.example"), Identified::Unknown { .. }));
    assert!(matches!(c.identify_host("buytee.shop"), Identified::App { .. }));
    assert_eq!(c.get(AppIdx(0)).domains, ["t.example", "x.other.example"]);
}
