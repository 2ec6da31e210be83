//! The generic table model every view uses: typed cells (so sorting is numeric where it should
//! be), column priorities (narrow terminals drop low-priority columns first), fuzzy filter and
//! sort state, selection and marks.
use super::Route;
use crate::domain::{Day, IdentityRisk, RiskScore, Severity, Tag};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// Character positions of `text` matched by the fuzzy `filter` (empty when it does not match).
pub fn match_positions(filter: &str, text: &str) -> Vec<usize> {
    if filter.trim().is_empty() {
        return Vec::new();
    }
    thread_local! {
        // A matcher owns a sizeable scratch matrix: one per thread, not one per drawn cell.
        static MATCHER: std::cell::RefCell<Matcher> = std::cell::RefCell::new(Matcher::new(Config::DEFAULT));
    }
    let pattern = Pattern::parse(filter, CaseMatching::Ignore, Normalization::Smart);
    let mut buf = Vec::new();
    let mut idx = Vec::new();
    let found = MATCHER.with(|m| pattern.indices(Utf32Str::new(text, &mut buf), &mut m.borrow_mut(), &mut idx));
    if found.is_none() {
        return Vec::new();
    }
    let mut out: Vec<usize> = idx.into_iter().map(|i| i as usize).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Num(i64),
    Bytes(u64),
    /// App risk on MDCA's scale, 10 = safest.
    Risk(RiskScore),
    /// User risk 0–100 plus the identity risk level.
    UserRisk(u32, IdentityRisk),
    Tag(Tag),
    Day(Option<Day>),
    Time(i64),
    Spark(Vec<u64>),
    Sev(Severity),
}

impl Cell {
    /// Plain text of the cell (exports, copy, filter).
    pub fn plain(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(n) => n.to_string(),
            Cell::Bytes(b) => human_bytes(*b),
            Cell::Risk(r) => format!("{} {}", r, r.level().label()),
            Cell::UserRisk(s, ir) => format!("{s} {}", ir.as_str()),
            Cell::Tag(t) => t.label().to_string(),
            Cell::Day(d) => d.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            Cell::Time(t) => chrono::DateTime::from_timestamp(*t, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            Cell::Spark(v) => format!("{}", v.iter().sum::<u64>()),
            Cell::Sev(s) => s.as_str().to_string(),
        }
    }
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", U[i])
    } else {
        format!("{v:.1} {}", U[i])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub title: &'static str,
    /// Preferred width in cells.
    pub width: u16,
    /// 0 = always shown; higher numbers are dropped first when space runs out.
    pub priority: u8,
    pub numeric: bool,
}

pub const fn col(title: &'static str, width: u16, priority: u8, numeric: bool) -> Column {
    Column { title, width, priority, numeric }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Cell>,
    /// What Enter opens.
    pub target: Option<Route>,
    /// The text the fuzzy filter matches against.
    pub key: String,
    /// What row actions (resolve, severity, undo) apply to.
    pub item: Option<super::Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// Initial sort: (column, descending).
    pub default_sort: Option<(usize, bool)>,
}

/// A table plus everything the analyst did to it; kept per pivot step.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    pub table: Table,
    pub filter: String,
    pub sort: Option<(usize, bool)>,
    /// Indices into `table.rows`, filtered and sorted.
    pub visible: Vec<usize>,
    /// Index into `visible`.
    pub selected: usize,
    /// First visible row on screen.
    pub offset: usize,
    /// Marked rows (indices into `table.rows`).
    pub marks: BTreeSet<usize>,
    /// The last filter and the rows it matched (in row order), so typing one more character
    /// rescans only those instead of the whole table.
    matched: Option<(String, Vec<usize>)>,
    /// The row last marked with Space (an index into `table.rows`), where a range starts.
    anchor: Option<usize>,
    /// Sort keys by column, one per row of `table`.
    sort_keys: std::collections::HashMap<usize, Vec<SortKey>>,
}

/// A cell reduced to what sorting compares, computed once per row instead of per comparison.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortKey {
    Int(i64),
    Float(f64),
    Text(String),
    None,
}

impl SortKey {
    fn of(c: Option<&Cell>) -> SortKey {
        match c {
            Some(Cell::Text(s)) => SortKey::Text(s.to_lowercase()),
            Some(Cell::Num(n)) => SortKey::Int(*n),
            Some(Cell::Bytes(b)) => SortKey::Int(i64::try_from(*b).unwrap_or(i64::MAX)),
            Some(Cell::Risk(r)) => SortKey::Float(f64::from(r.0)),
            Some(Cell::UserRisk(s, ir)) => SortKey::Int(i64::from(*s) * 8 + ir.to_i64()),
            Some(Cell::Tag(t)) => SortKey::Int(t.to_i64()),
            Some(Cell::Day(d)) => SortKey::Int(d.map(|d| i64::from(d.0)).unwrap_or(i64::MIN)),
            Some(Cell::Time(t)) => SortKey::Int(*t),
            Some(Cell::Spark(v)) => SortKey::Int(v.iter().sum::<u64>().min(i64::MAX as u64) as i64),
            Some(Cell::Sev(s)) => SortKey::Int(s.to_i64()),
            None => SortKey::None,
        }
    }
}

/// The filter's words, lower-cased, when it is plain ASCII with none of nucleo's operators
/// (`!`, `^`, `$`, `'`, `\\`): then matching is a case-insensitive subsequence test per word.
fn plain_atoms(filter: &str) -> Option<Vec<Vec<u8>>> {
    if !filter.is_ascii() || filter.contains(['!', '^', '$', '\'', '\\']) {
        return None;
    }
    let atoms: Vec<Vec<u8>> = filter.split_whitespace().map(|w| w.to_ascii_lowercase().into_bytes()).collect();
    (!atoms.is_empty()).then_some(atoms)
}

fn is_subsequence(needle: &[u8], hay: &[u8]) -> bool {
    let mut it = hay.iter();
    needle.iter().all(|n| it.any(|h| h.to_ascii_lowercase() == *n))
}

/// Whether `new` can only match a subset of what `old` matched: one more plain character typed
/// at the end. Negations, anchors and quoting break that, so they trigger a full rescan.
fn narrows(old: &str, new: &str) -> bool {
    !old.trim().is_empty()
        && new.starts_with(old)
        && !new.contains(['!', '^', '$', '\'', '\\', ':', '<', '>', '='])
        && !new[old.len()..].contains(' ')
}

impl TableView {
    pub fn new(table: Table) -> TableView {
        let sort = table.default_sort;
        let mut v = TableView {
            table,
            filter: String::new(),
            sort,
            visible: Vec::new(),
            selected: 0,
            offset: 0,
            marks: BTreeSet::new(),
            matched: None,
            anchor: None,
            sort_keys: std::collections::HashMap::new(),
        };
        v.recompute();
        v
    }

    /// The filter's fuzzy words, without its column predicates (`risk<=3` highlights nothing):
    /// what [`match_positions`] highlights. Parse once per frame, not per cell.
    pub fn fuzzy_words(&self) -> String {
        super::query::Query::parse(&self.filter, &self.table.columns).text
    }

    /// Re-applies filter and sort, keeping the selected row selected when it survives.
    pub fn recompute(&mut self) {
        let keep = self.selected_row_index();
        let mut visible: Vec<usize> = if self.filter.trim().is_empty() {
            self.matched = None;
            (0..self.table.rows.len()).collect()
        } else {
            let query = super::query::Query::parse(&self.filter, &self.table.columns);
            let text = query.text.as_str();
            let candidates: Vec<usize> = match self.matched.take() {
                Some((old, rows)) if narrows(&old, &self.filter) => rows,
                _ => (0..self.table.rows.len()).collect(),
            };
            let candidates: Vec<usize> = if query.predicates.is_empty() {
                candidates
            } else {
                candidates
                    .into_iter()
                    .filter(|&i| self.table.rows.get(i).is_some_and(|r| query.matches(&r.cells)))
                    .collect()
            };
            let atoms = plain_atoms(text);
            // One matcher per recompute: it owns a sizeable scratch matrix.
            let mut matcher = Matcher::new(Config::DEFAULT);
            let pattern = Pattern::parse(text, CaseMatching::Ignore, Normalization::Smart);
            let mut buf = Vec::new();
            let mut score = |key: &str| pattern.score(Utf32Str::new(key, &mut buf), &mut matcher);
            let rows = &self.table.rows;
            let mut scored: Vec<(u32, usize)> = match (&atoms, self.sort) {
                _ if text.trim().is_empty() => candidates.into_iter().map(|i| (0, i)).collect(),
                // A sorted table needs only yes / no, and for plain ASCII patterns over ASCII
                // text "yes" is exactly "each word's letters appear in order": no scoring.
                (Some(atoms), Some(_)) => candidates
                    .into_iter()
                    .filter_map(|i| {
                        let key = &rows.get(i)?.key;
                        let hit = if key.is_ascii() {
                            atoms.iter().all(|a| is_subsequence(a, key.as_bytes()))
                        } else {
                            score(key).is_some()
                        };
                        hit.then_some((0, i))
                    })
                    .collect(),
                _ => candidates.into_iter().filter_map(|i| score(&rows.get(i)?.key).map(|s| (s, i))).collect(),
            };
            self.matched = Some((self.filter.clone(), scored.iter().map(|&(_, i)| i).collect()));
            if self.sort.is_none() {
                scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            }
            scored.into_iter().map(|(_, i)| i).collect()
        };
        if let Some((c, desc)) = self.sort {
            // Keys per column are built once for the table and reused by every later sort,
            // filter and direction flip.
            let rows = &self.table.rows;
            let keys =
                self.sort_keys.entry(c).or_insert_with(|| rows.iter().map(|r| SortKey::of(r.cells.get(c))).collect());
            visible.sort_unstable_by(|&a, &b| {
                let o = match (keys.get(a), keys.get(b)) {
                    (Some(ka), Some(kb)) => ka.partial_cmp(kb).unwrap_or(Ordering::Equal),
                    _ => Ordering::Equal,
                };
                let o = if desc { o.reverse() } else { o };
                o.then(a.cmp(&b))
            });
        }
        self.visible = visible;
        self.selected = keep
            .and_then(|k| self.visible.iter().position(|&i| i == k))
            .unwrap_or(0)
            .min(self.visible.len().saturating_sub(1));
    }

    pub fn selected_row_index(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.selected_row_index().and_then(|i| self.table.rows.get(i))
    }

    pub fn move_by(&mut self, delta: isize) {
        if self.visible.is_empty() {
            self.selected = 0;
            return;
        }
        let max = self.visible.len() as isize - 1;
        self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
    }

    pub fn select_last(&mut self) {
        self.selected = self.visible.len().saturating_sub(1);
    }

    /// Keeps the selection on screen for a body of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        let h = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + h {
            self.offset = self.selected + 1 - h;
        }
        let max_offset = self.visible.len().saturating_sub(h);
        self.offset = self.offset.min(max_offset);
    }

    /// Sorts by `column`; the same column again flips the direction.
    pub fn sort_by(&mut self, column: usize) {
        if column >= self.table.columns.len() {
            return;
        }
        self.sort = match self.sort {
            Some((c, desc)) if c == column => Some((c, !desc)),
            _ => Some((column, self.table.columns[column].numeric)),
        };
        self.recompute();
    }

    pub fn toggle_mark(&mut self) {
        if let Some(i) = self.selected_row_index()
            && !self.marks.remove(&i)
        {
            self.marks.insert(i);
            self.anchor = Some(i);
        }
    }

    /// Marks every visible row between the last row marked with Space and the selection (as a
    /// shift-click would). Returns how many rows are marked afterwards.
    pub fn mark_range(&mut self) -> usize {
        let from = self.anchor.and_then(|a| self.visible.iter().position(|&i| i == a)).unwrap_or(self.selected);
        let (lo, hi) = (from.min(self.selected), from.max(self.selected));
        if let Some(rows) = self.visible.get(lo..=hi) {
            self.marks.extend(rows.iter().copied());
        }
        self.marks.len()
    }

    /// Marks every visible (filtered) row, or clears the marks when they are all marked already.
    /// Returns how many rows are marked afterwards.
    pub fn toggle_mark_all(&mut self) -> usize {
        if !self.visible.is_empty() && self.visible.iter().all(|i| self.marks.contains(i)) {
            self.marks.clear();
        } else {
            self.marks.extend(self.visible.iter().copied());
        }
        self.marks.len()
    }

    /// Marks or returns the rows an action applies to: the marked ones, else the selected one.
    pub fn action_rows(&self) -> Vec<&Row> {
        if self.marks.is_empty() {
            self.selected_row().into_iter().collect()
        } else {
            self.marks.iter().filter_map(|&i| self.table.rows.get(i)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nucleo_score(filter: &str, text: &str) -> Option<u32> {
        let mut matcher = Matcher::new(Config::DEFAULT);
        let pattern = Pattern::parse(filter, CaseMatching::Ignore, Normalization::Smart);
        let mut buf = Vec::new();
        pattern.score(Utf32Str::new(text, &mut buf), &mut matcher)
    }

    fn big_table(n: usize) -> Table {
        Table {
            title: "t".into(),
            columns: vec![col("Name", 10, 0, false), col("N", 5, 0, true)],
            rows: (0..n)
                .map(|i| Row {
                    cells: vec![Cell::Text(format!("user{i:05}@contoso.com")), Cell::Num((i * 7919 % 1000) as i64)],
                    target: None,
                    key: format!("user{i:05}@contoso.com"),
                    item: None,
                })
                .collect(),
            default_sort: None,
        }
    }

    #[test]
    fn typing_on_narrows_like_a_full_rescan_and_sort_keys_order_rows() {
        let mut v = TableView::new(big_table(3000));
        for prefix in ["u", "us", "use", "user0", "user01", "user012"] {
            v.filter = prefix.into();
            v.recompute();
            let incremental = v.visible.clone();
            let mut fresh = TableView::new(big_table(3000));
            fresh.filter = prefix.into();
            fresh.recompute();
            assert_eq!(incremental, fresh.visible, "{prefix}");
        }
        // Deleting a character widens again, and negation is not monotone: both rescan.
        for f in ["user01", "user01 !user019", "user01 !user0199"] {
            v.filter = f.into();
            v.recompute();
            let mut fresh = TableView::new(big_table(3000));
            fresh.filter = f.into();
            fresh.recompute();
            assert_eq!(v.visible, fresh.visible, "{f}");
        }
        v.filter.clear();
        v.sort_by(1);
        let nums: Vec<i64> = v
            .visible
            .iter()
            .map(|&i| match v.table.rows[i].cells[1] {
                Cell::Num(n) => n,
                _ => unreachable!(),
            })
            .collect();
        assert!(nums.windows(2).all(|w| w[0] >= w[1]), "descending numbers");
        v.sort_by(0);
        assert_eq!(v.table.rows[v.visible[0]].key, "user00000@contoso.com");
    }

    #[test]
    fn the_sorted_fast_path_matches_exactly_what_nucleo_matches() {
        let keys = [
            "carlos.nguyen@contoso.com Carlos Nguyen Finance",
            "ana.wagner@contoso.com Ana Wagner HR",
            "zoë.müller@contoso.com Zoë Müller Legal",
            "LT-FIN-00008 Windows 11 Finance",
            "",
        ];
        for f in ["c", "cn", "CARLOS", "fin 8", "zoe", "müll", "a w", "xyz", "nguyen  fin", "l.n"] {
            for k in keys {
                let fast = match plain_atoms(f) {
                    Some(atoms) if k.is_ascii() => atoms.iter().all(|a| is_subsequence(a, k.as_bytes())),
                    _ => nucleo_score(f, k).is_some(),
                };
                assert_eq!(fast, nucleo_score(f, k).is_some(), "filter {f:?} on {k:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_match_agrees_with_nucleo(f in "[a-zA-Z0-9 .@-]{1,6}", k in "[a-zA-Z0-9 .@_-]{0,40}") {
            if let Some(atoms) = plain_atoms(&f) {
                let fast = atoms.iter().all(|a| is_subsequence(a, k.as_bytes()));
                proptest::prop_assert_eq!(fast, nucleo_score(&f, &k).is_some());
            }
        }
    }

    #[test]
    fn range_marks_from_the_last_marked_row_to_the_selection() {
        let mut v = TableView::new(big_table(50));
        v.move_by(3);
        v.toggle_mark();
        v.move_by(4);
        assert_eq!(v.mark_range(), 5);
        assert_eq!(v.marks.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5, 6, 7]);
        // Upwards works too.
        v.move_by(-7);
        v.toggle_mark();
        v.move_by(1);
        assert_eq!(v.mark_range(), 7);
    }

    #[test]
    fn match_positions_mark_the_fuzzy_hits() {
        assert_eq!(match_positions("dsk", "DeepSeek"), vec![0, 4, 7]);
        assert!(match_positions("zz", "DeepSeek").is_empty());
        assert!(match_positions("", "DeepSeek").is_empty());
    }

    fn t() -> TableView {
        let rows = ["dropbox", "box", "mega", "google drive"]
            .iter()
            .enumerate()
            .map(|(i, n)| Row {
                cells: vec![Cell::Text(n.to_string()), Cell::Bytes((i as u64 + 1) * 1000)],
                target: None,
                key: n.to_string(),
                item: None,
            })
            .collect();
        TableView::new(Table {
            title: "apps".into(),
            columns: vec![col("Name", 10, 0, false), col("Up", 8, 1, true)],
            rows,
            default_sort: Some((1, true)),
        })
    }

    #[test]
    fn sorts_numerically_and_flips() {
        let mut v = t();
        let names = |v: &TableView| v.visible.iter().map(|&i| v.table.rows[i].key.clone()).collect::<Vec<_>>();
        assert_eq!(names(&v), ["google drive", "mega", "box", "dropbox"]);
        v.sort_by(1);
        assert_eq!(names(&v), ["dropbox", "box", "mega", "google drive"]);
        v.sort_by(0);
        assert_eq!(names(&v), ["box", "dropbox", "google drive", "mega"]);
    }

    #[test]
    fn fuzzy_filter_keeps_selection() {
        let mut v = t();
        v.move_by(2); // "box"
        assert_eq!(v.selected_row().unwrap().key, "box");
        v.filter = "bx".into();
        v.recompute();
        let names: Vec<_> = v.visible.iter().map(|&i| v.table.rows[i].key.as_str()).collect();
        assert_eq!(names, ["box", "dropbox"]);
        assert_eq!(v.selected_row().unwrap().key, "box");
        v.filter = "zzz".into();
        v.recompute();
        assert!(v.selected_row().is_none());
        v.move_by(1);
        assert_eq!(v.selected, 0);
    }

    #[test]
    fn scrolling_keeps_selection_visible() {
        let mut v = t();
        v.select_last();
        v.scroll_into_view(2);
        assert_eq!(v.offset, 2);
        v.move_by(-3);
        v.scroll_into_view(2);
        assert_eq!(v.offset, 0);
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(999), "999 B");
    }
}
