//! Runs effects against the cache and reports back as messages. The only place (with `main`)
//! where the console touches SQLite, files and the clock.
use crate::app::views::{self, AppDetailRows, DashboardRows, DeviceDetailRows, UserDetailRows};
use crate::app::{Effect, EntityKind, Msg, Route, ViewData};
use crate::catalog::Catalog;
use crate::domain::{AppId, Period, Tag};
use crate::sanitize::{csv_safe, display_safe};
use crate::store::write::os_user;
use crate::store::{Store, StoreError};

pub struct Backend {
    pub store: Store,
    pub catalog: &'static Catalog,
    pub actor: String,
    /// Clock injected so tests are deterministic.
    pub now: fn() -> i64,
}

pub fn wall_clock() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Backend {
    pub fn new(store: Store, catalog: &'static Catalog) -> Backend {
        Backend { store, catalog, actor: os_user(), now: wall_clock }
    }

    /// Executes one effect. `Quit`, `Copy`, `SetMouse` and `SaveSession` belong to the terminal
    /// loop and are ignored here.
    pub fn handle(&mut self, effect: Effect) -> Vec<Msg> {
        match effect {
            Effect::Load { req, route, period } => match self.load(route, period) {
                Ok(data) => vec![Msg::Loaded { req, data: Box::new(data) }],
                Err(e) => vec![Msg::LoadFailed { req, error: e.to_string() }],
            },
            Effect::SetTag { apps, tag } => vec![self.tag(&apps, tag)],
            Effect::TagByName { needle, tag } => match self.store.app_by_key_or_name(&needle) {
                Ok(Some(id)) => vec![self.tag(&[id], tag)],
                Ok(None) => vec![Msg::Failed { error: format!("No app named {}", display_safe(&needle)) }],
                Err(e) => vec![Msg::Failed { error: e.to_string() }],
            },
            Effect::Undo => vec![self.undo()],
            Effect::Resolve { kind, needle } => vec![self.resolve(kind, &needle)],
            Effect::Export { path, csv, table } => vec![match export(&path, csv, &table) {
                Ok(n) => Msg::Done { text: format!("Exported {n} rows to {}", display_safe(&path)) },
                Err(e) => Msg::Failed { error: format!("Export to {} failed: {e}", display_safe(&path)) },
            }],
            Effect::Import { path } => vec![self.import(&path)],
            Effect::Copy(_) | Effect::SetMouse(_) | Effect::SaveSession(_) | Effect::Quit => Vec::new(),
        }
    }

    fn resolve(&self, kind: EntityKind, needle: &str) -> Msg {
        let found = match kind {
            EntityKind::User => self.store.user_by_upn(needle).map(|o| o.map(Route::User)),
            EntityKind::Device => self.store.device_by_name(needle).map(|o| o.map(Route::Device)),
            EntityKind::App => self.store.app_by_key_or_name(needle).map(|o| o.map(Route::App)),
        };
        match found {
            Ok(Some(route)) => Msg::Open(route),
            Ok(None) => Msg::Failed { error: format!("No {kind:?} matches {}", display_safe(needle)).to_lowercase() },
            Err(e) => Msg::Failed { error: e.to_string() },
        }
    }

    fn tag(&mut self, apps: &[AppId], tag: Tag) -> Msg {
        let now = (self.now)();
        let mut changed = 0;
        for app in apps {
            match self.store.set_tag(*app, tag, None, &self.actor, "console", now) {
                Ok(old) if old != tag => changed += 1,
                Ok(_) => {}
                Err(e) => return Msg::Failed { error: e.to_string() },
            }
        }
        if let Err(e) = self.store.refresh_summaries() {
            return Msg::Failed { error: e.to_string() };
        }
        Msg::Done { text: format!("Tagged {changed} app(s) {} (z undoes)", tag.as_str()) }
    }

    fn undo(&mut self) -> Msg {
        let r: Result<Msg, StoreError> = (|| {
            let last = self
                .store
                .audit_entries(None, 200)?
                .into_iter()
                .find(|e| e.action == "tag" && e.actor == self.actor && e.undone_by.is_none());
            let Some(entry) = last else {
                return Ok(Msg::Failed { error: "Nothing of yours to undo.".into() });
            };
            let app_id = serde_json::from_str::<serde_json::Value>(&entry.detail)
                .ok()
                .and_then(|v| v.get("app_id").and_then(|x| x.as_i64()))
                .map(AppId);
            let (Some(app), Some(old)) = (app_id, Tag::parse(&entry.old_value)) else {
                return Ok(Msg::Failed { error: "The last change cannot be undone.".into() });
            };
            self.store.set_tag(app, old, None, &self.actor, "undo", (self.now)())?;
            if let Some(new) = self.store.audit_entries(Some(&entry.target), 1)?.first() {
                self.store.mark_undone(entry.id, new.id)?;
            }
            self.store.refresh_summaries()?;
            Ok(Msg::Done { text: format!("Undone: {} is {} again", display_safe(&entry.target), old.as_str()) })
        })();
        r.unwrap_or_else(|e| Msg::Failed { error: e.to_string() })
    }

    fn import(&mut self, path: &str) -> Msg {
        let opts = crate::ingest::pipeline::ImportOptions::default();
        match crate::ingest::pipeline::import_paths(&self.store, self.catalog, &[path.into()], &opts, &mut |_| {}) {
            Ok(reports) => {
                let imported: u64 = reports.iter().map(|r| r.imported).sum();
                let skipped: u64 = reports.iter().map(|r| r.skipped_total()).sum();
                Msg::Done {
                    text: format!("Imported {imported} records ({skipped} skipped) from {}", display_safe(path)),
                }
            }
            Err(e) => Msg::Failed { error: format!("Import failed: {e}") },
        }
    }

    pub fn load(&self, route: Route, period: Period) -> Result<ViewData, StoreError> {
        let s = &self.store;
        Ok(match route {
            Route::Dashboard => {
                let apps = s.apps(period)?;
                let users = s.users()?;
                let alerts = s.alerts()?;
                let trend = s.total_trend()?;
                views::dashboard(DashboardRows { apps: &apps, users: &users, alerts: &alerts, trend: &trend })
            }
            Route::Apps => views::list_view("Apps", views::apps_table(&s.apps(period)?, "Apps")),
            Route::Users => views::list_view("Users", views::users_table(&s.users()?)),
            Route::Devices => views::list_view("Devices", views::devices_table(&s.devices()?)),
            Route::Alerts => views::list_view("Alerts", views::alerts_table(&s.alerts()?)),
            Route::Audit => views::list_view("Audit", views::audit_table(&s.audit_entries(None, 5000)?)),
            Route::User(id) => {
                let user = s.user(id)?.ok_or_else(|| StoreError::Invalid(format!("user {id} is not in the cache")))?;
                views::user_detail(UserDetailRows {
                    user: &user,
                    devices: &s.devices_of_user(id)?,
                    apps: &s.apps_of_user(id)?,
                    alerts: &s.alerts_of_user(id)?,
                    timeline: &s.user_timeline(id)?,
                })
            }
            Route::Device(id) => {
                let device =
                    s.device(id)?.ok_or_else(|| StoreError::Invalid(format!("device {id} is not in the cache")))?;
                views::device_detail(DeviceDetailRows {
                    device: &device,
                    users: &s.users_of_device(id)?,
                    apps: &s.apps_of_device(id)?,
                    timeline: &s.device_timeline(id)?,
                })
            }
            Route::App(id) => {
                let app =
                    s.app(id, period)?.ok_or_else(|| StoreError::Invalid(format!("app {id} is not in the cache")))?;
                let risk = if app.unknown {
                    Some(self.catalog.unknown_risk())
                } else {
                    self.catalog.find_by_id(&app.key).map(|i| self.catalog.get(i).risk.clone())
                };
                views::app_detail(AppDetailRows {
                    app: &app,
                    risk: risk.as_ref(),
                    domains: &s.domains_of_app(id)?,
                    users: &s.users_of_app(id)?,
                    devices: &s.devices_of_app(id)?,
                    trend: &s.app_trend(id)?,
                    history: &s.audit_entries(Some(&app.key), 100)?,
                })
            }
            Route::UserOnDevice(u, d) => {
                let user = s.user(u)?.ok_or_else(|| StoreError::Invalid(format!("user {u} is not in the cache")))?;
                let device =
                    s.device(d)?.ok_or_else(|| StoreError::Invalid(format!("device {d} is not in the cache")))?;
                views::user_on_device(&user, &device, &s.apps_of_user_on_device(u, d)?)
            }
        })
    }
}

/// Writes the visible rows of a table as CSV (formula-safe) or JSON.
pub fn export(path: &str, csv: bool, table: &crate::app::table::Table) -> Result<usize, std::io::Error> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::new(file);
    if csv {
        let mut out = ::csv::Writer::from_writer(w);
        out.write_record(table.columns.iter().map(|c| c.title))?;
        for r in &table.rows {
            out.write_record(r.cells.iter().map(|c| csv_safe(&c.plain()).into_owned()))?;
        }
        out.flush()?;
    } else {
        use std::io::Write;
        for r in &table.rows {
            let obj: serde_json::Map<String, serde_json::Value> = table
                .columns
                .iter()
                .zip(&r.cells)
                .map(|(c, v)| (c.title.to_string(), serde_json::Value::String(v.plain())))
                .collect();
            let line = serde_json::to_string(&obj).map_err(std::io::Error::other)?;
            w.write_all(crate::sanitize::json_text_safe(&line).as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    Ok(table.rows.len())
}
