//! Writing workbooks: the shipped default game data, and any sheet layout
//! (tests build broken workbooks with it).

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Workbook, XlsxError};

/// One cell to write.
#[derive(Clone, Debug, PartialEq)]
pub enum CellValue {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// TRUE/FALSE.
    Bool(bool),
    /// Nothing.
    Empty,
}

impl From<&str> for CellValue {
    fn from(text: &str) -> Self {
        CellValue::Text(text.to_string())
    }
}

impl From<f64> for CellValue {
    fn from(number: f64) -> Self {
        CellValue::Number(number)
    }
}

impl From<i64> for CellValue {
    fn from(number: i64) -> Self {
        CellValue::Number(number as f64)
    }
}

/// A sheet: its name and rows (the first row is the header).
#[derive(Clone, Debug, PartialEq)]
pub struct SheetSpec {
    /// Sheet name.
    pub name: String,
    /// Rows of cells.
    pub rows: Vec<Vec<CellValue>>,
}

/// Writes `sheets` as one `.xlsx` workbook at `path`.
pub fn write_workbook(path: &Path, sheets: &[SheetSpec]) -> Result<(), XlsxError> {
    build(sheets)?.save(path)
}

/// Builds `sheets` as one `.xlsx` workbook in memory.
pub fn workbook_bytes(sheets: &[SheetSpec]) -> Result<Vec<u8>, XlsxError> {
    build(sheets)?.save_to_buffer()
}

fn build(sheets: &[SheetSpec]) -> Result<Workbook, XlsxError> {
    let mut workbook = Workbook::new();
    for sheet in sheets {
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(&sheet.name)?;
        for (r, row) in sheet.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell {
                    CellValue::Text(text) => {
                        worksheet.write_string(r, c, text)?;
                    }
                    CellValue::Number(n) => {
                        worksheet.write_number(r, c, *n)?;
                    }
                    CellValue::Bool(b) => {
                        worksheet.write_boolean(r, c, *b)?;
                    }
                    CellValue::Empty => {}
                }
            }
        }
        if let Some(header) = sheet.rows.first() {
            for c in 0..header.len() {
                worksheet.set_column_width(c as u16, 16)?;
            }
        }
    }
    Ok(workbook)
}

/// Builds a sheet from a header and rows of cells.
#[macro_export]
macro_rules! sheet {
    ($name:expr, [$($header:expr),* $(,)?], $([$($cell:expr),* $(,)?]),* $(,)?) => {
        $crate::generate::SheetSpec {
            name: $name.to_string(),
            rows: vec![
                vec![$($crate::generate::CellValue::from($header)),*],
                $(vec![$($crate::generate::CellValue::from($cell)),*]),*
            ],
        }
    };
}

/// The default game's sheets, by workbook file name.
pub fn default_game() -> Vec<(&'static str, Vec<SheetSpec>)> {
    let game = vec![
        sheet!(
            "classes",
            ["id", "name", "base_hp", "speed", "skills"],
            ["warrior", "Warrior", 1200i64, 5.0, "slash, war_cry"],
            ["mage", "Mage", 800i64, 5.0, "firebolt, frost_nova, heal"],
            ["cleric", "Cleric", 950i64, 5.0, "smite, heal, renew"],
        ),
        sheet!(
            "skills",
            [
                "id",
                "name",
                "effect",
                "amount",
                "range",
                "cooldown_ticks",
                "cast_ticks",
                "target",
                "buff"
            ],
            [
                "slash", "Slash", "damage", 120i64, 2.5, 20i64, 0i64, "enemy", ""
            ],
            [
                "war_cry", "War Cry", "heal", 0i64, 0.0, 400i64, 0i64, "caster", "war_cry"
            ],
            [
                "firebolt", "Firebolt", "damage", 200i64, 25.0, 40i64, 10i64, "enemy", "burn"
            ],
            [
                "frost_nova",
                "Frost Nova",
                "damage",
                80i64,
                8.0,
                200i64,
                0i64,
                "point",
                "chill"
            ],
            [
                "heal", "Heal", "heal", 250i64, 20.0, 60i64, 15i64, "ally", ""
            ],
            [
                "smite", "Smite", "damage", 150i64, 20.0, 30i64, 5i64, "enemy", ""
            ],
            [
                "renew", "Renew", "heal", 40i64, 20.0, 100i64, 0i64, "ally", "regen"
            ],
            [
                "bite", "Bite", "damage", 40i64, 2.0, 20i64, 0i64, "enemy", ""
            ],
            [
                "gore", "Gore", "damage", 90i64, 2.5, 60i64, 10i64, "enemy", "bleed"
            ],
        ),
        sheet!(
            "buffs",
            [
                "id",
                "name",
                "stat",
                "amount",
                "duration_ticks",
                "stacking",
                "max_stacks"
            ],
            [
                "burn",
                "Burning",
                "hp_per_tick",
                -2i64,
                60i64,
                "stack",
                3i64
            ],
            ["chill", "Chilled", "speed", -30i64, 80i64, "refresh", 1i64],
            [
                "regen",
                "Renewing",
                "hp_per_tick",
                3i64,
                100i64,
                "refresh",
                1i64
            ],
            [
                "bleed",
                "Bleeding",
                "hp_per_tick",
                -1i64,
                100i64,
                "stack",
                5i64
            ],
            [
                "war_cry", "War Cry", "damage", 20i64, 200i64, "ignore", 1i64
            ],
        ),
        sheet!(
            "npcs",
            [
                "id",
                "name",
                "hp",
                "speed",
                "skills",
                "aggro_radius",
                "leash_radius",
                "respawn_ticks",
                "xp"
            ],
            [
                "wolf",
                "Grey Wolf",
                400i64,
                6.0,
                "bite",
                10.0,
                30.0,
                600i64,
                40i64
            ],
            [
                "boar",
                "Wild Boar",
                700i64,
                4.5,
                "gore",
                6.0,
                25.0,
                900i64,
                70i64
            ],
            [
                "bandit", "Bandit", 600i64, 5.0, "slash", 12.0, 40.0, 1200i64, 90i64
            ],
        ),
        sheet!(
            "levels",
            ["level", "xp_to_next", "hp_bonus_pct"],
            [1i64, 100i64, 0i64],
            [2i64, 250i64, 10i64],
            [3i64, 450i64, 20i64],
            [4i64, 700i64, 30i64],
            [5i64, 1000i64, 40i64],
            [6i64, 1400i64, 50i64],
            [7i64, 1900i64, 60i64],
            [8i64, 2500i64, 70i64],
            [9i64, 3200i64, 80i64],
            [10i64, 0i64, 90i64],
        ),
        sheet!(
            "notes",
            [
                "This workbook is generated by `tessera tables init`; edit it freely, then run `tessera tables check`."
            ],
        ),
    ];
    let world = vec![sheet!(
        "zones",
        [
            "id",
            "kind",
            "sync",
            "tick_hz",
            "width",
            "height",
            "capacity",
            "spawn_points",
            "npc_spawns"
        ],
        [
            "starter",
            "zone",
            "state",
            20i64,
            200.0,
            200.0,
            5000i64,
            "100:100; 20:20; 180:180",
            "wolf*40@50:50; boar*30@150:60; bandit*30@120:160"
        ],
        [
            "arena",
            "room",
            "state",
            30i64,
            60.0,
            60.0,
            10i64,
            "5:30; 55:30",
            ""
        ],
        [
            "duel_lockstep",
            "room",
            "frame",
            20i64,
            40.0,
            40.0,
            4i64,
            "5:5; 35:35; 5:35; 35:5",
            ""
        ],
    )];
    vec![("game.xlsx", game), ("world.xlsx", world)]
}

/// Writes the default game's workbooks into `dir` (created if needed).
pub fn write_default_game(dir: &Path) -> Result<Vec<PathBuf>, XlsxError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (file, sheets) in default_game() {
        let path = dir.join(file);
        write_workbook(&path, &sheets)?;
        written.push(path);
    }
    Ok(written)
}

/// Validated [`crate::Tables`] from workbooks described in memory, through
/// the same writer and loader as files (tests, benches, sandboxes).
pub fn tables_from(workbooks: Vec<(&str, Vec<SheetSpec>)>) -> Result<crate::Tables, crate::Report> {
    let workbooks = workbooks
        .into_iter()
        .map(|(file, sheets)| {
            let read = workbook_bytes(&sheets)
                .map_err(|e| format!("cannot build the workbook ({e})"))
                .and_then(crate::load::read_workbook_bytes);
            (file.to_string(), read)
        })
        .collect();
    crate::load::load_workbooks(
        workbooks,
        "in-memory tables",
        &crate::LoadOptions::default(),
    )
}

/// The default game as validated [`crate::Tables`], built in memory.
pub fn default_tables() -> crate::Tables {
    tables_from(default_game())
        .unwrap_or_else(|report| panic!("the built-in default game is invalid:\n{report}"))
}
