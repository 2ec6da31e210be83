//! Semantic styles. The default uses the 16 ANSI colours and the terminal's own background;
//! under `NO_COLOR` only bold / reverse / underline remain, and every severity, risk and tag
//! also carries a text marker so nothing is conveyed by colour alone.
use crate::app::palette::Palette;
use crate::domain::{RiskLevel, Severity, Tag};
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theme {
    pub color: bool,
    pub p: Palette,
}

impl Theme {
    pub fn new(no_color: bool, p: Palette) -> Theme {
        Theme { color: !no_color, p }
    }
    fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }
    pub fn header(&self) -> Style {
        if self.color {
            Style::default().fg(self.p.header_fg).bg(self.p.header_bg)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
    pub fn dim(&self) -> Style {
        self.fg(self.p.dim)
    }
    pub fn accent(&self) -> Style {
        self.fg(self.p.accent).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn marked(&self) -> Style {
        self.fg(self.p.marked).add_modifier(Modifier::BOLD)
    }
    pub fn error(&self) -> Style {
        self.fg(self.p.error).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(self.p.ok)
    }
    pub fn key(&self) -> Style {
        self.fg(self.p.key).add_modifier(Modifier::BOLD)
    }
    pub fn risk(&self, level: RiskLevel) -> Style {
        match level {
            RiskLevel::High => self.fg(self.p.high).add_modifier(Modifier::BOLD),
            RiskLevel::Medium => self.fg(self.p.medium),
            RiskLevel::Low => self.fg(self.p.low),
        }
    }
    pub fn tag(&self, tag: Tag) -> Style {
        match tag {
            Tag::Unsanctioned => self.fg(self.p.high).add_modifier(Modifier::BOLD),
            Tag::Sanctioned => self.fg(self.p.low),
            Tag::Monitored => self.fg(self.p.medium),
            Tag::None => self.dim(),
        }
    }
    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::High => self.fg(self.p.high).add_modifier(Modifier::BOLD),
            Severity::Medium => self.fg(self.p.medium),
            Severity::Low => self.fg(self.p.info),
            Severity::Informational => self.dim(),
        }
    }
    pub fn user_risk(&self, score: u32) -> Style {
        if score >= 50 {
            self.fg(self.p.high).add_modifier(Modifier::BOLD)
        } else if score >= 20 {
            self.fg(self.p.medium)
        } else {
            Style::default()
        }
    }
}
