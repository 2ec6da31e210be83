//! Streaming decoders for the large answers (hunting `results`, Log Analytics
//! `tables[0].rows`, MDE `value`). Each row is read into a few borrowed cells and mapped to its
//! synced type at once, so an answer never exists as a `serde_json::Value` tree (~0.5 KB a
//! row; answers reach 100,000–500,000 rows). The cell accessors keep the exact semantics of
//! the `j_*` helpers in `mod.rs`, so rows come out the same as from a `Value`.
use crate::json_visit::scalars_are_empty;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One JSON value as the row mappers need it; objects and other shapes are skipped unread.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'de> {
    Str(Cow<'de, str>),
    Num(serde_json::Number),
    /// The string elements of an array (other elements dropped, as `as_str` would).
    List(Vec<Cow<'de, str>>),
    Other,
}

impl Cell<'_> {
    /// `j_str`: a non-empty string, or a number's JSON text.
    pub(crate) fn string(&self) -> Option<String> {
        match self {
            Cell::Str(s) if !s.is_empty() => Some(s.to_string()),
            Cell::Num(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// `j_u64`: a non-negative number (fractions truncated) or a decimal string.
    pub(crate) fn u64(&self) -> Option<u64> {
        match self {
            Cell::Num(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Cell::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `j_time`: an ISO 8601 string.
    pub(crate) fn time(&self) -> Option<i64> {
        match self {
            Cell::Str(s) => super::parse_time(s),
            _ => None,
        }
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Owned(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell<'de>, E> {
        Ok(Cell::Num(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell<'de>, E> {
        Ok(Cell::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Cell::Other, Cell::Num))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Cell<'de>, E> {
        Ok(Cell::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Cell<'de>, D::Error> {
        d.deserialize_any(CellVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(c) = seq.next_element::<Cell<'de>>()? {
            if let Cell::Str(s) = c {
                out.push(s);
            }
        }
        Ok(Cell::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cell<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Cell::Other)
    }
}

impl<'de> de::Deserialize<'de> for Cell<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cell<'de>, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

/// An object key, borrowed unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The cells of one row under a fixed set of column names; other columns are not kept.
pub(crate) struct Row<'de> {
    names: &'static [&'static str],
    cells: Vec<Option<Cell<'de>>>,
}

impl<'de> Row<'de> {
    fn new(names: &'static [&'static str]) -> Row<'de> {
        Row { names, cells: vec![None; names.len()] }
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Cell<'de>> {
        self.cells.get(self.slot(name)?)?.as_ref()
    }
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.get(name)?.string()
    }
    pub(crate) fn u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.u64()
    }
    pub(crate) fn time(&self, name: &str) -> Option<i64> {
        self.get(name)?.time()
    }
    /// String elements of an array cell; `None` when the cell is not an array.
    pub(crate) fn list(&self, name: &str) -> Option<&[Cow<'de, str>]> {
        match self.get(name)? {
            Cell::List(l) => Some(l),
            _ => None,
        }
    }
}

/// One array element: an object read as a [`Row`], or anything else (skipped).
#[derive(Default)]
enum Element<'de> {
    Object(Row<'de>),
    #[default]
    Other,
}

#[derive(Clone, Copy)]
struct RowSeed {
    names: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = Element<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Element<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = Element<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element<'de>, A::Error> {
        let mut row = Row::new(self.names);
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            match row.slot(&k) {
                // Later duplicates win, as in a `serde_json::Map`.
                Some(i) => {
                    let c = map.next_value::<Cell<'de>>()?;
                    if let Some(s) = row.cells.get_mut(i) {
                        *s = Some(c);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Element::Object(row))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::Other)
    }
    scalars_are_empty!(Element<'de>);
}

/// Rows of one array, mapped as they are read.
pub(crate) struct Mapped<T> {
    /// Array elements, whatever their shape.
    pub elements: usize,
    /// Elements that were objects (the hunting row count; non-objects were never rows).
    pub objects: usize,
    pub rows: Vec<T>,
}

impl<T> Default for Mapped<T> {
    fn default() -> Self {
        Mapped { elements: 0, objects: 0, rows: Vec::new() }
    }
}

struct ArraySeed<'m, F> {
    names: &'static [&'static str],
    map: &'m F,
    /// Rows expected (from a counting pass); 0 when unknown.
    capacity: usize,
    /// MDE's `value` must be an array (a typed page would refuse anything else); hunting's
    /// `results` of another shape is simply no rows.
    strict: bool,
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> DeserializeSeed<'de> for ArraySeed<'_, F> {
    type Value = Mapped<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Mapped<T>, D::Error> {
        if self.strict { d.deserialize_seq(self) } else { d.deserialize_any(self) }
    }
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> Visitor<'de> for ArraySeed<'_, F> {
    type Value = Mapped<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Mapped<T>, A::Error> {
        let mut out = Mapped { rows: Vec::with_capacity(self.capacity), ..Mapped::default() };
        let seed = RowSeed { names: self.names };
        while let Some(e) = seq.next_element_seed(seed)? {
            out.elements += 1;
            if let Element::Object(row) = e {
                out.objects += 1;
                out.rows.extend((self.map)(&row));
            }
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Mapped<T>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Mapped::default())
    }
    scalars_are_empty!(Mapped<T>);
}

/// The array under `keys` in a top-level object, rows mapped as read. The first key that is
/// present wins over the later ones (hunting: `results` over `Results`), and a repeated key's
/// last occurrence wins, as with `Value`. `strict`: the body must be an object and the array
/// an array (MDE pages); otherwise another shape is no rows (hunting). An empty body (a
/// tolerated 404, no content) is no rows.
pub(crate) fn object_array<'de, T>(
    body: &'de [u8],
    keys: &'static [&'static str],
    names: &'static [&'static str],
    strict: bool,
    map: impl Fn(&Row<'de>) -> Option<T>,
) -> Result<Mapped<T>, serde_json::Error> {
    struct Top<'m, F> {
        keys: &'static [&'static str],
        names: &'static [&'static str],
        strict: bool,
        capacity: usize,
        map: &'m F,
    }
    impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> Visitor<'de> for Top<'_, F> {
        type Value = Mapped<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Mapped<T>, A::Error> {
            // (rank of the key among `keys`, rows)
            let mut best: Option<(usize, Mapped<T>)> = None;
            while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                match self.keys.iter().position(|x| *x == k) {
                    Some(rank) if best.as_ref().is_none_or(|(r, _)| rank <= *r) => {
                        let seed = ArraySeed {
                            names: self.names,
                            map: self.map,
                            strict: self.strict,
                            capacity: self.capacity,
                        };
                        best = Some((rank, m.next_value_seed(seed)?));
                    }
                    _ => {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(best.map(|(_, rows)| rows).unwrap_or_default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Mapped<T>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Mapped::default())
        }
        scalars_are_empty!(Mapped<T>);
    }
    if body.is_empty() {
        return Ok(Mapped::default());
    }
    let pass = |names: &'static [&'static str], capacity: usize, map: &dyn Fn(&Row<'de>) -> Option<T>| {
        let mut d = serde_json::Deserializer::from_slice(body);
        let top = Top { keys, names, strict, capacity, map: &map };
        let out = if strict { (&mut d).deserialize_map(top)? } else { (&mut d).deserialize_any(top)? };
        d.end()?;
        Ok::<_, serde_json::Error>(out)
    };
    // A first pass that keeps no cells counts the rows, so the row vector is allocated once
    // at its size: doubling would hold 1.5× its final size while it moves.
    let capacity = pass(&[], 0, &|_| None)?.objects;
    pass(names, capacity, &map)
}

// ------------------------------------------------------------------ Log Analytics tables

/// `{"tables":[{"columns":[{"name"}],"rows":[[...]]}]}`: the first table's rows, each cell
/// placed under its column's name. `objects` counts the rows that were arrays. An empty body
/// is no rows.
///
/// Rows are mapped as read when `columns` comes first (as the service writes it); rows that
/// come before their columns are held as cells until the columns arrive.
pub(crate) fn la_table<'de, T>(
    body: &'de [u8],
    names: &'static [&'static str],
    map: impl Fn(&Row<'de>) -> Option<T>,
) -> Result<Mapped<T>, serde_json::Error> {
    if body.is_empty() {
        return Ok(Mapped::default());
    }
    let pass = |names: &'static [&'static str], capacity: usize, map: &dyn Fn(&Row<'de>) -> Option<T>| {
        let mut d = serde_json::Deserializer::from_slice(body);
        let out = (&mut d).deserialize_any(LaTop { names, capacity, map: &map })?;
        d.end()?;
        Ok::<_, serde_json::Error>(out)
    };
    // Counting pass first, as in `object_array`.
    let capacity = pass(&[], 0, &|_| None)?.objects;
    pass(names, capacity, &map)
}

struct LaTop<'m, F> {
    names: &'static [&'static str],
    capacity: usize,
    map: &'m F,
}

fn skip_map<'de, A: MapAccess<'de>>(mut m: A) -> Result<(), A::Error> {
    while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut s: A) -> Result<(), A::Error> {
    while s.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> Visitor<'de> for LaTop<'_, F> {
    type Value = Mapped<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a query answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Mapped<T>, A::Error> {
        let mut out = Mapped::default();
        while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
            if k == "tables" {
                out = m.next_value_seed(LaTables { names: self.names, capacity: self.capacity, map: self.map })?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Mapped<T>, A::Error> {
        skip_seq(s)?;
        Ok(Mapped::default())
    }
    scalars_are_empty!(Mapped<T>);
}

struct LaTables<'m, F> {
    names: &'static [&'static str],
    capacity: usize,
    map: &'m F,
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> DeserializeSeed<'de> for LaTables<'_, F> {
    type Value = Mapped<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Mapped<T>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> Visitor<'de> for LaTables<'_, F> {
    type Value = Mapped<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of tables")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Mapped<T>, A::Error> {
        let first = s
            .next_element_seed(LaTable { names: self.names, capacity: self.capacity, map: self.map })?
            .unwrap_or_default();
        skip_seq(s)?;
        Ok(first)
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Mapped<T>, A::Error> {
        skip_map(m)?;
        Ok(Mapped::default())
    }
    scalars_are_empty!(Mapped<T>);
}

struct LaTable<'m, F> {
    names: &'static [&'static str],
    capacity: usize,
    map: &'m F,
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> DeserializeSeed<'de> for LaTable<'_, F> {
    type Value = Mapped<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Mapped<T>, D::Error> {
        d.deserialize_any(self)
    }
}

/// Column index → slot in the row's names.
fn slots(names: &'static [&'static str], columns: &[String]) -> Vec<Option<usize>> {
    columns.iter().map(|c| names.iter().position(|n| n == c)).collect()
}

fn place<'de>(names: &'static [&'static str], slots: &[Option<usize>], cells: Vec<Cell<'de>>) -> Row<'de> {
    let mut row = Row::new(names);
    // Cells beyond the columns are dropped (a zip); a repeated column name keeps the later cell.
    for (slot, cell) in slots.iter().zip(cells) {
        if let Some(s) = slot.and_then(|i| row.cells.get_mut(i)) {
            *s = Some(cell);
        }
    }
    row
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> Visitor<'de> for LaTable<'_, F> {
    type Value = Mapped<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Mapped<T>, A::Error> {
        let mut columns: Option<Vec<String>> = None;
        let mut out = Mapped::default();
        // Rows read before any `columns`: kept as cells, placed once the columns are known.
        let mut early: Option<Vec<Vec<Cell<'de>>>> = None;
        while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
            match k.as_ref() {
                "columns" => columns = Some(m.next_value::<Columns>()?.0),
                "rows" => match &columns {
                    Some(cols) => {
                        early = None;
                        out = m.next_value_seed(LaRows {
                            slots: slots(self.names, cols),
                            names: self.names,
                            capacity: self.capacity,
                            map: self.map,
                        })?;
                    }
                    None => early = Some(m.next_value::<RawRows<'de>>()?.0),
                },
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(rows) = early {
            let slots = slots(self.names, columns.as_deref().unwrap_or_default());
            out = Mapped { elements: rows.len(), objects: rows.len(), rows: Vec::with_capacity(rows.len()) };
            for cells in rows {
                out.rows.extend((self.map)(&place(self.names, &slots, cells)));
            }
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Mapped<T>, A::Error> {
        skip_seq(s)?;
        Ok(Mapped::default())
    }
    scalars_are_empty!(Mapped<T>);
}

/// Column names; a column without a string `name` is "" (matches nothing).
#[derive(Default)]
struct Columns(Vec<String>);

impl<'de> de::Deserialize<'de> for Columns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Columns, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Columns;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("columns")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Columns, A::Error> {
                let mut out = Vec::new();
                while let Some(c) = s.next_element::<ColumnName>()? {
                    out.push(c.0);
                }
                Ok(Columns(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Columns, A::Error> {
                skip_map(m)?;
                Ok(Columns::default())
            }
            scalars_are_empty!(Columns);
        }
        d.deserialize_any(V)
    }
}

#[derive(Default)]
struct ColumnName(String);

impl<'de> de::Deserialize<'de> for ColumnName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ColumnName, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ColumnName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ColumnName, A::Error> {
                let mut name = String::new();
                while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                    if k == "name" {
                        name = match m.next_value::<Cell<'de>>()? {
                            Cell::Str(s) => s.into_owned(),
                            _ => String::new(),
                        };
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ColumnName(name))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<ColumnName, A::Error> {
                skip_seq(s)?;
                Ok(ColumnName::default())
            }
            scalars_are_empty!(ColumnName);
        }
        d.deserialize_any(V)
    }
}

/// One row's cells, or `None` when the row is not an array.
#[derive(Default)]
struct RowCells<'de>(Option<Vec<Cell<'de>>>);

impl<'de> de::Deserialize<'de> for RowCells<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RowCells<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RowCells<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RowCells<'de>, A::Error> {
                let mut cells = Vec::with_capacity(s.size_hint().unwrap_or(8).min(64));
                while let Some(c) = s.next_element::<Cell<'de>>()? {
                    cells.push(c);
                }
                Ok(RowCells(Some(cells)))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<RowCells<'de>, A::Error> {
                skip_map(m)?;
                Ok(RowCells(None))
            }
            scalars_are_empty!(RowCells<'de>);
        }
        d.deserialize_any(V)
    }
}

/// Rows held as cells (only when they precede their columns); not an array = no rows.
#[derive(Default)]
struct RawRows<'de>(Vec<Vec<Cell<'de>>>);

impl<'de> de::Deserialize<'de> for RawRows<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawRows<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRows<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("rows")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawRows<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = s.next_element::<RowCells<'de>>()? {
                    out.extend(r.0);
                }
                Ok(RawRows(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<RawRows<'de>, A::Error> {
                skip_map(m)?;
                Ok(RawRows(Vec::new()))
            }
            scalars_are_empty!(RawRows<'de>);
        }
        d.deserialize_any(V)
    }
}

struct LaRows<'m, F> {
    slots: Vec<Option<usize>>,
    names: &'static [&'static str],
    capacity: usize,
    map: &'m F,
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> DeserializeSeed<'de> for LaRows<'_, F> {
    type Value = Mapped<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Mapped<T>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T, F: Fn(&Row<'de>) -> Option<T>> Visitor<'de> for LaRows<'_, F> {
    type Value = Mapped<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Mapped<T>, A::Error> {
        let mut out = Mapped { rows: Vec::with_capacity(self.capacity), ..Mapped::default() };
        while let Some(r) = s.next_element::<RowCells<'de>>()? {
            out.elements += 1;
            if let Some(cells) = r.0 {
                out.objects += 1;
                out.rows.extend((self.map)(&place(self.names, &self.slots, cells)));
            }
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Mapped<T>, A::Error> {
        skip_map(m)?;
        Ok(Mapped::default())
    }
    scalars_are_empty!(Mapped<T>);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{j_str, j_time, j_u64};
    use serde_json::{Map, Value};

    const NAMES: [&str; 5] = ["s", "n", "t", "l", "dup"];

    /// What the `Value` path made of one object: the reference the cells must match.
    type Seen = (Option<String>, Option<u64>, Option<i64>, Option<String>, Option<String>);

    fn reference(m: &Map<String, Value>) -> Seen {
        let list = match m.get("l") {
            Some(Value::Array(a)) => Some(a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(",")),
            _ => None,
        };
        (j_str(m, "s"), j_u64(m, "n"), j_time(m, "t"), list, j_str(m, "dup"))
    }

    fn streamed(r: &Row<'_>) -> Seen {
        (r.string("s"), r.u64("n"), r.time("t"), r.list("l").map(|l| l.join(",")), r.string("dup"))
    }

    const CELLS: [&str; 14] = [
        r#""plain""#,
        r#""esc\u00e9\"q\\""#,
        r#""""#,
        "12",
        "-3",
        "2.75",
        "1e3",
        "18446744073709551616",
        "null",
        "true",
        r#"["a","",1,"b",{"x":1}]"#,
        r#"{"s":"nested"}"#,
        r#"" 42 ""#,
        r#""2024-05-01T10:00:00Z""#,
    ];

    #[test]
    fn cells_read_like_the_value_helpers() {
        for c in CELLS {
            for key in ["s", "n", "t", "l"] {
                let obj = format!(r#"{{"{key}":{c},"dup":"first","other":[{c}],"dup":{c}}}"#);
                let v: Value = serde_json::from_str(&obj).unwrap();
                let want = reference(v.as_object().unwrap());
                let body = format!(r#"{{"results":[{obj}]}}"#);
                let got = object_array(body.as_bytes(), &["results"], &NAMES, false, |r| Some(streamed(r))).unwrap();
                assert_eq!(got.rows, vec![want], "{obj}");
            }
        }
    }

    #[test]
    fn hunting_shapes_match_the_value_path() {
        let body = br#"{"Results":[{"s":"upper"}],"x":{"results":[1]},"results":[{"s":"a"},7,"x",[1],{"s":"b"},null]}"#;
        let got = object_array(body, &["results", "Results"], &NAMES, false, |r| r.string("s")).unwrap();
        assert_eq!((got.elements, got.objects, got.rows), (6, 2, vec!["a".to_string(), "b".to_string()]));
        // Only `Results`: taken. Neither, or not an array, or not an object: no rows.
        let got =
            object_array(br#"{"Results":[{"s":"u"}]}"#, &["results", "Results"], &NAMES, false, |r| r.string("s"));
        assert_eq!(got.unwrap().rows, vec!["u".to_string()]);
        for body in [&br#"{"results":{"s":"a"}}"#[..], b"[]", b"null", b"3", br#"{"results":null}"#, b""] {
            let got = object_array(body, &["results"], &NAMES, false, |r| r.string("s")).unwrap();
            assert_eq!((got.objects, got.rows.len()), (0, 0));
        }
        for bad in [&b"{"[..], b"{\"results\":[}", b"{} x", b" "] {
            assert!(object_array(bad, &["results"], &NAMES, false, |r| r.string("s")).is_err());
        }
    }

    #[test]
    fn strict_pages_refuse_what_a_typed_page_refuses() {
        let ok = object_array(br#"{"value":[{"s":"a"},3]}"#, &["value"], &NAMES, true, |r| r.string("s")).unwrap();
        assert_eq!((ok.elements, ok.rows.len()), (2, 1));
        let missing = object_array(br#"{"@odata.context":"x"}"#, &["value"], &NAMES, true, |r| r.string("s"));
        assert_eq!(missing.unwrap().elements, 0);
        for bad in [&br#"{"value":null}"#[..], br#"{"value":{}}"#, b"[]", b"null"] {
            assert!(object_array(bad, &["value"], &NAMES, true, |r| r.string("s")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn la_tables_map_cells_by_column_name() {
        let cols = r#"[{"name":"s"},{"name":"n"},{"type":"x"},{"name":"n"},{"name":"t"}]"#;
        let rows = r#"[["a",1,"skip",2,"2024-05-01T00:00:00Z","extra"],["b"],{"s":"obj"},7,[]]"#;
        let want = vec![
            (Some("a".to_string()), Some(2), Some(1_714_521_600), None, None),
            (Some("b".to_string()), None, None, None, None),
            (None, None, None, None, None),
        ];
        // Columns first (as the service writes it), and rows first (held until the columns).
        for body in [
            format!(r#"{{"tables":[{{"name":"P","columns":{cols},"rows":{rows}}},{{"rows":[[1]]}}]}}"#),
            format!(r#"{{"tables":[{{"rows":{rows},"columns":{cols}}}]}}"#),
        ] {
            let got = la_table(body.as_bytes(), &NAMES, |r| Some(streamed(r))).unwrap();
            assert_eq!(got.objects, 3, "{body}");
            assert_eq!(got.rows, want, "{body}");
        }
        for body in [&br#"{"tables":[]}"#[..], br#"{"tables":{}}"#, br#"{"tables":[{"rows":[["a"]]}]}"#, b"{}", b""] {
            let got = la_table(body, &NAMES, |r| r.string("s")).unwrap();
            assert!(got.rows.is_empty(), "{body:?}");
        }
        assert!(la_table(br#"{"tables":[{"columns":[],"rows":[[}]}"#, &NAMES, |r| r.string("s")).is_err());
    }
}
