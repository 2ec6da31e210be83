//! Colours by role, with the config file's `[theme]` applied. Plain data: the renderer turns it
//! into styles (and ignores it under `NO_COLOR`, where text markers carry the meaning).
use ratatui::style::Color;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub header_fg: Color,
    pub header_bg: Color,
    pub accent: Color,
    pub dim: Color,
    pub error: Color,
    pub ok: Color,
    pub key: Color,
    pub marked: Color,
    /// High risk / severity, Unsanctioned.
    pub high: Color,
    /// Medium risk / severity, Monitored.
    pub medium: Color,
    /// Low risk, Sanctioned.
    pub low: Color,
    /// Low severity.
    pub info: Color,
}

impl Default for Palette {
    fn default() -> Palette {
        // The 16 ANSI colours: they follow the terminal's own scheme, light or dark.
        Palette {
            header_fg: Color::Black,
            header_bg: Color::Cyan,
            accent: Color::Cyan,
            dim: Color::DarkGray,
            error: Color::Red,
            ok: Color::Green,
            key: Color::Yellow,
            marked: Color::Yellow,
            high: Color::Red,
            medium: Color::Yellow,
            low: Color::Green,
            info: Color::Blue,
        }
    }
}

const ROLES: &[&str] =
    &["header_fg", "header_bg", "accent", "dim", "error", "ok", "key", "marked", "high", "medium", "low", "info"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaletteError {
    #[error("[theme] {0}: no such colour role (roles: {1})")]
    UnknownRole(String, String),
    #[error(
        "[theme] {role}: {value:?} is not a colour (write a name such as \"red\" or \"lightblue\", \"#ff8800\", or an index 0–255)"
    )]
    BadColor { role: String, value: String },
}

impl Palette {
    /// The defaults with `[theme]` applied, e.g. `accent = "magenta"`, `high = "#ff5f5f"`,
    /// `dim = "244"`.
    pub fn with_overrides(table: &toml::Table) -> Result<Palette, PaletteError> {
        let mut p = Palette::default();
        for (role, value) in table {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => other.to_string(),
            };
            let color = Color::from_str(text.trim()).map_err(|_| PaletteError::BadColor {
                role: crate::sanitize::display_safe(role).into(),
                value: crate::sanitize::display_safe(&text).into(),
            })?;
            let slot = match role.as_str() {
                "header_fg" => &mut p.header_fg,
                "header_bg" => &mut p.header_bg,
                "accent" => &mut p.accent,
                "dim" => &mut p.dim,
                "error" => &mut p.error,
                "ok" => &mut p.ok,
                "key" => &mut p.key,
                "marked" => &mut p.marked,
                "high" => &mut p.high,
                "medium" => &mut p.medium,
                "low" => &mut p.low,
                "info" => &mut p.info,
                _ => {
                    return Err(PaletteError::UnknownRole(
                        crate::sanitize::display_safe(role).into(),
                        ROLES.join(", "),
                    ));
                }
            };
            *slot = color;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_overrides_and_errors_name_the_entry() {
        let t: toml::Table = toml::from_str("accent = \"magenta\"\nhigh = \"#ff5f5f\"\ndim = 244").unwrap();
        let p = Palette::with_overrides(&t).unwrap();
        assert_eq!((p.accent, p.high, p.dim), (Color::Magenta, Color::Rgb(0xff, 0x5f, 0x5f), Color::Indexed(244)));
        assert_eq!(p.error, Palette::default().error);
        let t: toml::Table = toml::from_str("acent = \"red\"").unwrap();
        let e = Palette::with_overrides(&t).unwrap_err().to_string();
        assert!(e.starts_with("[theme] acent: no such colour role"), "{e}");
        let t: toml::Table = toml::from_str("accent = \"reddish\"").unwrap();
        let e = Palette::with_overrides(&t).unwrap_err().to_string();
        assert!(e.starts_with("[theme] accent: \"reddish\" is not a colour"), "{e}");
    }
}
