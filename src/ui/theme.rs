//! Semantic styles. The default uses the 16 ANSI colours and the terminal's own background;
//! under `NO_COLOR` only bold / reverse / underline remain, and every severity, risk and tag
//! also carries a text marker so nothing is conveyed by colour alone.
use crate::domain::{RiskLevel, Severity, Tag};
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(no_color: bool) -> Theme {
        Theme { color: !no_color }
    }
    fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }
    pub fn header(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn marked(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn key(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn risk(&self, level: RiskLevel) -> Style {
        match level {
            RiskLevel::High => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            RiskLevel::Medium => self.fg(Color::Yellow),
            RiskLevel::Low => self.fg(Color::Green),
        }
    }
    pub fn tag(&self, tag: Tag) -> Style {
        match tag {
            Tag::Unsanctioned => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Tag::Sanctioned => self.fg(Color::Green),
            Tag::Monitored => self.fg(Color::Yellow),
            Tag::None => self.dim(),
        }
    }
    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::High => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Medium => self.fg(Color::Yellow),
            Severity::Low => self.fg(Color::Blue),
            Severity::Informational => self.dim(),
        }
    }
    pub fn user_risk(&self, score: u32) -> Style {
        if score >= 50 {
            self.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else if score >= 20 {
            self.fg(Color::Yellow)
        } else {
            Style::default()
        }
    }
}
