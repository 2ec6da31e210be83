//! Headless entry points: sync into the cache, check a config, serve the fake tenant. Each
//! builds its own current-thread runtime, so the console can call them from a worker thread
//! and the CLI from `main` (`run_sync`'s future is not `Send`).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::fake_tenant::{FakeTenantOptions, FaultKind, FaultRule, RetryAfter, serve_fake_tenant};
use super::push::{PushReport, push_outbox};
use super::{
    CheckStatus, IndicatorClient, ProgressPhase, SourceCheck, SourceKind, SourceOutcome, SourcesConfig, SyncConfig,
    SyncProgress, SyncReport, check_config, run_sync,
};
use crate::catalog::Catalog;
use crate::sanitize::display_safe;
use crate::store::sync_sink::source_key;
use crate::store::{Store, StoreSink};

/// `sync_state` key of the outbox push.
pub const PUSH_STATE_KEY: &str = "IndicatorsPush";

/// A sync run and, when configured, the outbox push that followed it.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub sync: SyncReport,
    pub push: Option<PushReport>,
    /// What the alert policies made of the synced data.
    pub alerts: crate::actions::apply::AlertRun,
}

impl RunOutcome {
    pub fn is_ok(&self) -> bool {
        self.sync.is_ok() && self.push.as_ref().is_none_or(PushReport::is_ok)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}

/// `cfg` restricted to one source (and no push), or unchanged.
pub fn only_source(cfg: &SyncConfig, only: Option<SourceKind>) -> SyncConfig {
    let mut cfg = cfg.clone();
    if let Some(source) = only {
        let mut s = SourcesConfig::none();
        match source {
            SourceKind::Devices => s.devices = true,
            SourceKind::LogonUsers => s.logon_users = true,
            SourceKind::HuntingTraffic => s.hunting_traffic = true,
            SourceKind::HuntingDeviceLogons => s.hunting_device_logons = true,
            SourceKind::HuntingIdentityLogons => s.hunting_identity_logons = true,
            SourceKind::LogAnalyticsTraffic => s.log_analytics_traffic = true,
            SourceKind::RiskyUsers => s.risky_users = true,
            SourceKind::DiscoveredApps => s.discovered_apps = true,
            SourceKind::MdcaAlerts => s.mdca_alerts = true,
        }
        cfg.sources = s;
    }
    cfg
}

/// Syncs every enabled source into `store` page by page, records each source's outcome,
/// pushes the outbox when `sources.indicators` is on, then refreshes the summaries once.
pub async fn sync_into_store(
    store: &Store,
    catalog: &Catalog,
    cfg: &SyncConfig,
    progress: &dyn Fn(SyncProgress),
) -> RunOutcome {
    let sync = {
        let mut sink = StoreSink::new(store, catalog);
        run_sync(cfg, &mut sink, progress).await
    };
    let now = cfg.as_of_unix.unwrap_or_else(crate::runtime::wall_clock);
    for s in &sync.sources {
        let error = match &s.outcome {
            SourceOutcome::Completed => None,
            SourceOutcome::Failed { error } => Some(error.to_string()),
            SourceOutcome::Skipped { .. } => continue,
        };
        if let Err(e) = store.record_sync_outcome(&source_key(s.source), now, error.as_deref()) {
            tracing::warn!(%e, "cannot record the sync outcome");
        }
    }
    let push = if cfg.sources.indicators && sync.fatal.is_none() {
        let report = match IndicatorClient::new(cfg) {
            Ok(client) => push_outbox(store, &client, now).await,
            Err(e) => PushReport { errors: vec![e.to_string()], ..PushReport::default() },
        };
        let error = (!report.is_ok()).then(|| report.errors.join("; "));
        if let Err(e) = store.record_sync_outcome(PUSH_STATE_KEY, now, error.as_deref()) {
            tracing::warn!(%e, "cannot record the push outcome");
        }
        Some(report)
    } else {
        None
    };
    if let Err(e) = store.refresh_summaries() {
        tracing::warn!(%e, "cannot refresh summaries after sync");
    }
    let alerts = crate::actions::apply::evaluate_alerts(store, None).unwrap_or_else(|e| {
        tracing::warn!(%e, "alert policies failed after sync");
        crate::actions::apply::AlertRun::default()
    });
    RunOutcome { sync, push, alerts }
}

/// Opens `db`, syncs (one source when `only` is set) and pushes the outbox if configured.
pub fn sync_and_push_blocking(
    db: &Path,
    catalog: &Catalog,
    cfg: &SyncConfig,
    only: Option<SourceKind>,
    progress: &dyn Fn(SyncProgress),
) -> anyhow::Result<RunOutcome> {
    let store = Store::open(db)?;
    let cfg = only_source(cfg, only);
    let mut cfg = cfg;
    if only.is_some() {
        cfg.sources.indicators = false;
    }
    let rt = runtime()?;
    Ok(rt.block_on(sync_into_store(&store, catalog, &cfg, progress)))
}

/// [`sync_and_push_blocking`] without the push report.
pub fn sync_blocking(
    db: &Path,
    catalog: &Catalog,
    cfg: &SyncConfig,
    only: Option<SourceKind>,
    progress: &dyn Fn(SyncProgress),
) -> anyhow::Result<SyncReport> {
    sync_and_push_blocking(db, catalog, cfg, only, progress).map(|o| o.sync)
}

/// Token + one-row probe per enabled source (`config check`).
pub fn check_blocking(cfg: &SyncConfig) -> anyhow::Result<Vec<SourceCheck>> {
    Ok(runtime()?.block_on(check_config(cfg)))
}

/// Accepts the CLI slug (`hunting-traffic`), the variant name or the display name.
pub fn parse_source(s: &str) -> Option<SourceKind> {
    let norm = |x: &str| x.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let want = norm(s);
    SourceKind::ALL.into_iter().find(|k| norm(&source_key(*k)) == want || norm(k.name()) == want)
}

pub fn source_slugs() -> Vec<String> {
    SourceKind::ALL
        .iter()
        .map(|k| {
            let key = source_key(*k);
            let mut out = String::new();
            for (i, c) in key.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        })
        .collect()
}

/// `--since YYYY-MM-DD`: how far back windowed sources reach on their first run.
pub fn apply_since(cfg: &mut SyncConfig, since: &str, now_unix: i64) -> anyhow::Result<()> {
    let date = chrono::NaiveDate::parse_from_str(since.trim(), "%Y-%m-%d")
        .with_context(|| format!("--since {}: expected a date like 2025-01-31", display_safe(since)))?;
    let start = date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or(now_unix);
    if start >= now_unix {
        anyhow::bail!("--since {} is not in the past", display_safe(since));
    }
    let days = ((now_unix - start + 86_399) / 86_400).clamp(1, 3650) as u32;
    // Advanced Hunting keeps 30 days; asking for more only costs empty windows.
    cfg.windows.hunting_lookback_days = days.min(30);
    cfg.windows.log_analytics_lookback_days = days;
    Ok(())
}

/// One progress line for stderr.
pub fn progress_line(p: &SyncProgress) -> String {
    let what = match p.phase {
        ProgressPhase::Started => "started".to_string(),
        ProgressPhase::Page => format!("{} rows, {} pages {}", p.rows, p.pages, display_safe(&p.note)),
        ProgressPhase::Finished => format!("done: {} rows, {} pages", p.rows, p.pages),
        ProgressPhase::Skipped => format!("skipped: {}", display_safe(&p.note)),
        ProgressPhase::Failed => "failed".to_string(),
    };
    format!("{}: {what}", p.source.name())
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            // The last column (free text) is not padded.
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let n = cells.len();
        for (i, (c, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                out.push_str(&c);
            } else {
                let _ = write!(out, "{c:<w$}  ", w = *w);
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

/// The final table of `shadowscope sync`.
pub fn format_report(o: &RunOutcome) -> String {
    let mut rows: Vec<Vec<String>> = o
        .sync
        .sources
        .iter()
        .map(|s| {
            let (outcome, err) = match &s.outcome {
                SourceOutcome::Completed => ("ok", String::new()),
                SourceOutcome::Skipped { reason } => ("skipped", reason.clone()),
                SourceOutcome::Failed { error } => ("FAILED", error.to_string()),
            };
            vec![
                s.source.name().to_string(),
                outcome.to_string(),
                s.rows.to_string(),
                s.pages.to_string(),
                format!("{:.1}s", s.elapsed.as_secs_f64()),
                display_safe(&err).into_owned(),
            ]
        })
        .collect();
    if let Some(p) = &o.push {
        rows.push(vec![
            "MDE indicators push".into(),
            if p.is_ok() { "ok" } else { "FAILED" }.into(),
            p.pushed.to_string(),
            "-".into(),
            "-".into(),
            display_safe(&p.errors.join("; ")).into_owned(),
        ]);
    }
    let mut out = table(&["source", "outcome", "rows", "pages", "time", "error / what to do"], &rows);
    if let Some(f) = &o.sync.fatal {
        let _ = writeln!(out, "sync could not start: {}", display_safe(&f.to_string()));
    }
    let _ = writeln!(out, "total: {} rows in {:.1}s", o.sync.total_rows(), o.sync.elapsed.as_secs_f64());
    let _ = writeln!(out, "alerts: {} new, {} updated", o.alerts.new, o.alerts.updated);
    out
}

/// The table of `shadowscope config check`.
pub fn format_checks(checks: &[SourceCheck]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let (status, reason) = match &c.status {
                CheckStatus::Ok => ("ok", String::new()),
                CheckStatus::Skipped(r) => ("skipped", r.clone()),
                CheckStatus::Failed(e) => ("FAILED", e.to_string()),
            };
            vec![
                c.source.name().to_string(),
                c.permission.to_string(),
                status.to_string(),
                display_safe(&reason).into_owned(),
            ]
        })
        .collect();
    table(&["source", "permission", "status", "reason"], &rows)
}

pub fn checks_ok(checks: &[SourceCheck]) -> bool {
    checks.iter().all(|c| !matches!(c.status, CheckStatus::Failed(_)))
}

/// `PATH=KIND[xN]`: requests whose path contains PATH get KIND (N times, default always).
/// KIND: 429, 429@SECS, 401, 403, 5xx (any 500–599), expire, slow@MS, empty.
pub fn parse_fault(spec: &str) -> Result<FaultRule, String> {
    let (path, rest) = spec
        .rsplit_once('=')
        .ok_or_else(|| format!("fault {spec:?}: expected PATH=KIND[xN], e.g. /mde/api/machines=429@2x3"))?;
    let (kind, times) = match rest.rsplit_once('x') {
        Some((k, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
            (k, Some(n.parse::<u32>().map_err(|e| format!("fault {spec:?}: {e}"))?))
        }
        _ => (rest, None),
    };
    let (name, arg) = kind.split_once('@').map_or((kind, None), |(a, b)| (a, Some(b)));
    let num = |a: Option<&str>| -> Result<Option<u64>, String> {
        a.map(|v| v.parse::<u64>().map_err(|e| format!("fault {spec:?}: {e}"))).transpose()
    };
    let kind = match name.to_ascii_lowercase().as_str() {
        "429" => FaultKind::TooManyRequests(num(arg)?.map(RetryAfter::Seconds)),
        "401" => FaultKind::Unauthorized,
        "403" => FaultKind::Forbidden,
        "expire" => FaultKind::ExpireTokens,
        "empty" => FaultKind::Empty,
        "slow" => FaultKind::Slow(Duration::from_millis(num(arg)?.unwrap_or(2_000))),
        code => match code.parse::<u16>() {
            Ok(c) if (500..600).contains(&c) => FaultKind::ServerError(c),
            _ => {
                return Err(format!(
                    "fault {spec:?}: unknown kind {name:?} (429, 401, 403, 5xx, expire, slow@MS, empty)"
                ));
            }
        },
    };
    Ok(FaultRule::new(path, kind, times))
}

/// A private directory holding the fake tenant's client secret (0700 dir, 0600 file), removed
/// on drop.
pub struct SecretDir {
    dir: PathBuf,
    pub file: PathBuf,
}

impl SecretDir {
    pub fn create(secret: &str) -> std::io::Result<SecretDir> {
        let dir = std::env::temp_dir().join(format!(
            "shadowscope-fake-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        // Not recursive: a fresh, unique directory, never one planted in advance.
        crate::private_fs::dir_builder().create(&dir)?;
        let file = dir.join("client-secret");
        let mut f = crate::private_fs::owner_only().write(true).create_new(true).open(&file)?;
        std::io::Write::write_all(&mut f, secret.as_bytes())?;
        Ok(SecretDir { dir, file })
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A ready-to-paste `[sync]` table for a config pointing at the fake tenant.
pub fn config_snippet(cfg: &SyncConfig) -> String {
    #[derive(serde::Serialize)]
    struct Wrapper<'a> {
        sync: &'a SyncConfig,
    }
    toml::to_string(&Wrapper { sync: cfg }).unwrap_or_else(|e| format!("# cannot render the config: {e}\n"))
}

/// `shadowscope fake-tenant`: serves until Ctrl-C; `announce` gets the base URL and a config
/// snippet once it listens.
pub fn serve_fake_tenant_blocking(opts: FakeTenantOptions, announce: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let secret = SecretDir::create(&opts.client_secret).context("cannot write the fake tenant's secret file")?;
        let fake = serve_fake_tenant(opts).await?;
        let mut cfg = fake.sync_config(&secret.file);
        cfg.as_of_unix = None;
        announce(&format!(
            "fake tenant listening on {}\nsecret file: {}\n\n# config.toml (or pass --config FILE):\n{}",
            fake.base_url(),
            secret.file.display(),
            config_snippet(&cfg)
        ));
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
        drop(fake);
        drop(secret);
        Ok(())
    })
}

/// `demo --live`: serves a fake tenant in-process and syncs it into `db`.
pub fn demo_live_blocking(
    db: &Path,
    catalog: &Catalog,
    opts: FakeTenantOptions,
    progress: &dyn Fn(SyncProgress),
) -> anyhow::Result<RunOutcome> {
    let store = Store::open(db)?;
    let rt = runtime()?;
    rt.block_on(async {
        let secret = SecretDir::create(&opts.client_secret).context("cannot write the fake tenant's secret file")?;
        let fake = serve_fake_tenant(opts).await?;
        let cfg = fake.sync_config(&secret.file);
        Ok(sync_into_store(&store, catalog, &cfg, progress).await)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_and_source_names() {
        let f = parse_fault("/mde/api/machines=429@2x3").unwrap();
        assert_eq!(f.path_contains, "/mde/api/machines");
        assert_eq!(f.kind, FaultKind::TooManyRequests(Some(RetryAfter::Seconds(2))));
        assert_eq!(f.times, Some(3));
        assert_eq!(parse_fault("riskyUsers=503").unwrap().kind, FaultKind::ServerError(503));
        assert_eq!(parse_fault("x=slow@10").unwrap().kind, FaultKind::Slow(Duration::from_millis(10)));
        assert!(parse_fault("nokind").is_err());
        assert!(parse_fault("x=418").is_err());
        for (slug, k) in source_slugs().iter().zip(SourceKind::ALL) {
            assert_eq!(parse_source(slug), Some(k), "{slug}");
        }
        assert_eq!(parse_source("MDE devices"), Some(SourceKind::Devices));
        assert_eq!(parse_source("nope"), None);
    }

    #[test]
    fn since_sets_lookback() {
        let mut cfg = SyncConfig::for_base_url("http://127.0.0.1:1", "t", "c");
        let now = chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc();
        apply_since(&mut cfg, "2025-03-01", now.timestamp()).unwrap();
        assert_eq!(cfg.windows.hunting_lookback_days, 10);
        apply_since(&mut cfg, "2024-01-01", now.timestamp()).unwrap();
        assert_eq!(cfg.windows.hunting_lookback_days, 30);
        assert!(apply_since(&mut cfg, "2030-01-01", now.timestamp()).is_err());
        assert!(apply_since(&mut cfg, "yesterday", now.timestamp()).is_err());
    }
}
