//! Hostile log content (terminal escapes, C1 controls, bidi overrides, zero-width characters,
//! spreadsheet formulas) goes through import, the console and the exports without ever
//! reaching a terminal or a spreadsheet raw.
mod common;

use common::{Console, PAYLOAD, draw};
use crossterm::event::KeyCode;
use shadowscope::app::keymap::Key;
use shadowscope::app::{Effect, Msg, Route};
use shadowscope::catalog::Catalog;
use shadowscope::ingest::pipeline::{ImportOptions, import_paths};
use shadowscope::runtime::export;
use shadowscope::store::Store;
use std::path::{Path, PathBuf};

/// Sequences whose presence in any output means data reached the terminal raw.
const LEAKS: &[&str] = &[
    "\u{1b}[2Jclr",
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

fn json_escaped(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap();
    q[1..q.len() - 1].to_string()
}

struct Hostile {
    format: &'static str,
    file: &'static str,
    body: String,
}

/// One or two lines per format; the user, host/URL and device fields carry the payload, and a
/// second record has cells that a spreadsheet would run as formulas.
fn hostile_files() -> Vec<Hostile> {
    let p = PAYLOAD;
    let j = json_escaped(PAYLOAD);
    vec![
        Hostile {
            format: "squid",
            file: "squid.log",
            body: format!(
                "1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 GET http://sq{p}.evil.test/x usr{p} DIRECT/175.16.199.115 -\n\
                 1157689320.327   2864 10.105.21.199 TCP_MISS/200 10182 GET http://formula.test/ =HYPERLINK(\"http://x.test\") DIRECT/175.16.199.61 text/html\n"
            ),
        },
        Hostile {
            format: "zeek",
            file: "zeek_http.log",
            body: format!(
                "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\tusername\n\
                 1320279566.452687\tCwFs1P2UcUdlSxD2La\t192.168.2.76\t52026\t132.235.215.119\t80\t1\tGET\tze{p}.evil.test\t/\tzeekusr{p}\n"
            ),
        },
        Hostile {
            format: "fortigate",
            file: "fortigate.log",
            body: format!(
                "<188>date=2020-04-23 time=12:17:48 devname=\"fw\" devid=\"id\" logid=\"0316013056\" type=\"utm\" subtype=\"webfilter\" eventtime=1587230269 tz=\"-0500\" user=\"fgusr{p}\" srcip=192.168.2.1 srcport=61930 dstip=67.43.156.13 dstport=443 hostname=\"fg{p}.evil.test\" action=\"blocked\" url=\"/x\" sentbyte=1152 rcvdbyte=1130 srcname=\"fgdev{p}\"\n\
                 <188>date=2020-04-23 time=12:17:49 devname=\"fw\" devid=\"id\" logid=\"0316013056\" type=\"utm\" subtype=\"webfilter\" eventtime=1587230270 tz=\"-0500\" user=\"@SUM(1+1)\" srcip=192.168.2.1 srcport=61930 dstip=67.43.156.13 dstport=443 hostname=\"formula2.test\" action=\"passthrough\" url=\"/x\" sentbyte=1 rcvdbyte=1 srcname=\"+cmd\"\n"
            ),
        },
        Hostile {
            format: "cef",
            file: "cef.log",
            body: format!(
                "CEF:0|Elastic|Vaporware|1.0.0-alpha|18|Web request|low|rt=1587230269000 src=89.160.20.156 spt=33876 dst=192.168.10.1 dpt=443 request=https://cef{p}.evil.test/cart suser=cefusr{p} shost=cefdev{p}\n"
            ),
        },
        Hostile {
            format: "leef",
            file: "leef.log",
            body: format!(
                "LEEF:2.0|Vendor|Proxy|1.0|web|^|devTime=1587230269000^usrName=leefusr{p}^src=10.0.0.1^dst=1.2.3.4^dstPort=443^url=https://leef{p}.evil.test/a^srcHostName=leefdev{p}\n"
            ),
        },
        Hostile {
            format: "zscaler",
            file: "zscaler.json",
            body: format!(
                "{{ \"sourcetype\" : \"zscalernss-web\", \"event\" :{{\"time\":\"Fri Dec 31 07:07:07 2021\",\"login\":\"zsusr{j}@example.com\",\"proto\":\"HTTPS\",\"eurl\":\"zs{j}.evil.test/a\",\"action\":\"Allowed\",\"reqsize\":\"600\",\"respsize\":\"65\",\"cip\":\"81.2.69.193\",\"sip\":\"81.2.69.145\",\"devicehostname\":\"zsdev{j}\"}}}}\n"
            ),
        },
        Hostile {
            format: "defender-json",
            file: "defender.json",
            body: format!(
                "{{\"category\":\"AdvancedHunting-DeviceNetworkEvents\",\"properties\":{{\"Timestamp\":\"2022-11-08T05:56:25Z\",\"ActionType\":\"ConnectionSuccess\",\"RemoteUrl\":\"https://md{j}.evil.test/\",\"RemoteIP\":\"20.1.2.3\",\"RemotePort\":443,\"LocalIP\":\"10.0.0.5\",\"DeviceName\":\"mddev{j}\",\"InitiatingProcessAccountUpn\":\"mdusr{j}@corp.test\"}}}}\n\
                 {{\"category\":\"AdvancedHunting-DeviceNetworkEvents\",\"properties\":{{\"Timestamp\":\"2022-11-08T05:56:26Z\",\"ActionType\":\"ConnectionSuccess\",\"RemoteUrl\":\"https://formula3.test/\",\"RemoteIP\":\"20.1.2.4\",\"RemotePort\":443,\"DeviceName\":\"-2+3\",\"InitiatingProcessAccountUpn\":\"=1+2@corp.test\"}}}}\n"
            ),
        },
    ]
}

fn write_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    hostile_files()
        .into_iter()
        .map(|h| {
            let p = dir.join(h.file);
            std::fs::write(&p, h.body.as_bytes()).unwrap();
            (p, h.format)
        })
        .collect()
}

fn fixed_now() -> i64 {
    1_764_000_000
}

fn assert_only_styling_escapes(bytes: &[u8], what: &str) {
    common::assert_only_styling_escapes(bytes, what, LEAKS, false);
}

/// Imports every hostile file into a fresh on-disk cache.
fn hostile_cache(dir: &Path) -> PathBuf {
    let db = dir.join("cache.db");
    let store = Store::open(&db).unwrap();
    for (path, format) in write_files(dir) {
        let opts = ImportOptions { format: Some(format.into()), ..Default::default() };
        let reports = import_paths(&store, Catalog::builtin(), &[path], &opts, &mut |_| {}).unwrap();
        assert!(reports[0].imported >= 1, "{format}: {:?}", reports[0]);
    }
    db
}

/// Draws the current page, every pane of it, and records what was seen.
fn draw_all_panes(c: &mut Console, screens: &mut Vec<String>, what: &str) {
    common::draw_all_panes(c, screens, what, LEAKS, false);
}

#[test]
fn hostile_fields_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let db = hostile_cache(dir.path());
    let mut c = Console::open(Store::open(&db).unwrap(), 220, 50, format!("cache{PAYLOAD}"), fixed_now);
    let mut screens = Vec::new();
    let mut details = 0;
    for (key, name) in
        [('1', "dashboard"), ('2', "apps"), ('3', "users"), ('4', "devices"), ('5', "alerts"), ('6', "audit")]
    {
        c.key(Key::ch(key));
        draw_all_panes(&mut c, &mut screens, name);
        // Every entity listed opens a detail page; draw each with all its panes.
        let targets: Vec<Route> =
            c.state.current().tables.iter().flat_map(|t| t.table.rows.iter().filter_map(|r| r.target)).collect();
        for route in targets {
            c.send(Msg::Open(route));
            assert!(c.state.current().error.is_none(), "{route:?}: {:?}", c.state.current().error);
            draw_all_panes(&mut c, &mut screens, &format!("{route:?}"));
            details += 1;
            c.key(Key::plain(KeyCode::Esc));
        }
    }
    assert!(details >= 14, "only {details} detail pages");
    // A hostile status message (an error text built from data) and the help overlay.
    c.send(Msg::Failed { error: format!("lookup of {PAYLOAD} failed") });
    draw_all_panes(&mut c, &mut screens, "status");
    // The suspicious characters are visible as escapes, not dropped.
    let all = screens.join("\n");
    for visible in common::PAYLOAD_SHOWN {
        assert!(all.contains(visible), "{visible} not shown");
    }
    for who in
        ["usr\\e", "fgusr\\e", "cefusr\\e", "leefusr\\e", "zsusr\\e", "mdusr\\e", "fgdev\\e", "cefdev\\e", "mddev\\e"]
    {
        assert!(all.contains(who), "{who} not shown");
    }
}

/// File names are data too: importing a file whose name carries escapes reports it escaped.
#[test]
fn import_messages_escape_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = hostile_cache(dir.path());
    let mut c = Console::open(Store::open(&db).unwrap(), 160, 40, format!("cache{PAYLOAD}"), fixed_now);
    let evil = dir.path().join("log\u{1b}]0;pwn\u{7}\u{9b}2J\u{202e}.txt");
    std::fs::write(&evil, "not a log format anyone knows\n").unwrap();
    for path in [evil.clone(), dir.path().join("missing\u{1b}]52;c;eA==\u{7}.log")] {
        c.run(vec![Effect::Import { path: path.to_string_lossy().into_owned() }]);
        let status = c.state.status.clone().unwrap();
        assert!(status.error, "{status:?}");
        for leak in ["\u{1b}", "\u{7}", "\u{9b}", "\u{202e}"] {
            assert!(!status.text.contains(leak), "{:?}", status.text);
        }
        assert!(status.text.contains("\\e]"), "{:?}", status.text);
        let f = draw(&c.state);
        assert_only_styling_escapes(&f.bytes, "import status");
    }
    // The CLI path: the same error through the library's error type.
    let store = Store::open(&db).unwrap();
    let err = import_paths(&store, Catalog::builtin(), &[evil], &ImportOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(!err.chars().any(shadowscope::sanitize::is_unsafe), "{err:?}");
    assert!(err.contains("\\u{202e}"), "{err}");
}

#[test]
fn exports_neutralise_formulas_and_controls() {
    let dir = tempfile::tempdir().unwrap();
    let db = hostile_cache(dir.path());
    let mut c = Console::open(Store::open(&db).unwrap(), 160, 40, format!("cache{PAYLOAD}"), fixed_now);
    let mut csv_cells = 0;
    let mut formulas = 0;
    for key in ['2', '3', '4'] {
        c.key(Key::ch(key));
        let table = c.state.current().tables[0].table.clone();
        assert!(!table.rows.is_empty());
        let csv_path = dir.path().join(format!("export{key}.csv"));
        let n = export(&csv_path.to_string_lossy(), true, &table).unwrap();
        assert_eq!(n, table.rows.len());
        let mut rd = csv::Reader::from_path(&csv_path).unwrap();
        for rec in rd.records() {
            for cell in rec.unwrap().iter() {
                csv_cells += 1;
                assert!(!cell.starts_with(['=', '+', '-', '@']), "formula cell {cell:?}");
                assert!(!cell.chars().any(shadowscope::sanitize::is_unsafe), "control in {cell:?}");
                formulas += usize::from(
                    cell.starts_with("'=")
                        || cell.starts_with("'@")
                        || cell.starts_with("'+")
                        || cell.starts_with("'-"),
                );
            }
        }
        let json_path = dir.path().join(format!("export{key}.json"));
        export(&json_path.to_string_lossy(), false, &table).unwrap();
        let raw = std::fs::read_to_string(&json_path).unwrap();
        // Safe to `cat`: nothing a terminal acts on, yet the exact data comes back when parsed.
        for leak in LEAKS {
            assert!(!raw.contains(leak), "json export {key}: {leak:?}");
        }
        assert!(!raw.chars().any(|c| c != '\n' && shadowscope::sanitize::is_unsafe(c)), "{raw}");
        let parsed: Vec<serde_json::Value> = raw.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(parsed.len(), table.rows.len());
        if key == '3' {
            assert!(parsed.iter().any(|v| v.to_string().contains("\\u001b]52;")), "{raw}");
            let any_raw = parsed
                .iter()
                .flat_map(|v| v.as_object().unwrap().values())
                .any(|v| v.as_str().is_some_and(|s| s.contains(&PAYLOAD.to_ascii_lowercase())));
            assert!(any_raw, "json export lost the original value");
        }
    }
    assert!(csv_cells > 20 && formulas >= 3, "{csv_cells} cells, {formulas} neutralised formulas");
}
