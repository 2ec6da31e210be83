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

pub fn action_for(key: Key) -> Option<Action> {
    BINDINGS.iter().find(|b| b.keys.contains(&key)).map(|b| b.action)
}

/// The hint bar: label + short help of the bindings marked `hint`.
pub fn hints() -> Vec<(&'static str, &'static str)> {
    BINDINGS.iter().filter(|b| b.hint).map(|b| (b.label, b.help.split([' ', '(']).next().unwrap_or(b.help))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = HashSet::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(seen.insert(*k), "{k:?} bound twice");
            }
        }
        assert_eq!(action_for(Key::ch('q')), Some(Action::Quit));
        assert_eq!(action_for(Key::ctrl('c')), Some(Action::Quit));
        assert_eq!(action_for(Key::ch('Q')), None);
    }
}
