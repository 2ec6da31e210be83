//! The console loop: terminal events and runtime results in, one reducer, render when dirty.
//! Store work runs on its own thread so the UI never blocks on SQLite.
use crate::app::{self, Effect, Msg, State};
use crate::runtime::Backend;
use crossterm::event::{Event, EventStream, KeyEventKind, MouseEventKind};
use crossterm::execute;
use futures_util::StreamExt;
use std::io::Write;

/// Longest text `y` sends through OSC 52; terminals reject (or choke on) huge payloads.
const OSC52_MAX: usize = 8 * 1024;

fn osc52(text: &str) -> String {
    use base64::Engine;
    let cut = &text.as_bytes()[..text.len().min(OSC52_MAX)];
    // Base64 means no byte of the (untrusted) text can end the sequence early.
    format!("\x1b]52;c;{}\x07", base64::engine::general_purpose::STANDARD.encode(cut))
}

pub fn session_path() -> Option<std::path::PathBuf> {
    directories::ProjectDirs::from("", "", "shadowscope")
        .map(|d| d.state_dir().unwrap_or_else(|| d.data_local_dir()).join("session.json"))
}

pub fn load_session() -> Option<app::Session> {
    let p = session_path()?;
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

fn save_session(s: &app::Session) {
    if let (Some(p), Ok(json)) = (session_path(), serde_json::to_vec(s)) {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(p, json);
    }
}

pub async fn run_console(backend: Backend, mut state: State) -> anyhow::Result<()> {
    let (msg_tx, mut msg_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let (fx_tx, fx_rx) = std::sync::mpsc::channel::<Effect>();
    let worker = std::thread::Builder::new().name("store".into()).spawn(move || {
        let mut backend = backend;
        while let Ok(effect) = fx_rx.recv() {
            for m in backend.handle(effect) {
                if msg_tx.send(m).is_err() {
                    return;
                }
            }
        }
    })?;

    let mut terminal = ratatui::init();
    let size = terminal.size()?;
    state.width = size.width;
    state.height = size.height;
    let mut events = EventStream::new();
    let mut pending = app::update::start(&mut state);
    let mut dirty = true;
    let result: anyhow::Result<()> = async {
        loop {
            for fx in pending.drain(..) {
                match fx {
                    Effect::Quit => return Ok(()),
                    Effect::Copy(text) => {
                        let mut out = std::io::stdout();
                        let _ = out.write_all(osc52(&text).as_bytes());
                        let _ = out.flush();
                    }
                    Effect::SetMouse(on) => {
                        let mut out = std::io::stdout();
                        let _ = if on {
                            execute!(out, crossterm::event::EnableMouseCapture)
                        } else {
                            execute!(out, crossterm::event::DisableMouseCapture)
                        };
                    }
                    Effect::SaveSession(s) => save_session(&s),
                    other => {
                        fx_tx.send(other).map_err(|_| anyhow::anyhow!("store worker stopped"))?;
                    }
                }
            }
            if dirty {
                terminal.draw(|f| crate::ui::render(f, &state))?;
                dirty = false;
            }
            let msg = tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => Some(Msg::Key(k.into())),
                    Some(Ok(Event::Resize(w, h))) => Some(Msg::Resize { width: w, height: h }),
                    Some(Ok(Event::Mouse(m))) => match m.kind {
                        MouseEventKind::ScrollDown => Some(Msg::Scroll(1)),
                        MouseEventKind::ScrollUp => Some(Msg::Scroll(-1)),
                        MouseEventKind::Down(_) => Some(Msg::Click { column: m.column, row: m.row }),
                        _ => None,
                    },
                    Some(Ok(_)) => None,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                m = msg_rx.recv() => m,
            };
            if let Some(m) = msg {
                pending.extend(app::update(&mut state, m));
                dirty = true;
                // Drain what else is queued before drawing once (no redraw storms over SSH).
                while let Ok(m) = msg_rx.try_recv() {
                    pending.extend(app::update(&mut state, m));
                }
            }
            if state.quit && pending.is_empty() {
                return Ok(());
            }
        }
    }
    .await;
    let _ = execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    drop(fx_tx);
    let _ = worker.join();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_payload_cannot_break_out() {
        let s = osc52("evil\x07\x1b]0;pwned\x07");
        assert!(s.starts_with("\x1b]52;c;"));
        let body = &s[7..s.len() - 1];
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='));
    }
}
