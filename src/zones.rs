//! Which worlds a node runs, from the `zones` table.

use tessera_sim::WorldSpec;
use tessera_tables::{
    Tables,
    schema::{Zone, ZoneKind},
};

/// A zone row that cannot become a world on this build.
#[derive(Debug, thiserror::Error)]
#[error("zone {zone}: {problem}")]
pub struct ZoneError {
    /// The zone id.
    pub zone: String,
    /// What is wrong.
    pub problem: String,
}

/// The world spec for a `zones` row, seeded with `seed`.
pub fn spec_for(zone: &Zone, seed: u64) -> Result<WorldSpec, ZoneError> {
    let error = |problem: String| ZoneError {
        zone: zone.id.0.clone(),
        problem,
    };
    let mm = |m: tessera_tables::values::Meters, what: &str| {
        i32::try_from(m.mm).map_err(|_| {
            error(format!(
                "{what} {m} m is larger than a world can be (2147 km)"
            ))
        })
    };
    let tick_hz =
        u16::try_from(zone.tick_hz).map_err(|_| error(format!("tick rate {} Hz", zone.tick_hz)))?;
    let spec = WorldSpec {
        kind: zone.id.0.clone(),
        seed,
        tick_hz,
        width: mm(zone.width, "width")?,
        height: mm(zone.height, "height")?,
        capacity: zone.capacity,
    };
    spec.validate().map_err(|e| error(e.to_string()))?;
    Ok(spec)
}

/// One spec per `zone`-kind row, in table order, seeds counting up from `seed`.
pub fn persistent_zones(tables: &Tables, seed: u64) -> Result<Vec<WorldSpec>, ZoneError> {
    tables
        .zones
        .iter()
        .filter(|zone| zone.kind == ZoneKind::Zone)
        .enumerate()
        .map(|(index, zone)| spec_for(zone, seed.wrapping_add(index as u64)))
        .collect()
}

/// The `zones` row `kind` if it is a room kind with sync mode `sync`.
pub fn room_kind<'a>(
    tables: &'a tessera_tables::Tables,
    kind: &str,
    sync: tessera_tables::schema::SyncMode,
) -> Option<&'a Zone> {
    tables.zones.iter().find(|z| {
        z.id.0 == kind && z.kind == tessera_tables::schema::ZoneKind::Room && z.sync == sync
    })
}
