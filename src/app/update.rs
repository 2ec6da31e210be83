//! The reducer: (state, message) → new state + effects. Pure: no I/O, no clock.
use super::keymap::{Action, Key};
use super::table::{Cell, TableView};
use super::{Effect, EntityKind, Entry, Item, Mode, Msg, Pending, Route, SavedStep, Session, State, Status, ViewData};
use crate::domain::{AppId, Period, Severity, Tag};
use crossterm::event::KeyCode;

pub fn update(state: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => on_key(state, key),
        Msg::Resize { width, height } => {
            state.width = width;
            state.height = height;
            keep_selection_visible(state);
            Vec::new()
        }
        Msg::Loaded { req, data } => {
            if let Some(e) = state.stack.iter_mut().find(|e| e.pending == Some(req)) {
                install(e, *data);
            }
            keep_selection_visible(state);
            Vec::new()
        }
        Msg::LoadFailed { req, error } => {
            if let Some(e) = state.stack.iter_mut().find(|e| e.pending == Some(req)) {
                e.pending = None;
                e.error = Some(error.clone());
            }
            set_status(state, error, true);
            Vec::new()
        }
        Msg::Done { text } => {
            set_status(state, text, false);
            for e in &mut state.stack {
                e.stale = true;
            }
            reload_current(state)
        }
        Msg::Failed { error } => {
            set_status(state, error, true);
            Vec::new()
        }
        Msg::Open(route) => push(state, route),
        Msg::Progress { text } => {
            if state.busy.is_some() {
                state.busy = Some(text);
            }
            Vec::new()
        }
        Msg::BackgroundDone { ok, text } => {
            state.busy = None;
            set_status(state, text, !ok);
            for e in &mut state.stack {
                e.stale = true;
            }
            reload_current(state)
        }
        Msg::TagPreview { apps, profile, preview } => {
            if let Mode::Confirm(Pending::Tag { apps: a, profile: p, preview: slot, .. }) = &mut state.mode
                && a.iter().map(|(id, _)| *id).eq(apps.iter().copied())
                && *p == profile
            {
                *slot = Some(preview);
            }
            Vec::new()
        }
        Msg::Scroll(n) => {
            if let Some(t) = state.current_mut().focused_mut() {
                t.move_by(isize::from(n) * 3);
            }
            keep_selection_visible(state);
            Vec::new()
        }
        Msg::Click { row, .. } => {
            click(state, row);
            Vec::new()
        }
    }
}

fn set_status(state: &mut State, text: String, error: bool) {
    state.status = Some(Status { text, error });
}

fn next_req(state: &mut State) -> u64 {
    let r = state.next_req;
    state.next_req += 1;
    r
}

/// Loads (or reloads) the current entry.
pub fn reload_current(state: &mut State) -> Vec<Effect> {
    let req = next_req(state);
    let period = state.period;
    let e = state.current_mut();
    e.pending = Some(req);
    e.stale = false;
    vec![Effect::Load { req, route: e.route, period }]
}

/// The first message: load the starting view.
pub fn start(state: &mut State) -> Vec<Effect> {
    reload_current(state)
}

/// Puts loaded data into an entry, keeping the analyst's filter, sort and selection per table.
fn install(e: &mut Entry, data: ViewData) {
    let old = std::mem::take(&mut e.tables);
    e.tables = data
        .tables
        .iter()
        .map(|t| {
            let mut v = TableView::new(t.clone());
            if let Some(o) = old.iter().find(|o| o.table.title == t.title) {
                let selected_key = o.selected_row().map(|r| r.key.clone());
                v.filter = o.filter.clone();
                v.sort = o.sort;
                v.offset = o.offset;
                v.recompute();
                if let Some(k) = selected_key
                    && let Some(pos) = v.visible.iter().position(|&i| v.table.rows[i].key == k)
                {
                    v.selected = pos;
                }
            }
            v
        })
        .collect();
    if let Some(r) = e.restore.take() {
        if let Some(v) = e.tables.iter_mut().find(|t| t.table.title == r.table) {
            v.filter = r.filter;
            v.sort = r.sort;
            v.recompute();
            if let Some(k) = r.selected
                && let Some(pos) = v.visible.iter().position(|&i| v.table.rows[i].key == k)
            {
                v.selected = pos;
            }
        }
        e.pane = r.pane;
    }
    e.pane = e.pane.min(e.tables.len().saturating_sub(1));
    e.data = Some(data);
    e.pending = None;
    e.error = None;
}

fn keep_selection_visible(state: &mut State) {
    let h = state.body_rows();
    if let Some(t) = state.current_mut().focused_mut() {
        t.scroll_into_view(h);
    }
}

/// Opens a route as a new pivot step (dropping any "forward" steps).
pub fn push(state: &mut State, route: Route) -> Vec<Effect> {
    if state.current().route == route {
        return Vec::new();
    }
    state.stack.truncate(state.cursor + 1);
    state.stack.push(Entry::new(route));
    state.cursor = state.stack.len() - 1;
    state.mode = Mode::Normal;
    reload_current(state)
}

fn go_to(state: &mut State, cursor: usize) -> Vec<Effect> {
    state.cursor = cursor.min(state.stack.len() - 1);
    if state.current().stale || state.current().data.is_none() { reload_current(state) } else { Vec::new() }
}

fn on_key(state: &mut State, key: Key) -> Vec<Effect> {
    // Ctrl-C always quits, whatever the mode.
    if key == Key::ctrl('c') {
        return quit(state);
    }
    match state.mode.clone() {
        Mode::Normal => match state.keymap.action_for(key) {
            Some(a) => on_action(state, a),
            None => Vec::new(),
        },
        Mode::Help => {
            state.mode = Mode::Normal;
            Vec::new()
        }
        Mode::Filter => on_filter_key(state, key),
        Mode::Command { input, .. } => on_command_key(state, input, key),
        Mode::Confirm(p) => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                state.mode = Mode::Normal;
                match p {
                    Pending::Tag { apps, tag, profile, .. } => {
                        vec![Effect::SetTag { apps: apps.into_iter().map(|(id, _)| id).collect(), tag, profile }]
                    }
                }
            }
            KeyCode::Char('p') | KeyCode::Char('P') => {
                let Pending::Tag { apps, tag, users_affected, profile, preview } = p;
                let profiles = preview.as_ref().map(|v| v.profiles.clone()).unwrap_or_default();
                if profiles.is_empty() {
                    set_status(state, "No scoped profiles yet: :profile NAME include|exclude GROUP,…".into(), true);
                    return Vec::new();
                }
                // None → first profile → … → last → None (all devices).
                let next = match profile.as_ref().and_then(|p| profiles.iter().position(|x| x == p)) {
                    None => profiles.first().cloned(),
                    Some(i) => profiles.get(i + 1).cloned(),
                };
                let ids = apps.iter().map(|(id, _)| *id).collect();
                state.mode =
                    Mode::Confirm(Pending::Tag { apps, tag, users_affected, profile: next.clone(), preview: None });
                vec![Effect::PreviewTag { apps: ids, profile: next }]
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                state.mode = Mode::Normal;
                set_status(state, "Cancelled: nothing changed.".into(), false);
                Vec::new()
            }
            _ => Vec::new(),
        },
        Mode::History { selected } => match key.code {
            KeyCode::Char('j') | KeyCode::Down => {
                state.mode = Mode::History { selected: (selected + 1).min(state.stack.len() - 1) };
                Vec::new()
            }
            KeyCode::Char('k') | KeyCode::Up => {
                state.mode = Mode::History { selected: selected.saturating_sub(1) };
                Vec::new()
            }
            KeyCode::Enter => {
                state.mode = Mode::Normal;
                go_to(state, selected)
            }
            _ => {
                state.mode = Mode::Normal;
                Vec::new()
            }
        },
    }
}

fn quit(state: &mut State) -> Vec<Effect> {
    state.quit = true;
    let stack = state
        .stack
        .iter()
        .map(|e| {
            let t = e.focused();
            SavedStep {
                route: route_token(e.route),
                pane: e.pane,
                table: t.map(|t| t.table.title.clone()).unwrap_or_default(),
                filter: t.map(|t| t.filter.clone()).unwrap_or_default(),
                sort: t.and_then(|t| t.sort),
                selected: t.and_then(|t| t.selected_row()).map(|r| r.key.clone()),
            }
        })
        .collect();
    let session = Session {
        route: Some(route_name(state.current().route)),
        period_days: state.period.days,
        source: state.source.clone(),
        stack,
        cursor: state.cursor,
    };
    vec![Effect::SaveSession(session), Effect::Quit]
}

/// Name of a top-level route for the session file (detail pages restore as their list).
pub fn route_name(r: Route) -> String {
    match r {
        Route::Dashboard => "dashboard",
        Route::Apps | Route::App(_) => "apps",
        Route::Users | Route::User(_) | Route::UserOnDevice(..) => "users",
        Route::Devices | Route::Device(_) => "devices",
        Route::Alerts => "alerts",
        Route::Audit => "audit",
        Route::Settings => "settings",
    }
    .into()
}

/// A route as text for the session file: list names, or `kind:id`.
pub fn route_token(r: Route) -> String {
    match r {
        Route::User(u) => format!("user:{}", u.0),
        Route::Device(d) => format!("device:{}", d.0),
        Route::App(a) => format!("app:{}", a.0),
        Route::UserOnDevice(u, d) => format!("user-on-device:{}:{}", u.0, d.0),
        list => route_name(list),
    }
}

pub fn route_from_token(s: &str) -> Option<Route> {
    let mut parts = s.split(':');
    let kind = parts.next()?;
    let mut id = || parts.next().and_then(|x| x.parse::<i64>().ok());
    Some(match kind {
        "user" if s.contains(':') => Route::User(crate::domain::UserId(id()?)),
        "device" if s.contains(':') => Route::Device(crate::domain::DeviceId(id()?)),
        "app" if s.contains(':') => Route::App(AppId(id()?)),
        "user-on-device" => {
            let u = id()?;
            Route::UserOnDevice(crate::domain::UserId(u), crate::domain::DeviceId(id()?))
        }
        _ => return route_from_name(s),
    })
}

/// Rebuilds the pivot stack of a saved session (if it belongs to this cache): every step with
/// its filter, sort and selection, restored when its data arrives.
pub fn restore_session(state: &mut State, s: &Session) {
    if s.period_days > 0 || s.route.is_some() {
        state.period = Period { days: s.period_days };
    }
    let steps: Vec<Entry> = if s.source == state.source {
        s.stack
            .iter()
            .filter_map(|step| {
                let mut e = Entry::new(route_from_token(&step.route)?);
                e.restore = Some(step.clone());
                Some(e)
            })
            .collect()
    } else {
        Vec::new()
    };
    if !steps.is_empty() {
        state.cursor = s.cursor.min(steps.len() - 1);
        state.stack = steps;
    } else if let Some(route) = s.route.as_deref().and_then(route_from_name) {
        state.stack = vec![Entry::new(route)];
        state.cursor = 0;
    }
}

pub fn route_from_name(s: &str) -> Option<Route> {
    Some(match s.trim().trim_start_matches(':') {
        "dashboard" | "dash" | "home" => Route::Dashboard,
        "apps" | "app" => Route::Apps,
        "users" | "user" => Route::Users,
        "devices" | "device" | "dev" => Route::Devices,
        "alerts" | "alert" => Route::Alerts,
        "audit" | "log" => Route::Audit,
        "settings" | "set" | "severity" => Route::Settings,
        _ => return None,
    })
}

fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    let page = state.body_rows().saturating_sub(1).max(1) as isize;
    let mut effects = Vec::new();
    match action {
        Action::Quit => return quit(state),
        Action::Help => state.mode = Mode::Help,
        Action::Up => move_sel(state, -1),
        Action::Down => move_sel(state, 1),
        Action::PageUp => move_sel(state, -page),
        Action::PageDown => move_sel(state, page),
        Action::Top => move_sel(state, isize::MIN / 2),
        Action::Bottom => move_sel(state, isize::MAX / 2),
        Action::Open => {
            let target = state.current().focused().and_then(|t| t.selected_row()).and_then(|r| r.target);
            if let Some(route) = target {
                effects = push(state, route);
            }
        }
        Action::Back => {
            if state.cursor > 0 {
                effects = go_to(state, state.cursor - 1);
            }
        }
        Action::Forward => {
            if state.cursor + 1 < state.stack.len() {
                effects = go_to(state, state.cursor + 1);
            }
        }
        Action::History => state.mode = Mode::History { selected: state.cursor },
        Action::Filter => {
            if state.current().focused().is_some() {
                state.mode = Mode::Filter;
            }
        }
        Action::Command => state.mode = Mode::Command { input: String::new(), error: None },
        Action::NextPane | Action::PrevPane => {
            let e = state.current_mut();
            let n = e.tables.len().max(1);
            e.pane = if action == Action::NextPane { (e.pane + 1) % n } else { (e.pane + n - 1) % n };
        }
        Action::SortNext => {
            if let Some(t) = state.current_mut().focused_mut() {
                let next = t.sort.map(|(c, _)| (c + 1) % t.table.columns.len().max(1)).unwrap_or(0);
                t.sort = None;
                t.sort_by(next);
            }
        }
        Action::SortReverse => {
            if let Some(t) = state.current_mut().focused_mut() {
                let c = t.sort.map(|(c, _)| c).unwrap_or(0);
                t.sort_by(c);
            }
        }
        Action::Mark => {
            if let Some(t) = state.current_mut().focused_mut() {
                t.toggle_mark();
                t.move_by(1);
            }
        }
        Action::MarkRange => {
            if let Some(t) = state.current_mut().focused_mut() {
                let n = t.mark_range();
                set_status(state, format!("{n} row(s) marked"), false);
            }
        }
        Action::MarkAll => {
            if let Some(t) = state.current_mut().focused_mut() {
                let n = t.toggle_mark_all();
                set_status(state, format!("{n} row(s) marked"), false);
            }
        }
        Action::TagSanctioned => effects = ask_tag(state, Tag::Sanctioned),
        Action::TagUnsanctioned => effects = ask_tag(state, Tag::Unsanctioned),
        Action::TagMonitored => effects = ask_tag(state, Tag::Monitored),
        Action::TagClear => effects = ask_tag(state, Tag::None),
        Action::Undo => {
            if state.read_only {
                set_status(state, "Read-only session: undo is disabled.".into(), true);
            } else {
                // On the audit log, undo the selected entry; elsewhere the analyst's last change.
                let entry = match selected_item(state) {
                    Some(Item::Audit(id)) if state.current().route == Route::Audit => Some(id),
                    _ => None,
                };
                effects.push(Effect::Undo { entry });
            }
        }
        Action::Resolve => effects = alert_status(state, "resolved"),
        Action::Dismiss => effects = alert_status(state, "dismissed"),
        Action::SeverityUp => effects = step_severity(state, 1),
        Action::SeverityDown => effects = step_severity(state, -1),
        Action::Period => {
            let i = Period::PRESETS.iter().position(|p| *p == state.period).map(|i| i + 1).unwrap_or(0);
            effects = set_period(state, Period::PRESETS[i % Period::PRESETS.len()]);
        }
        Action::CrossFilter => {
            if let Route::User(u) = state.current().route {
                if let Some(Route::Device(d)) =
                    state.current().focused().and_then(|t| t.selected_row()).and_then(|r| r.target)
                {
                    effects = push(state, Route::UserOnDevice(u, d));
                }
            } else {
                set_status(state, "Cross-filter: select a device on a user's page first.".into(), true);
            }
        }
        Action::Copy => {
            if let Some(Cell::Text(s)) =
                state.current().focused().and_then(|t| t.selected_row()).and_then(|r| r.cells.first())
            {
                let s = s.clone();
                set_status(state, format!("Copied {}", crate::sanitize::display_safe_truncated(&s, 60)), false);
                effects.push(Effect::Copy(s));
            }
        }
        Action::Mouse => {
            state.mouse = !state.mouse;
            set_status(
                state,
                format!("Mouse {}", if state.mouse { "on (Shift-drag selects text)" } else { "off" }),
                false,
            );
            effects.push(Effect::SetMouse(state.mouse));
        }
        Action::Refresh => effects = reload_current(state),
        Action::GoDashboard => effects = push(state, Route::Dashboard),
        Action::GoApps => effects = push(state, Route::Apps),
        Action::GoUsers => effects = push(state, Route::Users),
        Action::GoDevices => effects = push(state, Route::Devices),
        Action::GoAlerts => effects = push(state, Route::Alerts),
        Action::GoAudit => effects = push(state, Route::Audit),
        Action::GoSettings => effects = push(state, Route::Settings),
    }
    keep_selection_visible(state);
    effects
}

fn selected_item(state: &State) -> Option<Item> {
    state.current().focused().and_then(|t| t.selected_row()).and_then(|r| r.item.clone())
}

fn deny_read_only(state: &mut State, what: &str) -> bool {
    if state.read_only {
        set_status(state, format!("Read-only session (--read-only): {what} is disabled."), true);
    }
    state.read_only
}

fn alert_status(state: &mut State, status: &str) -> Vec<Effect> {
    if deny_read_only(state, "changing alerts") {
        return Vec::new();
    }
    match selected_item(state) {
        Some(Item::Alert(id)) => vec![Effect::SetAlertStatus { id, status: status.into() }],
        _ => {
            set_status(state, "Select an alert (Alerts view, or a user's / app's alerts) first.".into(), true);
            Vec::new()
        }
    }
}

fn step_severity(state: &mut State, delta: i64) -> Vec<Effect> {
    if deny_read_only(state, "changing severities") {
        return Vec::new();
    }
    match selected_item(state) {
        Some(Item::Severity { scope, current }) => {
            let severity = Severity::from_i64((current.to_i64() + delta).clamp(0, 3));
            if severity == current {
                return Vec::new();
            }
            vec![Effect::SetSeverity { scope, severity }]
        }
        _ => {
            set_status(state, "Severities are set in Settings (7): select one, then + or -.".into(), true);
            Vec::new()
        }
    }
}

fn set_period(state: &mut State, p: Period) -> Vec<Effect> {
    state.period = p;
    set_status(state, format!("Period: {}", p.label()), false);
    for e in &mut state.stack {
        e.stale = true;
    }
    reload_current(state)
}

fn move_sel(state: &mut State, delta: isize) {
    if let Some(t) = state.current_mut().focused_mut() {
        t.move_by(delta);
    }
}

/// Apps the tag keys act on: marked app rows, else the selected app row, else the app whose
/// page this is.
fn tag_targets(state: &State) -> Vec<(AppId, String, u64)> {
    let e = state.current();
    let mut out = Vec::new();
    if let Some(t) = e.focused() {
        let users_col = t.table.columns.iter().position(|c| c.title == "Users");
        for r in t.action_rows() {
            if let Some(Route::App(id)) = r.target {
                let users = match users_col.and_then(|c| r.cells.get(c)) {
                    Some(Cell::Num(n)) => *n as u64,
                    _ => 0,
                };
                out.push((id, r.cells.first().map(Cell::plain).unwrap_or_default(), users));
            }
        }
    }
    if out.is_empty()
        && let (Route::App(id), Some(d)) = (e.route, &e.data)
    {
        out.push((id, d.label.clone(), e.tables.first().map(|t| t.table.rows.len() as u64).unwrap_or(0)));
    }
    out
}

fn ask_tag(state: &mut State, tag: Tag) -> Vec<Effect> {
    if state.read_only {
        set_status(state, "Read-only session (--read-only): tagging is disabled.".into(), true);
        return Vec::new();
    }
    let targets = tag_targets(state);
    if targets.is_empty() {
        set_status(state, "Select an app (Apps view, or an app row) to tag it.".into(), true);
        return Vec::new();
    }
    let users_affected = targets.iter().map(|t| t.2).sum();
    let ids = targets.iter().map(|t| t.0).collect();
    state.mode = Mode::Confirm(Pending::Tag {
        apps: targets.into_iter().map(|(id, name, _)| (id, name)).collect(),
        tag,
        users_affected,
        profile: None,
        preview: None,
    });
    vec![Effect::PreviewTag { apps: ids, profile: None }]
}

fn on_filter_key(state: &mut State, key: Key) -> Vec<Effect> {
    let Some(t) = state.current_mut().focused_mut() else {
        state.mode = Mode::Normal;
        return Vec::new();
    };
    match key.code {
        KeyCode::Enter => state.mode = Mode::Normal,
        KeyCode::Esc => {
            t.filter.clear();
            t.recompute();
            state.mode = Mode::Normal;
        }
        KeyCode::Backspace => {
            t.filter.pop();
            t.recompute();
        }
        KeyCode::Char(c) if !key.ctrl => {
            t.filter.push(c);
            t.recompute();
        }
        KeyCode::Down => t.move_by(1),
        KeyCode::Up => t.move_by(-1),
        _ => {}
    }
    keep_selection_visible(state);
    Vec::new()
}

/// Commands the `:` line knows, for completion and help.
pub const COMMANDS: &[&str] = &[
    "dashboard",
    "apps",
    "users",
    "devices",
    "alerts",
    "audit",
    "settings",
    "user ",
    "app ",
    "device ",
    "period ",
    "tag ",
    "severity ",
    "score ",
    "profile ",
    "label ",
    "unlabel ",
    "resolve",
    "dismiss",
    "export csv ",
    "export json ",
    "export blocklist ",
    "import ",
    "sync",
    "q",
];

fn complete(input: &str) -> Option<String> {
    let matches: Vec<&str> =
        COMMANDS.iter().copied().filter(|c| c.starts_with(input) && c.len() > input.len()).collect();
    // Extend to the longest prefix all candidates share, as a shell does.
    let first = matches.first()?;
    let common = matches
        .iter()
        .fold(first.len(), |n, m| first.bytes().zip(m.bytes()).take(n).take_while(|(a, b)| a == b).count());
    (common > input.len()).then(|| first[..common].to_string())
}

fn on_command_key(state: &mut State, mut input: String, key: Key) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => {
            state.mode = Mode::Normal;
            Vec::new()
        }
        KeyCode::Enter => {
            state.mode = Mode::Normal;
            run_command(state, input.trim())
        }
        KeyCode::Tab => {
            if let Some(c) = complete(&input) {
                input = c;
            }
            state.mode = Mode::Command { input, error: None };
            Vec::new()
        }
        KeyCode::Backspace => {
            if input.pop().is_none() {
                state.mode = Mode::Normal;
            } else {
                state.mode = Mode::Command { input, error: None };
            }
            Vec::new()
        }
        KeyCode::Char(c) if !key.ctrl => {
            input.push(c);
            state.mode = Mode::Command { input, error: None };
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn command_error(state: &mut State, input: &str, error: &str) -> Vec<Effect> {
    state.mode = Mode::Command { input: input.to_string(), error: Some(error.to_string()) };
    Vec::new()
}

pub fn run_command(state: &mut State, input: &str) -> Vec<Effect> {
    let (cmd, rest) = input.split_once(' ').map(|(c, r)| (c, r.trim())).unwrap_or((input, ""));
    if rest.is_empty()
        && let Some(route) = route_from_name(cmd)
    {
        return push(state, route);
    }
    match cmd {
        "q" | "quit" => quit(state),
        "user" | "app" | "device" if !rest.is_empty() => {
            let kind = match cmd {
                "user" => EntityKind::User,
                "app" => EntityKind::App,
                _ => EntityKind::Device,
            };
            vec![Effect::Resolve { kind, needle: rest.to_string() }]
        }
        "period" => match Period::parse(rest) {
            Some(p) => set_period(state, p),
            None => command_error(state, input, "period: use 24h, 7d, 30d, 90d, all or Nd"),
        },
        "tag" => {
            // :tag APP STATE [@PROFILE]
            let (rest, profile) = match rest.rsplit_once(' ') {
                Some((head, p)) if p.starts_with('@') && p.len() > 1 => (head.trim(), Some(p[1..].to_string())),
                _ => (rest, None),
            };
            let mut parts = rest.rsplitn(2, ' ');
            match (parts.next().and_then(Tag::parse), parts.next()) {
                (Some(tag), Some(app)) if !state.read_only => {
                    vec![Effect::TagByName { needle: app.trim().to_string(), tag, profile }]
                }
                (Some(_), Some(_)) => command_error(state, input, "read-only session: tagging is disabled"),
                _ => command_error(state, input, "tag: :tag APP sanctioned|unsanctioned|monitored|none [@PROFILE]"),
            }
        }
        "severity" => {
            let (scope, level) = match rest.split_once(' ') {
                Some((s, l)) => (s.trim(), l.trim()),
                None => ("global", rest),
            };
            match Severity::parse(level) {
                _ if state.read_only => command_error(state, input, "read-only session: severities are locked"),
                Some(severity) => vec![Effect::SetSeverity { scope: scope.to_string(), severity }],
                None => {
                    command_error(state, input, "severity: :severity [global|POLICY] informational|low|medium|high")
                }
            }
        }
        "score" => {
            // :score APP N|clear — the app name may contain spaces, the score never does.
            const USAGE: &str = "score: :score APP 0-10|clear (10 = safest)";
            let mut parts = rest.rsplitn(2, ' ');
            let (Some(value), Some(app)) = (parts.next(), parts.next().map(str::trim).filter(|a| !a.is_empty())) else {
                return command_error(state, input, USAGE);
            };
            let score = if value.eq_ignore_ascii_case("clear") || value.eq_ignore_ascii_case("none") {
                None
            } else {
                match value.parse::<f64>() {
                    Ok(v) if (0.0..=10.0).contains(&v) => Some(v),
                    _ => return command_error(state, input, USAGE),
                }
            };
            if state.read_only {
                return command_error(state, input, "read-only session: score overrides are disabled");
            }
            vec![Effect::SetScore { needle: app.to_string(), score }]
        }
        "profile" => {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(mode), groups) = (parts.next(), parts.next(), parts.collect::<Vec<_>>().join(" "))
            else {
                return command_error(state, input, "profile: :profile NAME include|exclude GROUP,GROUP");
            };
            let list: Vec<String> =
                groups.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect();
            let (include, exclude) = match mode {
                "include" => (list, Vec::new()),
                "exclude" => (Vec::new(), list),
                _ => return command_error(state, input, "profile: :profile NAME include|exclude GROUP,GROUP"),
            };
            if state.read_only {
                return command_error(state, input, "read-only session: profiles are locked");
            }
            vec![Effect::SaveProfile { name: name.to_string(), include, exclude }]
        }
        "label" | "unlabel" => {
            // :label APP NAME (the app may contain spaces; the label is the last word)
            let Some((app, label)) = rest.rsplit_once(' ') else {
                return command_error(state, input, "label: :label APP NAME, :unlabel APP NAME");
            };
            if state.read_only {
                return command_error(state, input, "read-only session: labels are locked");
            }
            vec![Effect::Label { needle: app.trim().to_string(), label: label.to_string(), add: cmd == "label" }]
        }
        "resolve" => alert_status(state, "resolved"),
        "dismiss" => alert_status(state, "dismissed"),
        "reopen" => alert_status(state, "open"),
        "export" => {
            let (fmt, path) = rest.split_once(' ').map(|(f, p)| (f, p.trim())).unwrap_or((rest, ""));
            let csv = match fmt {
                "csv" => true,
                "json" => false,
                "blocklist" => {
                    let (format, file) = path.split_once(' ').map(|(f, p)| (f, p.trim())).unwrap_or((path, ""));
                    if format.is_empty() || file.is_empty() {
                        return command_error(state, input, "export: :export blocklist FORMAT FILE");
                    }
                    return vec![Effect::ExportBlocklist { format: format.to_string(), path: file.to_string() }];
                }
                _ => {
                    return command_error(state, input, "export: :export csv|json FILE, :export blocklist FORMAT FILE");
                }
            };
            if path.is_empty() {
                return command_error(state, input, "export: name a file");
            }
            match state.current().focused() {
                Some(t) => {
                    let mut table = t.table.clone();
                    table.rows = t.visible.iter().filter_map(|&i| t.table.rows.get(i).cloned()).collect();
                    vec![Effect::Export { path: path.to_string(), csv, table }]
                }
                None => command_error(state, input, "export: nothing to export here"),
            }
        }
        "import" if !rest.is_empty() => {
            if state.read_only {
                return command_error(state, input, "read-only session: import is disabled");
            }
            if state.busy.is_some() {
                return command_error(state, input, "an import or sync is already running (progress in the header)");
            }
            state.busy = Some(format!("import {}…", crate::sanitize::display_safe(rest)));
            vec![Effect::Import { path: rest.to_string() }]
        }
        "sync" => {
            if state.read_only {
                return command_error(state, input, "read-only session: sync writes the cache and is disabled");
            }
            if state.busy.is_some() {
                return command_error(state, input, "an import or sync is already running (progress in the header)");
            }
            state.busy = Some("sync starting…".into());
            vec![Effect::Sync]
        }
        _ => command_error(state, input, "unknown command (Tab completes; ? lists keys)"),
    }
}

fn click(state: &mut State, row: u16) {
    // Rows above the table body: header, crumbs, detail header, block border, column titles.
    let top = 2 + if state.current().route.is_list() { 0 } else { super::detail_header_height(state.current()) } + 2;
    let Some(t) = state.current_mut().focused_mut() else { return };
    let r = row as usize;
    if r >= top {
        let target = t.offset + (r - top);
        if target < t.visible.len() {
            t.selected = target;
        }
    }
}
