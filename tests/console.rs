//! Drives the real reducer, runtime and renderer on a small seeded demo tenant, as an analyst
//! would: key presses in, frames out.
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use shadowscope::actions::indicators::OutboxOp;
use shadowscope::app::keymap::Key;
use shadowscope::app::{self, Effect, Mode, Msg, Route, State};
use shadowscope::catalog::Catalog;
use shadowscope::demo::{DemoOptions, DemoSummary, generate};
use shadowscope::domain::{Severity, Tag};
use shadowscope::runtime::Backend;
use shadowscope::store::Store;

struct Harness {
    state: State,
    backend: Backend,
    summary: DemoSummary,
}

fn fixed_now() -> i64 {
    1_764_000_000
}

impl Harness {
    fn new(width: u16, height: u16) -> Harness {
        let store = Store::open_in_memory().unwrap();
        let summary =
            generate(&store, Catalog::builtin(), &DemoOptions { users: 80, days: 21, ..Default::default() }).unwrap();
        let mut backend = Backend::new(store, Catalog::builtin());
        backend.actor = "analyst".into();
        backend.now = fixed_now;
        let mut state = State::new("test cache");
        state.width = width;
        state.height = height;
        let mut h = Harness { state, backend, summary };
        let fx = app::update::start(&mut h.state);
        h.run(fx);
        h
    }

    /// Executes effects synchronously until nothing is left, like the event loop does.
    fn run(&mut self, mut effects: Vec<Effect>) {
        while let Some(fx) = effects.pop() {
            for m in self.backend.handle(fx) {
                effects.extend(app::update(&mut self.state, m));
            }
        }
    }

    fn key(&mut self, k: Key) {
        let fx = app::update(&mut self.state, Msg::Key(k));
        self.run(fx);
    }

    fn keys(&mut self, s: &str) {
        for c in s.chars() {
            self.key(Key::ch(c));
        }
    }

    fn selected_key(&self) -> String {
        self.state.current().focused().and_then(|t| t.selected_row()).map(|r| r.key.clone()).unwrap_or_default()
    }

    /// The characters drawn underlined (the filter's matches).
    fn underlined(&self) -> String {
        let mut t = Terminal::new(TestBackend::new(self.state.width, self.state.height)).unwrap();
        t.draw(|f| shadowscope::ui::render(f, &self.state)).unwrap();
        let buf = t.backend().buffer().clone();
        buf.content()
            .iter()
            .filter(|c| c.modifier.contains(ratatui::style::Modifier::UNDERLINED))
            .map(|c| c.symbol().to_string())
            .collect()
    }

    fn screen(&self) -> String {
        let mut t = Terminal::new(TestBackend::new(self.state.width, self.state.height)).unwrap();
        t.draw(|f| shadowscope::ui::render(f, &self.state)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }
}

#[test]
fn pivot_user_devices_other_user_and_back() {
    let mut h = Harness::new(120, 40);
    // Users view, risk-sorted: the planted exfiltrating user is first.
    assert_eq!(h.state.current().route, Route::Users);
    assert!(h.selected_key().starts_with(&h.summary.exfil_user), "{}", h.selected_key());
    h.key(Key::plain(KeyCode::Enter));
    let user_route = h.state.current().route;
    assert!(matches!(user_route, Route::User(_)));
    // Focus is on the user's devices; both planted devices are there.
    let devices: Vec<String> = h.state.current().tables[0].table.rows.iter().map(|r| r.key.clone()).collect();
    for d in &h.summary.exfil_devices {
        assert!(devices.contains(d), "{devices:?}");
    }
    // Pivot to the shared kiosk the user also logged on to, then to another user of it.
    for _ in 0..devices.len() {
        if h.selected_key() == h.summary.kiosk {
            break;
        }
        h.key(Key::ch('j'));
    }
    assert_eq!(h.selected_key(), h.summary.kiosk);
    h.key(Key::plain(KeyCode::Enter));
    let device_route = h.state.current().route;
    assert!(matches!(device_route, Route::Device(_)));
    let users_of_device: Vec<String> = h.state.current().tables[0].table.rows.iter().map(|r| r.key.clone()).collect();
    assert!(users_of_device.contains(&h.summary.exfil_user));
    // Select a user other than the one we came from.
    if h.selected_key() == h.summary.exfil_user {
        h.key(Key::ch('j'));
    }
    assert_ne!(h.selected_key(), h.summary.exfil_user);
    let other = h.selected_key();
    h.key(Key::plain(KeyCode::Enter));
    assert!(matches!(h.state.current().route, Route::User(_)));
    assert_eq!(h.state.current().data.as_ref().unwrap().label, other);
    assert_eq!(h.state.stack.len(), 4);
    // The breadcrumb trail shows the path.
    let screen = h.screen();
    assert!(screen.contains("Users › user "), "{screen}");
    // Back, back: the device page still has its selection, then the first user.
    h.key(Key::plain(KeyCode::Esc));
    assert_eq!(h.state.current().route, device_route);
    assert_eq!(h.selected_key(), other);
    h.key(Key::plain(KeyCode::Backspace));
    assert_eq!(h.state.current().route, user_route);
    // Forward again with ].
    h.key(Key::ch(']'));
    assert_eq!(h.state.current().route, device_route);
}

#[test]
fn filter_sort_and_tag_with_confirmation_and_undo() {
    let mut h = Harness::new(120, 40);
    h.key(Key::ch('2')); // Apps
    assert_eq!(h.state.current().route, Route::Apps);
    h.key(Key::ch('/'));
    assert_eq!(h.state.mode, Mode::Filter);
    for c in h.summary.genai_app.clone().to_lowercase().chars() {
        h.key(Key::ch(c));
    }
    h.key(Key::plain(KeyCode::Enter));
    let t = h.state.current().focused().unwrap();
    assert!(!t.visible.is_empty() && t.visible.len() < t.table.rows.len());
    assert!(h.selected_key().starts_with(&h.summary.genai_app), "{}", h.selected_key());
    // The matched characters are highlighted (underlined: visible without colour too).
    assert!(h.underlined().contains(&h.summary.genai_app), "{}", h.underlined());
    // u asks first; n cancels and nothing changes.
    h.key(Key::ch('u'));
    assert!(matches!(h.state.mode, Mode::Confirm(_)));
    assert!(h.screen().contains("BLOCK"));
    h.key(Key::ch('n'));
    let id = match h.state.current().focused().unwrap().selected_row().unwrap().target {
        Some(Route::App(id)) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(h.backend.store.app_tag(id).unwrap(), Tag::None);
    // u then y tags it, the view reloads with the filter kept.
    h.key(Key::ch('u'));
    h.key(Key::ch('y'));
    assert_eq!(h.backend.store.app_tag(id).unwrap(), Tag::Unsanctioned);
    assert!(!h.state.current().focused().unwrap().filter.is_empty());
    assert!(h.screen().contains("UNSANCT"));
    // The audit log has it; z undoes it.
    let audit = h.backend.store.audit_entries(None, 5).unwrap();
    assert_eq!((audit[0].actor.as_str(), audit[0].new_value.as_str()), ("analyst", "unsanctioned"));
    let before_undo = h.backend.store.outbox_since(0).unwrap().last().map(|(id, _)| *id).unwrap_or(0);
    h.key(Key::ch('z'));
    assert_eq!(h.backend.store.app_tag(id).unwrap(), Tag::None);
    // Undo queues the removal of every Block indicator the tag had queued.
    let ops = h.backend.store.outbox_since(0).unwrap();
    let blocks = ops
        .iter()
        .filter(|(i, op)| {
            *i <= before_undo && matches!(op, OutboxOp::Upsert(s) if s.application.contains(&h.summary.genai_app))
        })
        .count();
    let deletes = ops.iter().filter(|(i, op)| *i > before_undo && matches!(op, OutboxOp::Delete { .. })).count();
    assert!(blocks > 0 && deletes == blocks, "{blocks} blocks, {deletes} deletes");
    // Sorting: o moves the sort column, O flips it.
    h.key(Key::plain(KeyCode::Esc));
    let before = h.state.current().focused().unwrap().sort;
    h.key(Key::ch('o'));
    assert_ne!(h.state.current().focused().unwrap().sort, before);
}

#[test]
fn command_line_opens_entities_and_rejects_nonsense() {
    let mut h = Harness::new(100, 30);
    h.key(Key::ch(':'));
    let upn = h.summary.exfil_user.clone();
    for c in format!("user {upn}").chars() {
        h.key(Key::ch(c));
    }
    h.key(Key::plain(KeyCode::Enter));
    assert_eq!(h.state.current().data.as_ref().unwrap().label, upn);
    h.key(Key::ch(':'));
    h.keys("frobnicate");
    h.key(Key::plain(KeyCode::Enter));
    assert!(matches!(&h.state.mode, Mode::Command { error: Some(_), .. }));
    h.key(Key::plain(KeyCode::Esc));
    h.key(Key::ch(':'));
    h.keys("das");
    h.key(Key::plain(KeyCode::Tab));
    assert!(matches!(&h.state.mode, Mode::Command { input, .. } if input == "dashboard"));
    h.key(Key::plain(KeyCode::Esc));
    h.key(Key::ch(':'));
    h.keys("dev");
    h.key(Key::plain(KeyCode::Tab));
    assert!(matches!(&h.state.mode, Mode::Command { input, .. } if input == "device"));
}

#[test]
fn read_only_refuses_changes() {
    let mut h = Harness::new(100, 30);
    h.state.read_only = true;
    h.key(Key::ch('2'));
    h.key(Key::ch('u'));
    assert_eq!(h.state.mode, Mode::Normal);
    assert!(h.state.status.as_ref().unwrap().error);
}

#[test]
fn small_terminal_says_so() {
    let mut h = Harness::new(50, 12);
    h.state.width = 50;
    let s = h.screen();
    assert!(s.contains("Terminal too small"), "{s}");
    h.state.width = 80;
    h.state.height = 24;
    assert!(h.screen().contains("Users ("));
}

fn snapshot(name: &str, h: &Harness) {
    insta::assert_snapshot!(name, h.screen());
}

#[test]
fn snapshots_of_every_view() {
    for (w, hgt) in [(80u16, 24u16), (200, 50)] {
        let mut h = Harness::new(w, hgt);
        snapshot(&format!("users_{w}x{hgt}"), &h);
        h.key(Key::plain(KeyCode::Enter));
        snapshot(&format!("user_detail_{w}x{hgt}"), &h);
        h.key(Key::plain(KeyCode::Enter));
        snapshot(&format!("device_detail_{w}x{hgt}"), &h);
        h.key(Key::ch('2'));
        snapshot(&format!("apps_{w}x{hgt}"), &h);
        h.key(Key::plain(KeyCode::Enter));
        snapshot(&format!("app_detail_{w}x{hgt}"), &h);
        h.key(Key::ch('4'));
        snapshot(&format!("devices_{w}x{hgt}"), &h);
        h.key(Key::ch('1'));
        snapshot(&format!("dashboard_{w}x{hgt}"), &h);
        h.key(Key::ch('5'));
        snapshot(&format!("alerts_{w}x{hgt}"), &h);
        h.key(Key::ch('7'));
        snapshot(&format!("settings_{w}x{hgt}"), &h);
        h.key(Key::ch('6'));
        snapshot(&format!("audit_{w}x{hgt}"), &h);
        h.key(Key::ch('?'));
        snapshot(&format!("help_{w}x{hgt}"), &h);
    }
}

#[test]
fn severity_alerts_and_scoped_tags_from_the_keyboard() {
    let mut h = Harness::new(140, 40);
    // Settings: the fourth severity row is the anomalous-upload policy; + raises it.
    h.key(Key::ch('7'));
    assert_eq!(h.state.current().route, Route::Settings);
    h.keys("jjj");
    assert!(h.selected_key().contains("anomalous-upload"), "{}", h.selected_key());
    h.key(Key::ch('+'));
    assert!(h.screen().contains("1 open alert(s) re-labelled"), "{}", h.screen());
    let sev = h.backend.store.policy_severities().unwrap();
    assert_eq!(sev.for_kind(shadowscope::actions::policy::PolicyKind::AnomalousUpload), Severity::High);
    assert_eq!(sev.global, Severity::Medium);

    // Alerts: r resolves the selected alert; on the audit log, z undoes exactly that entry.
    h.key(Key::ch('5'));
    let open_before = h.backend.store.open_policy_alerts().unwrap().len();
    h.key(Key::ch('r'));
    assert_eq!(h.backend.store.open_policy_alerts().unwrap().len(), open_before - 1);
    h.key(Key::ch('6'));
    assert!(h.selected_key().contains("alert"), "{}", h.selected_key());
    h.key(Key::ch('z'));
    assert_eq!(h.backend.store.open_policy_alerts().unwrap().len(), open_before);

    // A scoped profile from the command line, then a tag that uses it: the confirmation shows
    // what will be blocked and where, and p switches the profile.
    h.key(Key::ch(':'));
    h.keys("profile no-kiosks exclude Kiosks");
    h.key(Key::plain(KeyCode::Enter));
    h.key(Key::ch('2'));
    h.key(Key::ch('/'));
    h.keys(&h.summary.genai_app.to_lowercase());
    h.key(Key::plain(KeyCode::Enter));
    h.key(Key::ch('u'));
    assert!(h.screen().contains("domain(s) on all devices"), "{}", h.screen());
    h.key(Key::ch('p'));
    let screen = h.screen();
    assert!(screen.contains("Scoped profile: no-kiosks") && !screen.contains("on all devices"), "{screen}");
    assert!(screen.contains("device groups") && !screen.contains("Kiosks,"), "{screen}");
    h.key(Key::ch('y'));
    let id = h.backend.store.app_by_key_or_name(&h.summary.genai_app).unwrap().unwrap();
    assert_eq!(h.backend.store.app_tag(id).unwrap(), Tag::Unsanctioned);
    assert_eq!(h.backend.store.app_tag_profile(id).unwrap().as_deref(), Some("no-kiosks"));
    assert!(h.screen().contains("indicator change(s) queued"), "{}", h.screen());
}

#[test]
fn sync_command_runs_once_and_reports_in_the_header() {
    let mut h = Harness::new(120, 30);
    let fx = app::update::run_command(&mut h.state, "sync");
    assert_eq!(fx, vec![Effect::Sync]);
    // A second :sync while one runs is refused.
    assert!(app::update::run_command(&mut h.state, "sync").is_empty());
    assert!(matches!(&h.state.mode, Mode::Command { error: Some(e), .. } if e.contains("already running")));
    // …and so is an import while the sync runs: one writer job at a time.
    h.state.mode = Mode::Normal;
    assert!(app::update::run_command(&mut h.state, "import /tmp/x.log").is_empty());
    h.state.mode = Mode::Normal;
    let fx = app::update(&mut h.state, Msg::Progress { text: "MDE devices: 120 rows, 2 pages".into() });
    h.run(fx);
    assert!(h.screen().contains("⟳ MDE devices: 120 rows"), "{}", h.screen());
    let fx = app::update(&mut h.state, Msg::BackgroundDone { ok: true, text: "Sync: 120 rows".into() });
    h.run(fx);
    assert!(h.state.busy.is_none());
    assert!(h.screen().contains("Sync: 120 rows"));
}

#[test]
fn the_whole_pivot_stack_survives_a_restart() {
    let mut h = Harness::new(120, 30);
    h.key(Key::plain(KeyCode::Enter)); // the riskiest user
    let user_route = h.state.current().route;
    h.key(Key::ch('/'));
    h.keys("lt");
    h.key(Key::plain(KeyCode::Enter));
    let selected = h.selected_key();
    let fx = app::update(&mut h.state, Msg::Key(Key::ch('q')));
    let Some(Effect::SaveSession(session)) = fx.into_iter().find(|e| matches!(e, Effect::SaveSession(_))) else {
        panic!("no session saved")
    };
    let json = serde_json::to_string(&session).unwrap();

    // A new console on the same cache.
    let mut h2 = Harness::new(120, 30);
    let mut fresh = State::new("test cache");
    (fresh.width, fresh.height) = (120, 30);
    app::update::restore_session(&mut fresh, &serde_json::from_str(&json).unwrap());
    h2.state = fresh;
    let fx = app::update::start(&mut h2.state);
    h2.run(fx);
    assert_eq!(h2.state.stack.len(), 2);
    assert_eq!(h2.state.current().route, user_route);
    assert_eq!(h2.state.current().focused().unwrap().filter, "lt");
    assert_eq!(h2.selected_key(), selected);
    // Back goes to the Users list it came from.
    h2.key(Key::plain(KeyCode::Esc));
    assert_eq!(h2.state.current().route, Route::Users);

    // Another cache: only the top-level view is restored, never ids from elsewhere.
    let mut other = State::new("another cache");
    app::update::restore_session(&mut other, &serde_json::from_str(&json).unwrap());
    assert_eq!(other.stack.len(), 1);
    assert_eq!(other.current().route, Route::Users);
}

#[test]
fn a_score_override_is_undone_from_the_audit_log() {
    let mut h = Harness::new(120, 30);
    let app = h.summary.genai_app.clone();
    let id = h.backend.store.app_by_key_or_name(&app).unwrap().unwrap();
    let before = h.backend.store.app(id, h.state.period).unwrap().unwrap().score;
    let fx = app::update::run_command(&mut h.state, &format!("score {app} 1.5"));
    h.run(fx);
    assert_eq!(h.backend.store.app(id, h.state.period).unwrap().unwrap().score.0, 1.5);
    h.key(Key::ch('6'));
    assert!(h.selected_key().contains("score"), "{}", h.selected_key());
    h.key(Key::ch('z'));
    assert_eq!(h.backend.store.app(id, h.state.period).unwrap().unwrap().score, before);
}

#[test]
fn labels_and_bulk_tagging_everything_a_filter_shows() {
    let mut h = Harness::new(140, 40);
    let mega = h.summary.exfil_app.clone();
    let fx = app::update::run_command(&mut h.state, &format!("label {mega} exfil-case"));
    h.run(fx);
    let id = h.backend.store.app_by_key_or_name(&mega).unwrap().unwrap();
    assert_eq!(h.backend.store.labels_of_app(id).unwrap(), vec!["exfil-case".to_string()]);
    // The label is searchable in the Apps view and shown on the app's page.
    h.key(Key::ch('2'));
    h.key(Key::ch('/'));
    h.keys("exfil-case");
    h.key(Key::plain(KeyCode::Enter));
    assert_eq!(h.state.current().focused().unwrap().visible.len(), 1);
    h.key(Key::plain(KeyCode::Enter));
    assert!(h.screen().contains("labels exfil-case"), "{}", h.screen());
    // Undo from the audit log removes it.
    h.key(Key::ch('6'));
    h.key(Key::ch('z'));
    assert!(h.backend.store.labels_of_app(id).unwrap().is_empty());

    // Bulk: filter the Apps view, A marks every row it shows, m tags them all after one "y".
    h.key(Key::ch('2'));
    h.key(Key::ch('/'));
    // Column predicates in the filter: every generative-AI app scored 5 or below (10 = safest).
    h.keys("cat:generative risk<=5");
    h.key(Key::plain(KeyCode::Enter));
    let shown: Vec<shadowscope::domain::AppId> = {
        let t = h.state.current().focused().unwrap();
        t.visible
            .iter()
            .filter_map(|&i| match t.table.rows[i].target {
                Some(Route::App(a)) => Some(a),
                _ => None,
            })
            .collect()
    };
    assert!(shown.len() >= 2, "{shown:?}");
    for a in &shown {
        let row = h.backend.store.app(*a, h.state.period).unwrap().unwrap();
        assert!(row.category == "Generative AI" && row.score.0 <= 5.0, "{row:?}");
    }
    h.key(Key::ch('A'));
    h.key(Key::ch('m'));
    assert!(
        h.screen().contains(&format!("and {}", shown.len().saturating_sub(5))) || shown.len() <= 5,
        "{}",
        h.screen()
    );
    h.key(Key::ch('y'));
    for a in &shown {
        assert_eq!(h.backend.store.app_tag(*a).unwrap(), Tag::Monitored, "{a:?}");
    }
}
