//! Broken workbooks are refused with the exact file, sheet, row and column,
//! every problem in one report, and never a panic.

mod common;

use common::{set, sheet, write_game};
use tessera_tables::{
    CellRef, Report, TableError,
    generate::{CellValue, SheetSpec},
    load_dir,
};

fn load_with(
    edit: impl FnMut(&str, &mut Vec<SheetSpec>),
) -> (tempfile::TempDir, Result<tessera_tables::Tables, Report>) {
    let dir = tempfile::tempdir().unwrap();
    write_game(dir.path(), edit);
    let result = load_dir(dir.path());
    (dir, result)
}

fn errors(edit: impl FnMut(&str, &mut Vec<SheetSpec>)) -> Vec<TableError> {
    load_with(edit)
        .1
        .expect_err("the broken tables must be refused")
        .errors
}

fn at(file: &str, sheet: &str, row: u32, column: Option<(&str, &str)>) -> CellRef {
    CellRef {
        file: file.into(),
        sheet: sheet.into(),
        row,
        column: column.map(|(n, l)| (n.to_string(), l.to_string())),
    }
}

#[test]
fn the_shipped_default_game_is_valid() {
    let tables = load_with(|_, _| {}).1.unwrap();
    assert_eq!(tables.zones.get("starter").unwrap().tick_hz, 20);
    assert_eq!(tables.npcs.get("wolf").unwrap().aggro_radius.mm, 10_000);
    assert_eq!(tables.level_for_xp(0), 1);
    assert_eq!(tables.level_for_xp(100), 2);
    assert_eq!(tables.level_for_xp(349), 2);
    assert_eq!(tables.level_for_xp(u64::MAX), 10);
}

#[test]
fn a_wrong_cell_type_names_its_cell() {
    let errors = errors(|_, sheets| set(sheets, "skills", 4, "cooldown_ticks", "abc"));
    assert_eq!(
        errors,
        vec![TableError {
            at: at("game.xlsx", "skills", 4, Some(("cooldown_ticks", "F"))),
            found: "text \"abc\"".into(),
            expected: "a whole number from 0 to 4294967295".into(),
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "game.xlsx [skills] F4 (column \"cooldown_ticks\"): found text \"abc\", expected a whole number from 0 to 4294967295"
    );
}

#[test]
fn no_silent_coercions() {
    // A fraction in an integer column, a number typed as text, an empty required cell.
    let errors = errors(|_, sheets| {
        set(sheets, "skills", 2, "amount", 2.5);
        set(sheets, "npcs", 3, "hp", "700");
        set(sheets, "buffs", 5, "max_stacks", CellValue::Empty);
    });
    let found: Vec<(String, u32, String)> = errors
        .iter()
        .map(|e| (e.at.sheet.clone(), e.at.row, e.found.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("skills".into(), 2, "the number 2.5".into()),
            ("buffs".into(), 5, "an empty cell".into()),
            ("npcs".into(), 3, "text \"700\"".into()),
        ]
    );
}

#[test]
fn a_missing_column_is_named() {
    let errors = errors(|_, sheets| {
        if let Some(classes) = sheet(sheets, "classes") {
            for row in &mut classes.rows {
                row.remove(2); // base_hp
            }
        }
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].at, at("game.xlsx", "classes", 1, None));
    assert_eq!(errors[0].found, "no column \"base_hp\"");
}

#[test]
fn a_duplicate_id_names_both_rows() {
    let errors = errors(|_, sheets| set(sheets, "npcs", 4, "id", "wolf"));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].at, at("game.xlsx", "npcs", 4, Some(("id", "A"))));
    assert_eq!(errors[0].found, "\"wolf\"");
    assert_eq!(errors[0].expected, "a unique id (row 2 has it already)");
    // Renaming the bandit also leaves the zone that spawns bandits dangling.
    assert_eq!(
        errors[1].at,
        at("world.xlsx", "zones", 2, Some(("npc_spawns", "I")))
    );
    assert_eq!(errors[1].found, "\"bandit\"");
}

#[test]
fn a_dangling_reference_is_named() {
    let errors = errors(|_, sheets| set(sheets, "classes", 3, "skills", "firebolt, fireball"));
    assert_eq!(
        errors,
        vec![TableError {
            at: at("game.xlsx", "classes", 3, Some(("skills", "E"))),
            found: "\"fireball\"".into(),
            expected: "an id from the skills sheet".into(),
        }]
    );
}

#[test]
fn out_of_range_values_are_named() {
    let errors = errors(|file, sheets| {
        if file == "world.xlsx" {
            set(sheets, "zones", 2, "tick_hz", 500i64);
            set(sheets, "zones", 3, "spawn_points", "5:30; 61:30");
        } else {
            set(sheets, "skills", 6, "target", "enemy"); // heal aimed at an enemy
            set(sheets, "skills", 2, "amount", -5i64);
        }
    });
    let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        summary,
        vec![
            "game.xlsx [skills] D2 (column \"amount\"): found the number -5, expected a whole number from 0 to 4294967295",
            "game.xlsx [skills] H6 (column \"target\"): found heal aimed at an enemy, expected ally, caster or point for a heal",
            "world.xlsx [zones] D2 (column \"tick_hz\"): found 500, expected a tick rate from 1 to 128",
            "world.xlsx [zones] H3 (column \"spawn_points\"): found 61:30, expected a point inside the zone (0:0 to 60:60)",
        ]
    );
}

#[test]
fn a_missing_sheet_is_named() {
    let (dir, result) = load_with(|_, sheets| sheets.retain(|s| s.name != "levels"));
    let errors = result.unwrap_err().errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].at,
        at(&dir.path().display().to_string(), "levels", 0, None)
    );
    assert_eq!(errors[0].found, "no sheet named \"levels\"");
}

#[test]
fn unknown_sheets_are_refused_and_notes_are_not() {
    let errors = errors(|file, sheets| {
        if file == "game.xlsx" {
            let mut extra = sheets[0].clone();
            extra.name = "clases".into();
            sheets.push(extra);
        }
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].at, at("game.xlsx", "clases", 0, None));
    assert!(
        errors[0].expected.starts_with("one of classes, skills"),
        "{}",
        errors[0].expected
    );
}

#[test]
fn a_file_that_is_not_xlsx_is_named_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    write_game(dir.path(), |_, _| {});
    std::fs::write(dir.path().join("broken.xlsx"), b"this is a text file").unwrap();
    std::fs::write(dir.path().join("empty.xlsx"), b"").unwrap();
    // An editor's lock file is not a workbook and is not read.
    std::fs::write(dir.path().join("~$game.xlsx"), b"lock").unwrap();
    let errors = load_dir(dir.path()).unwrap_err().errors;
    let files: Vec<&str> = errors.iter().map(|e| e.at.file.as_str()).collect();
    assert_eq!(files, vec!["broken.xlsx", "empty.xlsx"]);
    assert!(
        errors
            .iter()
            .all(|e| e.found.starts_with("not a readable .xlsx workbook")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.at.sheet.is_empty() && e.at.row == 0)
    );
}

#[test]
fn a_bad_row_does_not_make_references_to_it_dangle() {
    // "slash" fails to parse, but classes and npcs that use it are not at fault.
    let errors = errors(|_, sheets| set(sheets, "skills", 2, "amount", "many"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].at.row, 2);
}

#[test]
fn every_problem_comes_back_in_one_report() {
    let errors = errors(|file, sheets| {
        if file == "game.xlsx" {
            set(sheets, "skills", 4, "cooldown_ticks", "abc");
            set(sheets, "npcs", 4, "hp", "wolf");
            set(sheets, "classes", 3, "skills", "fireball");
        }
    });
    let rows: Vec<(&str, u32)> = errors
        .iter()
        .map(|e| (e.at.sheet.as_str(), e.at.row))
        .collect();
    assert_eq!(rows, vec![("skills", 4), ("npcs", 4), ("classes", 3)]);
}

#[test]
fn columns_may_come_in_any_order_and_blank_rows_are_ignored() {
    let reference = load_with(|_, _| {}).1.unwrap().hash();
    let shuffled = load_with(|_, sheets| {
        let Some(skills) = sheet(sheets, "skills") else {
            return;
        };
        for row in &mut skills.rows {
            row.resize(9, CellValue::Empty);
            row.reverse();
        }
        skills.rows.push(vec![CellValue::Empty; 9]);
        skills
            .rows
            .push(vec![CellValue::Text("   ".into()), CellValue::Empty]);
        // A notes column is allowed anywhere.
        let classes = sheet(sheets, "classes").unwrap();
        classes.rows[0].push("# designer notes".into());
        classes.rows[1].push("tanky".into());
    })
    .1
    .unwrap();
    assert_eq!(
        shuffled.hash(),
        reference,
        "column order and blank rows change nothing a world sees"
    );
}

#[test]
fn the_hash_follows_content() {
    let reference = load_with(|_, _| {}).1.unwrap().hash();
    let changed = load_with(|_, sheets| set(sheets, "npcs", 2, "hp", 401i64))
        .1
        .unwrap()
        .hash();
    assert_ne!(reference, changed);
    let reordered = load_with(|_, sheets| {
        if let Some(npcs) = sheet(sheets, "npcs") {
            npcs.rows[1..].reverse();
        }
    })
    .1
    .unwrap()
    .hash();
    assert_eq!(
        reference, reordered,
        "row order within a table is not content"
    );
}

#[test]
fn the_in_memory_default_game_equals_the_files() {
    let files = load_with(|_, _| {}).1.unwrap();
    assert_eq!(
        tessera_tables::generate::default_tables().hash(),
        files.hash()
    );
}

#[test]
fn a_stray_cell_in_a_far_corner_is_refused_without_building_a_huge_grid() {
    // Regression: calamine sizes a dense grid from A1 to the last used cell;
    // a value in XFD1048576 asked for ~550 GB and aborted the node.
    let dir = tempfile::tempdir().unwrap();
    write_game(dir.path(), |_, _| {});
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("notes").unwrap();
    sheet.write_string(0, 0, "fine").unwrap();
    sheet.write_string(1_048_575, 16_383, "oops").unwrap();
    workbook.save(dir.path().join("extra.xlsx")).unwrap();
    let errors = load_dir(dir.path()).unwrap_err().errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].at.file, "extra.xlsx");
    assert!(
        errors[0]
            .found
            .contains("sheet \"notes\" has a value in XFD1048576 (text \"oops\")"),
        "{}",
        errors[0].found
    );
}

#[test]
fn zone_sizes_capacities_and_npc_counts_have_limits() {
    let errors = errors(|file, sheets| {
        if file == "world.xlsx" {
            set(sheets, "zones", 2, "width", 3_000_000.0);
            set(sheets, "zones", 3, "capacity", 0i64);
            set(
                sheets,
                "zones",
                2,
                "npc_spawns",
                "wolf*150000@5:5; boar*60000@5:5",
            );
        }
    });
    let cells: Vec<String> = errors
        .iter()
        .map(|e| format!("{}{}", e.at.column.as_ref().unwrap().1, e.at.row))
        .collect();
    assert_eq!(cells, vec!["E2", "I2", "G3"], "{errors:?}");
}
