//! `tessera tables check|dump|init`: the designer's command-line tools.

use std::process::Command;

fn tessera(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_passes_on_the_shipped_tables() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, _) = tessera(&["tables", "check"], root);
    assert_eq!(code, 0, "{stdout}");
    let hash = tessera_tables::load_dir(&root.join("assets/tables"))
        .unwrap()
        .hash();
    assert!(stdout.contains(&format!("assets/tables: valid; 3 classes, 9 skills, 5 buffs, 3 npcs, 3 zones, 10 levels; content hash {hash}")), "{stdout}");
}

#[test]
fn the_shipped_tables_are_what_init_generates() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = tessera(&["tables", "init", "generated"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("wrote generated/game.xlsx")
            && stdout.contains("wrote generated/world.xlsx"),
        "{stdout}"
    );
    let shipped = tessera_tables::load_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tables"),
    )
    .unwrap();
    let generated = tessera_tables::load_dir(&dir.path().join("generated")).unwrap();
    assert_eq!(
        shipped.hash(),
        generated.hash(),
        "regenerate assets/tables with `tessera tables init --force`"
    );

    let (code, _, stderr) = tessera(&["tables", "init", "generated"], dir.path());
    assert_eq!(code, 1, "init never overwrites silently");
    assert!(stderr.contains("--force"), "{stderr}");
    let (code, _, _) = tessera(&["tables", "init", "generated", "--force"], dir.path());
    assert_eq!(code, 0);
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    for (file, mut sheets) in tessera_tables::generate::default_game() {
        for sheet in &mut sheets {
            if sheet.name == "skills" {
                sheet.rows[3][5] = "soon".into();
            }
            if sheet.name == "zones" {
                sheet.rows[1][3] = 500i64.into();
            }
        }
        tessera_tables::generate::write_workbook(&dir.path().join(file), &sheets).unwrap();
    }
    let (code, stdout, _) = tessera(&["tables", "check", "."], dir.path());
    assert_eq!(code, 1);
    assert!(stdout.contains(".: INVALID"), "{stdout}");
    assert!(stdout.contains("2 problem(s)"), "{stdout}");
    assert!(
        stdout.contains("game.xlsx [skills] F4 (column \"cooldown_ticks\"): found text \"soon\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("world.xlsx [zones] D2 (column \"tick_hz\"): found 500"),
        "{stdout}"
    );
}

#[test]
fn dump_prints_every_sheet_as_csv() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, _) = tessera(&["tables", "dump"], root);
    assert_eq!(code, 0);
    assert!(stdout.contains("# game.xlsx [classes]\nid,name,base_hp,speed,skills\nwarrior,Warrior,1200,5,\"slash, war_cry\"\n"), "{stdout}");
    assert!(stdout.contains("# world.xlsx [zones]\n"), "{stdout}");
    assert!(
        stdout.contains("gore,Gore,damage,90,2.5,60,10,enemy,bleed\n"),
        "{stdout}"
    );
}
