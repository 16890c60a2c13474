//! Replay files: a versioned header, then one record per tick.
//!
//! Layout (MessagePack, `rmp-serde`): a [`ReplayHeader`] followed by any
//! number of [`TickRecord`]s, each a separate value, so a recorder can append
//! as it goes and a crash loses at most the record being written.

use std::{
    io::{BufRead, BufReader, Read, Write},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use tessera_tables::{Tables, TablesHash};

use crate::{
    PlayerId,
    input::InputEnvelope,
    room::Room,
    world::{SimWorld, SpecError, WorldSpec},
};

/// First field of every replay file.
pub const REPLAY_MAGIC: &str = "tessera-replay";
/// The version this build writes. 2: the header carries a room's preset
/// sides (a version 1 file, from before rooms were recorded, has none).
pub const REPLAY_FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads.
pub const OLDEST_REPLAY_FORMAT_VERSION: u32 = 1;

/// What a replay needs to rebuild its world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayHeader {
    /// Always [`REPLAY_MAGIC`].
    pub magic: String,
    /// [`REPLAY_FORMAT_VERSION`] at the time of writing.
    pub format_version: u32,
    /// The world's spec, including its seed.
    pub spec: WorldSpec,
    /// Content hash of the game tables the world ran with (`tessera tables check` prints it).
    pub tables_hash: u64,
    /// Names of the state hash parts, in order.
    pub hash_parts: Vec<String>,
    /// Version of the tessera-sim crate that recorded it.
    pub recorded_by: String,
    /// A room's sides decided before anyone joined (matchmaking), by
    /// player: the host sets them, not an input, so the replay must.
    #[serde(default)]
    pub room_roster: Vec<(PlayerId, u8)>,
}

impl ReplayHeader {
    /// The header for recording `world` from its current tick on.
    pub fn for_world(world: &SimWorld) -> Self {
        Self {
            magic: REPLAY_MAGIC.into(),
            format_version: REPLAY_FORMAT_VERSION,
            spec: world.spec().clone(),
            tables_hash: world.tables_hash().0,
            hash_parts: world.hash_part_names(),
            recorded_by: env!("CARGO_PKG_VERSION").into(),
            room_roster: world
                .world()
                .get_resource::<Room>()
                .map(|room| room.roster.iter().map(|(p, side)| (*p, *side)).collect())
                .unwrap_or_default(),
        }
    }
}

/// One simulated tick: what went in and the state hash that came out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickRecord {
    /// The tick number (the first tick is 1).
    pub tick: u64,
    /// Inputs consumed by the tick, in the order they were applied.
    pub inputs: Vec<InputEnvelope>,
    /// The tick's state hash.
    pub hash: u64,
    /// The state hash parts, in header order.
    pub parts: Vec<u64>,
}

/// Why a replay could not be read or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file could not be read or written.
    #[error("replay i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The header could not be decoded.
    #[error("replay header is not valid: {0}")]
    Header(#[source] rmp_serde::decode::Error),
    /// A tick record could not be decoded (a truncated or corrupt file).
    #[error("tick record #{index} (after tick {after_tick}) is not valid: {source}")]
    Record {
        /// Zero-based index of the bad record.
        index: u64,
        /// The last tick that decoded, 0 when none did.
        after_tick: u64,
        /// What the decoder said.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// A value could not be encoded.
    #[error("replay encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// Not a replay file.
    #[error("not a tessera replay (magic {0:?})")]
    Magic(String),
    /// A replay from a newer or older format.
    #[error(
        "replay format version {found} is not supported (this build reads {OLDEST_REPLAY_FORMAT_VERSION} to {REPLAY_FORMAT_VERSION})"
    )]
    Version {
        /// The version in the file.
        found: u32,
    },
    /// The world spec in the header cannot be built.
    #[error("replay world spec is invalid: {0}")]
    Spec(#[from] SpecError),
    /// This build hashes different state than the recording build did.
    #[error(
        "replay hashes {recorded:?} but this build hashes {current:?}: it was recorded by a different simulation"
    )]
    HashLayout {
        /// Part names in the file.
        recorded: Vec<String>,
        /// Part names in this build.
        current: Vec<String>,
    },
    /// The tables given are not the ones the replay was recorded with.
    #[error("replay was recorded with tables {recorded} but the tables given are {given}")]
    Tables {
        /// Hash in the header.
        recorded: TablesHash,
        /// Hash of the tables given.
        given: TablesHash,
    },
    /// Records are not consecutive ticks.
    #[error("tick record #{index} is tick {found}, expected tick {expected}")]
    TickGap {
        /// Zero-based index of the record.
        index: u64,
        /// The tick the replay should have had.
        expected: u64,
        /// The tick it had.
        found: u64,
    },
}

/// Appends a replay to any writer.
pub struct ReplayWriter<W: Write> {
    out: W,
}

impl<W: Write> ReplayWriter<W> {
    /// Writes the header and returns a writer ready for records.
    pub fn new(mut out: W, header: &ReplayHeader) -> Result<Self, ReplayError> {
        rmp_serde::encode::write_named(&mut out, header)?;
        Ok(Self { out })
    }

    /// Appends one tick.
    pub fn append(&mut self, record: &TickRecord) -> Result<(), ReplayError> {
        rmp_serde::encode::write(&mut self.out, record)?;
        Ok(())
    }

    /// Pushes buffered bytes to the underlying writer.
    pub fn flush(&mut self) -> Result<(), ReplayError> {
        self.out.flush()?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, ReplayError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a replay's header, then its records one at a time.
pub struct ReplayReader<R: Read> {
    input: BufReader<R>,
    header: ReplayHeader,
    index: u64,
    last_tick: u64,
    failed: bool,
}

impl<R: Read> ReplayReader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, ReplayError> {
        let mut input = BufReader::new(input);
        let header: ReplayHeader = rmp_serde::from_read(&mut input).map_err(ReplayError::Header)?;
        if header.magic != REPLAY_MAGIC {
            return Err(ReplayError::Magic(header.magic));
        }
        if !(OLDEST_REPLAY_FORMAT_VERSION..=REPLAY_FORMAT_VERSION).contains(&header.format_version)
        {
            return Err(ReplayError::Version {
                found: header.format_version,
            });
        }
        Ok(Self {
            input,
            header,
            index: 0,
            last_tick: 0,
            failed: false,
        })
    }

    /// The replay's header.
    pub fn header(&self) -> &ReplayHeader {
        &self.header
    }
}

impl<R: Read> Iterator for ReplayReader<R> {
    type Item = Result<TickRecord, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.input.fill_buf() {
            Ok([]) => return None,
            Ok(_) => {}
            Err(error) => {
                self.failed = true;
                return Some(Err(error.into()));
            }
        }
        let index = self.index;
        self.index += 1;
        match rmp_serde::from_read::<_, TickRecord>(&mut self.input) {
            Ok(record) => {
                self.last_tick = record.tick;
                Some(Ok(record))
            }
            Err(source) => {
                self.failed = true;
                Some(Err(ReplayError::Record {
                    index,
                    after_tick: self.last_tick,
                    source,
                }))
            }
        }
    }
}

/// The first tick whose replayed hash differs from the recorded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The tick.
    pub tick: u64,
    /// The recorded hash.
    pub expected: u64,
    /// The replayed hash.
    pub actual: u64,
    /// Names of the state parts whose hashes differ.
    pub parts: Vec<String>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tick {} diverged: recorded hash {:016x}, replayed {:016x}; differing state: {}",
            self.tick,
            self.expected,
            self.actual,
            if self.parts.is_empty() {
                "(tick only)".to_string()
            } else {
                self.parts.join(", ")
            }
        )
    }
}

/// How a replay ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Ticks re-simulated (up to and including a divergence).
    pub ticks: u64,
    /// The first divergence, if any.
    pub divergence: Option<Divergence>,
}

/// Re-simulates a replay with `tables` (which must be the ones it was
/// recorded with) and compares every tick's hash with the recorded one,
/// stopping at the first divergence. `progress` is called after each tick.
pub fn verify<R: Read>(
    mut reader: ReplayReader<R>,
    tables: Arc<Tables>,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, ReplayError> {
    let recorded = TablesHash(reader.header().tables_hash);
    if tables.hash() != recorded {
        return Err(ReplayError::Tables {
            recorded,
            given: tables.hash(),
        });
    }
    let mut world = SimWorld::new(reader.header().spec.clone())?;
    world.set_tables(tables);
    if let Some(mut room) = world.world_mut().get_resource_mut::<Room>() {
        room.roster = reader.header().room_roster.iter().copied().collect();
    }
    let current = world.hash_part_names();
    if current != reader.header().hash_parts {
        return Err(ReplayError::HashLayout {
            recorded: reader.header().hash_parts.clone(),
            current,
        });
    }
    let names = current;
    let mut ticks = 0u64;
    for (index, record) in (&mut reader).enumerate() {
        let record = record?;
        let expected = world.tick() + 1;
        if record.tick != expected {
            return Err(ReplayError::TickGap {
                index: index as u64,
                expected,
                found: record.tick,
            });
        }
        world.push_envelopes(record.inputs);
        let report = world.step();
        ticks += 1;
        progress(ticks);
        if report.hash != record.hash {
            let parts = names
                .iter()
                .zip(world.hash_parts().iter().zip(&record.parts))
                .filter(|(_, (now, then))| now != then)
                .map(|(name, _)| name.clone())
                .collect();
            return Ok(VerifyReport {
                ticks,
                divergence: Some(Divergence {
                    tick: record.tick,
                    expected: record.hash,
                    actual: report.hash,
                    parts,
                }),
            });
        }
    }
    Ok(VerifyReport {
        ticks,
        divergence: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{driver::RandomInputs, input::Input};

    fn record(ticks: u64, players: u64) -> Vec<u8> {
        let spec = WorldSpec {
            seed: 99,
            ..WorldSpec::default()
        };
        let mut world = SimWorld::new(spec).unwrap();
        let mut driver = RandomInputs::new(5, players);
        world.start_recording();
        let mut writer = ReplayWriter::new(Vec::new(), &ReplayHeader::for_world(&world)).unwrap();
        for _ in 0..ticks {
            world.push_envelopes(driver.inputs_for(world.tick() + 1));
            world.step();
            for record in world.take_recorded() {
                writer.append(&record).unwrap();
            }
        }
        writer.finish().unwrap()
    }

    fn records(bytes: &[u8]) -> (ReplayHeader, Vec<TickRecord>) {
        let reader = ReplayReader::new(bytes).unwrap();
        let header = reader.header().clone();
        (header, reader.map(Result::unwrap).collect())
    }

    fn rewrite(header: &ReplayHeader, records: &[TickRecord]) -> Vec<u8> {
        let mut writer = ReplayWriter::new(Vec::new(), header).unwrap();
        for record in records {
            writer.append(record).unwrap();
        }
        writer.finish().unwrap()
    }

    #[test]
    fn ten_thousand_random_ticks_replay_identically() {
        let bytes = record(10_000, 40);
        let report = verify(
            ReplayReader::new(&bytes[..]).unwrap(),
            Arc::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(
            report,
            VerifyReport {
                ticks: 10_000,
                divergence: None
            }
        );
    }

    #[test]
    fn a_corrupted_input_is_reported_at_its_tick() {
        let (header, mut records) = record(600, 10).as_slice().pipe(records);
        let (index, input) = records
            .iter()
            .enumerate()
            .skip(300)
            .find_map(|(i, r)| {
                r.inputs
                    .iter()
                    .position(|e| matches!(e.input, Input::Move { .. }))
                    .map(|j| (i, j))
            })
            .expect("the driver sends moves");
        let Input::Move { seq, dir_x, dir_y } = records[index].inputs[input].input else {
            unreachable!()
        };
        records[index].inputs[input].input = Input::Move {
            seq: seq + 1_000,
            dir_x: dir_x.wrapping_neg().wrapping_add(7),
            dir_y: -dir_y,
        };
        let corrupted_tick = records[index].tick;

        let bytes = rewrite(&header, &records);
        let report = verify(
            ReplayReader::new(&bytes[..]).unwrap(),
            Arc::default(),
            |_| {},
        )
        .unwrap();
        let divergence = report.divergence.expect("the corruption must be noticed");
        assert_eq!(divergence.tick, corrupted_tick);
        assert_eq!(
            report.ticks,
            index as u64 + 1,
            "verification stops at the divergence"
        );
        assert!(
            divergence.parts.contains(&"LastInputSeq".to_string()),
            "{divergence}"
        );
    }

    #[test]
    fn a_truncated_file_names_the_last_good_tick() {
        let bytes = record(20, 3);
        let cut = &bytes[..bytes.len() - 3];
        let results: Vec<_> = ReplayReader::new(cut).unwrap().collect();
        assert_eq!(results.len(), 20);
        match results.last().unwrap() {
            Err(ReplayError::Record {
                index: 19,
                after_tick: 19,
                ..
            }) => {}
            other => panic!("expected a record error after tick 19, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_not_a_replay() {
        assert!(matches!(
            ReplayReader::new(&b"hello world"[..]),
            Err(ReplayError::Header(_))
        ));
        let mut header = ReplayHeader::for_world(&SimWorld::new(WorldSpec::default()).unwrap());
        header.format_version = 99;
        let bytes = rewrite(&header, &[]);
        assert!(matches!(
            ReplayReader::new(&bytes[..]),
            Err(ReplayError::Version { found: 99 })
        ));
    }

    #[test]
    fn other_tables_are_refused() {
        let (mut header, records) = record(5, 1).as_slice().pipe(records);
        header.tables_hash = 42;
        let bytes = rewrite(&header, &records);
        let error = verify(
            ReplayReader::new(&bytes[..]).unwrap(),
            Arc::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                ReplayError::Tables {
                    recorded: TablesHash(42),
                    given: TablesHash(0)
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_gap_in_ticks_is_an_error_not_a_divergence() {
        let (header, mut records) = record(10, 2).as_slice().pipe(records);
        records.remove(4);
        let bytes = rewrite(&header, &records);
        let error = verify(
            ReplayReader::new(&bytes[..]).unwrap(),
            Arc::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                ReplayError::TickGap {
                    index: 4,
                    expected: 5,
                    found: 6
                }
            ),
            "{error}"
        );
    }

    /// An arena room whose sides the host preset (matchmaking), as the
    /// node records one: four warriors join at the first tick.
    fn record_room(roster: &[(u64, u8)], ticks: u64) -> (Vec<u8>, Arc<Tables>) {
        let tables = Arc::new(tessera_tables::generate::default_tables());
        let zone = tables.zones.get("arena").unwrap();
        let spec = WorldSpec {
            kind: "arena".into(),
            seed: 3,
            tick_hz: zone.tick_hz as u16,
            width: zone.width.mm as i32,
            height: zone.height.mm as i32,
            capacity: zone.capacity,
        };
        let mut world = SimWorld::new(spec).unwrap();
        world.set_tables(tables.clone());
        world.world_mut().resource_mut::<Room>().roster = roster
            .iter()
            .map(|(player, side)| (PlayerId(*player), *side))
            .collect();
        world.start_recording();
        let mut writer = ReplayWriter::new(Vec::new(), &ReplayHeader::for_world(&world)).unwrap();
        world.push_envelopes(roster.iter().map(|(player, _)| {
            InputEnvelope::new(
                PlayerId(*player),
                Input::Join {
                    class: "warrior".into(),
                },
            )
        }));
        for _ in 0..ticks {
            world.step();
            for record in world.take_recorded() {
                writer.append(&record).unwrap();
            }
        }
        (writer.finish().unwrap(), tables)
    }

    #[test]
    fn a_room_with_preset_sides_replays_identically_and_only_with_them() {
        // Joining in this order would balance them 0, 1, 0, 1.
        let roster = [(1, 0), (2, 0), (3, 1), (4, 1)];
        let (bytes, tables) = record_room(&roster, 200);
        let (header, records) = records(&bytes);
        assert_eq!(header.room_roster.len(), 4);
        let replayed = verify(
            ReplayReader::new(&bytes[..]).unwrap(),
            tables.clone(),
            |_| {},
        );
        assert_eq!(
            replayed.unwrap(),
            VerifyReport {
                ticks: 200,
                divergence: None
            }
        );
        let without = ReplayHeader {
            room_roster: Vec::new(),
            ..header
        };
        let bytes = rewrite(&without, &records);
        let report = verify(ReplayReader::new(&bytes[..]).unwrap(), tables, |_| {}).unwrap();
        assert_eq!(
            report.divergence.map(|d| d.tick),
            Some(1),
            "the sides matter"
        );
    }

    #[test]
    fn a_version_1_file_without_room_sides_still_replays() {
        #[derive(Serialize)]
        struct V1<'a> {
            magic: &'a str,
            format_version: u32,
            spec: &'a WorldSpec,
            tables_hash: u64,
            hash_parts: &'a [String],
            recorded_by: &'a str,
        }
        let (header, records) = record(50, 5).as_slice().pipe(records);
        let mut bytes = Vec::new();
        rmp_serde::encode::write_named(
            &mut bytes,
            &V1 {
                magic: REPLAY_MAGIC,
                format_version: 1,
                spec: &header.spec,
                tables_hash: header.tables_hash,
                hash_parts: &header.hash_parts,
                recorded_by: &header.recorded_by,
            },
        )
        .unwrap();
        for record in &records {
            rmp_serde::encode::write(&mut bytes, record).unwrap();
        }
        let reader = ReplayReader::new(&bytes[..]).unwrap();
        assert_eq!(reader.header().format_version, 1);
        assert!(reader.header().room_roster.is_empty());
        let report = verify(reader, Arc::default(), |_| {}).unwrap();
        assert_eq!(report.divergence, None);
        assert_eq!(report.ticks, 50);
        // A newer format than this build writes is still refused.
        let mut newer = Vec::new();
        rmp_serde::encode::write_named(
            &mut newer,
            &ReplayHeader {
                format_version: REPLAY_FORMAT_VERSION + 1,
                ..header
            },
        )
        .unwrap();
        assert!(matches!(
            ReplayReader::new(&newer[..]),
            Err(ReplayError::Version { .. })
        ));
    }

    trait Pipe: Sized {
        fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
            f(self)
        }
    }
    impl<T> Pipe for T {}
}
