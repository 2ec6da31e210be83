//! Pure rendering of `&State`. Every untrusted string goes through `sanitize::display_safe`
//! (via `safe`) before it becomes a span; nothing here reads the cache, the network or the clock.
pub mod theme;

use crate::app::table::{Cell, Column, TableView, human_bytes};
use crate::app::{Entry, Mode, Pending, Route, State, detail_header_height};
use crate::sanitize::display_safe;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Clear, Paragraph, Row, Sparkline, Table, Wrap};
use theme::Theme;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

fn safe(s: &str) -> String {
    display_safe(s).into_owned()
}

/// Cuts a (sanitised) string to `w` display cells with an ellipsis.
fn fit(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    let total: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= w {
        return s.to_string();
    }
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

pub fn render(f: &mut Frame<'_>, state: &State) {
    let area = f.area();
    let theme = Theme::new(state.no_color, state.palette);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "Terminal too small: need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}. Enlarge it, or press q to quit.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, crumbs, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)])
            .areas(area);
    render_header(f, header, state, &theme);
    render_crumbs(f, crumbs, state, &theme);
    let entry = state.current();
    match (&entry.data, entry.route) {
        (None, _) => {
            let text = match &entry.error {
                Some(e) => Line::styled(format!("Could not load: {}", safe(e)), theme.error()),
                None => Line::styled("Loading…", theme.dim()),
            };
            f.render_widget(Paragraph::new(text).block(Block::bordered()), body);
        }
        (Some(_), Route::Dashboard) => render_dashboard(f, body, entry, &theme),
        (Some(_), r) if r.is_list() => render_tables(f, body, entry, &theme),
        (Some(_), _) => render_detail(f, body, entry, &theme),
    }
    render_footer(f, footer, state, &theme);
    match &state.mode {
        Mode::Help => render_help(f, area, state, &theme),
        Mode::Confirm(p) => render_confirm(f, area, p, &theme),
        Mode::History { selected } => render_history(f, area, state, *selected, &theme),
        _ => {}
    }
}

fn render_header(f: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let mut spans = vec![
        Span::styled(" shadowscope ", theme.header().add_modifier(Modifier::BOLD)),
        Span::raw(" "),
        Span::styled(safe(&state.source), theme.dim()),
        Span::raw("  period "),
        Span::styled(state.period.label(), theme.accent()),
    ];
    if state.read_only {
        spans.push(Span::styled("  [READ-ONLY]", theme.error()));
    }
    if state.mouse {
        spans.push(Span::styled("  [mouse]", theme.dim()));
    }
    if let Some(s) = &state.busy {
        spans.push(Span::styled(format!("  ⟳ {}", safe(s)), theme.accent()));
    }
    if let Some(s) = &state.status {
        spans.push(Span::raw("  "));
        let style = if s.error { theme.error() } else { theme.ok() };
        spans.push(Span::styled(if s.error { format!("✗ {}", safe(&s.text)) } else { safe(&s.text) }, style));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn route_title(e: &Entry) -> String {
    let kind = match e.route {
        Route::Dashboard => return "Dashboard".into(),
        Route::Apps => return "Apps".into(),
        Route::Users => return "Users".into(),
        Route::Devices => return "Devices".into(),
        Route::Alerts => return "Alerts".into(),
        Route::Audit => return "Audit".into(),
        Route::Settings => return "Settings".into(),
        Route::User(_) => "user",
        Route::Device(_) => "device",
        Route::App(_) => "app",
        Route::UserOnDevice(..) => "user@device",
    };
    match &e.data {
        Some(d) => format!("{kind} {}", safe(&d.label)),
        None => format!("{kind} …"),
    }
}

fn render_crumbs(f: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let mut spans = Vec::new();
    // Show the tail of the trail when it is too long for the line.
    let start = state.cursor.saturating_sub(5);
    if start > 0 {
        spans.push(Span::styled("… › ", theme.dim()));
    }
    for (i, e) in state.stack.iter().enumerate().skip(start) {
        if i > start {
            spans.push(Span::styled(" › ", theme.dim()));
        }
        let title = fit(&route_title(e), 34);
        let style = if i == state.cursor {
            theme.accent().add_modifier(Modifier::UNDERLINED)
        } else if i > state.cursor {
            theme.dim().add_modifier(Modifier::ITALIC)
        } else {
            Style::default()
        };
        spans.push(Span::styled(title, style));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_footer(f: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let line = match &state.mode {
        Mode::Filter => {
            let filter = state.current().focused().map(|t| t.filter.as_str()).unwrap_or("");
            Line::from(vec![
                Span::styled("/", theme.key()),
                Span::raw(safe(filter)),
                Span::styled("█", theme.dim()),
                Span::styled("   Enter keep · Esc clear", theme.dim()),
            ])
        }
        Mode::Command { input, error } => {
            let mut spans =
                vec![Span::styled(":", theme.key()), Span::raw(safe(input)), Span::styled("█", theme.dim())];
            if let Some(e) = error {
                spans.push(Span::styled(format!("   {}", safe(e)), theme.error()));
            } else {
                spans.push(Span::styled("   Tab completes · Enter runs · Esc cancels", theme.dim()));
            }
            Line::from(spans)
        }
        _ => {
            let mut spans = Vec::new();
            for (k, h) in state.keymap.hints() {
                spans.push(Span::styled(k.to_string(), theme.key()));
                spans.push(Span::raw(format!(" {h}  ")));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A text cell with the characters the filter matched underlined (visible without colour too).
fn highlighted(text: &str, w: usize, words: &str, theme: &Theme) -> Line<'static> {
    let shown = fit(&safe(text), w);
    let hits = crate::app::table::match_positions(words, &shown);
    if hits.is_empty() {
        return Line::raw(shown);
    }
    let hit = theme.accent().add_modifier(Modifier::UNDERLINED);
    let spans: Vec<Span<'static>> =
        shown
            .chars()
            .enumerate()
            .map(|(i, ch)| {
                if hits.binary_search(&i).is_ok() {
                    Span::styled(ch.to_string(), hit)
                } else {
                    Span::raw(ch.to_string())
                }
            })
            .collect();
    Line::from(spans)
}

fn cell_span(c: &Cell, w: usize, theme: &Theme) -> Span<'static> {
    match c {
        Cell::Text(s) => Span::raw(fit(&safe(s), w)),
        Cell::Num(n) => Span::raw(format!("{n:>w$}")),
        Cell::Bytes(b) => Span::raw(format!("{:>w$}", human_bytes(*b))),
        Cell::Risk(r) => Span::styled(format!("{:>2} {:<4}", r.to_string(), r.level().label()), theme.risk(r.level())),
        Cell::UserRisk(s, ir) => {
            let marker = match ir {
                crate::domain::IdentityRisk::High => "!!",
                crate::domain::IdentityRisk::Medium => "! ",
                _ => "  ",
            };
            Span::styled(format!("{s:>3} {marker} {}", &ir.as_str()[..ir.as_str().len().min(4)]), theme.user_risk(*s))
        }
        Cell::Tag(t) => Span::styled(t.label().to_string(), theme.tag(*t)),
        Cell::Day(_) | Cell::Time(_) => Span::raw(fit(&c.plain(), w)),
        Cell::Spark(v) => Span::styled(spark(v, w), theme.accent()),
        Cell::Sev(s) => Span::styled(s.marker().to_string(), theme.severity(*s)),
    }
}

/// A one-line sparkline of the last `w` values.
pub fn spark(values: &[u64], w: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(w)..];
    let max = tail.iter().copied().max().unwrap_or(0);
    tail.iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                ' '
            } else {
                BARS[(((v as f64 / max as f64) * 8.0).ceil() as usize).clamp(1, 8) - 1]
            }
        })
        .collect()
}

/// Chooses the columns that fit in `width`, dropping the highest priority numbers first.
pub fn fit_columns(columns: &[Column], width: u16) -> Vec<usize> {
    let mut chosen: Vec<usize> = (0..columns.len()).collect();
    let need = |set: &[usize]| -> u16 { set.iter().map(|&i| columns[i].width + 1).sum::<u16>() + 2 };
    while need(&chosen) > width && chosen.len() > 1 {
        let drop = chosen
            .iter()
            .enumerate()
            .filter(|(_, i)| columns[**i].priority > 0)
            .max_by_key(|(pos, i)| (columns[**i].priority, *pos))
            .map(|(pos, _)| pos);
        match drop {
            Some(pos) => {
                chosen.remove(pos);
            }
            None => break,
        }
    }
    chosen
}

fn render_table(f: &mut Frame<'_>, area: Rect, view: &TableView, focused: bool, theme: &Theme) {
    let cols = fit_columns(&view.table.columns, area.width);
    let words = if view.filter.is_empty() { String::new() } else { view.fuzzy_words() };
    let widths: Vec<Constraint> = cols
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            if n == 0 {
                Constraint::Min(view.table.columns[i].width)
            } else {
                Constraint::Length(view.table.columns[i].width)
            }
        })
        .collect();
    let header = Row::new(cols.iter().map(|&i| {
        let c = &view.table.columns[i];
        let arrow = match view.sort {
            Some((s, true)) if s == i => " ▼",
            Some((s, false)) if s == i => " ▲",
            _ => "",
        };
        Span::styled(format!("{}{arrow}", c.title), Style::default().add_modifier(Modifier::BOLD))
    }));
    let body_h = area.height.saturating_sub(3) as usize;
    let offset = view.offset.min(view.visible.len().saturating_sub(body_h.max(1)));
    let rows: Vec<Row> = view
        .visible
        .iter()
        .enumerate()
        .skip(offset)
        .take(body_h)
        .map(|(pos, &ri)| {
            let row = &view.table.rows[ri];
            let cells: Vec<Line> = cols
                .iter()
                .map(|&ci| {
                    let w = view.table.columns[ci].width as usize;
                    match row.cells.get(ci) {
                        Some(Cell::Text(t)) if !words.is_empty() => highlighted(t, w, &words, theme),
                        Some(c) => Line::from(cell_span(c, w, theme)),
                        None => Line::default(),
                    }
                })
                .collect();
            let mut style = Style::default();
            if view.marks.contains(&ri) {
                style = theme.marked();
            }
            if pos == view.selected && focused {
                style = style.patch(theme.selected());
            }
            let mut r = Row::new(cells).style(style);
            if view.marks.contains(&ri) {
                r = r.style(style);
            }
            r
        })
        .collect();
    let mut title = format!(" {} ({}", safe(&view.table.title), view.visible.len());
    if view.visible.len() != view.table.rows.len() {
        title.push_str(&format!(" of {}", view.table.rows.len()));
    }
    title.push(')');
    if !view.filter.is_empty() {
        title.push_str(&format!(" /{}", safe(&view.filter)));
    }
    if !view.marks.is_empty() {
        title.push_str(&format!(" · {} marked", view.marks.len()));
    }
    title.push(' ');
    let border = if focused { theme.accent() } else { theme.dim() };
    let block = Block::bordered().title(Span::styled(title, border)).border_style(border);
    let table = Table::new(rows, widths).header(header).block(block).column_spacing(1);
    f.render_widget(table, area);
}

fn render_tables(f: &mut Frame<'_>, area: Rect, entry: &Entry, theme: &Theme) {
    if let Some(t) = entry.focused() {
        render_table(f, area, t, true, theme);
    }
}

fn facts_lines(entry: &Entry, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let Some(d) = &entry.data else { return Vec::new() };
    let half = (width as usize).saturating_sub(4) / 2;
    let mut lines = Vec::new();
    for pair in d.facts.chunks(2).take(4) {
        let mut spans = Vec::new();
        for (k, v) in pair {
            let text = fit(&format!("{}: {}", k, safe(v)), half.saturating_sub(1));
            let (name, value) =
                text.split_once(": ").map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((text, String::new()));
            let pad = half.saturating_sub(name.chars().count() + value.chars().count() + 2);
            spans.push(Span::styled(format!("{name}: "), theme.dim()));
            spans.push(Span::styled(value, Style::default().add_modifier(Modifier::BOLD)));
            spans.push(Span::raw(" ".repeat(pad + 1)));
        }
        lines.push(Line::from(spans));
    }
    for n in d.notes.iter().take(3) {
        lines.push(Line::styled(fit(&safe(n), width as usize - 4), theme.dim()));
    }
    lines
}

fn render_detail(f: &mut Frame<'_>, area: Rect, entry: &Entry, theme: &Theme) {
    let Some(d) = &entry.data else { return };
    let head_h = detail_header_height(entry) as u16;
    let [head, tabs, table] =
        Layout::vertical([Constraint::Length(head_h), Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let block = Block::bordered().title(Span::styled(format!(" {} ", fit(&route_title(entry), 60)), theme.accent()));
    let inner = block.inner(head);
    f.render_widget(block, head);
    let lines = facts_lines(entry, theme, head.width);
    let n = lines.len() as u16;
    f.render_widget(Paragraph::new(lines), inner);
    if !d.trend.is_empty() && inner.height > n {
        let spark_area = Rect { y: inner.y + n, height: (inner.height - n).min(3), ..inner };
        let data: Vec<u64> = d.trend[d.trend.len().saturating_sub(spark_area.width as usize)..].to_vec();
        f.render_widget(Sparkline::default().data(&data).style(theme.accent()), spark_area);
    }
    let mut spans = Vec::new();
    for (i, t) in entry.tables.iter().enumerate() {
        let label = format!(" {} ({}) ", safe(&t.table.title), t.table.rows.len());
        spans.push(if i == entry.pane {
            Span::styled(label, theme.selected())
        } else {
            Span::styled(label, theme.dim())
        });
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled(" Tab switches", theme.dim()));
    f.render_widget(Paragraph::new(Line::from(spans)), tabs);
    if let Some(t) = entry.focused() {
        render_table(f, table, t, true, theme);
    }
}

fn render_dashboard(f: &mut Frame<'_>, area: Rect, entry: &Entry, theme: &Theme) {
    let Some(d) = &entry.data else { return };
    let [top, bottom] = Layout::vertical([Constraint::Length(10), Constraint::Min(5)]).areas(area);
    let [facts, cats, risk] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(35), Constraint::Percentage(25)])
            .areas(top);
    let block = Block::bordered().title(Span::styled(" Overview ", theme.accent()));
    let inner = block.inner(facts);
    f.render_widget(block, facts);
    let lines: Vec<Line> = d
        .facts
        .iter()
        .map(|(k, v)| Line::from(vec![Span::styled(format!("{k}: "), theme.dim()), Span::raw(safe(v))]))
        .collect();
    let n = lines.len() as u16;
    f.render_widget(Paragraph::new(lines), inner);
    if inner.height > n + 1 {
        let spark_area = Rect { y: inner.y + n + 1, height: inner.height - n - 1, ..inner };
        let data: Vec<u64> = d.trend[d.trend.len().saturating_sub(spark_area.width as usize)..].to_vec();
        f.render_widget(Sparkline::default().data(&data).style(theme.accent()), spark_area);
    }
    if let Some(db) = &d.dashboard {
        let bars: Vec<Bar> = db
            .by_category
            .iter()
            .take(8)
            .map(|(c, n)| Bar::default().label(Line::from(fit(c, 14))).value(*n).text_value(n.to_string()))
            .collect();
        let chart = BarChart::default()
            .block(Block::bordered().title(Span::styled(" Apps by category ", theme.accent())))
            .direction(ratatui::layout::Direction::Horizontal)
            .bar_width(1)
            .bar_gap(0)
            .data(BarGroup::default().bars(&bars));
        f.render_widget(chart, cats);
        let levels = [("High risk", 0usize), ("Medium", 1), ("Low", 2)];
        let mut lines: Vec<Line> = levels
            .iter()
            .map(|(l, i)| {
                let style = theme.risk(
                    [crate::domain::RiskLevel::High, crate::domain::RiskLevel::Medium, crate::domain::RiskLevel::Low]
                        [*i],
                );
                Line::from(vec![Span::styled(format!("{l:<10}"), style), Span::raw(db.by_risk[*i].to_string())])
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(Line::styled("Open alerts", theme.dim()));
        for s in crate::domain::Severity::ALL.iter().rev() {
            lines.push(Line::from(vec![
                Span::styled(format!("{:<7}", s.marker()), theme.severity(*s)),
                Span::raw(db.alerts_by_severity[s.to_i64() as usize].to_string()),
            ]));
        }
        f.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(Span::styled(" Risk ", theme.accent()))),
            risk,
        );
    }
    let [left, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    for (i, (t, a)) in entry.tables.iter().zip([left, right]).enumerate() {
        render_table(f, a, t, i == entry.pane, theme);
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn render_help(f: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let lines: Vec<Line> = state
        .keymap
        .bound
        .iter()
        .map(|b| Line::from(vec![Span::styled(format!("{:>8}  ", b.label), theme.key()), Span::raw(b.help)]))
        .collect();
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = centered(area, 78, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(Span::styled(" Keys (any key closes) ", theme.accent()))),
        r,
    );
}

fn render_confirm(f: &mut Frame<'_>, area: Rect, p: &Pending, theme: &Theme) {
    let Pending::Tag { apps, tag, users_affected, profile, preview } = p;
    let verb = match tag {
        crate::domain::Tag::Unsanctioned => "BLOCK (MDE indicator: Block)",
        crate::domain::Tag::Monitored => "WARN (MDE indicator: Warn)",
        crate::domain::Tag::Sanctioned => "mark as sanctioned and remove any block / warn indicators",
        crate::domain::Tag::None => "clear the tag and remove any block / warn indicators",
    };
    let enforcing = matches!(tag, crate::domain::Tag::Unsanctioned | crate::domain::Tag::Monitored);
    let scope = match preview {
        None => "working out the domains and device groups…".to_string(),
        Some(v) if enforcing => format!("{} domain(s) on {}", v.domains, safe(&v.scope)),
        Some(v) => format!("{} domain(s)", v.domains),
    };
    let names: Vec<String> = apps.iter().take(5).map(|(_, n)| safe(n)).collect();
    let more = if apps.len() > 5 { format!(" and {} more", apps.len() - 5) } else { String::new() };
    let profile_text = match profile {
        Some(p) => format!("Scoped profile: {}", safe(p)),
        None => "Scoped profile: none (all devices)".to_string(),
    };
    let lines = vec![
        Line::from(vec![
            Span::raw("Tag "),
            Span::styled(format!("{}{}", names.join(", "), more), Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(" as "),
            Span::styled(tag.as_str().to_uppercase(), theme.tag(*tag)),
            Span::raw("?"),
        ]),
        Line::raw(format!("This will {verb}: {scope}.")),
        Line::raw(profile_text),
        Line::raw(format!("Users seen using it in the period: {users_affected}.")),
        Line::raw("The change is audited and can be undone with z."),
        Line::from(vec![
            Span::styled("y", theme.key()),
            Span::raw(" confirm   "),
            Span::styled("n", theme.key()),
            Span::raw(" cancel   "),
            Span::styled("p", theme.key()),
            Span::raw(" next scoped profile"),
        ]),
    ];
    let r = centered(area, 76, 9);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(Span::styled(" Confirm ", theme.error())).borders(Borders::ALL)),
        r,
    );
}

fn render_history(f: &mut Frame<'_>, area: Rect, state: &State, selected: usize, theme: &Theme) {
    let lines: Vec<Line> = state
        .stack
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mark = if i == state.cursor { "●" } else { " " };
            let text = format!("{mark} {:>2}  {}", i + 1, fit(&route_title(e), 60));
            if i == selected { Line::styled(text, theme.selected()) } else { Line::raw(text) }
        })
        .collect();
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = centered(area, 70, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(Span::styled(" Pivot history (Enter jumps, Esc closes) ", theme.accent()))),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::table::col;

    #[test]
    fn columns_drop_by_priority() {
        let cols = vec![col("Name", 20, 0, false), col("A", 10, 1, true), col("B", 10, 3, true), col("C", 10, 2, true)];
        assert_eq!(fit_columns(&cols, 80), vec![0, 1, 2, 3]);
        assert_eq!(fit_columns(&cols, 50), vec![0, 1, 3]);
        assert_eq!(fit_columns(&cols, 30), vec![0]);
    }

    #[test]
    fn fit_and_spark() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(spark(&[0, 1, 2, 4], 3), "▂▄█");
    }
}
