//! Alerts out to a SIEM: JSON lines and CEF. Updates of an open alert are exported as their
//! own records (event `update`), because a SIEM that only saw the first trigger would miss
//! every repeat — the documented weakness of MDCA's own SIEM agent.
use crate::actions::policy::PolicyKind;
use crate::domain::{AlertId, AppId, Day, DeviceId, Severity, UserId};
use crate::sanitize::{display_safe, is_unsafe};
use serde::Serialize;

/// Whether a record announces a new alert or a repeat trigger of an open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    New,
    Update,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::New => "new",
            AlertEvent::Update => "update",
        }
    }
}

/// One alert state to export (the lead fills it from the cache after applying an
/// `AlertChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub id: AlertId,
    pub event: AlertEvent,
    /// `DedupKey` as text.
    pub key: String,
    pub policy: PolicyKind,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub user: Option<UserId>,
    pub upn: Option<String>,
    pub app: AppId,
    pub app_name: String,
    pub devices: Vec<DeviceId>,
    pub count: u64,
    pub first_seen: Day,
    pub last_seen: Day,
    /// When this record was produced (Unix seconds, passed in: no clock here).
    pub exported_at: i64,
}

#[derive(Serialize)]
struct JsonAlert<'a> {
    event: &'a str,
    id: i64,
    key: &'a str,
    policy: &'a str,
    title: String,
    description: String,
    severity: &'a str,
    user_id: Option<i64>,
    upn: Option<String>,
    app_id: i64,
    app_name: String,
    devices: Vec<i64>,
    count: u64,
    first_seen: String,
    last_seen: String,
    exported_at: String,
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// One JSON object, no trailing newline. serde_json escapes every control character, so a
/// hostile string can never split the line; text is also passed through `display_safe` so
/// bidi/zero-width tricks stay visible in a SIEM's UI.
pub fn to_json_line(r: &AlertRecord) -> String {
    let j = JsonAlert {
        event: r.event.as_str(),
        id: r.id.0,
        key: &r.key,
        policy: r.policy.as_str(),
        title: display_safe(&r.title).into_owned(),
        description: display_safe(&r.description).into_owned(),
        severity: r.severity.as_str(),
        user_id: r.user.map(|u| u.0),
        upn: r.upn.as_deref().map(|u| display_safe(u).into_owned()),
        app_id: r.app.0,
        app_name: display_safe(&r.app_name).into_owned(),
        devices: r.devices.iter().map(|d| d.0).collect(),
        count: r.count,
        first_seen: r.first_seen.to_string(),
        last_seen: r.last_seen.to_string(),
        exported_at: rfc3339(r.exported_at),
    };
    serde_json::to_string(&j).unwrap_or_default()
}

/// Newline-terminated JSON lines.
pub fn to_json_lines(records: &[AlertRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&to_json_line(r));
        out.push('\n');
    }
    out
}

/// CEF severity 0–10 (0–3 low, 4–6 medium, 7–8 high, 9–10 very high).
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Informational => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
    }
}

/// Header fields: `\` → `\\`, `|` → `\|`. Newlines are not allowed in the header, so every
/// unsafe character (newline included) is first made visible by `display_safe`.
pub fn cef_escape_header(s: &str) -> String {
    let safe = display_safe(s);
    let mut out = String::with_capacity(safe.len());
    for c in safe.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c => out.push(c),
        }
    }
    out
}

/// Extension values: `\` → `\\`, `=` → `\=`, newline → `\n`, CR → `\r`; any other control,
/// bidi or zero-width character is made visible first.
pub fn cef_escape_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => {
                for e in display_safe(c.encode_utf8(&mut [0; 4])).chars() {
                    if e == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(e);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Inverse of [`cef_escape_header`] for safe input.
pub fn cef_unescape_header(s: &str) -> String {
    unescape(s, |c| match c {
        '\\' | '|' => Some(c),
        _ => None,
    })
}

/// Inverse of [`cef_escape_extension`] for input without unsafe characters other than
/// newline and CR.
pub fn cef_unescape_extension(s: &str) -> String {
    unescape(s, |c| match c {
        '\\' | '=' => Some(c),
        'n' => Some('\n'),
        'r' => Some('\r'),
        _ => None,
    })
}

fn unescape(s: &str, map: impl Fn(char) -> Option<char>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some(n) => match map(n) {
                Some(m) => out.push(m),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            },
            None => out.push('\\'),
        }
    }
    out
}

/// One CEF line (no trailing newline):
/// `CEF:0|shadowscope|shadowscope|0.1|<policy>|<title>|<sev>|<extension>`.
pub fn to_cef(r: &AlertRecord) -> String {
    let day_ms = |d: Day| d.start_unix().saturating_mul(1000);
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", r.exported_at.saturating_mul(1000).to_string()),
        ("externalId", r.id.to_string()),
        ("act", r.event.as_str().to_owned()),
        ("cat", "Cloud Discovery".to_owned()),
        ("cnt", r.count.to_string()),
        ("start", day_ms(r.first_seen).to_string()),
        ("end", day_ms(r.last_seen).to_string()),
    ];
    if let Some(u) = r.user {
        ext.push(("suid", u.to_string()));
    }
    if let Some(upn) = &r.upn {
        ext.push(("suser", upn.clone()));
    }
    ext.push(("cs1Label", "alertKey".into()));
    ext.push(("cs1", r.key.clone()));
    ext.push(("cs2Label", "app".into()));
    ext.push(("cs2", r.app_name.clone()));
    ext.push(("cn1Label", "appId".into()));
    ext.push(("cn1", r.app.to_string()));
    if !r.devices.is_empty() {
        let ids: Vec<String> = r.devices.iter().map(ToString::to_string).collect();
        ext.push(("cs3Label", "deviceIds".into()));
        ext.push(("cs3", ids.join(",")));
    }
    ext.push(("msg", r.description.clone()));
    let ext: Vec<String> = ext.into_iter().map(|(k, v)| format!("{k}={}", cef_escape_extension(&v))).collect();
    format!(
        "CEF:0|shadowscope|shadowscope|0.1|{}|{}|{}|{}",
        cef_escape_header(r.policy.as_str()),
        cef_escape_header(&r.title),
        cef_severity(r.severity),
        ext.join(" ")
    )
}

/// Newline-terminated CEF lines.
pub fn to_cef_lines(records: &[AlertRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&to_cef(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(title: &str, description: &str) -> AlertRecord {
        AlertRecord {
            id: AlertId(42),
            event: AlertEvent::Update,
            key: "unsanctioned-app-used:7:1".into(),
            policy: PolicyKind::UnsanctionedAppUsed,
            title: title.into(),
            description: description.into(),
            severity: Severity::High,
            user: Some(UserId(7)),
            upn: Some("alice@contoso.com".into()),
            app: AppId(1),
            app_name: "MEGA".into(),
            devices: vec![DeviceId(3), DeviceId(4)],
            count: 2,
            first_seen: Day(19_999),
            last_seen: Day(20_000),
            exported_at: 1_728_000_000,
        }
    }

    /// Splits a CEF line into 7 header fields and the extension at unescaped pipes.
    fn split_cef(line: &str) -> Vec<String> {
        let mut parts = vec![String::new()];
        let mut it = line.chars();
        while let Some(c) = it.next() {
            let in_ext = parts.len() == 8;
            if !in_ext && c == '|' {
                parts.push(String::new());
                continue;
            }
            let cur = parts.last_mut().unwrap();
            cur.push(c);
            if !in_ext
                && c == '\\'
                && let Some(n) = it.next()
            {
                cur.push(n);
            }
        }
        parts
    }

    /// Parses `k=v k2=v2` where values may contain spaces and escaped `=`.
    fn parse_ext(ext: &str) -> Vec<(String, String)> {
        let key = regex::Regex::new(r"(?:^| )([A-Za-z0-9]+)=").unwrap();
        // Find key starts at unescaped positions.
        let mut starts = Vec::new();
        for m in key.captures_iter(ext) {
            let g = m.get(1).unwrap();
            let eq = g.end();
            let backslashes = ext[..eq].chars().rev().take_while(|c| *c == '\\').count();
            if backslashes % 2 == 0 {
                starts.push((m.get(0).unwrap().start(), g.as_str().to_owned(), eq + 1));
            }
        }
        let mut out = Vec::new();
        for (i, (_, k, vstart)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map(|s| s.0).unwrap_or(ext.len());
            out.push((k.clone(), cef_unescape_extension(&ext[*vstart..end])));
        }
        out
    }

    #[test]
    fn cef_line_has_exact_header_and_escapes() {
        let line = to_cef(&record("Unsanctioned app used: A|B\\C", "line1\nline2 a=b c\\d"));
        assert!(!line.contains('\n'));
        assert!(line.starts_with(
            "CEF:0|shadowscope|shadowscope|0.1|unsanctioned-app-used|Unsanctioned app used: A\\|B\\\\C|8|"
        ));
        let parts = split_cef(&line);
        assert_eq!(parts.len(), 8);
        assert_eq!(cef_unescape_header(&parts[5]), "Unsanctioned app used: A|B\\C");
        let ext = parse_ext(&parts[7]);
        let get = |k: &str| ext.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
        assert_eq!(get("msg").as_deref(), Some("line1\nline2 a=b c\\d"));
        assert_eq!(get("act").as_deref(), Some("update"));
        assert_eq!(get("cnt").as_deref(), Some("2"));
        assert_eq!(get("cs3").as_deref(), Some("3,4"));
        assert_eq!(get("suser").as_deref(), Some("alice@contoso.com"));
        assert_eq!(get("rt").as_deref(), Some("1728000000000"));
    }

    #[test]
    fn control_characters_are_made_visible() {
        let line = to_cef(&record("a\u{1b}[31mred\nx", "b\u{202e}c\u{0}"));
        assert!(!line.chars().any(is_unsafe), "{line:?}");
        assert!(line.contains("a\\\\e[31mred\\\\nx"), "{line}");
    }

    #[test]
    fn json_lines_are_one_object_per_line() {
        let out = to_json_lines(&[record("t\n", "d\u{202e}"), record("t2", "d2")]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["event"], "update");
        assert_eq!(v["title"], "t\\n");
        assert_eq!(v["description"], "d\\u{202e}");
        assert_eq!(v["severity"], "High");
        assert_eq!(v["first_seen"], "2024-10-03");
        assert_eq!(v["exported_at"], "2024-10-04T00:00:00Z");
        assert_eq!(v["devices"], serde_json::json!([3, 4]));
    }

    #[test]
    fn severity_scale() {
        let s: Vec<u8> = Severity::ALL.iter().map(|s| cef_severity(*s)).collect();
        assert_eq!(s, vec![1, 3, 5, 8]);
    }

    proptest! {
        #[test]
        fn header_round_trips(s in "[^\\p{Cc}\\p{Cf}]{0,40}") {
            prop_assume!(!s.chars().any(is_unsafe));
            let e = cef_escape_header(&s);
            prop_assert_eq!(cef_unescape_header(&e), s.clone());
            // No unescaped pipe survives.
            let line = format!("CEF:0|v|p|1|sig|{e}|5|");
            prop_assert_eq!(split_cef(&line).len(), 8);
        }

        #[test]
        fn extension_round_trips(s in "([^\\p{Cc}\\p{Cf}]|\n|\r| [a-z]+=){0,40}") {
            prop_assume!(!s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\r'));
            let e = cef_escape_extension(&s);
            prop_assert!(!e.contains('\n') && !e.contains('\r'));
            prop_assert_eq!(cef_unescape_extension(&e), s.clone());
            let mut r = record("t", "");
            r.description = s.clone();
            let line = to_cef(&r);
            let parts = split_cef(&line);
            let ext = parse_ext(&parts[7]);
            let msg = ext.iter().find(|(k, _)| k == "msg").map(|(_, v)| v.clone());
            prop_assert_eq!(msg, Some(s));
        }

        #[test]
        fn any_input_gives_one_line(t in any::<String>(), d in any::<String>()) {
            let line = to_cef(&record(&t, &d));
            prop_assert!(!line.contains('\n') && !line.contains('\r'));
            prop_assert_eq!(split_cef(&line).len(), 8);
            prop_assert!(!to_json_line(&record(&t, &d)).contains('\n'));
        }
    }
}
