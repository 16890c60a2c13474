//! Loading every workbook of a directory into validated [`Tables`].

use std::path::{Path, PathBuf};

use calamine::{Data, Range, Reader, Xlsx, open_workbook};

use crate::{
    error::{CellRef, Report},
    schema::{Buff, Class, Level, Npc, Skill, Zone},
    sheet::{SheetRows, TableRow, read_sheet},
    tables::Tables,
    validate::{Sheets, validate},
};

/// The sheets the game reads, in load order.
pub const TABLE_NAMES: [&str; 6] = ["classes", "skills", "buffs", "npcs", "zones", "levels"];

/// How to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Sheet names (case-insensitive) that hold no table and are skipped.
    pub ignored_sheets: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            ignored_sheets: vec!["notes".into(), "readme".into()],
        }
    }
}

fn sheet_error(file: &str, sheet: &str) -> CellRef {
    CellRef {
        file: file.into(),
        sheet: sheet.into(),
        row: 0,
        column: None,
    }
}

/// The `.xlsx` files of `dir`, by name; editor lock files (`~$x.xlsx`) and
/// hidden files are not workbooks.
pub fn workbook_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            path.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
                && !name.starts_with("~$")
                && !name.starts_with('.')
                && path.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Opens one workbook and returns its sheets (name, range).
pub fn read_workbook(path: &Path) -> Result<Vec<(String, Range<Data>)>, String> {
    let workbook: Xlsx<_> =
        open_workbook(path).map_err(|e| format!("not a readable .xlsx workbook ({e})"))?;
    read_sheets(workbook)
}

/// Reads a workbook held in memory.
pub fn read_workbook_bytes(bytes: Vec<u8>) -> Result<Vec<(String, Range<Data>)>, String> {
    let workbook = Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable .xlsx workbook ({e})"))?;
    read_sheets(workbook)
}

/// Rows a sheet may use. calamine builds a dense grid from the first to the
/// last used cell, so one stray value in a far corner (Ctrl+End, a typo in
/// XFD1048576) would ask for tens of gigabytes: cells are read sparsely and
/// anything beyond these bounds is refused before any grid is built.
pub const MAX_ROWS: u32 = 100_000;
/// Columns a sheet may use.
pub const MAX_COLUMNS: u32 = 256;

fn read_sheets<RS: std::io::Read + std::io::Seek>(
    mut workbook: Xlsx<RS>,
) -> Result<Vec<(String, Range<Data>)>, String> {
    let mut sheets = Vec::new();
    for name in workbook.sheet_names() {
        let unreadable = |e: calamine::XlsxError| format!("sheet {name:?} cannot be read ({e})");
        let mut reader = workbook.worksheet_cells_reader(&name).map_err(unreadable)?;
        let mut cells = Vec::new();
        while let Some(cell) = reader.next_cell().map_err(unreadable)? {
            let (row, column) = cell.get_position();
            let value: Data = cell.get_value().clone().into();
            if value == Data::Empty {
                continue;
            }
            if row >= MAX_ROWS || column >= MAX_COLUMNS {
                return Err(format!(
                    "sheet {name:?} has a value in {}{} ({}), beyond the {MAX_ROWS} rows and {MAX_COLUMNS} columns a table may use; clear the stray cell",
                    crate::error::column_letter(column),
                    row + 1,
                    crate::cell::describe(&value),
                ));
            }
            cells.push(calamine::Cell::new((row, column), value));
        }
        sheets.push((name, Range::from_sparse(cells)));
    }
    Ok(sheets)
}

/// Loads and validates every table in `dir` with the default options.
pub fn load_dir(dir: &Path) -> Result<Tables, Report> {
    load_dir_with(dir, &LoadOptions::default())
}

/// Loads and validates every table in `dir`. Either all of it is valid, or
/// the report lists every problem found.
pub fn load_dir_with(dir: &Path, options: &LoadOptions) -> Result<Tables, Report> {
    let mut report = Report::default();
    let shown_dir = dir.display().to_string();
    let files = match workbook_files(dir) {
        Ok(files) if files.is_empty() => {
            report.push(
                sheet_error(&shown_dir, ""),
                "no .xlsx files",
                "a directory of .xlsx workbooks",
            );
            return Err(report);
        }
        Ok(files) => files,
        Err(error) => {
            report.push(
                sheet_error(&shown_dir, ""),
                format!("a directory that cannot be read ({error})"),
                "a directory of .xlsx workbooks",
            );
            return Err(report);
        }
    };

    let workbooks = files
        .iter()
        .map(|path| {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            (file, read_workbook(path))
        })
        .collect();
    load_workbooks(workbooks, &shown_dir, options)
}

/// Workbooks as read: (file name, its sheets or why it could not be read).
pub type Workbooks = Vec<(String, Result<Vec<(String, Range<Data>)>, String>)>;

/// Builds validated tables from workbooks already read; `origin` names
/// where they came from in errors about missing sheets.
pub fn load_workbooks(
    workbooks: Workbooks,
    origin: &str,
    options: &LoadOptions,
) -> Result<Tables, Report> {
    let mut report = Report::default();
    let shown_dir = origin.to_string();
    // table name -> (file, range)
    let mut found: Vec<(&str, String, Range<Data>)> = Vec::new();
    for (file, sheets) in workbooks {
        let sheets = match sheets {
            Ok(sheets) => sheets,
            Err(problem) => {
                report.push(sheet_error(&file, ""), problem, "an Excel .xlsx workbook");
                continue;
            }
        };
        for (name, range) in sheets {
            if options
                .ignored_sheets
                .iter()
                .any(|i| i.eq_ignore_ascii_case(&name))
            {
                continue;
            }
            match TABLE_NAMES.iter().find(|t| **t == name) {
                Some(table) => {
                    if let Some((_, other, _)) = found.iter().find(|(t, _, _)| t == table) {
                        report.push(
                            sheet_error(&file, &name),
                            format!("a second sheet {name:?}"),
                            format!("each table once (it is also in {other})"),
                        );
                    } else {
                        found.push((table, file.clone(), range));
                    }
                }
                None => report.push(
                    sheet_error(&file, &name),
                    format!("unknown sheet {name:?}"),
                    format!(
                        "one of {} (or a sheet listed as ignored: {})",
                        TABLE_NAMES.join(", "),
                        options.ignored_sheets.join(", ")
                    ),
                ),
            }
        }
    }

    fn take<T: TableRow>(
        found: &[(&str, String, Range<Data>)],
        dir: &str,
        report: &mut Report,
    ) -> SheetRows<T> {
        match found.iter().find(|(t, _, _)| *t == T::SHEET) {
            Some((_, file, range)) => read_sheet::<T>(file, range, report),
            None => {
                report.push(
                    sheet_error(dir, T::SHEET),
                    format!("no sheet named {:?}", T::SHEET),
                    "the sheet in one of the .xlsx files",
                );
                SheetRows::missing(dir)
            }
        }
    }
    let sheets = Sheets {
        classes: take::<Class>(&found, &shown_dir, &mut report),
        skills: take::<Skill>(&found, &shown_dir, &mut report),
        buffs: take::<Buff>(&found, &shown_dir, &mut report),
        npcs: take::<Npc>(&found, &shown_dir, &mut report),
        zones: take::<Zone>(&found, &shown_dir, &mut report),
        levels: take::<Level>(&found, &shown_dir, &mut report),
    };
    match validate(sheets, &mut report) {
        Some(tables) if report.is_empty() => Ok(tables),
        _ => Err(report),
    }
}
