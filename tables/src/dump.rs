//! Tables as CSV text, so a change to a binary workbook can be reviewed as a diff.

use std::{fmt::Write as _, path::Path};

use calamine::Data;

use crate::load::{read_workbook, workbook_files};

fn render(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Data::DateTime(d) => d.as_f64().to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e}"),
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Every sheet of every workbook in `dir`, each under a `# file [sheet]`
/// line, as CSV. Trailing empty cells and rows are dropped.
pub fn dump_dir(dir: &Path) -> Result<String, String> {
    let files = workbook_files(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = String::new();
    for path in files {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let sheets = read_workbook(&path).map_err(|e| format!("{file}: {e}"))?;
        for (name, range) in sheets {
            let _ = writeln!(out, "# {file} [{name}]");
            let mut lines: Vec<String> = range
                .rows()
                .map(|row| {
                    let cells: Vec<String> = row.iter().map(render).collect();
                    let used = cells
                        .iter()
                        .rposition(|c| !c.is_empty())
                        .map_or(0, |i| i + 1);
                    cells[..used]
                        .iter()
                        .map(|c| csv_field(c))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            while lines.last().is_some_and(String::is_empty) {
                lines.pop();
            }
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
    }
    Ok(out)
}
