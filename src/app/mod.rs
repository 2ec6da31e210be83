//! Application state and the pure reducer. `update(&mut State, Msg) -> Vec<Effect>` performs no
//! I/O and reads no clock: everything it needs arrives in the message.
pub mod keymap;
pub mod palette;
pub mod query;
pub mod table;
pub mod update;
pub mod views;

use crate::domain::{AlertId, AppId, DeviceId, Period, Severity, Tag, UserId};
use table::TableView;

pub use update::update;

/// A place in the console. Navigating pushes one; Esc pops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Dashboard,
    Apps,
    Users,
    Devices,
    Alerts,
    Audit,
    /// Alert severities, scoped profiles and the indicator outbox.
    Settings,
    User(UserId),
    Device(DeviceId),
    App(AppId),
    /// Cross-filter: the apps one user used on one device.
    UserOnDevice(UserId, DeviceId),
}

impl Route {
    /// Drawn as a bare table. Settings is not: it has facts (outbox, device groups) and several
    /// tables, like a detail page.
    pub fn is_list(self) -> bool {
        matches!(self, Route::Dashboard | Route::Apps | Route::Users | Route::Devices | Route::Alerts | Route::Audit)
    }
}

/// What a view shows above its tables (detail pages).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewData {
    /// Breadcrumb label, e.g. the user's UPN. Untrusted: sanitised when drawn.
    pub label: String,
    /// Key facts shown in the detail header as (name, value).
    pub facts: Vec<(String, String)>,
    /// Extra lines (e.g. how the risk score was built).
    pub notes: Vec<String>,
    /// Daily series for a trend chart / sparkline.
    pub trend: Vec<u64>,
    pub tables: Vec<table::Table>,
    /// Dashboard-only extras.
    pub dashboard: Option<Dashboard>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dashboard {
    pub by_category: Vec<(String, u64)>,
    pub by_risk: [u64; 3],
    pub alerts_by_severity: [u64; 4],
}

/// One pivot step: the route, its data and what the analyst did to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub route: Route,
    pub data: Option<ViewData>,
    pub tables: Vec<TableView>,
    /// Which of `tables` has the focus.
    pub pane: usize,
    /// Request id of the load in flight for this entry.
    pub pending: Option<u64>,
    pub error: Option<String>,
    /// Data changed underneath (a tag, a new period): reload when shown again.
    pub stale: bool,
    /// Saved filter / sort / selection to apply when the data first arrives.
    pub restore: Option<SavedStep>,
}

impl Entry {
    pub fn new(route: Route) -> Entry {
        Entry {
            route,
            data: None,
            tables: Vec::new(),
            pane: 0,
            pending: None,
            error: None,
            stale: false,
            restore: None,
        }
    }
    pub fn focused(&self) -> Option<&TableView> {
        self.tables.get(self.pane)
    }
    pub fn focused_mut(&mut self) -> Option<&mut TableView> {
        self.tables.get_mut(self.pane)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a `/` filter for the focused table.
    Filter,
    /// Typing a `:` command.
    Command {
        input: String,
        error: Option<String>,
    },
    Help,
    /// A change waiting for y/n.
    Confirm(Pending),
    History {
        selected: usize,
    },
}

/// A mutating action that needs the analyst's confirmation first.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Tag {
        apps: Vec<(AppId, String)>,
        tag: Tag,
        users_affected: u64,
        /// Scoped profile the tag applies to (None = all devices).
        profile: Option<String>,
        /// What the tag would enforce; None until the runtime has answered.
        preview: Option<TagPreview>,
    },
}

/// What a tag would block and for whom, shown in the confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagPreview {
    pub domains: usize,
    pub scope: String,
    /// Every scoped profile, for `p` to cycle through.
    pub profiles: Vec<String>,
}

/// What a row stands for when an action applies to it rather than a pivot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Alert(AlertId),
    Audit(i64),
    /// A severity setting: `global` or a policy id, and its current value.
    Severity {
        scope: String,
        current: Severity,
    },
}

/// Everything the runtime can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Load {
        req: u64,
        route: Route,
        period: Period,
    },
    SetTag {
        apps: Vec<AppId>,
        tag: Tag,
        profile: Option<String>,
    },
    /// Work out what a tag would enforce (answers `Msg::TagPreview`).
    PreviewTag {
        apps: Vec<AppId>,
        profile: Option<String>,
    },
    /// Undo one audit entry, or (None) the analyst's last tag change.
    Undo {
        entry: Option<i64>,
    },
    SetSeverity {
        scope: String,
        severity: Severity,
    },
    /// `:label APP NAME` / `:unlabel APP NAME`: a free custom tag.
    Label {
        needle: String,
        label: String,
        add: bool,
    },
    SetAlertStatus {
        id: AlertId,
        status: String,
    },
    ExportBlocklist {
        format: String,
        path: String,
    },
    SaveProfile {
        name: String,
        include: Vec<String>,
        exclude: Vec<String>,
    },
    Export {
        path: String,
        csv: bool,
        table: table::Table,
    },
    /// `:import PATH`: in the console, on its own thread with progress (`Msg::Progress`, then
    /// `Msg::BackgroundDone`).
    Import {
        path: String,
    },
    /// Look up an entity by name, then answer with `Msg::Open` (or `Msg::Failed`).
    Resolve {
        kind: EntityKind,
        needle: String,
    },
    /// `:tag NAME STATE`: resolve the app, then tag it.
    TagByName {
        needle: String,
        tag: Tag,
        profile: Option<String>,
    },
    /// `:score APP N|clear`: resolve the app, then set (`Some`, 0–10) or clear its score
    /// override.
    SetScore {
        needle: String,
        score: Option<f64>,
    },
    /// Start a background sync (the event loop owns the thread; answers `Msg::Progress` and
    /// `Msg::BackgroundDone`).
    Sync,
    Copy(String),
    SetMouse(bool),
    SaveSession(Session),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    User,
    Device,
    App,
}

/// What is restored on the next start.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub route: Option<String>,
    pub period_days: u32,
    /// The cache the stack belongs to (ids mean nothing in another cache).
    #[serde(default)]
    pub source: String,
    /// The whole pivot stack with each step's filter, sort and selection.
    #[serde(default)]
    pub stack: Vec<SavedStep>,
    #[serde(default)]
    pub cursor: usize,
}

/// One pivot step as saved between sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SavedStep {
    /// `apps`, `user:42`, `user-on-device:42:7` …
    pub route: String,
    pub pane: usize,
    /// Title of the focused table, and its filter / sort / selected row key.
    pub table: String,
    pub filter: String,
    pub sort: Option<(usize, bool)>,
    pub selected: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(keymap::Key),
    Resize {
        width: u16,
        height: u16,
    },
    Loaded {
        req: u64,
        data: Box<ViewData>,
    },
    LoadFailed {
        req: u64,
        error: String,
    },
    /// A mutation finished; the text goes to the status line and views reload.
    Done {
        text: String,
    },
    Failed {
        error: String,
    },
    /// Entities resolved for `:user x` / `:app x` / `:device x`.
    Open(Route),
    /// One line of background progress (import, sync) for the header.
    Progress {
        text: String,
    },
    /// A background import or sync ended.
    BackgroundDone {
        ok: bool,
        text: String,
    },
    TagPreview {
        apps: Vec<AppId>,
        profile: Option<String>,
        preview: TagPreview,
    },
    Click {
        column: u16,
        row: u16,
    },
    Scroll(i8),
}

/// Status-line message with its severity.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The pivot stack; `cursor` is the current step, later steps are "forward".
    pub stack: Vec<Entry>,
    pub cursor: usize,
    pub mode: Mode,
    pub period: Period,
    pub next_req: u64,
    pub status: Option<Status>,
    pub width: u16,
    pub height: u16,
    pub read_only: bool,
    /// Keys in effect (defaults + the config file's `[keys]`).
    pub keymap: keymap::Keymap,
    /// Colours in effect (defaults + the config file's `[theme]`).
    pub palette: palette::Palette,
    /// Progress of the background import or sync while one runs (one at a time).
    pub busy: Option<String>,
    pub mouse: bool,
    pub no_color: bool,
    /// Source description for the header (cache path / demo).
    pub source: String,
    pub quit: bool,
}

impl State {
    pub fn new(source: impl Into<String>) -> State {
        State {
            stack: vec![Entry::new(Route::Users)],
            cursor: 0,
            mode: Mode::Normal,
            period: Period::default(),
            next_req: 1,
            status: None,
            width: 80,
            height: 24,
            read_only: false,
            keymap: keymap::Keymap::default(),
            palette: palette::Palette::default(),
            busy: None,
            mouse: false,
            no_color: false,
            source: source.into(),
            quit: false,
        }
    }

    pub fn current(&self) -> &Entry {
        &self.stack[self.cursor]
    }

    pub fn current_mut(&mut self) -> &mut Entry {
        &mut self.stack[self.cursor]
    }

    /// Height available to a table body, given the fixed chrome (header, crumbs, hints, table
    /// header and borders). Detail pages lose more to their fact block.
    pub fn body_rows(&self) -> usize {
        let chrome = 7 + if self.current().route.is_list() { 0 } else { detail_header_height(self.current()) };
        (self.height as usize).saturating_sub(chrome).max(1)
    }
}

/// Rows the detail header takes (facts in two columns, plus notes), shared by ui and reducer so
/// scrolling and drawing agree.
pub fn detail_header_height(e: &Entry) -> usize {
    match &e.data {
        Some(d) => 2 + d.facts.len().div_ceil(2).min(4) + d.notes.len().min(3) + usize::from(!d.trend.is_empty()) * 3,
        None => 3,
    }
}
