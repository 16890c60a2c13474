//! Builds table directories on the fly: the default game, with edits.

#![allow(dead_code)]

use std::path::Path;

use tessera_tables::generate::{CellValue, SheetSpec, default_game, write_workbook};

/// The default game's workbooks, each passed through `edit(file, sheets)` first.
pub fn write_game(dir: &Path, mut edit: impl FnMut(&str, &mut Vec<SheetSpec>)) {
    for (file, mut sheets) in default_game() {
        edit(file, &mut sheets);
        write_workbook(&dir.join(file), &sheets).unwrap();
    }
}

/// The sheet named `name`, if this workbook has it.
pub fn sheet<'a>(sheets: &'a mut [SheetSpec], name: &str) -> Option<&'a mut SheetSpec> {
    sheets.iter_mut().find(|s| s.name == name)
}

/// Sets the cell at Excel `row` (1 = header) in the column headed `column`,
/// if this workbook has sheet `name` (the edit runs once per workbook).
pub fn set(
    sheets: &mut [SheetSpec],
    name: &str,
    row: usize,
    column: &str,
    value: impl Into<CellValue>,
) {
    let Some(sheet) = sheet(sheets, name) else {
        return;
    };
    let c = sheet.rows[0]
        .iter()
        .position(|h| *h == CellValue::Text(column.into()))
        .unwrap();
    let cells = &mut sheet.rows[row - 1];
    if cells.len() <= c {
        cells.resize(c + 1, CellValue::Empty);
    }
    cells[c] = value.into();
}
