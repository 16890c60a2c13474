//! Game data for the `roam100` benchmark, the standard workload we compare
//! against other servers: groups of 100 players who all see each other,
//! 20 Hz, each player's HP changing once a second.
//!
//! It is the default game with a `roam100` zone first (so a node starts it
//! as its default zone): one spawn point per group, 150 m apart (beyond the
//! 60 m view, so groups do not see each other), and a `runner` class whose
//! two self-targeted skills, `sting` (a one-tick -10 HP buff: damage skills
//! may not aim at friends) and `mend` (+10 HP), take and give back 10 HP
//! (bots alternate them once a second, so HP changes without anyone dying).

use std::path::{Path, PathBuf};

use rust_xlsxwriter::XlsxError;

use crate::generate::{CellValue, SheetSpec, default_game, write_workbook};

/// Distance between group centres, metres.
pub const GROUP_SPACING_M: f64 = 150.0;

fn sheet_mut<'a>(game: &'a mut [(&'static str, Vec<SheetSpec>)], name: &str) -> &'a mut SheetSpec {
    game.iter_mut()
        .flat_map(|(_, sheets)| sheets.iter_mut())
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("the default game has a {name} sheet"))
}

fn row(cells: Vec<CellValue>) -> Vec<CellValue> {
    cells
}

/// The roam100 game for `groups` groups of 100 players.
pub fn roam100_game(groups: usize) -> Vec<(&'static str, Vec<SheetSpec>)> {
    let groups = groups.max(1);
    let columns = (groups as f64).sqrt().ceil() as usize;
    let rows = groups.div_ceil(columns);
    let mut game = default_game();
    sheet_mut(&mut game, "classes").rows.push(row(vec![
        "runner".into(),
        "Runner".into(),
        1_000i64.into(),
        5.0.into(),
        "sting, mend".into(),
    ]));
    let skills = sheet_mut(&mut game, "skills");
    for (id, name, amount, buff) in [("sting", "Sting", 0i64, "stung"), ("mend", "Mend", 10, "")] {
        skills.rows.push(row(vec![
            id.into(),
            name.into(),
            "heal".into(),
            amount.into(),
            1.0.into(),
            20i64.into(),
            0i64.into(),
            "caster".into(),
            buff.into(),
        ]));
    }
    sheet_mut(&mut game, "buffs").rows.push(row(vec![
        "stung".into(),
        "Stung".into(),
        "hp_per_tick".into(),
        // Applied on the tick it lands and the next: -10 in all.
        (-5i64).into(),
        1i64.into(),
        "refresh".into(),
        1i64.into(),
    ]));
    let spawns: Vec<String> = (0..groups)
        .map(|g| {
            let (c, r) = (g % columns, g / columns);
            format!(
                "{}:{}",
                GROUP_SPACING_M * (c as f64 + 0.5),
                GROUP_SPACING_M * (r as f64 + 0.5)
            )
        })
        .collect();
    let zones = sheet_mut(&mut game, "zones");
    zones.rows.insert(
        1,
        row(vec![
            "roam100".into(),
            "zone".into(),
            "state".into(),
            20i64.into(),
            (GROUP_SPACING_M * columns as f64).into(),
            (GROUP_SPACING_M * rows as f64).into(),
            ((groups * 100 + 100) as i64).into(),
            spawns.join("; ").as_str().into(),
            "".into(),
        ]),
    );
    game
}

/// Writes the roam100 game for `groups` groups into `dir`.
pub fn write_roam100_game(dir: &Path, groups: usize) -> Result<Vec<PathBuf>, XlsxError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (file, sheets) in roam100_game(groups) {
        let path = dir.join(file);
        write_workbook(&path, &sheets)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::tables_from;

    #[test]
    fn the_roam100_game_is_valid_with_a_spawn_point_per_group() {
        let tables = tables_from(roam100_game(10)).unwrap_or_else(|r| panic!("{r}"));
        let zone = tables.zones.iter().next().expect("a first zone");
        assert_eq!(zone.id.0, "roam100");
        assert_eq!(zone.spawn_points.0.len(), 10);
        assert_eq!(zone.capacity, 1_100);
        assert!(tables.classes.get("runner").is_some());
        assert!(tables.skills.get("sting").is_some() && tables.skills.get("mend").is_some());
    }
}
