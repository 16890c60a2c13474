//! What can be wrong with a set of tables, down to the cell.

use std::fmt;

/// Where in which workbook a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRef {
    /// The workbook's file name (e.g. `game.xlsx`).
    pub file: String,
    /// The sheet (= table) name.
    pub sheet: String,
    /// The row number as Excel shows it (1 = the header row); 0 when the
    /// problem is the sheet itself.
    pub row: u32,
    /// The column's header name and letter, when one column is at fault.
    pub column: Option<(String, String)>,
}

impl fmt::Display for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if !self.sheet.is_empty() {
            write!(f, " [{}]", self.sheet)?;
        }
        match (&self.column, self.row) {
            (Some((name, letter)), 0) => write!(f, " column {letter} \"{name}\""),
            (Some((name, letter)), row) => write!(f, " {letter}{row} (column \"{name}\")"),
            (None, 0) => Ok(()),
            (None, row) => write!(f, " row {row}"),
        }
    }
}

/// One problem found while loading or validating tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError {
    /// Where.
    pub at: CellRef,
    /// The value found there, as text (empty when nothing applies).
    pub found: String,
    /// What was expected instead, or what is wrong.
    pub expected: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.found.is_empty() {
            write!(f, "{}: {}", self.at, self.expected)
        } else {
            write!(
                f,
                "{}: found {}, expected {}",
                self.at, self.found, self.expected
            )
        }
    }
}

/// Every problem found in one load, in file, sheet and row order. A load
/// reports all of them, not only the first.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Report {
    /// The problems.
    pub errors: Vec<TableError>,
}

impl Report {
    /// Whether nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn push(
        &mut self,
        at: CellRef,
        found: impl Into<String>,
        expected: impl Into<String>,
    ) {
        self.errors.push(TableError {
            at,
            found: found.into(),
            expected: expected.into(),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the tables:", self.errors.len())?;
        for error in &self.errors {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

/// Excel's column letters for a zero-based column index (0 -> A, 27 -> AB).
pub fn column_letter(mut index: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_match_excel() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }
}
