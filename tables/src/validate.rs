//! Checks across rows and sheets: unique ids, references, ranges.

use std::collections::BTreeMap;

use crate::{
    error::Report,
    schema::{Buff, Class, Effect, Level, Npc, Skill, TargetKind, Zone},
    sheet::SheetRows,
    tables::{Table, Tables},
    values::{Id, Meters, Point},
};

/// The raw sheets of one load.
pub struct Sheets {
    /// `classes`.
    pub classes: SheetRows<Class>,
    /// `skills`.
    pub skills: SheetRows<Skill>,
    /// `buffs`.
    pub buffs: SheetRows<Buff>,
    /// `npcs`.
    pub npcs: SheetRows<Npc>,
    /// `zones`.
    pub zones: SheetRows<Zone>,
    /// `levels`.
    pub levels: SheetRows<Level>,
}

/// Largest tick rate a zone may ask for.
pub const MAX_ZONE_TICK_HZ: u32 = 128;
/// Largest zone side, mm: worlds hold positions in `i32` millimetres.
pub const MAX_ZONE_SIDE_MM: i64 = 2_000_000_000;
/// Most players a zone may hold.
pub const MAX_ZONE_CAPACITY: u32 = 1_000_000;
/// Most NPCs a zone may spawn.
pub const MAX_ZONE_NPCS: u64 = 200_000;

fn unique<T>(sheet: &SheetRows<T>, id: impl Fn(&T) -> &Id, report: &mut Report) {
    let mut seen: BTreeMap<&Id, u32> = BTreeMap::new();
    for (row, value) in &sheet.rows {
        if let Some(first) = seen.insert(id(value), *row) {
            seen.insert(id(value), first);
            report.push(
                sheet.at(*row, "id"),
                format!("{:?}", id(value).0),
                format!("a unique id (row {first} has it already)"),
            );
        }
    }
}

fn refs<T, U>(
    sheet: &SheetRows<T>,
    column: &str,
    targets: &SheetRows<U>,
    target_id: impl Fn(&U) -> &Id,
    ids: impl Fn(&T) -> Vec<&Id>,
    report: &mut Report,
) {
    let known: std::collections::BTreeSet<&str> = targets
        .rows
        .iter()
        .map(|(_, t)| target_id(t).0.as_str())
        .chain(targets.failed_ids.iter().map(String::as_str))
        .collect();
    for (row, value) in &sheet.rows {
        for id in ids(value) {
            if !known.contains(id.0.as_str()) {
                report.push(
                    sheet.at(*row, column),
                    format!("{:?}", id.0),
                    format!("an id from the {} sheet", targets.sheet),
                );
            }
        }
    }
}

fn inside(point: &Point, zone: &Zone) -> bool {
    (0..=zone.width.mm).contains(&point.x.mm) && (0..=zone.height.mm).contains(&point.y.mm)
}

fn check(
    report: &mut Report,
    ok: bool,
    at: crate::error::CellRef,
    found: impl ToString,
    expected: &str,
) {
    if !ok {
        report.push(at, found.to_string(), expected);
    }
}

/// Validates and indexes the sheets; every problem goes to `report`.
pub fn validate(sheets: Sheets, report: &mut Report) -> Option<Tables> {
    let s = &sheets;
    unique(&s.classes, |r| &r.id, report);
    unique(&s.skills, |r| &r.id, report);
    unique(&s.buffs, |r| &r.id, report);
    unique(&s.npcs, |r| &r.id, report);
    unique(&s.zones, |r| &r.id, report);

    refs(
        &s.classes,
        "skills",
        &s.skills,
        |t| &t.id,
        |r| r.skills.0.iter().collect(),
        report,
    );
    refs(
        &s.npcs,
        "skills",
        &s.skills,
        |t| &t.id,
        |r| r.skills.0.iter().collect(),
        report,
    );
    refs(
        &s.skills,
        "buff",
        &s.buffs,
        |t| &t.id,
        |r| r.buff.iter().collect(),
        report,
    );
    refs(
        &s.zones,
        "npc_spawns",
        &s.npcs,
        |t| &t.id,
        |r| r.npc_spawns.0.iter().map(|n| &n.npc).collect(),
        report,
    );

    let positive = |m: Meters| m.mm > 0;
    for (row, c) in &s.classes.rows {
        check(
            report,
            c.base_hp >= 1,
            s.classes.at(*row, "base_hp"),
            c.base_hp,
            "at least 1",
        );
        check(
            report,
            positive(c.speed),
            s.classes.at(*row, "speed"),
            c.speed,
            "a speed above 0 m/s",
        );
    }
    for (row, k) in &s.skills.rows {
        check(
            report,
            k.range.mm >= 0,
            s.skills.at(*row, "range"),
            k.range,
            "a range of 0 m or more",
        );
        let target_ok = match k.effect {
            Effect::Damage => matches!(k.target, TargetKind::Enemy | TargetKind::Point),
            Effect::Heal => matches!(
                k.target,
                TargetKind::Ally | TargetKind::Caster | TargetKind::Point
            ),
        };
        let (found, expected) = match k.effect {
            Effect::Damage => (
                "damage aimed at a friend",
                "enemy or point for a damage skill",
            ),
            Effect::Heal => ("heal aimed at an enemy", "ally, caster or point for a heal"),
        };
        check(
            report,
            target_ok,
            s.skills.at(*row, "target"),
            found,
            expected,
        );
    }
    for (row, b) in &s.buffs.rows {
        check(
            report,
            b.duration_ticks >= 1,
            s.buffs.at(*row, "duration_ticks"),
            b.duration_ticks,
            "at least 1 tick",
        );
        check(
            report,
            b.max_stacks >= 1,
            s.buffs.at(*row, "max_stacks"),
            b.max_stacks,
            "at least 1",
        );
    }
    for (row, n) in &s.npcs.rows {
        check(report, n.hp >= 1, s.npcs.at(*row, "hp"), n.hp, "at least 1");
        check(
            report,
            positive(n.speed),
            s.npcs.at(*row, "speed"),
            n.speed,
            "a speed above 0 m/s",
        );
        check(
            report,
            n.aggro_radius.mm >= 0,
            s.npcs.at(*row, "aggro_radius"),
            n.aggro_radius,
            "0 m or more",
        );
        check(
            report,
            n.leash_radius >= n.aggro_radius,
            s.npcs.at(*row, "leash_radius"),
            n.leash_radius,
            &format!("at least the aggro radius ({} m)", n.aggro_radius),
        );
    }
    for (row, z) in &s.zones.rows {
        check(
            report,
            (1..=MAX_ZONE_TICK_HZ).contains(&z.tick_hz),
            s.zones.at(*row, "tick_hz"),
            z.tick_hz,
            "a tick rate from 1 to 128",
        );
        check(
            report,
            positive(z.width) && z.width.mm <= MAX_ZONE_SIDE_MM,
            s.zones.at(*row, "width"),
            z.width,
            "a width above 0 m and at most 2000000 m",
        );
        check(
            report,
            positive(z.height) && z.height.mm <= MAX_ZONE_SIDE_MM,
            s.zones.at(*row, "height"),
            z.height,
            "a height above 0 m and at most 2000000 m",
        );
        check(
            report,
            (1..=MAX_ZONE_CAPACITY).contains(&z.capacity),
            s.zones.at(*row, "capacity"),
            z.capacity,
            "from 1 to 1000000",
        );
        check(
            report,
            !z.spawn_points.0.is_empty(),
            s.zones.at(*row, "spawn_points"),
            "no spawn points",
            "at least one spawn point",
        );
        for point in &z.spawn_points.0 {
            let expected = format!("a point inside the zone (0:0 to {}:{})", z.width, z.height);
            check(
                report,
                inside(point, z),
                s.zones.at(*row, "spawn_points"),
                point,
                &expected,
            );
        }
        let npcs: u64 = z.npc_spawns.0.iter().map(|n| u64::from(n.count)).sum();
        check(
            report,
            npcs <= MAX_ZONE_NPCS,
            s.zones.at(*row, "npc_spawns"),
            format!("{npcs} npcs"),
            "at most 200000 npcs in a zone",
        );
        for spawn in &z.npc_spawns.0 {
            let expected = format!("a point inside the zone (0:0 to {}:{})", z.width, z.height);
            check(
                report,
                inside(&spawn.at, z),
                s.zones.at(*row, "npc_spawns"),
                format!("{}@{}", spawn.npc, spawn.at),
                &expected,
            );
        }
    }
    if s.levels.rows.is_empty() && !s.levels.sheet.is_empty() {
        report.push(s.levels.at(0, "level"), "no levels", "at least level 1");
    }
    for (index, (row, l)) in s.levels.rows.iter().enumerate() {
        let expected = index as u32 + 1;
        check(
            report,
            l.level == expected,
            s.levels.at(*row, "level"),
            l.level,
            &format!("level {expected} (levels count up from 1)"),
        );
        let last = index + 1 == s.levels.rows.len();
        check(
            report,
            last || l.xp_to_next > 0,
            s.levels.at(*row, "xp_to_next"),
            l.xp_to_next,
            "above 0 (only the last level has 0)",
        );
    }

    if !report.is_empty() {
        return None;
    }
    fn rows<T>(sheet: SheetRows<T>) -> Vec<T> {
        sheet.rows.into_iter().map(|(_, v)| v).collect()
    }
    let Sheets {
        classes,
        skills,
        buffs,
        npcs,
        zones,
        levels,
    } = sheets;
    Some(Tables::new(
        Table::new(rows(classes), |r: &Class| &r.id),
        Table::new(rows(skills), |r: &Skill| &r.id),
        Table::new(rows(buffs), |r: &Buff| &r.id),
        Table::new(rows(npcs), |r: &Npc| &r.id),
        Table::new(rows(zones), |r: &Zone| &r.id),
        rows(levels),
    ))
}
