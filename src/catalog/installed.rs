//! Installed user catalog files: `shadowscope catalog import FILE` validates a user file and
//! copies it into `$XDG_CONFIG_HOME/shadowscope/catalog.d/` (directory 0700, file 0600), and
//! every later run merges the `*.toml` / `*.csv` files found there in name order, then the
//! `--catalog PATH` files of the run in command-line order (a later file wins).
use super::Catalog;
use super::user_file::{CatalogError, UserFormat, read_limited};
use std::path::{Path, PathBuf};

/// `$XDG_CONFIG_HOME/shadowscope/catalog.d` (beside `config.toml`).
pub fn user_catalog_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "shadowscope").map(|d| d.config_dir().join("catalog.d"))
}

/// The installed files in `dir`, in the order they are merged. A missing directory has none.
pub fn installed_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CatalogError::Io { path: dir.to_path_buf(), source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let hidden = p.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
            let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            !hidden && matches!(ext.as_deref(), Some("toml" | "csv")) && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The catalog of a run and what went into it.
pub struct Configured {
    pub catalog: Catalog,
    /// Every user file merged, in merge order.
    pub files: Vec<PathBuf>,
    /// Installed files that no longer parse (edited by hand since), or an unreadable
    /// directory: left out with their error, so that one bad file cannot lock the analyst out
    /// of every command.
    pub skipped: Vec<CatalogError>,
}

/// Built-in catalog + the installed files of `dir` + `extra` (`--catalog`). An `extra` file
/// that does not parse is an error: the analyst asked for it on this very command line.
pub fn configured(dir: Option<&Path>, extra: &[PathBuf]) -> Result<Configured, CatalogError> {
    let mut skipped = Vec::new();
    let installed = match dir.map(installed_files).transpose() {
        Ok(found) => found.unwrap_or_default(),
        Err(e) => {
            skipped.push(e);
            Vec::new()
        }
    };
    let mut catalog = Catalog::builtin().clone();
    let mut files = Vec::new();
    for f in installed {
        // Parse first so that a bad file leaves the catalog built so far untouched.
        match read_limited(&f).and_then(|bytes| catalog.clone().merge_user_bytes(&bytes, &f)) {
            Ok((c, _, _)) => {
                catalog = c;
                files.push(f);
            }
            Err(e) => skipped.push(e),
        }
    }
    for f in extra {
        catalog = catalog.merge_user_file(f)?;
        files.push(f.clone());
    }
    Ok(Configured { catalog, files, skipped })
}

/// What [`install_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Where the copy now lives.
    pub path: PathBuf,
    pub format: UserFormat,
    /// Apps the file adds or overrides.
    pub apps: usize,
    /// An installed file of the same name was replaced.
    pub replaced: bool,
}

/// Validates `src` and installs a copy of exactly the bytes validated into `dir` (created
/// 0700; the file 0600, written beside and renamed into place so a reader never sees half a
/// file). Nothing is written when the file does not parse.
pub fn install_file(src: &Path, dir: &Path) -> Result<Installed, CatalogError> {
    let bytes = read_limited(src)?;
    let (_, format, apps) = Catalog::builtin().clone().merge_user_bytes(&bytes, src)?;
    let name = format!("{}.{}", safe_stem(src), format.extension());
    let dest = dir.join(&name);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CatalogError::Write { path, source }
    };
    create_private_dir(dir).map_err(write_err(dir))?;
    let replaced = dest.exists();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = write_new_private(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &dest));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(&dest)(e));
    }
    Ok(Installed { path: dest, format, apps, replaced })
}

/// The source file's name reduced to `[A-Za-z0-9._-]`, so that an odd name cannot escape
/// the directory or hide (`..`, leading dots).
fn safe_stem(src: &Path) -> String {
    let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let clean: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() { "catalog".to_string() } else { clean }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    // The directory may predate us with looser rights; it holds the organisation's choices.
    crate::private_fs::private_dir(dir)
}

/// `create_new` so that a planted symlink is never followed.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = crate::private_fs::owner_only().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Identified;

    #[test]
    fn install_copies_privately_and_configured_merges_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("my apps!.toml");
        std::fs::write(&src, "[[app]]\nid = \"acme\"\ncategory = \"Webmail\"\ndomains = [\"acme.example\"]\n").unwrap();
        let dir = tmp.path().join("cfg/shadowscope/catalog.d");
        let done = install_file(&src, &dir).unwrap();
        assert_eq!(done.path, dir.join("my_apps_.toml"));
        assert_eq!((done.format, done.apps, done.replaced), (UserFormat::Toml, 1, false));
        assert_eq!(std::fs::read(&done.path).unwrap(), std::fs::read(&src).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&dir), mode(&done.path)), (0o700, 0o600));
        }
        assert!(install_file(&src, &dir).unwrap().replaced);

        // A later --catalog file wins over the installed one.
        let extra = tmp.path().join("extra.csv");
        std::fs::write(&extra, "id,category\nacme,Media\n").unwrap();
        let c = configured(Some(&dir), std::slice::from_ref(&extra)).unwrap();
        assert_eq!(c.files, [done.path.clone(), extra]);
        let acme = c.catalog.find_by_id("acme").unwrap();
        assert_eq!(c.catalog.get(acme).category, crate::catalog::Category::Media);
        assert!(matches!(c.catalog.identify_host("x.acme.example"), Identified::App { idx, .. } if idx == acme));

        // A hand-broken installed file is skipped with its error, not fatal.
        std::fs::write(&done.path, "[[app]]\nid = \"acme\"\nscore = \"high\"\n").unwrap();
        let c = configured(Some(&dir), &[]).unwrap();
        assert!(c.files.is_empty() && c.catalog.find_by_id("acme").is_none());
        let e = c.skipped.first().unwrap().to_string();
        assert!(e.contains("my_apps_.toml:3: app[0].score"), "{e}");
    }

    #[test]
    fn install_refuses_a_bad_file_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("bad.csv");
        std::fs::write(&src, "id,category\nok,Webmail\nbad,Spaceships\n").unwrap();
        let dir = tmp.path().join("catalog.d");
        let e = install_file(&src, &dir).err().unwrap().to_string();
        assert!(e.ends_with("bad.csv:3: category: unknown category \"Spaceships\" (one of: Collaboration, Cloud storage, Generative AI, Social network, Webmail, Communication, Remote access, VPN / proxy, Developer tools, Ad tracking, Productivity, CRM, Media, Security, CDN / hosting, Other, Unknown)"), "{e}");
        assert!(!dir.exists());
        assert_eq!(installed_files(&dir).unwrap(), Vec::<PathBuf>::new());
    }

    #[test]
    fn unknown_extension_is_installed_under_the_format_it_parsed_as() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("apps.txt");
        std::fs::write(&src, "id,domains\nzed,zed.example\n").unwrap();
        let done = install_file(&src, &tmp.path().join("d")).unwrap();
        assert_eq!((done.format, done.path.file_name().unwrap().to_str().unwrap()), (UserFormat::Csv, "apps.csv"));
    }
}
