//! The user's config file: `$XDG_CONFIG_HOME/shadowscope/config.toml` (or `--config PATH`).
//!
//! Top-level tables: `[sync]` (the Microsoft API sync, see [`crate::sync::SyncConfig`]),
//! `[theme]` and `[keys]`. Unknown keys anywhere are errors naming the key, so a typo fails
//! loudly instead of silently disabling something.
use crate::sync::SyncConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub sync: Option<SyncConfig>,
    /// Typed by the console later; kept verbatim until then.
    #[serde(default)]
    pub theme: Option<toml::Table>,
    #[serde(default)]
    pub keys: Option<toml::Table>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: String, message: String },
    #[error(
        "no [sync] table in {path}. Add one with tenant, client_id and secret_file (or secret_env); `shadowscope fake-tenant` prints an example"
    )]
    NoSync { path: String },
}

/// `$XDG_CONFIG_HOME/shadowscope/config.toml`.
pub fn default_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "shadowscope")
        .map(|d| d.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from("shadowscope.toml"))
}

fn shown(path: &Path) -> String {
    crate::sanitize::display_safe(&path.to_string_lossy()).into_owned()
}

impl FileConfig {
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown(path),
            message: crate::sanitize::display_safe(e.message()).into_owned(),
        })
    }

    /// Loads `explicit` (which must exist) or the default path (absent = empty config).
    pub fn load(explicit: Option<&Path>) -> Result<(FileConfig, PathBuf), ConfigError> {
        let path = explicit.map(Path::to_path_buf).unwrap_or_else(default_path);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((FileConfig::parse(&text, &path)?, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                Ok((FileConfig::default(), path))
            }
            Err(source) => Err(ConfigError::Read { path: shown(&path), source }),
        }
    }

    /// The `[sync]` table, or an error saying how to add one.
    pub fn require_sync(&self, path: &Path) -> Result<&SyncConfig, ConfigError> {
        self.sync.as_ref().ok_or_else(|| ConfigError::NoSync { path: shown(path) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables_and_rejects_unknown_keys() {
        let p = Path::new("c.toml");
        let c = FileConfig::parse(
            "[sync]\ntenant = \"t\"\nclient_id = \"c\"\nsecret_env = \"S\"\n[sync.sources]\nmdca_alerts = true\n[theme]\naccent = \"blue\"\n",
            p,
        )
        .unwrap();
        let sync = c.require_sync(p).unwrap();
        assert_eq!(sync.tenant, "t");
        assert!(sync.sources.mdca_alerts);
        assert!(!sync.sources.indicators);
        assert_eq!(c.theme.unwrap()["accent"].as_str(), Some("blue"));

        let err = FileConfig::parse("[sinc]\ntenant = \"t\"\n", p).unwrap_err().to_string();
        assert!(err.contains("sinc"), "{err}");
        let err = FileConfig::parse("[sync]\ntenant = \"t\"\nclient_id = \"c\"\nclientsecret = \"x\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("clientsecret"), "{err}");
        let err = FileConfig::parse("", p).unwrap().require_sync(p).unwrap_err().to_string();
        assert!(err.contains("[sync]"), "{err}");
    }

    #[test]
    fn missing_default_is_empty_but_missing_explicit_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        assert!(FileConfig::load(Some(&missing)).is_err());
    }
}

#[cfg(test)]
mod readme_example {
    use super::*;

    /// The config file shown in the README is the one users copy: it must stay valid.
    #[test]
    fn the_readme_example_parses_and_applies() {
        let readme = include_str!("../README.md");
        let start = readme.find("### Config file").expect("README has a config section");
        let block = &readme[start..];
        let body = block.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
        let cfg = FileConfig::parse(body, Path::new("README.md")).unwrap();
        let keys = crate::app::keymap::Keymap::with_overrides(cfg.keys.as_ref().unwrap()).unwrap();
        assert_eq!(
            keys.action_for(crate::app::keymap::Key::ch('U')),
            Some(crate::app::keymap::Action::TagUnsanctioned)
        );
        crate::app::palette::Palette::with_overrides(cfg.theme.as_ref().unwrap()).unwrap();
        let sync = cfg.sync.unwrap();
        assert!(sync.sources.risky_users);
        assert!(sync.secret_file.is_some());
    }
}
