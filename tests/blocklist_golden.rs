//! Golden files for every block-list format, plus a syntax check per format that holds for
//! any input. `UPDATE_GOLDEN=1 cargo test --test blocklist_golden` rewrites the files.
use regex::Regex;
use shadowscope::actions::DomainError;
use shadowscope::actions::blocklist::{
    BlockedApp, BlocklistFormat, MDE_CSV_COLUMNS, RenderOptions, render, render_report,
};
use std::path::PathBuf;

/// Real catalog apps and domains, in the messy shapes they arrive in (case, wildcard,
/// subdomains of listed parents, duplicates across apps), plus one hostile entry.
fn apps() -> Vec<BlockedApp> {
    let app = |name: &str, domains: &[&str]| BlockedApp {
        name: name.to_owned(),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
    };
    vec![
        app("Dropbox", &["dropbox.com", "www.dropbox.com", "dropboxapi.com", "DL.DropboxUserContent.com"]),
        app("MEGA", &["mega.nz", "*.mega.nz", "mega.io", "g.api.mega.co.nz"]),
        app("WeTransfer", &["wetransfer.com", ".wetransfer.com", "we.tl"]),
        app("ChatGPT", &["chatgpt.com", "chat.openai.com", "openai.com"]),
        app("AnyDesk", &["anydesk.com", "net.anydesk.com", "dropbox.com"]),
        app(
            "Evil\"; reboot\nacl all",
            &["evil.example\nhttp_access allow all", "x.example;reboot", "\"quoted\".example", "com", "bücher.example"],
        ),
    ]
}

fn golden_path(f: BlocklistFormat) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/blocklist").join(format!("{}.txt", f.name()))
}

#[test]
fn every_format_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut mismatched = Vec::new();
    for f in BlocklistFormat::ALL {
        let got = render(f, &apps());
        let path = golden_path(f);
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        if got != want {
            mismatched.push(format!("--- {} ---\n{got}", f.name()));
        }
    }
    assert!(mismatched.is_empty(), "golden mismatch:\n{}", mismatched.join("\n"));
}

#[test]
fn hostile_entries_are_rejected_with_reasons() {
    let r = render_report(BlocklistFormat::Squid, &apps(), &RenderOptions::default());
    let reasons: Vec<&DomainError> = r.rejected.iter().map(|x| &x.reason).collect();
    assert_eq!(
        reasons,
        vec![
            &DomainError::ControlCharacter,
            &DomainError::ForbiddenCharacter(';'),
            &DomainError::ForbiddenCharacter('"'),
            &DomainError::PublicSuffix,
            &DomainError::NonAscii,
        ]
    );
    for rej in &r.rejected {
        assert!(!rej.app.contains('\n') && !rej.domain.contains('\n'));
    }
    for f in BlocklistFormat::ALL {
        let out = render(f, &apps());
        for bad in ["evil.example", "reboot", "quoted", "http_access allow", "acl all"] {
            assert!(!out.contains(bad), "{}: {bad} leaked", f.name());
        }
    }
}

/// Dropbox's www. and the wildcard spellings collapse where the appliance matches
/// subdomains; lists with exact matching keep them.
#[test]
fn dedup_sort_and_collapse() {
    let zs = render(BlocklistFormat::Zscaler, &apps());
    assert_eq!(zs.matches(".dropbox.com\n").count(), 1);
    assert!(!zs.contains("www.dropbox.com") && !zs.contains("chat.openai.com"));
    let lines: Vec<&str> = zs.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    let plain = render(BlocklistFormat::PlainDomains, &apps());
    assert!(plain.contains("www.dropbox.com\n") && plain.contains("chat.openai.com\n"));
    assert_eq!(plain.matches("\nmega.nz\n").count(), 1);
}

fn check_lines(f: BlocklistFormat, text: &str, patterns: &[&str]) {
    let res: Vec<Regex> = patterns.iter().map(|p| Regex::new(p).unwrap()).collect();
    for line in text.lines() {
        assert!(res.iter().any(|r| r.is_match(line)), "{}: line does not fit the syntax: {line:?}", f.name());
    }
}

const D: &str = r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?";

fn validate(f: BlocklistFormat, text: &str) {
    assert!(text.is_empty() || text.ends_with('\n'), "{}: no final newline", f.name());
    let id = r"[A-Za-z][A-Za-z0-9_-]{0,30}";
    match f {
        BlocklistFormat::Squid => check_lines(
            f,
            text,
            &[r"^#[^\n]*$", &format!(r"^acl {id} dstdomain \.{D}$"), &format!(r"^http_access deny {id}$")],
        ),
        BlocklistFormat::BlueCoat => {
            check_lines(f, text, &[r"^;[^\n]*$", r"^<Proxy>$", &format!(r"^url\.domain={D} deny$")])
        }
        BlocklistFormat::CiscoAsa => check_lines(
            f,
            text,
            &[
                r#"^regex [A-Za-z0-9_-]{1,40} "[a-z0-9\\.-]{1,100}"$"#,
                &format!(r"^class-map type regex match-any {id}$"),
                r"^ match regex [A-Za-z0-9_-]{1,40}$",
                &format!(r"^policy-map type inspect http {id}_policy$"),
                r"^ parameters$",
                &format!(r"^ match request header host regex class {id}$"),
                r"^  drop-connection log$",
            ],
        ),
        BlocklistFormat::FortiGate => check_lines(
            f,
            text,
            &[
                r"^config webfilter urlfilter$",
                r"^ *edit 0$",
                &format!(r#"^        set name "{id}"$"#),
                r"^        config entries$",
                &format!(r#"^                set url "{D}"$"#),
                r"^                set (type simple|action block|status enable)$",
                r"^ *(next|end)$",
            ],
        ),
        BlocklistFormat::PaloAlto => check_lines(
            f,
            text,
            &[
                &format!(r#"^set profiles custom-url-category {id} type "URL List"$"#),
                &format!(r"^set profiles custom-url-category {id} list (\*\.)?{D}/$"),
            ],
        ),
        BlocklistFormat::Zscaler => check_lines(f, text, &[&format!(r"^\.{D}$")]),
        BlocklistFormat::JuniperSrx => check_lines(
            f,
            text,
            &[
                &format!(r#"^set security utm custom-objects url-pattern {id} value "(\*\.)?{D}"$"#),
                &format!(r"^set security utm custom-objects custom-url-category {id} value {id}$"),
            ],
        ),
        BlocklistFormat::Websense | BlocklistFormat::PlainDomains => check_lines(f, text, &[&format!("^{D}$")]),
        BlocklistFormat::PaloAltoEdl => check_lines(f, text, &[&format!(r"^(\*\.)?{D}$")]),
        BlocklistFormat::CiscoFirepower => check_lines(f, text, &[r"^#[^\n]*$", &format!("^{D}$")]),
        BlocklistFormat::CheckPoint => check_lines(
            f,
            text,
            &[
                r"^#[^\n]*$",
                &format!(
                    r#"^mgmt_cli -r true add application-site name "{id}_[A-Za-z0-9_.-]+" primary-category "Custom_Application_Site"( url-list\.[0-9]+ "(\*\.)?{D}")+ urls-defined-as-regular-expression false$"#
                ),
            ],
        ),
        BlocklistFormat::Hosts => check_lines(f, text, &[r"^#[^\n]*$", &format!("^0\\.0\\.0\\.0 {D}$")]),
        BlocklistFormat::MdeIndicatorCsv => {
            let mut rd = csv::Reader::from_reader(text.as_bytes());
            assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), MDE_CSV_COLUMNS);
            let value = Regex::new(&format!("^{D}$")).unwrap();
            for rec in rd.records() {
                let rec = rec.unwrap();
                assert_eq!(rec.len(), 12);
                assert_eq!(&rec[0], "DomainName");
                assert!(value.is_match(&rec[1]), "{:?}", &rec[1]);
                assert!(matches!(&rec[3], "Block" | "Warn"));
                assert!(matches!(&rec[4], "Informational" | "Low" | "Medium" | "High"));
                assert!(matches!(&rec[11], "TRUE" | "FALSE"));
                assert!(rec.iter().all(|c| !c.contains('\n')));
            }
        }
    }
}

#[test]
fn every_format_passes_its_syntax_check() {
    for f in BlocklistFormat::ALL {
        validate(f, &render(f, &apps()));
        validate(f, &render(f, &[]));
    }
}

/// Squid refuses (or warns and drops) a dstdomain that is a subdomain of another entry.
#[test]
fn squid_never_lists_a_subdomain_of_another_entry() {
    let out = render(BlocklistFormat::Squid, &apps());
    let doms: Vec<&str> = out.lines().filter_map(|l| l.rsplit_once(" .").map(|(_, d)| d)).collect();
    for a in &doms {
        for b in &doms {
            assert!(a == b || !a.ends_with(&format!(".{b}")), "{a} under {b}");
        }
    }
}
