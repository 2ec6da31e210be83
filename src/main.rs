//! Command line: the console, the demo organisation, imports, catalog look-ups and sync.
use anyhow::Context;
use clap::{Parser, Subcommand};
use shadowscope::actions::apply::{self, Actor, AlertFormat, SeverityScope};
use shadowscope::actions::blocklist::BlocklistFormat;
use shadowscope::actions::indicators::ScopedProfile;
use shadowscope::actions::policy::PolicyKind;
use shadowscope::app::{self, State};
use shadowscope::catalog::{Catalog, installed};
use shadowscope::config::FileConfig;
use shadowscope::domain::{Severity, Tag};
use shadowscope::ingest::pipeline::{self, ImportOptions};
use shadowscope::runtime::Backend;
use shadowscope::sanitize::display_safe;
use shadowscope::store::{self, Store};
use shadowscope::sync::fake_tenant::FakeTenantOptions;
use shadowscope::sync::{SyncProgress, run};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "shadowscope", version, about = "Shadow IT investigation console over a local cache")]
struct Cli {
    /// The cache file (default: $XDG_CACHE_HOME/shadowscope/cache.db; the demo uses demo.db beside it).
    #[arg(long, global = true, env = "SHADOWSCOPE_DB")]
    db: Option<PathBuf>,
    /// Refuse every change (tags, imports, undo): for shared jump hosts.
    #[arg(long, global = true)]
    read_only: bool,
    /// No colours (also honoured: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    no_color: bool,
    /// The config file (default: $XDG_CONFIG_HOME/shadowscope/config.toml).
    #[arg(long, global = true, env = "SHADOWSCOPE_CONFIG")]
    config: Option<PathBuf>,
    /// A user catalog file (TOML or CSV) merged for this run, after the installed ones
    /// (`catalog import`). Repeatable; a later file wins.
    #[arg(long = "catalog", global = true, value_name = "PATH")]
    catalog_files: Vec<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the built-in demo organisation into a fresh cache and open the console.
    Demo {
        #[arg(long, default_value_t = 500)]
        users: u32,
        #[arg(long, default_value_t = 60)]
        days: u32,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Generate only; do not open the console.
        #[arg(long)]
        no_ui: bool,
        /// Instead of generating, serve a fake Microsoft tenant in-process and sync from it.
        #[arg(long)]
        live: bool,
    },
    /// Open the console on the cache (the default).
    Ui,
    /// Import firewall / proxy / Defender logs (`-` reads stdin; .gz is read transparently).
    Import {
        files: Vec<PathBuf>,
        /// Format name (see `formats`), or auto.
        #[arg(long, default_value = "auto")]
        format: String,
        /// Machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the log formats `import` understands.
    Formats,
    /// App catalog tools.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Tag an app: sanctioned, unsanctioned, monitored or none (queues the MDE indicators).
    Tag {
        app: String,
        state: String,
        /// Scoped profile (device groups) the tag applies to; default all devices.
        #[arg(long)]
        profile: Option<String>,
        /// Why, for the audit log.
        #[arg(long, default_value = "cli")]
        reason: String,
    },
    /// Add (or `--remove`) a free custom label on an app, e.g. `pilot` or `legal-review` (audited).
    Label {
        app: String,
        label: String,
        #[arg(long)]
        remove: bool,
    },
    /// Write the unsanctioned apps' domains as a block list for an appliance.
    Blocklist {
        /// Output format (`--format list` shows them all).
        #[arg(long, default_value = "domains")]
        format: String,
        /// Write to this file (mode 0600) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Write alerts for a SIEM: new alerts and repeat triggers since the last export.
    Alerts {
        /// json (JSON lines) or cef.
        #[arg(long, default_value = "json")]
        format: String,
        /// Every policy alert, not only what changed since the last export.
        #[arg(long)]
        all: bool,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Show or set alert severity: `severity` lists, `severity high`, `severity anomalous-upload low`.
    Severity { args: Vec<String> },
    /// Create or replace a scoped profile of device groups (see `info` for the known groups).
    Profile {
        name: String,
        #[arg(long, value_delimiter = ',')]
        include: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        exclude: Vec<String>,
    },
    /// Print the paths shadowscope uses.
    Info,
    /// Sync from Microsoft Defender / Entra / Defender for Cloud Apps into the cache.
    Sync {
        /// Only this source (e.g. devices, hunting-traffic, risky-users, discovered-apps).
        #[arg(long)]
        source: Option<String>,
        /// How far back a first sync of windowed sources reaches (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
    },
    /// Config file tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Serve a fake Microsoft tenant on loopback until Ctrl-C (for trying sync offline).
    FakeTenant {
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 50)]
        users: u32,
        #[arg(long, default_value_t = 40)]
        devices: u32,
        /// PATH=KIND[xN], KIND one of 429, 429@SECS, 401, 403, 5xx, expire, slow@MS, empty.
        #[arg(long)]
        fault: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check each enabled sync source's token and permission.
    Check,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Show which app a host belongs to and the rule that matched.
    Lookup { hosts: Vec<String> },
    /// Validate a user catalog file (TOML or CSV), install it for every later run and move the
    /// cache's domains to the apps it now names.
    Import { file: PathBuf },
    /// Re-identify every domain in the cache with the current catalog (after editing an
    /// installed file, or with --catalog).
    Reapply,
    /// Set an app's risk score (0–10, 10 = safest) or `clear` it; survives catalog updates.
    Override {
        app: String,
        /// 0–10, or `clear` to go back to the catalog's score.
        score: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "cli")]
        reason: String,
    },
    /// List the installed user catalog files, in merge order.
    Files,
}

/// Builds this run's catalog (built-in + installed files + `--catalog` files) and makes it the
/// process's catalog before anything looks a host up.
fn configure_catalog(cli: &Cli) -> anyhow::Result<&'static Catalog> {
    let dir = installed::user_catalog_dir();
    // An unreadable directory goes through `configured`, which reports it as a warning.
    let has_installed = dir.as_deref().is_some_and(|d| installed::installed_files(d).map_or(true, |f| !f.is_empty()));
    if cli.catalog_files.is_empty() && !has_installed {
        return Ok(Catalog::active());
    }
    let c = installed::configured(dir.as_deref(), &cli.catalog_files)?;
    for e in &c.skipped {
        // Also logged: the console takes the terminal over right after.
        tracing::warn!("catalog file left out: {e}");
        eprintln!("warning: catalog file left out: {}", display_safe(&e.to_string()));
    }
    Ok(Catalog::install(c.catalog)?)
}

fn print_reapply(r: &store::catalog_sync::ReapplyReport) {
    println!(
        "cache: {} domain(s) checked, {} moved, {} app(s) created, {} re-scored, {} removed",
        r.domains, r.moved, r.apps_created, r.apps_rescored, r.apps_removed
    );
    for m in &r.moves {
        println!("    {}: {} → {}", display_safe(&m.domain), display_safe(&m.from), display_safe(&m.to));
    }
    if r.moved as usize > r.moves.len() {
        println!("    … and {} more", r.moved as usize - r.moves.len());
    }
}

/// Re-identifies the cache's domains with `catalog`, then lets the alert policies see the
/// result. A cache that does not exist yet has nothing to update.
/// Re-identifies the cache's domains with `catalog`; `why` (the installed file, or "reapply")
/// goes to the audit log with what moved.
fn reapply(db: &std::path::Path, catalog: &Catalog, why: &str) -> anyhow::Result<()> {
    if !db.exists() {
        println!("cache: {} does not exist yet; nothing to update", db.display());
        return Ok(());
    }
    let store = Store::open(db)?;
    let r = store.reapply_catalog(catalog)?;
    print_reapply(&r);
    let detail = serde_json::json!({
        "domains": r.domains, "moved": r.moved, "apps_created": r.apps_created,
        "apps_rescored": r.apps_rescored, "apps_removed": r.apps_removed,
    })
    .to_string();
    store.append_audit(
        shadowscope::runtime::wall_clock(),
        &store::write::os_user(),
        "catalog",
        why,
        "",
        &format!("{} domain(s) moved", r.moved),
        &detail,
    )?;
    if r.moved > 0 || r.apps_rescored > 0 {
        let a = apply::evaluate_alerts(&store, None)?;
        eprintln!("alerts: {} new, {} updated", a.new, a.updated);
    }
    Ok(())
}

fn parse_score(s: &str) -> anyhow::Result<Option<f64>> {
    if ["clear", "none", "reset"].iter().any(|c| s.eq_ignore_ascii_case(c)) {
        return Ok(None);
    }
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=10.0).contains(&v) => Ok(Some(v)),
        _ => anyhow::bail!("score must be a number from 0 to 10 (10 = safest), or clear"),
    }
}

fn init_logging() {
    // Logs go to a file, never to the terminal the console owns.
    let Some(dirs) = directories::ProjectDirs::from("", "", "shadowscope") else { return };
    let dir = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf();
    if shadowscope::private_fs::private_dir(&dir).is_err() {
        return;
    }
    if let Ok(file) = shadowscope::private_fs::owner_only().create(true).append(true).open(dir.join("shadowscope.log"))
    {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("SHADOWSCOPE_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
    }
}

fn demo_path() -> PathBuf {
    store::default_path().with_file_name("demo.db")
}

fn remove_cache(path: &std::path::Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Writes command output to a private file, or stdout.
fn write_out(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => shadowscope::private_fs::write_file(p, text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display())),
        None => {
            use std::io::Write;
            match std::io::stdout().write_all(text.as_bytes()) {
                // `| head` closing the pipe is not an error worth a message.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => Ok(r?),
            }
        }
    }
}

fn console(db: &std::path::Path, cli: &Cli, label: String) -> anyhow::Result<()> {
    console_with(db, cli, label, None)
}

/// The console; `live` is a sync config to run in the background from the first frame on
/// (`demo --live`), in place of the config file's.
fn console_with(
    db: &std::path::Path,
    cli: &Cli,
    label: String,
    live: Option<shadowscope::sync::SyncConfig>,
) -> anyhow::Result<()> {
    // A second process gets the cache read-only instead of an error: looking is always safe.
    let (store, locked) = match Store::open(db) {
        Ok(s) => (s, None),
        Err(e @ store::StoreError::Locked { .. }) => {
            (Store::open_read_only(db)?, Some(format!("{e} (opened read-only)")))
        }
        Err(e) => return Err(e.into()),
    };
    let backend = Backend::new(store, Catalog::active());
    let mut state = State::new(label);
    state.read_only = cli.read_only || locked.is_some();
    state.status = locked.map(|text| app::Status { text, error: true });
    state.no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if let Some(s) = shadowscope::event::load_session() {
        app::update::restore_session(&mut state, &s);
    }
    // A broken config file stops here with the bad entry named, before the terminal is taken.
    let (file, path) = FileConfig::load(cli.config.as_deref())?;
    let in_file = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", path.display());
    if let Some(keys) = &file.keys {
        state.keymap = app::keymap::Keymap::with_overrides(keys).map_err(|e| in_file(&e))?;
    }
    if let Some(theme) = &file.theme {
        state.palette = app::palette::Palette::with_overrides(theme).map_err(|e| in_file(&e))?;
    }
    let sync_at_start = live.is_some();
    let config = match live {
        Some(cfg) => Ok(cfg),
        None => file.require_sync(&path).cloned().map_err(|e| e.to_string()),
    };
    let sync =
        shadowscope::event::BackgroundSetup { db: db.to_path_buf(), catalog: Catalog::active(), config, sync_at_start };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(shadowscope::event::run_console(backend, state, sync))
}

/// A progress line per page on stderr, only when stderr is a terminal.
fn progress_printer() -> impl Fn(SyncProgress) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    move |p: SyncProgress| {
        if tty {
            eprintln!("{}", run::progress_line(&p));
        }
    }
}

fn main() -> std::process::ExitCode {
    // The error and its causes, one line each; never a backtrace (RUST_BACKTRACE may be set on
    // a jump host for other tools).
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", display_safe(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging();
    let catalog = configure_catalog(&cli)?;
    let default_db = cli.db.clone().unwrap_or_else(store::default_path);
    match &cli.command {
        Some(Command::Demo { users, days, no_ui, live: true, .. }) => {
            let path = cli.db.clone().unwrap_or_else(demo_path);
            // Never delete a cache another process is writing: hold its writer lock first.
            let _writer = if path.exists() { Some(store::acquire_writer_lock(&path)?) } else { None };
            remove_cache(&path).with_context(|| format!("cannot replace {}", path.display()))?;
            let opts = FakeTenantOptions {
                users: *users,
                devices: (*users * 4 / 5).max(1),
                days: (*days).clamp(1, 30),
                ..Default::default()
            };
            if *no_ui {
                let outcome = run::demo_live_blocking(&path, Catalog::active(), opts, &progress_printer())?;
                eprint!("{}", run::format_report(&outcome));
            } else {
                // The fake tenant serves from its own runtime while the console syncs from it
                // in the background: the newcomer watches a real sync fill the views.
                let tenant_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
                let secret = run::SecretDir::create(&opts.client_secret)
                    .context("cannot write the fake tenant's secret file")?;
                let fake = tenant_rt.block_on(shadowscope::sync::fake_tenant::serve_fake_tenant(opts))?;
                let cfg = fake.sync_config(&secret.file);
                console_with(&path, &cli, format!("demo live ({})", path.display()), Some(cfg))?;
            }
        }
        Some(Command::Demo { users, days, seed, no_ui, live: false }) => {
            let path = cli.db.clone().unwrap_or_else(demo_path);
            // Never delete a cache another process is writing: hold its writer lock first.
            let _writer = if path.exists() { Some(store::acquire_writer_lock(&path)?) } else { None };
            remove_cache(&path).with_context(|| format!("cannot replace {}", path.display()))?;
            let store = Store::open(&path)?;
            let started = Instant::now();
            let opts = shadowscope::demo::DemoOptions { users: *users, days: *days, seed: *seed, ..Default::default() };
            let s = shadowscope::demo::generate(&store, Catalog::active(), &opts)?;
            let took = started.elapsed();
            drop(store);
            eprintln!(
                "demo: {} users, {} devices, {} apps, {} daily facts in {:.2}s → {}",
                s.users,
                s.devices,
                s.apps,
                s.facts,
                took.as_secs_f64(),
                path.display()
            );
            eprintln!(
                "  stories: {} uploads to {} from {} and {}; kiosk {} shared by {} users; new gen-AI app {} since {}",
                s.exfil_user,
                s.exfil_app,
                s.exfil_devices[0],
                s.exfil_devices[1],
                s.kiosk,
                s.kiosk_users,
                s.genai_app,
                s.genai_first_day
            );
            eprintln!("  alerts raised by the built-in policies: {}", s.alerts.new);
            if !no_ui {
                console(&path, &cli, format!("demo ({})", path.display()))?;
            }
        }
        None | Some(Command::Ui) => console(&default_db, &cli, default_db.display().to_string())?,
        Some(Command::Import { files, format, json }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: import is disabled");
            }
            if files.is_empty() {
                anyhow::bail!("name at least one file (or - for stdin)");
            }
            let store = Store::open(&default_db)?;
            let mut opts = ImportOptions { format: Some(format.clone()), ..Default::default() };
            // Hidden knob for tests that kill an import mid-file: smaller batches, more checkpoints.
            if let Some(n) = std::env::var("SHADOWSCOPE_IMPORT_BATCH").ok().and_then(|v| v.parse::<u64>().ok()) {
                opts.batch_lines = n.max(1);
            }
            let started = Instant::now();
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let mut last_shown: Option<Instant> = None;
            let mut progress = |p: pipeline::Progress| {
                if !tty || last_shown.is_some_and(|t| t.elapsed().as_millis() < 100) {
                    return;
                }
                last_shown = Some(Instant::now());
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let mb = p.bytes as f64 / 1e6;
                let rate = p.bytes as f64 / secs;
                let tail = match p.total_bytes.filter(|t| *t > 0) {
                    Some(t) => {
                        let left = t.saturating_sub(p.bytes) as f64 / rate.max(1.0);
                        format!(
                            "{mb:.0}/{:.0} MB {:>3.0}%  ETA {}:{:02}",
                            t as f64 / 1e6,
                            100.0 * p.bytes as f64 / t as f64,
                            (left as u64) / 60,
                            (left as u64) % 60
                        )
                    }
                    None => format!("{mb:.0} MB"),
                };
                // One line, rewritten in place; the trailing clear erases a longer previous line.
                eprint!(
                    "\r{} lines  {:.0} lines/s  {:.0} MB/s  {tail}\x1b[K",
                    p.lines,
                    p.lines as f64 / secs,
                    rate / 1e6
                );
            };
            let reports = pipeline::import_paths(&store, Catalog::active(), files, &opts, &mut progress)?;
            if tty {
                eprint!("\r\x1b[K");
            }
            let secs = started.elapsed().as_secs_f64();
            if *json {
                for r in &reports {
                    println!(
                        "{}",
                        serde_json::json!({"file": r.file, "format": r.format, "records": r.records,
                            "imported": r.imported, "skipped": r.skipped, "already_imported": r.already_imported})
                    );
                }
            } else {
                for r in &reports {
                    let note = if r.already_imported { " (already imported: nothing added)" } else { "" };
                    println!(
                        "{}: {} — {} records, {} imported, {} skipped{note}",
                        r.file,
                        r.format,
                        r.records,
                        r.imported,
                        r.skipped_total()
                    );
                    for (reason, n) in &r.skipped {
                        println!("    {n:>8}  {}", display_safe(reason));
                    }
                    for e in &r.examples {
                        println!("    e.g. {}:{} {}: {}", r.file, e.line, e.reason, e.text);
                    }
                }
                let lines: u64 = reports.iter().map(|r| r.records).sum();
                eprintln!("{lines} records in {secs:.2}s ({:.0} records/s)", lines as f64 / secs.max(1e-9));
            }
            if reports.iter().any(|r| r.imported > 0) {
                let a = apply::evaluate_alerts(&store, None)?;
                eprintln!("alerts: {} new, {} updated", a.new, a.updated);
            }
        }
        Some(Command::Formats) => {
            for f in shadowscope::ingest::registry::formats() {
                println!("{:<16} {}", f.name(), f.description());
            }
        }
        Some(Command::Catalog { command: CatalogCommand::Lookup { hosts } }) => {
            let c = catalog;
            for h in hosts {
                match c.identify_host(h) {
                    shadowscope::catalog::Identified::App { idx, rule } => {
                        let a = c.get(idx);
                        println!(
                            "{}\t{} ({})\t{}\trisk {:.1}\trule {}",
                            display_safe(h),
                            display_safe(&a.name),
                            display_safe(&a.id),
                            a.category.label(),
                            a.risk.score.0,
                            display_safe(&rule)
                        );
                    }
                    shadowscope::catalog::Identified::Unknown { registrable } => {
                        println!(
                            "{}\tunknown app {}\trisk {:.1}",
                            display_safe(h),
                            display_safe(&registrable),
                            c.unknown_risk().score.0
                        );
                    }
                }
            }
        }
        Some(Command::Catalog { command: CatalogCommand::Import { file } }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: catalog import is disabled");
            }
            let dir = installed::user_catalog_dir()
                .ok_or_else(|| anyhow::anyhow!("no configuration directory (set XDG_CONFIG_HOME or HOME)"))?;
            let done = installed::install_file(file, &dir)?;
            println!(
                "{}: {} app(s) added or overridden; installed as {}{}",
                display_safe(&file.to_string_lossy()),
                done.apps,
                display_safe(&done.path.to_string_lossy()),
                if done.replaced { " (replacing the earlier file of that name)" } else { "" }
            );
            // The catalog of this run was built before the file was installed.
            let fresh = installed::configured(Some(&dir), &cli.catalog_files)?;
            reapply(&default_db, &fresh.catalog, &done.path.to_string_lossy())?;
        }
        Some(Command::Catalog { command: CatalogCommand::Reapply }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: catalog reapply is disabled");
            }
            reapply(&default_db, catalog, "reapply")?;
        }
        Some(Command::Catalog { command: CatalogCommand::Override { app, score, reason } }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: score overrides are disabled");
            }
            let score = parse_score(score)?;
            let store = Store::open(&default_db)?;
            let id = store
                .app_by_key_or_name(app)?
                .ok_or_else(|| anyhow::anyhow!("no app named {} in the cache", display_safe(app)))?;
            let user = store::write::os_user();
            let c = store.set_risk_override(id, score, &user, reason, shadowscope::runtime::wall_clock())?;
            println!(
                "{}: score {:.1} → {:.1} ({})",
                display_safe(&c.key),
                c.old_score,
                c.new_score,
                match c.new_override {
                    Some(_) => "override".to_string(),
                    None => format!("catalog score {:.1}", c.catalog_score),
                }
            );
            let a = apply::evaluate_alerts(&store, None)?;
            if a.new + a.updated > 0 {
                println!("alerts: {} new, {} updated", a.new, a.updated);
            }
        }
        Some(Command::Catalog { command: CatalogCommand::Files }) => {
            match installed::user_catalog_dir() {
                Some(dir) => {
                    println!("{}", dir.display());
                    for f in installed::installed_files(&dir)? {
                        println!("    {}", display_safe(&f.to_string_lossy()));
                    }
                }
                None => println!("no configuration directory"),
            }
            for f in &cli.catalog_files {
                println!("    {} (--catalog)", display_safe(&f.to_string_lossy()));
            }
        }
        Some(Command::Tag { app, state, profile, reason }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: tagging is disabled");
            }
            let tag = Tag::parse(state)
                .ok_or_else(|| anyhow::anyhow!("state must be sanctioned, unsanctioned, monitored or none"))?;
            let store = Store::open(&default_db)?;
            let id = store
                .app_by_key_or_name(app)?
                .ok_or_else(|| anyhow::anyhow!("no app named {} in the cache", display_safe(app)))?;
            let user = store::write::os_user();
            let actor = Actor { name: &user, now: shadowscope::runtime::wall_clock() };
            let o = apply::tag_apps(&store, Catalog::active(), &[id], tag, profile.as_deref(), reason, actor)?;
            for c in &o.changes {
                println!(
                    "{}: {} → {} ({} indicator change(s) queued for MDE)",
                    display_safe(app),
                    c.old.as_str(),
                    c.new.as_str(),
                    c.queued
                );
            }
            if o.alerts.new + o.alerts.updated > 0 {
                println!("alerts: {} new, {} updated", o.alerts.new, o.alerts.updated);
            }
        }
        Some(Command::Label { app, label, remove }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: labels are locked");
            }
            let store = Store::open(&default_db)?;
            let id = store
                .app_by_key_or_name(app)?
                .ok_or_else(|| anyhow::anyhow!("no app named {} in the cache", display_safe(app)))?;
            let changed =
                store.set_label(id, label, !remove, &store::write::os_user(), shadowscope::runtime::wall_clock())?;
            let labels = store.labels_of_app(id)?;
            let note = if changed { "" } else { " (unchanged)" };
            println!("{}: labels [{}]{note}", display_safe(app), display_safe(&labels.join(", ")));
        }
        Some(Command::Blocklist { format, output }) => {
            if format == "list" {
                for f in BlocklistFormat::ALL {
                    println!("{:<18} {}", f.name(), f.label());
                }
                return Ok(());
            }
            let f = BlocklistFormat::parse(format).ok_or_else(|| {
                anyhow::anyhow!("unknown format {}; `--format list` shows them", display_safe(format))
            })?;
            let store = Store::open_for_reading(&default_db)?;
            let b = apply::blocklist(&store, Catalog::active(), f)?;
            write_out(output.as_deref(), &b.text)?;
            eprintln!("{} domain(s) as {}", b.domains, f.label());
            for r in &b.rejected {
                eprintln!("  left out {} ({}): {}", r.domain, r.app, r.reason);
            }
        }
        Some(Command::Alerts { format, all, output }) => {
            let f = AlertFormat::parse(format).ok_or_else(|| anyhow::anyhow!("format must be json or cef"))?;
            let store = if cli.read_only { Store::open_read_only(&default_db)? } else { Store::open(&default_db)? };
            // Read-only sessions can print alerts but not move the export mark.
            let (text, n) = if cli.read_only {
                apply::render_alerts(&store, f, true, shadowscope::runtime::wall_clock())?
            } else {
                apply::export_alerts(&store, f, *all, shadowscope::runtime::wall_clock())?
            };
            write_out(output.as_deref(), &text)?;
            eprintln!("{n} alert record(s)");
        }
        Some(Command::Severity { args }) => {
            let store = Store::open(&default_db)?;
            match args.as_slice() {
                [] => {
                    let s = store.policy_severities()?;
                    println!("{:<24} {}", "global", s.global.as_str());
                    for k in PolicyKind::ALL {
                        let own = if s.per_policy.contains_key(&k) { "" } else { " (follows global)" };
                        println!("{:<24} {}{own}", k.as_str(), s.for_kind(k).as_str());
                    }
                }
                [level] | [_, level] => {
                    if cli.read_only {
                        anyhow::bail!("--read-only: severities are locked");
                    }
                    let scope_name = if args.len() == 2 { args[0].as_str() } else { "global" };
                    let scope = SeverityScope::parse(scope_name)
                        .ok_or_else(|| anyhow::anyhow!("scope must be global or a policy id (run `severity`)"))?;
                    let sev = Severity::parse(level)
                        .ok_or_else(|| anyhow::anyhow!("severity must be informational, low, medium or high"))?;
                    let user = store::write::os_user();
                    let actor = Actor { name: &user, now: shadowscope::runtime::wall_clock() };
                    let o = apply::set_severity(&store, Catalog::active(), scope, sev, actor)?;
                    println!(
                        "{scope_name}: {} → {} ({} open alert(s) re-labelled, {} indicator update(s) queued)",
                        o.old.map(Severity::as_str).unwrap_or("default"),
                        sev.as_str(),
                        o.relabelled,
                        o.requeued
                    );
                }
                _ => anyhow::bail!("usage: severity [global|POLICY] LEVEL"),
            }
        }
        Some(Command::Profile { name, include, exclude }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: profiles are locked");
            }
            let store = Store::open(&default_db)?;
            let known = store.device_groups()?;
            for g in include.iter().chain(exclude) {
                if !known.iter().any(|k| k == g) {
                    eprintln!("note: no device in the cache is in group {}", display_safe(g));
                }
            }
            let p =
                ScopedProfile { name: name.clone(), include_groups: include.clone(), exclude_groups: exclude.clone() };
            store.save_profile(&p, &store::write::os_user(), shadowscope::runtime::wall_clock())?;
            println!("profile {} saved", display_safe(name));
        }
        Some(Command::Sync { source, since }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: sync is disabled");
            }
            let (file, path) = FileConfig::load(cli.config.as_deref())?;
            let mut cfg = file.require_sync(&path)?.clone();
            let only = source
                .as_deref()
                .map(|s| {
                    run::parse_source(s).ok_or_else(|| {
                        anyhow::anyhow!(
                            "unknown source {}; one of: {}",
                            display_safe(s),
                            run::source_slugs().join(", ")
                        )
                    })
                })
                .transpose()?;
            if let Some(d) = since {
                let now = cfg.as_of_unix.unwrap_or_else(shadowscope::runtime::wall_clock);
                run::apply_since(&mut cfg, d, now)?;
            }
            let outcome = run::sync_and_push_blocking(&default_db, Catalog::active(), &cfg, only, &progress_printer())?;
            print!("{}", run::format_report(&outcome));
            if !outcome.is_ok() {
                std::process::exit(1);
            }
        }
        Some(Command::Config { command: ConfigCommand::Check }) => {
            let (file, path) = FileConfig::load(cli.config.as_deref())?;
            let checks = run::check_blocking(file.require_sync(&path)?)?;
            print!("{}", run::format_checks(&checks));
            if !run::checks_ok(&checks) {
                std::process::exit(1);
            }
        }
        Some(Command::FakeTenant { port, users, devices, fault }) => {
            let faults =
                fault.iter().map(|f| run::parse_fault(f)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let opts =
                FakeTenantOptions { port: *port, users: *users, devices: *devices, faults, ..Default::default() };
            run::serve_fake_tenant_blocking(opts, &mut |text| println!("{text}\nCtrl-C stops it."))?;
        }
        Some(Command::Info) => {
            println!("cache:   {}", default_db.display());
            println!("demo:    {}", demo_path().display());
            if let Some(p) = shadowscope::event::session_path() {
                println!("session: {}", p.display());
            }
            println!("config:  {}", cli.config.clone().unwrap_or_else(shadowscope::config::default_path).display());
            if default_db.exists() {
                let store = Store::open_for_reading(&default_db)?;
                let c = store.counts()?;
                println!("cached:  {} users, {} devices, {} apps", c.users, c.devices, c.apps);
                let groups = store.device_groups()?;
                println!(
                    "device groups: {}",
                    if groups.is_empty() { "none".into() } else { display_safe(&groups.join(", ")).into_owned() }
                );
                for p in store.profiles()? {
                    println!(
                        "profile {}: include [{}] exclude [{}]",
                        display_safe(&p.name),
                        display_safe(&p.include_groups.join(", ")),
                        display_safe(&p.exclude_groups.join(", "))
                    );
                }
            }
        }
    }
    Ok(())
}
