//! What the hostile-input tests share: a console driven synchronously on a cache, and one
//! frame drawn through both the TestBackend and crossterm into bytes.
#![allow(dead_code)]
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
