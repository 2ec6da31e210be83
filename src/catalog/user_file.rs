//! User catalog file: adds apps or overrides built-in ones. Chosen by extension (`.toml`,
//! `.csv`); any other extension is tried as TOML, then CSV.
//!
//! **TOML** — an array of `[[app]]` tables; only `id` is required:
//!
//! ```toml
//! [[app]]
//! id = "acme-drive"                 # new id adds an app, existing id overrides it
//! name = "Acme Drive"
//! vendor = "Acme Corp"
//! category = "Cloud storage"        # a Category label or variant name
//! domains = ["acmedrive.com", "full:up.acme.io", "keyword:acmedrv", "regexp:^cdn[0-9]+\\.acme\\.net$"]
//! aliases = ["acme-drive-base"]     # appliance app names (PAN App-ID, FortiGate …)
//! ips = ["203.0.113.0/24"]
//! score = 3.0                       # optional: pins the risk score (0–10)
//! ```
//!
//! **CSV** — a header row naming the columns (`id` required; `name`, `vendor`, `category`,
//! `domains`, `aliases`, `ips`, `score` optional, any order). List cells separate items with
//! `;` (domains and ips also with spaces); lines starting with `#` are skipped:
//!
//! ```text
//! id,name,vendor,category,domains,score
//! acme-drive,Acme Drive,Acme Corp,Cloud storage,acmedrive.com;full:up.acme.io,3
//! ```
//!
//! Overrides: given fields replace the built-in ones; `domains` rules are added to the app and
//! win over a built-in rule with the same kind and value; `aliases` and `ips` are added. Without
//! `score` the risk is recomputed from the (possibly new) category.
//!
//! Errors name the file and the line (`catalog.toml:7: app[1].score: expected a number`); a
//! TOML error the line of which cannot be told (inline tables) names the key instead
//! (`catalog.toml: app[2].category: …`).
use super::matcher::{Rule, RuleKind, validate_regex};
use super::{AppIdx, Category, Cidr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Written `file:line: message`, as compilers do, so editors can jump to it.
    #[error("{}:{line}: {message}", path.display())]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{}: {key}: {message}", path.display())]
    Key { path: PathBuf, key: String, message: String },
    /// [`super::Catalog::install`] after the process already chose its catalog.
    #[error("the catalog of this process is already in use; install it before the first look-up")]
    AlreadyInstalled,
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One entry of a user file, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserApp {
    pub id: String,
    pub name: Option<String>,
    pub vendor: Option<String>,
    pub category: Option<Category>,
    /// Rules with a placeholder app index (the merge sets it).
    pub rules: Vec<Rule>,
    pub aliases: Vec<String>,
    pub cidrs: Vec<Cidr>,
    pub score: Option<f32>,
}

/// Largest user file we read: a catalog, not a data set.
const MAX_BYTES: u64 = 16 << 20;

pub(crate) fn load(path: &Path) -> Result<Vec<UserApp>, CatalogError> {
    let bytes = read_limited(path)?;
    parse_bytes(&bytes, path).map(|(apps, _)| apps)
}

/// The two user-file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFormat {
    Toml,
    Csv,
}

impl UserFormat {
    pub fn extension(self) -> &'static str {
        match self {
            UserFormat::Toml => "toml",
            UserFormat::Csv => "csv",
        }
    }
}

/// Reads a user file, refusing one larger than a catalog can plausibly be.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, CatalogError> {
    let io = |source| CatalogError::Io { path: path.to_path_buf(), source };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_BYTES {
        return Err(CatalogError::Key {
            path: path.to_path_buf(),
            key: "file".into(),
            message: format!("{len} bytes is larger than the {MAX_BYTES}-byte limit"),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    // The file may have grown between the two calls.
    if bytes.len() as u64 > MAX_BYTES {
        return Err(CatalogError::Key {
            path: path.to_path_buf(),
            key: "file".into(),
            message: format!("larger than the {MAX_BYTES}-byte limit"),
        });
    }
    Ok(bytes)
}

/// Parses the bytes of a user file; `path` names it in errors and its extension picks the
/// format (anything but `.toml` / `.csv` is tried as TOML, then CSV).
pub(crate) fn parse_bytes(bytes: &[u8], path: &Path) -> Result<(Vec<UserApp>, UserFormat), CatalogError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CatalogError::Line {
        path: path.to_path_buf(),
        line: line_of_bytes(bytes, e.valid_up_to()),
        message: "not UTF-8 text".into(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") => parse_toml(text, path).map(|a| (a, UserFormat::Toml)),
        Some("csv") => parse_csv(text, path).map(|a| (a, UserFormat::Csv)),
        _ => parse_toml(text, path)
            .map(|a| (a, UserFormat::Toml))
            .or_else(|e| parse_csv(text, path).map(|a| (a, UserFormat::Csv)).map_err(|_| e)),
    }
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    bytes.get(..offset).map(|b| memchr::memchr_iter(b'\n', b).count() + 1).unwrap_or(1)
}

/// Line of `field` inside the `index`-th `[[app]]` table, for errors the parsed table cannot
/// place (it keeps no spans). `None` for inline tables (`app = [{ … }]`).
fn toml_line_of(text: &str, index: usize, field: Option<&str>) -> Option<usize> {
    let is_header = |l: &str| {
        let l = l.trim_start();
        l.starts_with("[[") && l.trim_start_matches('[').trim_start().starts_with("app")
    };
    let mut headers = text.lines().enumerate().filter(|(_, l)| is_header(l));
    let (start, _) = headers.nth(index)?;
    let Some(field) = field else { return Some(start + 1) };
    let found = text.lines().enumerate().skip(start + 1).take_while(|(_, l)| !l.trim_start().starts_with('[')).find(
        |(_, l)| {
            l.trim_start()
                .strip_prefix(field)
                .or_else(|| l.trim_start().strip_prefix(&format!("\"{field}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        },
    );
    Some(found.map_or(start, |(i, _)| i) + 1)
}

/// Which field of which entry a problem is in; turned into a [`CatalogError`] with the path.
struct FieldError {
    field: String,
    message: String,
}

fn ferr(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_string(), message: message.into() }
}

struct Fields<'a> {
    id: &'a str,
    name: Option<&'a str>,
    vendor: Option<&'a str>,
    category: Option<&'a str>,
    domains: Vec<&'a str>,
    aliases: Vec<&'a str>,
    ips: Vec<&'a str>,
    score: Option<f32>,
}

fn validate(f: Fields<'_>) -> Result<UserApp, FieldError> {
    let id = f.id.trim();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(ferr("id", format!("{id:?} is not a slug (letters, digits, - _ .)")));
    }
    let category = match f.category.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(Category::parse(c).ok_or_else(|| {
            let all: Vec<&str> = Category::ALL.iter().map(|c| c.label()).collect();
            ferr("category", format!("unknown category {c:?} (one of: {})", all.join(", ")))
        })?),
        None => None,
    };
    let mut rules = Vec::new();
    for d in f.domains.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        let r = Rule::parse_v2fly(d, AppIdx(u32::MAX))
            .ok_or_else(|| ferr("domains", format!("{d:?} is not a rule (domain, full:, keyword:, regexp:)")))?;
        if r.kind == RuleKind::Regexp {
            validate_regex(&r.value).map_err(|e| ferr("domains", format!("bad regexp {:?}: {e}", r.value)))?;
        }
        rules.push(r);
    }
    let mut cidrs = Vec::new();
    for ip in f.ips.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        cidrs.push(Cidr::parse(ip).ok_or_else(|| ferr("ips", format!("{ip:?} is not an IP or CIDR")))?);
    }
    if let Some(s) = f.score
        && !(0.0..=10.0).contains(&s)
    {
        return Err(ferr("score", format!("{s} is outside 0–10")));
    }
    let text = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    Ok(UserApp {
        id: id.to_string(),
        name: text(f.name),
        vendor: text(f.vendor),
        category,
        rules,
        aliases: f.aliases.iter().map(|a| a.trim()).filter(|a| !a.is_empty()).map(str::to_string).collect(),
        cidrs,
        score: f.score,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map(|t| t.matches('\n').count() + 1).unwrap_or(1)
}

fn parse_toml(text: &str, path: &Path) -> Result<Vec<UserApp>, CatalogError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| CatalogError::Line {
        path: path.to_path_buf(),
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
        message: e.message().to_string(),
    })?;
    let key_err = |key: String, message: String| {
        // `app[3].score` → the line of `score =` in the fourth [[app]] table.
        let place = key.strip_prefix("app[").and_then(|r| r.split_once(']')).and_then(|(i, rest)| {
            let field = rest.strip_prefix('.').map(|f| f.split('.').next().unwrap_or(f));
            toml_line_of(text, i.parse().ok()?, field)
        });
        match place {
            Some(line) => CatalogError::Line { path: path.to_path_buf(), line, message: format!("{key}: {message}") },
            None => CatalogError::Key { path: path.to_path_buf(), key, message },
        }
    };
    if let Some(k) = table.keys().find(|k| *k != "app") {
        return Err(key_err(k.clone(), "unknown top-level key (expected [[app]] tables)".into()));
    }
    let Some(apps) = table.get("app") else {
        return Ok(Vec::new());
    };
    let apps = apps.as_array().ok_or_else(|| key_err("app".into(), "expected [[app]] tables".into()))?;
    let mut out = Vec::new();
    for (i, v) in apps.iter().enumerate() {
        let at = |field: &str| format!("app[{i}].{field}");
        let t = v.as_table().ok_or_else(|| key_err(format!("app[{i}]"), "expected a table".into()))?;
        const KNOWN: [&str; 8] = ["id", "name", "vendor", "category", "domains", "aliases", "ips", "score"];
        if let Some(k) = t.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(key_err(at(k), format!("unknown key (expected one of {})", KNOWN.join(", "))));
        }
        let s = |field: &str| -> Result<Option<&str>, CatalogError> {
            match t.get(field) {
                None => Ok(None),
                Some(v) => v.as_str().map(Some).ok_or_else(|| key_err(at(field), "expected a string".into())),
            }
        };
        let list = |field: &str| -> Result<Vec<&str>, CatalogError> {
            match t.get(field) {
                None => Ok(Vec::new()),
                Some(toml::Value::String(one)) => Ok(vec![one.as_str()]),
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .map(|x| x.as_str().ok_or_else(|| key_err(at(field), "expected an array of strings".into())))
                    .collect(),
                Some(_) => Err(key_err(at(field), "expected an array of strings".into())),
            }
        };
        let score = match t.get("score") {
            None => None,
            Some(toml::Value::Float(f)) => Some(*f as f32),
            Some(toml::Value::Integer(n)) => Some(*n as f32),
            Some(_) => return Err(key_err(at("score"), "expected a number".into())),
        };
        let id = s("id")?.ok_or_else(|| key_err(at("id"), "missing (every [[app]] needs an id)".into()))?;
        let fields = Fields {
            id,
            name: s("name")?,
            vendor: s("vendor")?,
            category: s("category")?,
            domains: list("domains")?,
            aliases: list("aliases")?,
            ips: list("ips")?,
            score,
        };
        out.push(validate(fields).map_err(|e| key_err(at(&e.field), e.message))?);
    }
    Ok(out)
}

fn parse_csv(text: &str, path: &Path) -> Result<Vec<UserApp>, CatalogError> {
    let line_err = |line: usize, message: String| CatalogError::Line { path: path.to_path_buf(), line, message };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> =
        rdr.headers().map_err(|e| line_err(1, e.to_string()))?.iter().map(|h| h.to_ascii_lowercase()).collect();
    const KNOWN: [&str; 8] = ["id", "name", "vendor", "category", "domains", "aliases", "ips", "score"];
    if let Some(h) = headers.iter().find(|h| !KNOWN.contains(&h.as_str())) {
        return Err(line_err(1, format!("unknown column {h:?} (expected {})", KNOWN.join(", "))));
    }
    if !headers.iter().any(|h| h == "id") {
        return Err(line_err(1, "the header needs an `id` column".into()));
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            line_err(line, e.to_string())
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        if rec.iter().all(|c| c.is_empty()) || rec.get(0).is_some_and(|c| c.starts_with('#')) {
            continue;
        }
        if rec.len() > headers.len() {
            return Err(line_err(line, format!("{} cells but the header has {}", rec.len(), headers.len())));
        }
        let get = |name: &str| col(name).and_then(|i| rec.get(i)).filter(|c| !c.is_empty());
        // Aliases may contain spaces (FortiGate's `Microsoft Office 365`): `;` separates them.
        let items = |name: &str, seps: &[char]| -> Vec<&str> {
            get(name).map(|c| c.split(seps).filter(|x| !x.is_empty()).collect()).unwrap_or_default()
        };
        let score = match get("score") {
            None => None,
            Some(s) => Some(s.parse::<f32>().map_err(|_| line_err(line, format!("score: {s:?} is not a number")))?),
        };
        let fields = Fields {
            id: get("id").ok_or_else(|| line_err(line, "id: missing".into()))?,
            name: get("name"),
            vendor: get("vendor"),
            category: get("category"),
            domains: items("domains", &[';', ' ']),
            aliases: items("aliases", &[';']),
            ips: items("ips", &[';', ' ']),
            score,
        };
        out.push(validate(fields).map_err(|e| line_err(line, format!("{}: {}", e.field, e.message)))?);
    }
    Ok(out)
}
