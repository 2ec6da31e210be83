//! What the hostile-input tests share: a console driven synchronously on a cache, and one
//! frame drawn through both the TestBackend and crossterm into bytes.
#![allow(dead_code)]

pub mod cache;

/// Every kind of sequence a hostile field can carry: screen clear, OSC 0 title, OSC 52
/// clipboard, OSC 8 link, NEL and CSI as C1, DEL, NUL, RLO and a zero-width space. No spaces or
/// delimiters, so it survives as one field in every format; each sequence is tagged with a
/// marker word so a leak can be told apart from the styling escapes the crossterm backend writes.
pub const PAYLOAD: &str = "\u{1b}[2Jclr\u{1b}]0;ttl\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}]8;;http://x.test/\u{7}lnk\u{1b}]8;;\u{7}\u{85}nel\u{9b}31mcsi\u{7f}del\u{0}nul\u{202e}rlo\u{200b}zw";

/// How each part of [`PAYLOAD`] must appear on screen: escaped, visible, never dropped.
pub const PAYLOAD_SHOWN: [&str; 9] = [
    "\\e[2Jclr",
    "\\e]0;ttl",
    "\\e]52;c;",
    "\\u{85}nel",
    "\\u{9b}31mcsi",
    "\\u{7f}del",
    "\\u{0}nul",
    "\\u{202e}rlo",
    "\\u{200b}zw",
];
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use shadowscope::app::keymap::Key;
use shadowscope::app::{self, Effect, Msg, State};
use shadowscope::catalog::Catalog;
use shadowscope::runtime::Backend;
use shadowscope::store::Store;

pub struct Console {
    pub state: State,
    pub backend: Backend,
}

impl Console {
    /// `label` is the header's cache name (untrusted too); `now` the injected clock.
    pub fn open(store: Store, width: u16, height: u16, label: String, now: fn() -> i64) -> Console {
        let mut backend = Backend::new(store, Catalog::builtin());
        backend.actor = "analyst".into();
        backend.now = now;
        let mut state = State::new(label);
        state.width = width;
        state.height = height;
        let mut c = Console { state, backend };
        let fx = app::update::start(&mut c.state);
        c.run(fx);
        c
    }

    pub fn run(&mut self, mut effects: Vec<Effect>) {
        while let Some(fx) = effects.pop() {
            for m in self.backend.handle(fx) {
                effects.extend(app::update(&mut self.state, m));
            }
        }
    }

    pub fn send(&mut self, msg: Msg) {
        let fx = app::update(&mut self.state, msg);
        self.run(fx);
    }

    pub fn key(&mut self, k: Key) {
        self.send(Msg::Key(k));
    }
}

/// What one frame looked like: the cells of the TestBackend and the bytes crossterm wrote.
pub struct Frame {
    pub screen: String,
    pub bytes: Vec<u8>,
}

pub fn draw(state: &State) -> Frame {
    let mut t = Terminal::new(TestBackend::new(state.width, state.height)).unwrap();
    t.draw(|f| shadowscope::ui::render(f, state)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut screen = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            screen.push_str(buf[(x, y)].symbol());
        }
        screen.push('\n');
    }
    let viewport = Viewport::Fixed(Rect::new(0, 0, state.width, state.height));
    let mut bytes = Vec::<u8>::new();
    {
        let mut ct = Terminal::with_options(CrosstermBackend::new(&mut bytes), TerminalOptions { viewport }).unwrap();
        ct.draw(|f| shadowscope::ui::render(f, state)).unwrap();
    }
    Frame { screen, bytes }
}

/// Every ESC the crossterm backend writes must start a CSI sequence of the kinds it uses for
/// styling and cursor movement (SGR `m`, cursor position `H`, show/hide cursor `?25h/l`); an
/// OSC (`ESC ]`), a clear (`J`) or any other escape can only have come from data.
/// `fold_case`: compare lower-cased output with `leaks` (for data the sync lower-cases).
pub fn assert_only_styling_escapes(bytes: &[u8], what: &str, leaks: &[&str], fold_case: bool) {
    let raw = String::from_utf8_lossy(bytes);
    let text = if fold_case { raw.to_lowercase() } else { raw.into_owned() };
    for leak in leaks {
        assert!(!text.contains(leak), "{what}: {leak:?} reached the terminal");
    }
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == 0x1b) {
        let start = i + off;
        assert_eq!(bytes.get(start + 1), Some(&b'['), "{what}: non-CSI escape at byte {start}");
        let mut j = start + 2;
        while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b';' || bytes[j] == b'?') {
            j += 1;
        }
        let fin = bytes.get(j).copied().unwrap_or(0);
        assert!(
            matches!(fin, b'm' | b'H' | b'h' | b'l'),
            "{what}: unexpected escape {:?}",
            String::from_utf8_lossy(&bytes[start..(j + 1).min(bytes.len())])
        );
        i = j + 1;
    }
    // No C1 control in any encoding: neither as a raw byte outside UTF-8 sequences nor decoded.
    assert!(!text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)), "{what}: C1 control in output");
}

/// Draws every pane of the current page (Tab between them), checking the bytes and the screen
/// for `leaks`; the screens are kept for the "visible as escapes" checks.
pub fn draw_all_panes(c: &mut Console, screens: &mut Vec<String>, what: &str, leaks: &[&str], fold_case: bool) {
    let panes = c.state.current().tables.len().max(1);
    for pane in 0..panes {
        let f = draw(&c.state);
        assert_only_styling_escapes(&f.bytes, &format!("{what} pane {pane}"), leaks, fold_case);
        let shown = if fold_case { f.screen.to_lowercase() } else { f.screen.clone() };
        for leak in leaks {
            assert!(!shown.contains(leak), "{what} pane {pane}: {leak:?} on screen");
        }
        screens.push(f.screen);
        c.key(Key::plain(crossterm::event::KeyCode::Tab));
    }
}
