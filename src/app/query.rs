//! The `/` filter's column predicates: `risk<=3`, `users>100`, `upload>=1GB`, `cat:generative`,
//! `tag:unsanct`. A word whose name starts no column's title stays fuzzy text, so ordinary
//! searches ("a:b" in a URL, "<" in a name) keep working.
use super::table::{Cell, Column};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub column: usize,
    op: Op,
    text: String,
    number: Option<f64>,
}

/// A filter split into column predicates (all must hold) and the fuzzy text left over.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub predicates: Vec<Predicate>,
    pub text: String,
}

/// `12`, `2.5`, `100MB`, `1.5 GB` (binary units, as the tables show bytes).
fn number(s: &str) -> Option<f64> {
    let t = s.trim().to_ascii_lowercase();
    let (digits, scale) = [("tb", 4), ("gb", 3), ("mb", 2), ("kb", 1), ("b", 0)]
        .iter()
        .find_map(|(u, p)| t.strip_suffix(u).map(|d| (d.trim().to_string(), 1024f64.powi(*p))))
        .unwrap_or((t.clone(), 1.0));
    digits.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * scale)
}

fn split_op(word: &str) -> Option<(&str, Op, &str)> {
    for (sym, op) in [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("=", Op::Eq),
        (":", Op::Contains),
    ] {
        if let Some(at) = word.find(sym) {
            let (name, value) = (&word[..at], &word[at + sym.len()..]);
            if !name.is_empty() && !value.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '.') {
                return Some((name, op, value));
            }
        }
    }
    None
}

impl Query {
    pub fn parse(filter: &str, columns: &[Column]) -> Query {
        let mut q = Query::default();
        let mut text = Vec::new();
        for word in filter.split_whitespace() {
            let parsed = split_op(word).and_then(|(name, op, value)| {
                let name = name.to_lowercase();
                let column = columns.iter().position(|c| c.title.to_lowercase().starts_with(&name))?;
                Some(Predicate { column, op, text: value.to_lowercase(), number: number(value) })
            });
            match parsed {
                Some(p) => q.predicates.push(p),
                None => text.push(word),
            }
        }
        q.text = text.join(" ");
        q
    }

    pub fn matches(&self, cells: &[Cell]) -> bool {
        self.predicates.iter().all(|p| p.holds(cells.get(p.column)))
    }
}

impl Predicate {
    fn holds(&self, cell: Option<&Cell>) -> bool {
        let Some(cell) = cell else { return false };
        let value = match cell {
            Cell::Num(n) => Some(*n as f64),
            Cell::Bytes(b) => Some(*b as f64),
            Cell::Risk(r) => Some(f64::from(r.0)),
            Cell::UserRisk(s, _) => Some(f64::from(*s)),
            Cell::Spark(v) => Some(v.iter().sum::<u64>() as f64),
            _ => None,
        };
        // Tags by their words (`tag=none`, `tag:unsanct`), not the short labels the table shows.
        let plain = match cell {
            Cell::Tag(t) => t.as_str().to_string(),
            other => other.plain().to_lowercase(),
        };
        // Numbers compare as numbers; text columns compare as text (`tag=none`, `cat!=media`).
        let ord = match (value, self.number) {
            (Some(v), Some(n)) => v.partial_cmp(&n),
            _ => Some(plain.as_str().cmp(self.text.as_str())),
        };
        let Some(ord) = ord else { return false };
        match self.op {
            Op::Contains => plain.contains(&self.text),
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Gt => ord.is_gt(),
            Op::Ge => ord.is_ge(),
            Op::Eq => ord.is_eq(),
            Op::Ne => ord.is_ne(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::table::col;
    use crate::domain::{RiskScore, Tag};

    fn columns() -> Vec<Column> {
        vec![
            col("App", 20, 0, false),
            col("Category", 15, 0, false),
            col("Risk", 8, 0, true),
            col("Tag", 8, 0, false),
            col("Upload", 9, 0, true),
        ]
    }

    fn row(name: &str, cat: &str, risk: f32, tag: Tag, up: u64) -> Vec<Cell> {
        vec![
            Cell::Text(name.into()),
            Cell::Text(cat.into()),
            Cell::Risk(RiskScore(risk)),
            Cell::Tag(tag),
            Cell::Bytes(up),
        ]
    }

    #[test]
    fn predicates_on_named_columns_and_fuzzy_text_for_the_rest() {
        let q = Query::parse("cat:generative risk<=4 deep up>1MB", &columns());
        assert_eq!(q.text, "deep");
        assert_eq!(q.predicates.len(), 3);
        assert!(q.matches(&row("DeepSeek", "Generative AI", 4.0, Tag::None, 2 << 20)));
        assert!(!q.matches(&row("ChatGPT", "Generative AI", 6.0, Tag::None, 2 << 20)));
        assert!(!q.matches(&row("DeepSeek", "Generative AI", 4.0, Tag::None, 10)));
        assert!(!q.matches(&row("Dropbox", "Cloud storage", 3.0, Tag::None, 2 << 20)));
        // Text comparisons on a text column; unknown names stay text.
        let q = Query::parse("tag=unsanctioned http://a:b", &columns());
        assert_eq!(q.text, "http://a:b");
        assert!(q.matches(&row("MEGA", "Cloud storage", 6.0, Tag::Unsanctioned, 0)));
        assert!(!q.matches(&row("Box", "Cloud storage", 9.0, Tag::Sanctioned, 0)));
        let q = Query::parse("tag=none", &columns());
        assert!(q.matches(&row("Box", "Cloud storage", 9.0, Tag::None, 0)));
        assert!(!q.matches(&row("Box", "Cloud storage", 9.0, Tag::Monitored, 0)));
        assert_eq!(number("1.5GB"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(number("x"), None);
    }
}
