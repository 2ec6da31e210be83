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
        // The stack names users and devices under investigation: owner-only, like the cache.
        let _ = crate::private_fs::write_file(&p, &json);
    }
}

/// What background work (`:sync`, `:import`) needs: the cache path (it opens its own
/// connection, sharing this process's writer lock) and the `[sync]` section of the config file.
pub struct BackgroundSetup {
    pub db: std::path::PathBuf,
    pub catalog: &'static crate::catalog::Catalog,
    /// Err: why sync is not configured (shown when the analyst types `:sync`).
    pub config: Result<crate::sync::SyncConfig, String>,
    /// Start a sync as soon as the console is up (`demo --live`).
    pub sync_at_start: bool,
}

/// Runs a sync on its own thread, reporting progress and the outcome as messages.
fn spawn_sync(setup: &BackgroundSetup, tx: tokio::sync::mpsc::UnboundedSender<Msg>) {
    let cfg = match &setup.config {
        Ok(c) => c.clone(),
        Err(why) => {
            let _ = tx.send(Msg::BackgroundDone { ok: false, text: why.clone() });
            return;
        }
    };
    let (db, catalog) = (setup.db.clone(), setup.catalog);
    let spawned = std::thread::Builder::new().name("sync".into()).spawn(move || {
        let progress_tx = tx.clone();
        let progress = move |p: crate::sync::SyncProgress| {
            let _ = progress_tx.send(Msg::Progress { text: crate::sync::run::progress_line(&p) });
        };
        let msg = match crate::sync::run::sync_and_push_blocking(&db, catalog, &cfg, None, &progress) {
            Ok(o) => {
                let failed: Vec<String> = o.sync.errors().iter().map(|e| e.to_string()).collect();
                let text = format!(
                    "Sync: {} rows{}; alerts {} new, {} updated{}",
                    o.sync.total_rows(),
                    o.push.as_ref().map(|p| format!(", {} indicator(s) pushed", p.pushed)).unwrap_or_default(),
                    o.alerts.new,
                    o.alerts.updated,
                    if failed.is_empty() { String::new() } else { format!(" — failed: {}", failed.join("; ")) }
                );
                Msg::BackgroundDone { ok: o.is_ok(), text }
            }
            Err(e) => Msg::BackgroundDone { ok: false, text: format!("Sync failed: {e}") },
        };
        let _ = tx.send(msg);
    });
    if let Err(e) = spawned {
        tracing::warn!(%e, "cannot start the sync thread");
    }
}

/// Runs `:import` on its own thread and connection (the store worker stays free for the views),
/// with a progress line at most every 200 ms.
fn spawn_import(setup: &BackgroundSetup, path: String, tx: tokio::sync::mpsc::UnboundedSender<Msg>) {
    let (db, catalog) = (setup.db.clone(), setup.catalog);
    let spawned = std::thread::Builder::new().name("import".into()).spawn(move || {
        let msg = match crate::store::Store::open(&db) {
            Ok(store) => {
                let last = std::cell::Cell::new(std::time::Instant::now());
                let progress = |text: String| {
                    if last.get().elapsed() >= std::time::Duration::from_millis(200) {
                        last.set(std::time::Instant::now());
                        let _ = tx.send(Msg::Progress { text });
                    }
                };
                crate::runtime::import_into(&store, catalog, &path, &progress)
            }
            Err(e) => Msg::BackgroundDone { ok: false, text: format!("Import failed: {e}") },
        };
        let _ = tx.send(msg);
    });
    if let Err(e) = spawned {
        tracing::warn!(%e, "cannot start the import thread");
    }
}

pub async fn run_console(backend: Backend, mut state: State, sync: BackgroundSetup) -> anyhow::Result<()> {
    let (msg_tx, mut msg_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let sync_tx = msg_tx.clone();
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
    if sync.sync_at_start && !state.read_only {
        pending.extend(app::update::run_command(&mut state, "sync"));
    }
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
                    Effect::Sync => spawn_sync(&sync, sync_tx.clone()),
                    Effect::Import { path } => spawn_import(&sync, path, sync_tx.clone()),
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

    fn collect_until_finished(mut rx: tokio::sync::mpsc::UnboundedReceiver<Msg>) -> (Vec<String>, bool, String) {
        let mut progress = Vec::new();
        loop {
            match rx.blocking_recv() {
                Some(Msg::Progress { text }) => progress.push(text),
                Some(Msg::BackgroundDone { ok, text }) => return (progress, ok, text),
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("sync thread ended without a result"),
            }
        }
    }

    #[test]
    fn console_sync_runs_in_the_background_and_reports() {
        use crate::sync::fake_tenant::{FakeTenantOptions, serve_fake_tenant};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let opts = FakeTenantOptions { users: 20, devices: 15, days: 2, ..FakeTenantOptions::default() };
        let secret = crate::sync::run::SecretDir::create(&opts.client_secret).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let fake = rt.block_on(serve_fake_tenant(opts)).unwrap();
        let setup = BackgroundSetup {
            db: db.clone(),
            catalog: crate::catalog::Catalog::builtin(),
            config: Ok(fake.sync_config(&secret.file)),
            sync_at_start: false,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        spawn_sync(&setup, tx);
        let (progress, ok, text) = collect_until_finished(rx);
        assert!(ok, "{text}");
        assert!(progress.iter().any(|p| p.contains("rows")), "{progress:?}");
        assert!(text.starts_with("Sync: ") && !text.contains("Sync: 0 rows"), "{text}");
        let store = crate::store::Store::open_read_only(&db).unwrap();
        assert!(store.counts().unwrap().devices >= 15);
        // MDCA's score and tag show beside ours on the app's page.
        let synced = store
            .apps(crate::domain::Period { days: 0 })
            .unwrap()
            .into_iter()
            .find(|a| a.mdca_score.is_some())
            .expect("an app with an MDCA score");
        let backend = Backend::new(store, crate::catalog::Catalog::builtin());
        let page = backend.load(crate::app::Route::App(synced.id), crate::domain::Period { days: 0 }).unwrap();
        let fact = page.facts.iter().find(|(k, _)| k == "Defender for Cloud Apps").unwrap();
        assert!(fact.1.contains("/10"), "{fact:?}");

        // Without a [sync] section the analyst is told why, nothing runs.
        let none = BackgroundSetup { config: Err("no [sync] section in config.toml".into()), ..setup };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        spawn_sync(&none, tx);
        let (progress, ok, text) = collect_until_finished(rx);
        assert!(progress.is_empty() && !ok && text.contains("[sync]"));
    }

    #[test]
    fn console_import_runs_on_its_own_thread_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/elastic-integrations/squid/test-access.log");
        let setup = BackgroundSetup {
            db: db.clone(),
            catalog: crate::catalog::Catalog::builtin(),
            config: Err("no sync".into()),
            sync_at_start: false,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        spawn_import(&setup, sample.to_string(), tx);
        let (_, ok, text) = collect_until_finished(rx);
        assert!(ok && text.starts_with("Imported ") && !text.starts_with("Imported 0 "), "{text}");
        let store = crate::store::Store::open_read_only(&db).unwrap();
        assert!(store.counts().unwrap().apps > 0);
        // A file that is not there: a clear failure, nothing else.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        spawn_import(&setup, dir.path().join("nope.log").to_string_lossy().into_owned(), tx);
        let (_, ok, text) = collect_until_finished(rx);
        assert!(!ok && text.starts_with("Import failed"), "{text}");
    }

    #[test]
    fn osc52_payload_cannot_break_out() {
        let s = osc52("evil\x07\x1b]0;pwned\x07");
        assert!(s.starts_with("\x1b]52;c;"));
        let body = &s[7..s.len() - 1];
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='));
    }
}
