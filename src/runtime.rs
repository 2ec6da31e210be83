//! Runs effects against the cache and reports back as messages. The only place (with `main`)
//! where the console touches SQLite, files and the clock.
use crate::actions::apply::{self, Actor, AlertRun};
use crate::actions::blocklist::BlocklistFormat;
use crate::actions::indicators::ScopedProfile;
use crate::actions::policy::PolicyKind;
use crate::app::views::{
    self, AppDetailRows, DashboardRows, DeviceDetailRows, SettingsRows, SeveritySetting, UserDetailRows,
};
use crate::app::{Effect, EntityKind, Msg, Route, TagPreview, ViewData};
use crate::catalog::Catalog;
use crate::domain::{AlertId, AppId, Period, Severity, Tag};
use crate::sanitize::{csv_safe, display_safe};
use crate::store::governance::AlertStatus;
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
        // The console only reads summaries and seeks indexes: 16 MiB of page cache is plenty.
        if let Err(e) = store.set_page_cache_kib(16 * 1024) {
            tracing::warn!(%e, "cannot size the page cache");
        }
        Backend { store, catalog, actor: os_user(), now: wall_clock }
    }

    /// Executes one effect. `Quit`, `Copy`, `SetMouse`, `SaveSession` and `Sync` belong to the
    /// terminal loop and are ignored here.
    pub fn handle(&mut self, effect: Effect) -> Vec<Msg> {
        match effect {
            Effect::Load { req, route, period } => match self.load(route, period) {
                Ok(data) => vec![Msg::Loaded { req, data: Box::new(data) }],
                Err(e) => vec![Msg::LoadFailed { req, error: e.to_string() }],
            },
            Effect::SetTag { apps, tag, profile } => vec![self.tag(&apps, tag, profile.as_deref())],
            Effect::TagByName { needle, tag, profile } => match self.store.app_by_key_or_name(&needle) {
                Ok(Some(id)) => vec![self.tag(&[id], tag, profile.as_deref())],
                Ok(None) => vec![Msg::Failed { error: format!("No app named {}", display_safe(&needle)) }],
                Err(e) => vec![Msg::Failed { error: e.to_string() }],
            },
            Effect::SetScore { needle, score } => vec![self.score(&needle, score)],
            Effect::PreviewTag { apps, profile } => vec![self.preview(apps, profile)],
            Effect::Undo { entry } => vec![self.undo(entry)],
            Effect::SetSeverity { scope, severity } => vec![self.severity(&scope, severity)],
            Effect::Label { needle, label, add } => vec![self.label(&needle, &label, add)],
            Effect::SetAlertStatus { id, status } => vec![self.alert_status(id, &status)],
            Effect::ExportBlocklist { format, path } => vec![self.export_blocklist(&format, &path)],
            Effect::SaveProfile { name, include, exclude } => {
                let p = ScopedProfile { name, include_groups: include, exclude_groups: exclude };
                vec![match self.store.save_profile(&p, &self.actor, (self.now)()) {
                    Ok(()) => Msg::Done { text: format!("Saved scoped profile {}", display_safe(&p.name)) },
                    Err(e) => Msg::Failed { error: e.to_string() },
                }]
            }
            Effect::Resolve { kind, needle } => vec![self.resolve(kind, &needle)],
            Effect::Export { path, csv, table } => vec![match export(&path, csv, &table) {
                Ok(n) => Msg::Done { text: format!("Exported {n} rows to {}", display_safe(&path)) },
                Err(e) => Msg::Failed { error: format!("Export to {} failed: {e}", display_safe(&path)) },
            }],
            Effect::Import { path } => vec![import_into(&self.store, self.catalog, &path, &|_| {})],
            Effect::Sync | Effect::Copy(_) | Effect::SetMouse(_) | Effect::SaveSession(_) | Effect::Quit => Vec::new(),
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

    fn actor(&self) -> Actor<'_> {
        Actor { name: &self.actor, now: (self.now)() }
    }

    fn tag(&mut self, apps: &[AppId], tag: Tag, profile: Option<&str>) -> Msg {
        match apply::tag_apps(&self.store, self.catalog, apps, tag, profile, "console", self.actor()) {
            Ok(o) => Msg::Done {
                text: format!(
                    "Tagged {} app(s) {}: {} indicator change(s) queued for MDE{} (z undoes)",
                    o.changed(),
                    tag.as_str(),
                    o.queued(),
                    alert_note(&o.alerts)
                ),
            },
            Err(e) => Msg::Failed { error: e.to_string() },
        }
    }

    /// The same store call as `shadowscope catalog override`.
    fn score(&mut self, needle: &str, score: Option<f64>) -> Msg {
        let r = (|| -> Result<Msg, StoreError> {
            let Some(id) = self.store.app_by_key_or_name(needle)? else {
                return Ok(Msg::Failed { error: format!("No app named {}", display_safe(needle)) });
            };
            let c = self.store.set_risk_override(id, score, &self.actor, "console", (self.now)())?;
            let how = match c.new_override {
                Some(_) => "override".to_string(),
                None => format!("override cleared, catalog score {:.1}", c.catalog_score),
            };
            let alerts = match apply::evaluate_alerts(&self.store, None) {
                Ok(a) => alert_note(&a),
                Err(e) => format!("; alert policies failed: {e}"),
            };
            Ok(Msg::Done {
                text: format!(
                    "Score of {}: {:.1} → {:.1} ({how}){alerts}",
                    display_safe(&c.key),
                    c.old_score,
                    c.new_score
                ),
            })
        })();
        r.unwrap_or_else(|e| Msg::Failed { error: e.to_string() })
    }

    fn preview(&self, apps: Vec<AppId>, profile: Option<String>) -> Msg {
        let r = (|| -> Result<TagPreview, StoreError> {
            let p = apply::preview_tag(&self.store, self.catalog, &apps, profile.as_deref())?;
            let profiles = self.store.profiles()?.into_iter().map(|p| p.name).collect();
            Ok(TagPreview { domains: p.domains, scope: p.scope, profiles })
        })();
        match r {
            Ok(preview) => Msg::TagPreview { apps, profile, preview },
            Err(e) => Msg::Failed { error: e.to_string() },
        }
    }

    /// Undoes one audit entry (a tag, a severity, an alert status), or the analyst's last tag.
    fn undo(&mut self, entry: Option<i64>) -> Msg {
        let r: Result<Msg, StoreError> = (|| {
            let recent = self.store.audit_entries(None, 500)?;
            let found = match entry {
                Some(id) => recent.into_iter().find(|e| e.id == id),
                None => {
                    recent.into_iter().find(|e| e.action == "tag" && e.actor == self.actor && e.undone_by.is_none())
                }
            };
            let Some(entry) = found else {
                return Ok(Msg::Failed { error: "Nothing of yours to undo.".into() });
            };
            if entry.undone_by.is_some() {
                return Ok(Msg::Failed { error: "That change was already undone.".into() });
            }
            let detail = serde_json::from_str::<serde_json::Value>(&entry.detail).unwrap_or_default();
            let id_in = |k: &str| detail.get(k).and_then(|x| x.as_i64());
            let actor = self.actor();
            match entry.action.as_str() {
                "tag" => {
                    let (Some(app), Some(old)) = (id_in("app_id").map(AppId), Tag::parse(&entry.old_value)) else {
                        return Ok(Msg::Failed { error: "This change cannot be undone.".into() });
                    };
                    let profile = detail.get("old_profile").and_then(|p| p.as_str()).map(str::to_owned);
                    apply::tag_apps(&self.store, self.catalog, &[app], old, profile.as_deref(), "undo", actor)?;
                }
                "severity" => {
                    let (Some(scope), Some(old)) = (
                        apply::SeverityScope::parse(entry.target.trim_start_matches("severity.")),
                        Severity::parse(&entry.old_value),
                    ) else {
                        return Ok(Msg::Failed { error: "This severity had no earlier value to return to.".into() });
                    };
                    apply::set_severity(&self.store, self.catalog, scope, old, actor)?;
                }
                "alert" => {
                    let (Some(id), Some(old)) = (id_in("alert_id"), AlertStatus::parse(&entry.old_value)) else {
                        return Ok(Msg::Failed { error: "This change cannot be undone.".into() });
                    };
                    apply::set_alert_status(&self.store, AlertId(id), old, actor)?;
                }
                "label" => {
                    let Some(app) = id_in("app_id").map(AppId) else {
                        return Ok(Msg::Failed { error: "This change cannot be undone.".into() });
                    };
                    // Added (old empty) → remove it; removed → add it back.
                    let (label, add) = if entry.old_value.is_empty() {
                        (entry.new_value.as_str(), false)
                    } else {
                        (entry.old_value.as_str(), true)
                    };
                    self.store.set_label(app, label, add, &self.actor, actor.now)?;
                }
                "score" => {
                    let Some(app) = id_in("app_id").map(AppId) else {
                        return Ok(Msg::Failed { error: "This change cannot be undone.".into() });
                    };
                    // "none" was no override: back to the catalog's score.
                    let old = entry.old_value.parse::<f64>().ok();
                    self.store.set_risk_override(app, old, &self.actor, "undo", actor.now)?;
                }
                _ => return Ok(Msg::Failed { error: format!("A {} entry cannot be undone.", entry.action) }),
            }
            if let Some(new) = self.store.audit_entries(None, 1)?.first() {
                self.store.mark_undone(entry.id, new.id)?;
            }
            Ok(Msg::Done {
                text: format!("Undone: {} is {} again", display_safe(&entry.target), display_safe(&entry.old_value)),
            })
        })();
        r.unwrap_or_else(|e| Msg::Failed { error: e.to_string() })
    }

    fn severity(&mut self, scope: &str, severity: Severity) -> Msg {
        let Some(s) = apply::SeverityScope::parse(scope) else {
            let ids: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.as_str()).collect();
            return Msg::Failed { error: format!("Unknown severity scope: use global or one of {}", ids.join(", ")) };
        };
        match apply::set_severity(&self.store, self.catalog, s, severity, self.actor()) {
            Ok(o) => Msg::Done {
                text: format!(
                    "Severity {scope}: {} → {} ({} open alert(s) re-labelled, {} indicator update(s) queued)",
                    o.old.map(Severity::as_str).unwrap_or("default"),
                    severity.as_str(),
                    o.relabelled,
                    o.requeued
                ),
            },
            Err(e) => Msg::Failed { error: e.to_string() },
        }
    }

    fn label(&mut self, needle: &str, label: &str, add: bool) -> Msg {
        let r = (|| -> Result<Msg, StoreError> {
            let Some(app) = self.store.app_by_key_or_name(needle)? else {
                return Ok(Msg::Failed { error: format!("No app named {}", display_safe(needle)) });
            };
            let changed = self.store.set_label(app, label, add, &self.actor, (self.now)())?;
            let (verb, none) = if add { ("Labelled", "already has") } else { ("Unlabelled", "has no") };
            Ok(if changed {
                Msg::Done { text: format!("{verb} {} {}", display_safe(needle), display_safe(label)) }
            } else {
                Msg::Done { text: format!("{} {none} label {}", display_safe(needle), display_safe(label)) }
            })
        })();
        r.unwrap_or_else(|e| Msg::Failed { error: e.to_string() })
    }

    fn alert_status(&mut self, id: AlertId, status: &str) -> Msg {
        let Some(s) = AlertStatus::parse(status) else {
            return Msg::Failed { error: format!("Unknown alert status {}", display_safe(status)) };
        };
        match apply::set_alert_status(&self.store, id, s, self.actor()) {
            Ok(old) => Msg::Done { text: format!("Alert {}: {} → {} (z undoes)", id.0, old.as_str(), s.as_str()) },
            Err(e) => Msg::Failed { error: e.to_string() },
        }
    }

    fn export_blocklist(&self, format: &str, path: &str) -> Msg {
        let Some(f) = BlocklistFormat::parse(format) else {
            let names: Vec<&str> = BlocklistFormat::ALL.iter().map(|f| f.name()).collect();
            return Msg::Failed { error: format!("Unknown block-list format: use one of {}", names.join(", ")) };
        };
        let r = apply::blocklist(&self.store, self.catalog, f).map_err(|e| e.to_string()).and_then(|b| {
            crate::private_fs::write_file(std::path::Path::new(path), b.text.as_bytes())
                .map(|()| b)
                .map_err(|e| e.to_string())
        });
        match r {
            Ok(b) => Msg::Done {
                text: format!(
                    "Wrote {} domain(s) as {} to {} ({} left out)",
                    b.domains,
                    f.label(),
                    display_safe(path),
                    b.rejected.len()
                ),
            },
            Err(e) => Msg::Failed { error: format!("Block list to {} failed: {e}", display_safe(path)) },
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
            Route::Settings => {
                let sev = s.policy_severities()?;
                let mut severities = vec![SeveritySetting {
                    scope: "global".into(),
                    label: "Global (alerts and MDE indicators)".into(),
                    severity: sev.global,
                    inherited: false,
                }];
                severities.extend(PolicyKind::ALL.iter().map(|k| SeveritySetting {
                    scope: k.as_str().into(),
                    label: k.title().into(),
                    severity: sev.for_kind(*k),
                    inherited: !sev.per_policy.contains_key(k),
                }));
                views::settings(SettingsRows {
                    severities: &severities,
                    profiles: &s.profiles()?,
                    groups: &s.device_groups()?,
                    outbox: s.outbox_totals()?,
                    sync: &s.sync_states()?,
                })
            }
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
                    alerts: &s.alerts_of_app(id)?,
                    tag_profile: s.app_tag_profile(id)?.as_deref(),
                    outbox: &s.outbox_of_app(id)?,
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

/// `:import PATH`: the import, then the alert policies; `progress` gets a line now and then.
/// The console runs this on its own thread and connection (see `event.rs`).
pub fn import_into(store: &Store, catalog: &Catalog, path: &str, progress: &dyn Fn(String)) -> Msg {
    let opts = crate::ingest::pipeline::ImportOptions::default();
    let shown = display_safe(path).into_owned();
    let mut report = |p: crate::ingest::pipeline::Progress| {
        let pct =
            p.total_bytes.map(|t| format!(" {:.0}%", 100.0 * p.bytes as f64 / t.max(1) as f64)).unwrap_or_default();
        progress(format!("import {shown}:{pct} {} lines", p.lines));
    };
    match crate::ingest::pipeline::import_paths(store, catalog, &[path.into()], &opts, &mut report) {
        Ok(reports) => {
            let imported: u64 = reports.iter().map(|r| r.imported).sum();
            let skipped: u64 = reports.iter().map(|r| r.skipped_total()).sum();
            let alerts = match apply::evaluate_alerts(store, None) {
                Ok(a) => alert_note(&a),
                Err(e) => format!("; alert policies failed: {e}"),
            };
            Msg::BackgroundDone {
                ok: true,
                text: format!("Imported {imported} records ({skipped} skipped) from {shown}{alerts}"),
            }
        }
        Err(e) => Msg::BackgroundDone { ok: false, text: format!("Import failed: {e}") },
    }
}

fn alert_note(a: &AlertRun) -> String {
    if a.new + a.updated == 0 { String::new() } else { format!("; alerts: {} new, {} updated", a.new, a.updated) }
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
