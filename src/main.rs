//! Command line: the console, the demo organisation, imports and catalog look-ups.
use anyhow::Context;
use clap::{Parser, Subcommand};
use shadowscope::app::{self, State};
use shadowscope::catalog::Catalog;
use shadowscope::domain::Tag;
use shadowscope::ingest::pipeline::{self, ImportOptions};
use shadowscope::runtime::Backend;
use shadowscope::sanitize::display_safe;
use shadowscope::store::{self, Store};
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
    /// Tag an app: sanctioned, unsanctioned, monitored or none.
    Tag { app: String, state: String },
    /// Print the paths shadowscope uses.
    Info,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Show which app a host belongs to and the rule that matched.
    Lookup { hosts: Vec<String> },
}

fn init_logging() {
    // Logs go to a file, never to the terminal the console owns.
    let Some(dirs) = directories::ProjectDirs::from("", "", "shadowscope") else { return };
    let dir = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf();
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    if let Ok(file) = o.open(dir.join("shadowscope.log")) {
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

fn console(db: &std::path::Path, cli: &Cli, label: String) -> anyhow::Result<()> {
    let store = Store::open(db)?;
    let backend = Backend::new(store, Catalog::builtin());
    let mut state = State::new(label);
    state.read_only = cli.read_only;
    state.no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if let Some(s) = shadowscope::event::load_session() {
        if let Some(route) = s.route.as_deref().and_then(app::update::route_from_name) {
            state.stack = vec![app::Entry::new(route)];
        }
        if s.period_days > 0 || s.route.is_some() {
            state.period = shadowscope::domain::Period { days: s.period_days };
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(shadowscope::event::run_console(backend, state))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let default_db = cli.db.clone().unwrap_or_else(store::default_path);
    match &cli.command {
        Some(Command::Demo { users, days, seed, no_ui }) => {
            let path = cli.db.clone().unwrap_or_else(demo_path);
            remove_cache(&path).with_context(|| format!("cannot replace {}", path.display()))?;
            let store = Store::open(&path)?;
            let started = Instant::now();
            let opts = shadowscope::demo::DemoOptions { users: *users, days: *days, seed: *seed, ..Default::default() };
            let s = shadowscope::demo::generate(&store, Catalog::builtin(), &opts)?;
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
            let reports = pipeline::import_paths(&store, Catalog::builtin(), files, &opts, &mut progress)?;
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
        }
        Some(Command::Formats) => {
            for f in shadowscope::ingest::registry::formats() {
                println!("{:<16} {}", f.name(), f.description());
            }
        }
        Some(Command::Catalog { command: CatalogCommand::Lookup { hosts } }) => {
            let c = Catalog::builtin();
            for h in hosts {
                match c.identify_host(h) {
                    shadowscope::catalog::Identified::App { idx, rule } => {
                        let a = c.get(idx);
                        println!(
                            "{}\t{} ({})\t{}\trisk {:.1}\trule {}",
                            display_safe(h),
                            a.name,
                            a.id,
                            a.category.label(),
                            a.risk.score.0,
                            rule
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
        Some(Command::Tag { app, state }) => {
            if cli.read_only {
                anyhow::bail!("--read-only: tagging is disabled");
            }
            let tag = Tag::parse(state)
                .ok_or_else(|| anyhow::anyhow!("state must be sanctioned, unsanctioned, monitored or none"))?;
            let store = Store::open(&default_db)?;
            let id = store
                .app_by_key_or_name(app)?
                .ok_or_else(|| anyhow::anyhow!("no app named {} in the cache", display_safe(app)))?;
            let old =
                store.set_tag(id, tag, None, &store::write::os_user(), "cli", shadowscope::runtime::wall_clock())?;
            store.refresh_summaries()?;
            println!("{}: {} → {}", display_safe(app), old.as_str(), tag.as_str());
        }
        Some(Command::Info) => {
            println!("cache:   {}", default_db.display());
            println!("demo:    {}", demo_path().display());
            if let Some(p) = shadowscope::event::session_path() {
                println!("session: {}", p.display());
            }
        }
    }
    Ok(())
}
