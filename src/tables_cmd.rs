//! `tessera tables check|dump|init`: the designer's tools.

use std::{path::Path, process::ExitCode};

use tessera_tables::{dump::dump_dir, generate::write_default_game, load_dir};

/// Where the shipped tables live, relative to the repository root.
pub const DEFAULT_TABLES_DIR: &str = "assets/tables";

/// Loads and validates `dir`; prints a summary (exit 0) or every problem (exit 1).
pub fn check(dir: &Path) -> ExitCode {
    match load_dir(dir) {
        Ok(tables) => {
            println!(
                "{}: valid; {} classes, {} skills, {} buffs, {} npcs, {} zones, {} levels; content hash {}",
                dir.display(),
                tables.classes.len(),
                tables.skills.len(),
                tables.buffs.len(),
                tables.npcs.len(),
                tables.zones.len(),
                tables.levels.len(),
                tables.hash()
            );
            ExitCode::SUCCESS
        }
        Err(report) => {
            println!("{}: INVALID", dir.display());
            print!("{report}");
            ExitCode::from(1)
        }
    }
}

/// Prints every sheet as CSV.
pub fn dump(dir: &Path) -> ExitCode {
    match dump_dir(dir) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// Writes the default game's workbooks (or the roam100 benchmark's, for
/// that many groups); refuses to overwrite unless `force`.
pub fn init(dir: &Path, force: bool, roam100: Option<usize>) -> ExitCode {
    let existing: Vec<_> = tessera_tables::generate::default_game()
        .into_iter()
        .map(|(file, _)| dir.join(file))
        .filter(|path| path.exists())
        .collect();
    if !existing.is_empty() && !force {
        eprintln!(
            "error: {} already exist(s); pass --force to overwrite",
            existing
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(1);
    }
    let written = match roam100 {
        Some(groups) => tessera_tables::bench::write_roam100_game(dir, groups),
        None => write_default_game(dir),
    };
    match written {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot write tables into {}: {error}", dir.display());
            ExitCode::from(1)
        }
    }
}
