//! One sheet -> typed rows, with every problem located to its cell.

use std::{cell::Cell, collections::BTreeMap};

use calamine::{Data, Range};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use crate::{
    cell::{CellDeserializer, CellError, describe},
    error::{CellRef, Report, column_letter},
};

/// A row type read from one sheet.
pub trait TableRow: DeserializeOwned {
    /// The sheet (= table) name.
    const SHEET: &'static str;
    /// Columns that may be absent from the sheet (their fields default).
    const OPTIONAL: &'static [&'static str] = &[];
}

/// The rows of one sheet, with where each came from.
#[derive(Clone, Debug)]
pub struct SheetRows<T> {
    /// The workbook's file name.
    pub file: String,
    /// The sheet name.
    pub sheet: String,
    /// Header name -> zero-based column index.
    pub columns: BTreeMap<String, u32>,
    /// (row number as Excel shows it, value), in sheet order.
    pub rows: Vec<(u32, T)>,
    /// Ids of rows that could not be read (already reported): references to
    /// them are not reported again as dangling.
    pub failed_ids: Vec<String>,
}

impl<T> SheetRows<T> {
    /// A reference to `column` of Excel row `row` in this sheet.
    pub fn at(&self, row: u32, column: &str) -> CellRef {
        CellRef {
            file: self.file.clone(),
            sheet: self.sheet.clone(),
            row,
            column: self
                .columns
                .get(column)
                .map(|c| (column.to_string(), column_letter(*c))),
        }
    }

    /// A sheet with no rows, standing in for one that is missing.
    pub fn missing(file: &str) -> Self {
        Self {
            file: file.into(),
            sheet: String::new(),
            columns: BTreeMap::new(),
            rows: Vec::new(),
            failed_ids: Vec::new(),
        }
    }
}

/// The field names of `T`, in declaration order, as serde sees them.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = CellError;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CellError> {
            Err(CellError("probe".into()))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, CellError> {
            self.0.set(fields);
            Err(CellError("probe".into()))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

fn is_blank(cell: &Data) -> bool {
    match cell {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

struct RowAccess<'a> {
    /// (field, absolute column) for every field present in the header.
    fields: &'a [(&'static str, u32)],
    next: usize,
    row: &'a [Data],
    first_column: u32,
    failed_column: &'a Cell<Option<u32>>,
}

impl<'de> MapAccess<'de> for RowAccess<'_> {
    type Error = CellError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, CellError> {
        match self.fields.get(self.next) {
            Some((name, _)) => seed.deserialize((*name).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, CellError> {
        let (_, column) = self.fields[self.next];
        self.next += 1;
        let cell = self
            .row
            .get((column - self.first_column) as usize)
            .unwrap_or(&Data::Empty);
        seed.deserialize(CellDeserializer(cell))
            .inspect_err(|_| self.failed_column.set(Some(column)))
    }
}

struct RowDeserializer<'a>(RowAccess<'a>);

impl<'de> de::Deserializer<'de> for RowDeserializer<'_> {
    type Error = CellError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        visitor.visit_map(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Reads every row of `range` as a `T`. Problems go to `report`; rows with a
/// problem are left out. Only the first bad cell of a row is reported (serde
/// stops there), but every row and every sheet is checked.
pub fn read_sheet<T: TableRow>(
    file: &str,
    range: &Range<Data>,
    report: &mut Report,
) -> SheetRows<T> {
    let sheet = T::SHEET;
    let fields = fields_of::<T>();
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let mut out = SheetRows {
        file: file.into(),
        sheet: sheet.into(),
        columns: BTreeMap::new(),
        rows: Vec::new(),
        failed_ids: Vec::new(),
    };
    let at = |row: u32, column: Option<(String, u32)>| CellRef {
        file: file.into(),
        sheet: sheet.into(),
        row,
        column: column.map(|(name, c)| (name, column_letter(c))),
    };

    let mut rows = range.rows();
    let Some(header) = rows.next() else {
        report.push(
            at(0, None),
            "an empty sheet",
            format!("a header row naming the columns {}", fields.join(", ")),
        );
        return out;
    };
    let header_row = first_row + 1;
    let mut header_ok = true;
    for (offset, cell) in header.iter().enumerate() {
        let column = first_column + offset as u32;
        let name = match cell {
            Data::String(s) => s.trim().to_string(),
            Data::Empty => continue,
            other => {
                report.push(
                    at(header_row, None),
                    describe(other),
                    format!(
                        "a column name in header cell {}{header_row}",
                        column_letter(column)
                    ),
                );
                header_ok = false;
                continue;
            }
        };
        if name.is_empty() || name.starts_with('#') {
            continue; // Blank or '#'-prefixed headers mark designer notes.
        }
        if !fields.contains(&name.as_str()) {
            report.push(
                at(header_row, Some((name.clone(), column))),
                format!("unknown column {name:?}"),
                format!(
                    "one of {} (prefix a notes column with #)",
                    fields.join(", ")
                ),
            );
            header_ok = false;
        } else if let Some(previous) = out.columns.insert(name.clone(), column) {
            report.push(
                at(header_row, Some((name.clone(), column))),
                format!("column {name:?} again"),
                format!(
                    "each column once (it is already column {})",
                    column_letter(previous)
                ),
            );
            header_ok = false;
        }
    }
    for field in fields {
        if !out.columns.contains_key(*field) && !T::OPTIONAL.contains(field) {
            report.push(
                at(header_row, None),
                format!("no column {field:?}"),
                format!("a column named {field:?}"),
            );
            header_ok = false;
        }
    }
    if !header_ok {
        return out;
    }

    let present: Vec<(&'static str, u32)> = fields
        .iter()
        .filter_map(|f| out.columns.get(*f).map(|c| (*f, *c)))
        .collect();
    for (index, row) in rows.enumerate() {
        if row.iter().all(is_blank) {
            continue; // Empty rows (trailing or spacer) are not data.
        }
        let excel_row = header_row + 1 + index as u32;
        let failed = Cell::new(None);
        let access = RowAccess {
            fields: &present,
            next: 0,
            row,
            first_column,
            failed_column: &failed,
        };
        match T::deserialize(RowDeserializer(access)) {
            Ok(value) => out.rows.push((excel_row, value)),
            Err(error) => {
                if let Some(Data::String(id)) = out
                    .columns
                    .get("id")
                    .and_then(|c| row.get((c - first_column) as usize))
                {
                    out.failed_ids.push(id.trim().to_string());
                }
                let column = failed.get();
                let found = column
                    .and_then(|c| row.get((c - first_column) as usize))
                    .map_or_else(String::new, describe);
                let name = column
                    .and_then(|c| present.iter().find(|(_, pc)| *pc == c))
                    .map(|(n, _)| n.to_string());
                report.push(at(excel_row, name.zip(column)), found, error.0);
            }
        }
    }
    out
}
