//! A changed table file reaches a running handle; a broken one is refused
//! and the old version kept, with the error reported.

mod common;

use std::time::{Duration, Instant};

use common::{set, write_game};
use tessera_tables::{LoadOptions, TablesHandle};

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_watcher_swaps_in_valid_tables_and_keeps_old_ones_on_error() {
    let dir = tempfile::tempdir().unwrap();
    write_game(dir.path(), |_, _| {});
    let handle = TablesHandle::load(dir.path(), LoadOptions::default()).unwrap();
    let first = handle.current();
    assert_eq!(handle.version(), 1);
    let _watcher = handle.watch(Duration::from_millis(50)).unwrap();

    write_game(dir.path(), |_, sheets| set(sheets, "npcs", 2, "hp", 450i64));
    wait_for("the new version", || handle.version() == 2);
    let second = handle.current();
    assert_eq!(second.npcs.get("wolf").unwrap().hp, 450);
    assert_ne!(second.hash(), first.hash());
    assert_eq!(
        first.npcs.get("wolf").unwrap().hp,
        400,
        "holders of the old Arc keep the old tables"
    );

    write_game(dir.path(), |_, sheets| set(sheets, "npcs", 2, "hp", "lots"));
    wait_for("the reload error", || handle.last_error().is_some());
    assert_eq!(handle.version(), 2, "a bad file is not swapped in");
    assert_eq!(handle.current().hash(), second.hash());
    let failure = handle.last_error().unwrap();
    assert_eq!(failure.report.errors.len(), 1);
    assert_eq!(
        failure.report.errors[0].to_string(),
        "game.xlsx [npcs] C2 (column \"hp\"): found text \"lots\", expected a whole number from 0 to 4294967295"
    );

    write_game(dir.path(), |_, sheets| set(sheets, "npcs", 2, "hp", 500i64));
    wait_for("the fixed version", || handle.version() == 3);
    assert!(
        handle.last_error().is_none(),
        "a good reload clears the error"
    );
    assert_eq!(handle.current().npcs.get("wolf").unwrap().hp, 500);
}

#[test]
fn an_explicit_reload_reports_and_unchanged_content_is_not_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    write_game(dir.path(), |_, _| {});
    let handle = TablesHandle::load(dir.path(), LoadOptions::default()).unwrap();
    let hash = handle.current().hash();
    assert_eq!(handle.reload(), Ok(hash));
    assert_eq!(handle.version(), 1, "same content, same version");

    write_game(dir.path(), |_, sheets| {
        set(sheets, "classes", 2, "skills", "slash, nope")
    });
    let report = handle.reload().unwrap_err();
    assert_eq!(report.errors[0].at.row, 2);
    assert_eq!(handle.current().hash(), hash);
    assert_eq!(handle.last_error().unwrap().report, report);
}

#[test]
fn listeners_hear_of_each_swap_and_of_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    write_game(dir.path(), |_, _| {});
    let handle = TablesHandle::load(dir.path(), LoadOptions::default()).unwrap();
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen_version = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (heard, seen_version, observed) = (heard.clone(), seen_version.clone(), handle.clone());
        handle.on_change(move || {
            heard.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            seen_version.store(observed.version(), std::sync::atomic::Ordering::SeqCst);
        });
    }
    let heard = || heard.load(std::sync::atomic::Ordering::SeqCst);

    handle.reload().unwrap();
    assert_eq!(heard(), 0, "the same content is no change");

    write_game(dir.path(), |_, sheets| set(sheets, "npcs", 2, "hp", "lots"));
    handle.reload().unwrap_err();
    assert_eq!(heard(), 0, "a refused reload is no change");

    write_game(dir.path(), |_, sheets| set(sheets, "npcs", 2, "hp", 450i64));
    handle.reload().unwrap();
    assert_eq!(heard(), 1);
    assert_eq!(
        seen_version.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the listener runs once the new version is readable"
    );
}
