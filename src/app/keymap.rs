//! Keys → actions. One table drives the reducer, the `?` help and the hint bar, so they never
//! disagree.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key press, decoupled from the terminal library's event so tests can build them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub const fn plain(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }
    pub const fn ch(c: char) -> Key {
        Key { code: KeyCode::Char(c), ctrl: false }
    }
    pub const fn ctrl(c: char) -> Key {
        Key { code: KeyCode::Char(c), ctrl: true }
    }
}

impl From<KeyEvent> for Key {
    fn from(e: KeyEvent) -> Key {
        Key { code: e.code, ctrl: e.modifiers.contains(KeyModifiers::CONTROL) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Forward,
    History,
    Filter,
    Command,
    NextPane,
    PrevPane,
    SortNext,
    SortReverse,
    Mark,
    TagSanctioned,
    TagUnsanctioned,
    TagMonitored,
    TagClear,
    Undo,
    Period,
    CrossFilter,
    Copy,
    Mouse,
    Refresh,
    GoDashboard,
    GoApps,
    GoUsers,
    GoDevices,
    GoAlerts,
    GoAudit,
    GoSettings,
    MarkAll,
    MarkRange,
    Resolve,
    Dismiss,
    SeverityUp,
    SeverityDown,
}

pub struct Binding {
    pub action: Action,
    pub keys: &'static [Key],
    /// Shown in help and the hint bar.
    pub label: &'static str,
    pub help: &'static str,
    /// Shown in the hint bar (in this order) when true.
    pub hint: bool,
}

const fn b(action: Action, keys: &'static [Key], label: &'static str, help: &'static str, hint: bool) -> Binding {
    Binding { action, keys, label, help, hint }
}

pub const BINDINGS: &[Binding] = &[
    b(
        Action::Open,
        &[Key::plain(KeyCode::Enter), Key::ch('l'), Key::plain(KeyCode::Right)],
        "Enter",
        "open the selected user / device / app (pivot)",
        true,
    ),
    b(
        Action::Back,
        &[
            Key::plain(KeyCode::Esc),
            Key::plain(KeyCode::Backspace),
            Key::ch('h'),
            Key::plain(KeyCode::Left),
            Key::ch('['),
        ],
        "Esc",
        "back one pivot step",
        true,
    ),
    b(Action::Forward, &[Key::ch(']')], "]", "forward again after going back", false),
    b(Action::History, &[Key::ch('H')], "H", "pivot history: jump to any earlier step", false),
    b(Action::Filter, &[Key::ch('/')], "/", "fuzzy-filter the table (Enter keeps, Esc clears)", true),
    b(
        Action::Command,
        &[Key::ch(':')],
        ":",
        "command line (:user :app :device :period :tag :severity :profile :export :import :q)",
        true,
    ),
    b(Action::Help, &[Key::ch('?')], "?", "this help", true),
    b(Action::Up, &[Key::ch('k'), Key::plain(KeyCode::Up)], "k/↑", "move up", false),
    b(Action::Down, &[Key::ch('j'), Key::plain(KeyCode::Down)], "j/↓", "move down", false),
    b(Action::PageUp, &[Key::plain(KeyCode::PageUp), Key::ctrl('u'), Key::ctrl('b')], "PgUp", "page up", false),
    b(Action::PageDown, &[Key::plain(KeyCode::PageDown), Key::ctrl('d'), Key::ctrl('f')], "PgDn", "page down", false),
    b(Action::Top, &[Key::ch('g'), Key::plain(KeyCode::Home)], "g/Home", "first row", false),
    b(Action::Bottom, &[Key::ch('G'), Key::plain(KeyCode::End)], "G/End", "last row", false),
    b(Action::NextPane, &[Key::plain(KeyCode::Tab)], "Tab", "next table on a detail page", true),
    b(Action::PrevPane, &[Key::plain(KeyCode::BackTab)], "S-Tab", "previous table", false),
    b(Action::SortNext, &[Key::ch('o')], "o", "sort by the next column", true),
    b(Action::SortReverse, &[Key::ch('O')], "O", "reverse the sort", false),
    b(Action::Mark, &[Key::ch(' ')], "Space", "mark / unmark the row (bulk actions)", false),
    b(Action::MarkRange, &[Key::ch('v')], "v", "mark every row from the last marked one to here", false),
    b(Action::MarkAll, &[Key::ch('A')], "A", "mark every row the filter shows (again: unmark all)", false),
    b(Action::TagSanctioned, &[Key::ch('s')], "s", "tag app(s) Sanctioned", true),
    b(Action::TagUnsanctioned, &[Key::ch('u')], "u", "tag app(s) Unsanctioned (blocked)", true),
    b(Action::TagMonitored, &[Key::ch('m')], "m", "tag app(s) Monitored (warn)", true),
    b(Action::TagClear, &[Key::ch('x')], "x", "clear the app tag", false),
    b(Action::Undo, &[Key::ch('z')], "z", "undo the last tag change (on the audit log: the selected entry)", false),
    b(Action::Resolve, &[Key::ch('r')], "r", "resolve the selected alert", false),
    b(Action::Dismiss, &[Key::ch('d')], "d", "dismiss the selected alert", false),
    b(Action::SeverityUp, &[Key::ch('+'), Key::ch('=')], "+", "raise the selected severity (Settings)", false),
    b(Action::SeverityDown, &[Key::ch('-')], "-", "lower the selected severity (Settings)", false),
    b(Action::Period, &[Key::ch('p')], "p", "cycle period 24h / 7d / 30d / 90d / all", true),
    b(Action::CrossFilter, &[Key::ch('c')], "c", "on a user's device: apps of this user on this device", false),
    b(Action::Copy, &[Key::ch('y')], "y", "copy the selected name (OSC 52 over SSH)", false),
    b(Action::Mouse, &[Key::plain(KeyCode::F(2))], "F2", "toggle mouse (off by default)", false),
    b(Action::Refresh, &[Key::ctrl('r'), Key::plain(KeyCode::F(5))], "C-r", "reload the view", false),
    b(Action::GoDashboard, &[Key::ch('1')], "1", "dashboard", false),
    b(Action::GoApps, &[Key::ch('2')], "2", "apps", false),
    b(Action::GoUsers, &[Key::ch('3')], "3", "users", false),
    b(Action::GoDevices, &[Key::ch('4')], "4", "devices", false),
    b(Action::GoAlerts, &[Key::ch('5')], "5", "alerts", false),
    b(Action::GoAudit, &[Key::ch('6')], "6", "audit log", false),
    b(Action::GoSettings, &[Key::ch('7')], "7", "settings: alert severity, scoped profiles, outbox", false),
    b(Action::Quit, &[Key::ch('q'), Key::ctrl('c')], "q", "quit", true),
];

/// `TagUnsanctioned` → `tag_unsanctioned`: the name an action has in the config file's `[keys]`.
pub fn config_name(a: Action) -> String {
    let mut out = String::new();
    for (i, c) in format!("{a:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `x`, `X`, `ctrl-x`, `enter`, `esc`, `tab`, `backtab`, `space`, `backspace`, arrows,
/// `pgup`/`pgdn`, `home`/`end`, `f1`–`f12`.
pub fn parse_key(s: &str) -> Option<Key> {
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("ctrl-").or_else(|| t.strip_prefix("C-")) {
        let mut cs = rest.chars();
        return match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_ascii_alphanumeric() => Some(Key::ctrl(c.to_ascii_lowercase())),
            _ => None,
        };
    }
    let mut cs = t.chars();
    if let (Some(c), None) = (cs.next(), cs.next()) {
        return (!c.is_control()).then_some(Key::ch(c));
    }
    let code = match t.to_ascii_lowercase().as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" | "shift-tab" => KeyCode::BackTab,
        "space" => return Some(Key::ch(' ')),
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        f if f.starts_with('f') => match f[1..].parse::<u8>() {
            Ok(n @ 1..=12) => KeyCode::F(n),
            _ => return None,
        },
        _ => return None,
    };
    Some(Key::plain(code))
}

/// How a key is written in the help and the hint bar.
pub fn key_label(k: Key) -> String {
    let base = match k.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "S-Tab".into(),
        KeyCode::Backspace => "Bksp".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    if k.ctrl { format!("C-{base}") } else { base }
}

/// One action with the keys it has in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub action: Action,
    pub keys: Vec<Key>,
    pub label: String,
    pub help: &'static str,
    pub hint: bool,
}

/// The session's key map: the built-in table with the config file's `[keys]` applied. The
/// reducer, the `?` help and the hint bar all read this one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    pub bound: Vec<Bound>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    #[error("[keys] {0}: no such action (actions: {1})")]
    UnknownAction(String, String),
    #[error("[keys] {action}: {key:?} is not a key (write e.g. \"U\", \"ctrl-u\", \"f3\", \"enter\")")]
    BadKey { action: String, key: String },
    #[error("[keys] {action}: give a key or a list of keys")]
    BadValue { action: String },
    #[error("[keys] {first} and {second} are both bound to {key}")]
    Conflict { first: String, second: String, key: String },
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap {
            bound: BINDINGS
                .iter()
                .map(|b| Bound {
                    action: b.action,
                    keys: b.keys.to_vec(),
                    label: b.label.into(),
                    help: b.help,
                    hint: b.hint,
                })
                .collect(),
        }
    }
}

impl Keymap {
    /// The defaults with `[keys]` applied: `action = "K"` or `action = ["K", "ctrl-k"]` replaces
    /// that action's keys. Errors name the offending entry.
    pub fn with_overrides(table: &toml::Table) -> Result<Keymap, KeymapError> {
        let mut map = Keymap::default();
        for (name, value) in table {
            let Some(b) = map.bound.iter_mut().find(|b| config_name(b.action) == *name) else {
                let all: Vec<String> = BINDINGS.iter().map(|b| config_name(b.action)).collect();
                return Err(KeymapError::UnknownAction(crate::sanitize::display_safe(name).into(), all.join(", ")));
            };
            let texts: Vec<&str> = match value {
                toml::Value::String(s) => vec![s.as_str()],
                toml::Value::Array(a) if !a.is_empty() => a.iter().filter_map(|v| v.as_str()).collect(),
                _ => return Err(KeymapError::BadValue { action: name.clone() }),
            };
            if let toml::Value::Array(a) = value
                && texts.len() != a.len()
            {
                return Err(KeymapError::BadValue { action: name.clone() });
            }
            let mut keys = Vec::new();
            for t in texts {
                let k = parse_key(t).ok_or_else(|| KeymapError::BadKey {
                    action: name.clone(),
                    key: crate::sanitize::display_safe(t).into(),
                })?;
                keys.push(k);
            }
            b.label = keys.first().map(|k| key_label(*k)).unwrap_or_default();
            b.keys = keys;
        }
        let mut seen: std::collections::HashMap<Key, Action> = std::collections::HashMap::new();
        for b in &map.bound {
            for k in &b.keys {
                if let Some(other) = seen.insert(*k, b.action) {
                    return Err(KeymapError::Conflict {
                        first: config_name(other),
                        second: config_name(b.action),
                        key: key_label(*k),
                    });
                }
            }
        }
        Ok(map)
    }

    pub fn action_for(&self, key: Key) -> Option<Action> {
        self.bound.iter().find(|b| b.keys.contains(&key)).map(|b| b.action)
    }

    /// The hint bar: label + short help of the bindings marked `hint`.
    pub fn hints(&self) -> Vec<(&str, &str)> {
        self.bound
            .iter()
            .filter(|b| b.hint)
            .map(|b| (b.label.as_str(), b.help.split([' ', '(']).next().unwrap_or(b.help)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn config_overrides_rebind_and_errors_name_the_entry() {
        let m = Keymap::with_overrides(&table("tag_unsanctioned = \"U\"\nundo = [\"ctrl-z\", \"f9\"]")).unwrap();
        assert_eq!(m.action_for(Key::ch('U')), Some(Action::TagUnsanctioned));
        assert_eq!(m.action_for(Key::ch('u')), None);
        assert_eq!(m.action_for(Key::ctrl('z')), Some(Action::Undo));
        assert_eq!(m.action_for(Key::plain(KeyCode::F(9))), Some(Action::Undo));
        // The hint bar and help follow the config.
        assert!(m.hints().contains(&("U", "tag")), "{:?}", m.hints());
        let e = Keymap::with_overrides(&table("tag_unsanctiond = \"U\"")).unwrap_err().to_string();
        assert!(e.starts_with("[keys] tag_unsanctiond: no such action") && e.contains("tag_unsanctioned"), "{e}");
        let e = Keymap::with_overrides(&table("undo = \"ctrl+\"")).unwrap_err().to_string();
        assert!(e.contains("[keys] undo") && e.contains("\"ctrl+\""), "{e}");
        let e = Keymap::with_overrides(&table("undo = \"q\"")).unwrap_err().to_string();
        assert_eq!(e, "[keys] undo and quit are both bound to q");
        assert!(Keymap::with_overrides(&table("undo = 3")).is_err());
        assert_eq!(config_name(Action::GoSettings), "go_settings");
        assert_eq!(parse_key("space"), Some(Key::ch(' ')));
        assert_eq!(parse_key("f13"), None);
    }

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = HashSet::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(seen.insert(*k), "{k:?} bound twice");
            }
        }
        let m = Keymap::default();
        assert_eq!(m.action_for(Key::ch('q')), Some(Action::Quit));
        assert_eq!(m.action_for(Key::ctrl('c')), Some(Action::Quit));
        assert_eq!(m.action_for(Key::ch('Q')), None);
    }
}
