//! Hostile API answers: every field the sync clients read from MDE (machines, logon users),
//! Entra ID Protection (risky users), Advanced Hunting (traffic, device and identity logons)
//! and Defender for Cloud Apps (discovered apps, alerts) carries terminal escapes, C1 controls,
//! DEL, NUL, a bidi override and zero-width characters. A wiremock server plays the tenant; the
//! answers are synced into a real cache and every view and every detail page is drawn with
//! `TestBackend` and through `CrosstermBackend` into bytes: no payload reaches the output raw,
//! and the suspicious characters are visible as escapes.
mod common;

use common::{Console, PAYLOAD};
use crossterm::event::KeyCode;
use serde_json::{Value, json};
use shadowscope::app::keymap::Key;
use shadowscope::app::{Msg, Route};
use shadowscope::catalog::Catalog;
use shadowscope::store::Store;
use shadowscope::sync::run::{format_report, sync_into_store};
use shadowscope::sync::{PacingConfig, SourceKind, SourcesConfig, SyncConfig};
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Sequences whose presence in any output means data reached the terminal raw. The sync
/// lower-cases names and hosts, so the output is compared case-insensitively.
const LEAKS: &[&str] = &[
    "\u{1b}[2jclr",
    "\u{1b}]0;",
    "\u{1b}]52;",
    "\u{1b}]8;",
    "\u{85}",
    "\u{9b}",
    "\u{7f}",
    "\u{0}",
    "\u{202e}",
    "\u{200b}",
];

/// As-of instant of the sync and "now" of the console: 2025-11-24.
const NOW: i64 = 1_764_000_000;
const DAY: &str = "2025-11-23T00:00:00Z";

fn h(marker: &str) -> String {
    format!("{marker}{PAYLOAD}")
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// Serves one hostile record (or a few) on every path a sync client reads.
async fn hostile_tenant() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/[^/]+/oauth2/v2\.0/token$"))
        .respond_with(ok(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"})))
        .mount(&server)
        .await;
    let machine_id = h("mdeid");
    Mock::given(method("GET"))
        .and(path("/mde/api/machines"))
        .respond_with(ok(json!({"value": [{
            "id": machine_id,
            "computerDnsName": h("mdedev"),
            "osPlatform": h("mdeos"),
            "version": h("mdever"),
            "riskScore": h("mderisk"),
            "exposureLevel": h("mdeexp"),
            "healthStatus": h("mdehealth"),
            "firstSeen": "2025-11-01T00:00:00Z",
            "lastSeen": "2025-11-23T10:00:00Z",
            "lastIpAddress": h("mdeip"),
            "aadDeviceId": h("mdeaad"),
            "machineTags": [h("mdetag"), "VIP"],
            "rbacGroupName": h("mdegroup"),
            "rbacGroupId": 7,
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/mde/api/machines/[^/]+/logonusers$"))
        .respond_with(ok(json!({"value": [{
            "accountName": h("lgname"),
            "accountDomain": h("lgdom"),
            "firstSeen": "2025-11-20T00:00:00Z",
            "lastSeen": "2025-11-23T09:00:00Z",
            "logonTypes": h("lgtypes"),
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/graph/v1.0/identityProtection/riskyUsers"))
        .respond_with(ok(json!({"value": [{
            "id": h("riskid"),
            "userPrincipalName": format!("{}@corp.test", h("riskupn")),
            "userDisplayName": h("riskname"),
            "riskLevel": "high",
            "riskState": h("riskstate"),
            "riskDetail": h("riskdetail"),
            "riskLastUpdatedDateTime": "2025-11-22T00:00:00Z",
            "isDeleted": false,
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graph/v1.0/security/runHuntingQuery"))
        .and(body_string_contains("DeviceNetworkEvents"))
        .respond_with(ok(json!({"results": [{
            "Day": DAY,
            "Host": format!("{}.evil.test", h("hunthost")),
            "DeviceName": h("huntdev"),
            "Account": format!("{}@corp.test", h("huntacct")),
            "Connections": 3,
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graph/v1.0/security/runHuntingQuery"))
        .and(body_string_contains("DeviceLogonEvents"))
        .respond_with(ok(json!({"results": [{
            "Account": h("dlacct"),
            "DeviceName": h("dldev"),
            "DeviceId": h("dlid"),
            "FirstSeen": "2025-11-23T01:00:00Z",
            "LastSeen": "2025-11-23T02:00:00Z",
            "LogonCount": 2,
            "LogonTypes": [h("dltype")],
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graph/v1.0/security/runHuntingQuery"))
        .and(body_string_contains("IdentityLogonEvents"))
        .respond_with(ok(json!({"results": [{
            "Account": format!("{}@corp.test", h("ilacct")),
            "AccountUpn": format!("{}@corp.test", h("ilacct")),
            "DeviceName": h("ildev"),
            "FirstSeen": "2025-11-23T03:00:00Z",
            "LastSeen": "2025-11-23T04:00:00Z",
            "LogonCount": 1,
            "LogonTypes": h("iltype"),
        }]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/graph/beta/security/dataDiscovery/cloudAppDiscovery/uploadedStreams"))
        .respond_with(ok(json!({"value": [{"id": h("stream")}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/graph/beta/security/dataDiscovery/cloudAppDiscovery/uploadedStreams/[^/]+/aggregatedAppsDetails",
        ))
        .respond_with(ok(json!({"value": [
            {
                "id": h("appid"),
                "displayName": h("appname"),
                "category": h("appcat"),
                "riskScore": 2,
                "tags": ["Unsanctioned", h("apptag")],
                "domains": [format!("{}.evil.test", h("appdom"))],
                "userCount": 1, "ipAddressCount": 1, "deviceCount": 1, "transactionCount": 5,
                "uploadNetworkTrafficInBytes": 10, "downloadNetworkTrafficInBytes": 20,
                "lastSeenDateTime": "2025-11-23T05:00:00Z",
            },
            {
                // The hunting host as an MDCA app too, so the synced traffic and the app meet.
                "id": "hunt-app",
                "displayName": h("app2name"),
                "domains": [format!("{}.evil.test", h("hunthost"))],
                "tags": [],
                "transactionCount": 1,
            }
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/mdca/api/v1/alerts/"))
        .respond_with(ok(json!({"hasNext": false, "data": [{
            "_id": h("alertid"),
            "title": h("alerttitle"),
            "severityValue": 2,
            "timestamp": (NOW - 3600) * 1000,
            "resolutionStatusValue": 0,
            "stories": [1],
            "entities": [
                {"id": h("entuser"), "label": format!("{}@corp.test", h("riskupn")), "type": "account"},
                {"id": 11, "label": h("appname"), "type": "service"},
                {"id": h("entip"), "label": h("entlabel"), "type": h("enttype")},
            ],
            "URL": format!("https://portal.test/{}", h("alerturl")),
        }]})))
        .mount(&server)
        .await;
    server
}

fn config(base: &str, secret: &std::path::Path) -> SyncConfig {
    let mut cfg = SyncConfig::for_base_url(base, "tenant", "client");
    cfg.secret_file = Some(secret.to_path_buf());
    cfg.sources = SourcesConfig::all();
    // Log Analytics is the same window driver as hunting, and the push writes rather than reads.
    cfg.sources.log_analytics_traffic = false;
    cfg.sources.indicators = false;
    cfg.pacing = PacingConfig::fast();
    cfg.as_of_unix = Some(NOW);
    cfg.windows.hunting_lookback_days = 1;
    cfg
}

/// The sync lower-cases names and hosts, so the payload is looked for case-insensitively.
fn draw_all_panes(c: &mut Console, screens: &mut Vec<String>, what: &str) {
    common::draw_all_panes(c, screens, what, LEAKS, true);
}

#[tokio::test]
async fn hostile_api_fields_never_reach_the_terminal_raw() {
    let server = hostile_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    shadowscope::private_fs::write_file(&secret, b"s3cret").unwrap();
    let cfg = config(&server.uri(), &secret);
    let db = dir.path().join("cache.db");
    let store = Store::open(&db).unwrap();
    let out = sync_into_store(&store, Catalog::builtin(), &cfg, &|_| {}).await;
    let report = format_report(&out);
    assert!(out.is_ok(), "{report}");
    for (source, min_rows) in [
        (SourceKind::Devices, 1),
        (SourceKind::LogonUsers, 1),
        (SourceKind::HuntingTraffic, 1),
        (SourceKind::HuntingDeviceLogons, 1),
        (SourceKind::HuntingIdentityLogons, 1),
        (SourceKind::RiskyUsers, 1),
        (SourceKind::DiscoveredApps, 2),
        (SourceKind::MdcaAlerts, 1),
    ] {
        let rows = out.sync.sources.iter().find(|s| s.source == source).map_or(0, |s| s.rows);
        assert!(rows >= min_rows, "{source:?}: {rows} rows\n{report}");
    }
    // The sync report itself is printed to a terminal by `shadowscope sync`.
    for leak in LEAKS {
        assert!(!report.to_lowercase().contains(leak), "sync report: {leak:?}");
    }

    drop(store);
    // Wide enough for whole payloads to fit in a column (so the escapes can be checked for
    // visibility), then a small terminal where every column is cut short.
    let (screens, opened) = walk_console(&db, 400, 60);
    let (small, _) = walk_console(&db, 90, 24);
    assert!(small.len() >= screens.len() / 2, "{} small screens", small.len());
    let all = screens.join("\n").to_lowercase();
    // The hostile users, devices and apps each got their detail page drawn.
    let users = opened.iter().filter(|r| matches!(r, Route::User(_))).count();
    let devices = opened.iter().filter(|r| matches!(r, Route::Device(_))).count();
    let apps = opened.iter().filter(|r| matches!(r, Route::App(_))).count();
    assert!(users >= 4 && devices >= 4 && apps >= 1, "{users} users, {devices} devices, {apps} apps: {opened:?}");
    // `all` is lower-cased: the sync folds names and hosts.
    for visible in common::PAYLOAD_SHOWN.map(str::to_lowercase) {
        assert!(all.contains(&visible), "{visible} not shown");
    }
    let shown: Vec<&str> = MARKERS.iter().copied().filter(|m| all.contains(&format!("{m}\\e"))).collect();
    for must in MUST_SHOW {
        assert!(shown.contains(must), "{must} not shown escaped; shown: {shown:?}");
    }
    eprintln!("{} detail pages; fields shown escaped: {shown:?}", opened.len());
}

/// Opens every list view, every pane of it, and the detail page of every entity listed; returns
/// the screens drawn and the detail routes opened.
fn walk_console(db: &std::path::Path, width: u16, height: u16) -> (Vec<String>, Vec<Route>) {
    let mut c = Console::open(Store::open(db).unwrap(), width, height, "hostile api".into(), || NOW);
    let mut screens = Vec::new();
    let mut opened: Vec<Route> = Vec::new();
    for (key, name) in [
        ('1', "dashboard"),
        ('2', "apps"),
        ('3', "users"),
        ('4', "devices"),
        ('5', "alerts"),
        ('6', "audit"),
        ('7', "settings"),
    ] {
        c.key(Key::ch(key));
        draw_all_panes(&mut c, &mut screens, name);
        let targets: Vec<Route> =
            c.state.current().tables.iter().flat_map(|t| t.table.rows.iter().filter_map(|r| r.target)).collect();
        for route in targets {
            c.send(Msg::Open(route));
            assert!(c.state.current().error.is_none(), "{route:?}: {:?}", c.state.current().error);
            draw_all_panes(&mut c, &mut screens, &format!("{route:?}"));
            opened.push(route);
            c.key(Key::plain(KeyCode::Esc));
        }
    }
    (screens, opened)
}

/// Every tagged field served above.
const MARKERS: &[&str] = &[
    "mdedev",
    "mdeos",
    "mdever",
    "mderisk",
    "mdeexp",
    "mdehealth",
    "mdeip",
    "mdetag",
    "mdegroup",
    "lgname",
    "lgdom",
    "lgtypes",
    "riskupn",
    "riskname",
    "riskstate",
    "riskdetail",
    "hunthost",
    "huntdev",
    "huntacct",
    "dlacct",
    "dldev",
    "dltype",
    "ilacct",
    "ildev",
    "iltype",
    "stream",
    "appname",
    "app2name",
    "appcat",
    "apptag",
    "appdom",
    "alerttitle",
    "entlabel",
    "alerturl",
];

/// The fields that identify an entity on screen: each must be visible (escaped) somewhere.
const MUST_SHOW: &[&str] = &[
    "mdedev",
    "mdeos",
    "mdeexp",
    "mdegroup",
    "lgname",
    "lgdom",
    "riskupn",
    "riskname",
    "hunthost",
    "huntdev",
    "huntacct",
    "dlacct",
    "dldev",
    "ilacct",
    "ildev",
    "appdom",
    "alerttitle",
];

/// Error texts are data too: a token endpoint and an API that answer with hostile error
/// descriptions end up in the sync report, the cache's `last_error` and the console's status
/// bar, escaped.
#[tokio::test]
async fn hostile_error_bodies_are_escaped_in_reports() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    shadowscope::private_fs::write_file(&secret, b"s3cret").unwrap();
    let hostile_error = json!({"error": {"code": h("code"), "message": h("message")}});
    Mock::given(method("POST"))
        .and(path_regex(r"^/[^/]+/oauth2/v2\.0/token$"))
        .and(body_string_contains("graph"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": h("tokerr"), "error_description": h("tokdesc"),
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/[^/]+/oauth2/v2\.0/token$"))
        .respond_with(ok(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/mde/api/machines"))
        .respond_with(ResponseTemplate::new(403).set_body_json(hostile_error.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/mdca/api/v1/alerts/"))
        .respond_with(ResponseTemplate::new(400).set_body_string(h("plainbody")))
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri(), &secret);
    cfg.sources = SourcesConfig::none();
    cfg.sources.devices = true;
    cfg.sources.risky_users = true;
    cfg.sources.mdca_alerts = true;
    let db = dir.path().join("cache.db");
    let store = Store::open(&db).unwrap();
    let out = sync_into_store(&store, Catalog::builtin(), &cfg, &|_| {}).await;
    assert!(!out.is_ok());
    let report = format_report(&out);
    let errors: Vec<String> = out.sync.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{report}");
    let mut texts = vec![report.clone()];
    texts.extend(errors);
    let conn = shadowscope::store::raw_connection(&db).unwrap();
    let mut stmt = conn.prepare("SELECT last_error FROM sync_state WHERE last_error IS NOT NULL").unwrap();
    let stored: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    texts.extend(stored);
    for t in &texts {
        let lower = t.to_lowercase();
        for leak in LEAKS {
            assert!(!lower.contains(leak), "{leak:?} in {t:?}");
        }
        assert!(!t.chars().any(|c| c != '\n' && shadowscope::sanitize::is_unsafe(c)), "{t:?}");
    }
    assert!(report.contains("\\e"), "{report}");
    for field in ["message\\e[2jclr", "tokdesc\\e[2jclr", "plainbody\\e[2jclr"] {
        assert!(report.to_lowercase().contains(field), "{field} not in {report}");
    }
    drop(store);
    let mut c = Console::open(Store::open(&db).unwrap(), 200, 40, "hostile api".into(), || NOW);
    let mut screens = Vec::new();
    c.key(Key::ch('7'));
    draw_all_panes(&mut c, &mut screens, "settings after failed sync");
    c.send(Msg::Failed { error: texts[1].clone() });
    draw_all_panes(&mut c, &mut screens, "status with a sync error");
}
