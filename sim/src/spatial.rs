//! A uniform grid over a world, rebuilt every tick, for "who is near" queries.
//!
//! A counting sort into one flat array: O(n) to rebuild, no allocation once
//! warm, and queries touch only the cells a circle overlaps. Ties between
//! equally near entities are broken by `SimId`, so answers never depend on
//! iteration order.

use bevy_ecs::{entity::Entity, resource::Resource};

use crate::{combat::components::Allegiance, entity::SimId, movement::Position};

/// One living entity, as the grid saw it this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridEntry {
    /// Its id.
    pub id: SimId,
    /// Its entity.
    pub entity: Entity,
    /// Where it was.
    pub position: Position,
    /// Who it fights for.
    pub allegiance: Allegiance,
}

/// The grid.
#[derive(Resource, Debug, Clone)]
pub struct SpatialGrid {
    cell_mm: i32,
    columns: i32,
    rows: i32,
    /// `starts[c]..starts[c + 1]` indexes `entries` of cell `c`.
    starts: Vec<u32>,
    entries: Vec<GridEntry>,
    scratch: Vec<(u32, GridEntry)>,
    cursor: Vec<u32>,
}

/// Most cells a grid may have: a huge zone gets bigger cells instead of a
/// grid that would not fit in memory.
pub const MAX_CELLS: i64 = 1 << 20;

impl SpatialGrid {
    /// An empty grid over `width` x `height` mm with square cells of at
    /// least `cell_mm` (larger when the zone would need over [`MAX_CELLS`]).
    pub fn new(width: i32, height: i32, cell_mm: i32) -> Self {
        let area = i64::from(width.max(1)) * i64::from(height.max(1));
        let mut cell_mm = i64::from(cell_mm.max(1));
        while (area / (cell_mm * cell_mm)) > MAX_CELLS / 2 {
            cell_mm *= 2;
        }
        let cell_mm = cell_mm.min(i64::from(i32::MAX)) as i32;
        let columns = width.max(0) / cell_mm + 1;
        let rows = height.max(0) / cell_mm + 1;
        Self {
            cell_mm,
            columns,
            rows,
            starts: vec![0; (columns * rows + 1) as usize],
            entries: Vec::new(),
            scratch: Vec::new(),
            cursor: Vec::new(),
        }
    }

    /// The first and last cells (column, row) of the square around a
    /// circle of `radius` at `center`.
    fn cells_around(&self, center: Position, radius: i32) -> ((i32, i32), (i32, i32)) {
        let corner = |by: i32| Position {
            x: center.x.saturating_add(by),
            y: center.y.saturating_add(by),
        };
        (
            self.cell_of(corner(radius.saturating_neg())),
            self.cell_of(corner(radius)),
        )
    }

    fn cell_of(&self, p: Position) -> (i32, i32) {
        (
            (p.x / self.cell_mm).clamp(0, self.columns - 1),
            (p.y / self.cell_mm).clamp(0, self.rows - 1),
        )
    }

    /// Replaces the contents with `items`.
    pub fn rebuild(&mut self, items: impl Iterator<Item = GridEntry>) {
        self.scratch.clear();
        for item in items {
            let (cx, cy) = self.cell_of(item.position);
            self.scratch.push(((cy * self.columns + cx) as u32, item));
        }
        self.starts.iter_mut().for_each(|s| *s = 0);
        for (cell, _) in &self.scratch {
            self.starts[*cell as usize + 1] += 1;
        }
        for i in 1..self.starts.len() {
            self.starts[i] += self.starts[i - 1];
        }
        self.entries.clear();
        self.entries.resize(
            self.scratch.len(),
            GridEntry {
                id: SimId(0),
                entity: Entity::PLACEHOLDER,
                position: Position::default(),
                allegiance: Allegiance::NPC,
            },
        );
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.starts);
        for (cell, item) in self.scratch.drain(..) {
            let slot = &mut self.cursor[cell as usize];
            self.entries[*slot as usize] = item;
            *slot += 1;
        }
    }

    /// The entries, cell by cell (row-major), each cell in the order the
    /// rebuild met its entities.
    pub fn entries(&self) -> &[GridEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the grid is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Calls `f` for every entry within `radius` mm of `center`.
    pub fn for_each_within(&self, center: Position, radius: i32, mut f: impl FnMut(&GridEntry)) {
        self.for_each_within_indexed(center, radius, |_, entry| f(entry));
    }

    /// Like [`Self::for_each_within`], with each entry's index in
    /// [`Self::entries`] (for data kept alongside the grid).
    pub fn for_each_within_indexed(
        &self,
        center: Position,
        radius: i32,
        mut f: impl FnMut(usize, &GridEntry),
    ) {
        let r = i64::from(radius.max(0));
        let ((x0, y0), (x1, y1)) = self.cells_around(center, radius);
        for cy in y0..=y1 {
            let row = cy * self.columns;
            let (from, to) = (
                self.starts[(row + x0) as usize],
                self.starts[(row + x1) as usize + 1],
            );
            for index in from as usize..to as usize {
                let entry = &self.entries[index];
                if distance_sq(entry.position, center) <= r * r {
                    f(index, entry);
                }
            }
        }
    }

    /// The `k` entries within `radius` of `center` that `accept` takes and
    /// that are nearest to it (by distance, ties to the lower id: the same
    /// `k` a scan of every entry in reach would pick), into `out` as
    /// (distance², id, index in [`Self::entries`]), in no order. Cells are
    /// read in square rings around the center's, and the walk stops once
    /// the next ring lies farther than the `k`-th nearest found so far: in
    /// a crowd it reads the few cells around the center, not every cell the
    /// radius covers, and picks among those.
    pub fn nearest_k_within(
        &self,
        center: Position,
        radius: i32,
        k: usize,
        mut accept: impl FnMut(&GridEntry) -> bool,
        out: &mut Vec<(i64, u64, usize)>,
    ) {
        out.clear();
        if k == 0 {
            return;
        }
        let r2 = i64::from(radius.max(0)).pow(2);
        let ((x0, y0), (x1, y1)) = self.cells_around(center, radius);
        let (cx, cy) = self.cell_of(center);
        let cell = i64::from(self.cell_mm);
        // Anything in ring r is at least (r - 1) cells and this far away
        // (0 for a center outside the grid, whose cell is the edge's).
        let edge = [
            i64::from(center.x) - i64::from(cx) * cell,
            (i64::from(cx) + 1) * cell - i64::from(center.x),
            i64::from(center.y) - i64::from(cy) * cell,
            (i64::from(cy) + 1) * cell - i64::from(center.y),
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
        .max(0);
        let mut read = |from: u32, to: u32, out: &mut Vec<(i64, u64, usize)>| {
            for index in from as usize..to as usize {
                let entry = &self.entries[index];
                let d = distance_sq(entry.position, center);
                if d <= r2 && accept(entry) {
                    out.push((d, entry.id.0, index));
                }
            }
        };
        let span = |y: i32, from_x: i32, to_x: i32| {
            let row = y * self.columns;
            (
                self.starts[(row + from_x) as usize],
                self.starts[(row + to_x) as usize + 1],
            )
        };
        let rings = (cx - x0).max(x1 - cx).max(cy - y0).max(y1 - cy);
        for ring in 0..=rings {
            if ring > 0 && out.len() >= k {
                keep_nearest(out, k);
                let farthest = out.iter().map(|(d, ..)| *d).max().unwrap_or(0);
                let near = (i64::from(ring) - 1) * cell + edge;
                // Strictly farther: one as near with a lower id would win.
                if near * near > farthest {
                    break;
                }
            }
            let (left, right) = ((cx - ring).max(x0), (cx + ring).min(x1));
            // The ring's top and bottom rows whole, then its two columns
            // between them (ring 0: the center's cell alone).
            for y in [cy - ring, cy + ring] {
                if (y0..=y1).contains(&y) {
                    let (from, to) = span(y, left, right);
                    read(from, to, out);
                }
                if ring == 0 {
                    break;
                }
            }
            for y in (cy - ring + 1).max(y0)..=(cy + ring - 1).min(y1) {
                for x in [cx - ring, cx + ring] {
                    if (x0..=x1).contains(&x) {
                        let (from, to) = span(y, x, x);
                        read(from, to, out);
                    }
                }
            }
        }
        keep_nearest(out, k);
    }

    /// The nearest entry within `radius` that `accept` takes; ties go to the lowest `SimId`.
    pub fn nearest(
        &self,
        center: Position,
        radius: i32,
        mut accept: impl FnMut(&GridEntry) -> bool,
    ) -> Option<GridEntry> {
        let mut best: Option<(i64, SimId, GridEntry)> = None;
        self.for_each_within(center, radius, |entry| {
            if !accept(entry) {
                return;
            }
            let key = (distance_sq(entry.position, center), entry.id);
            if best.as_ref().is_none_or(|(d, id, _)| key < (*d, *id)) {
                best = Some((key.0, key.1, *entry));
            }
        });
        best.map(|(_, _, entry)| entry)
    }
}

/// Keeps the `k` nearest of `found` (by distance, then id).
fn keep_nearest(found: &mut Vec<(i64, u64, usize)>, k: usize) {
    if found.len() > k {
        found.select_nth_unstable_by_key(k - 1, |(d, id, _)| (*d, *id));
        found.truncate(k);
    }
}

/// Squared distance in mm², exact in i64.
pub fn distance_sq(a: Position, b: Position) -> i64 {
    let dx = i64::from(a.x) - i64::from(b.x);
    let dy = i64::from(a.y) - i64::from(b.y);
    dx * dx + dy * dy
}

/// Whether `a` and `b` are within `range` mm of each other.
pub fn within(a: Position, b: Position, range: i64) -> bool {
    distance_sq(a, b) <= range * range
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;

    fn entry(id: u64, x: i32, y: i32) -> GridEntry {
        GridEntry {
            id: SimId(id),
            entity: Entity::PLACEHOLDER,
            position: Position { x, y },
            allegiance: Allegiance::NPC,
        }
    }

    #[test]
    fn a_huge_zone_gets_bigger_cells_not_a_huge_grid() {
        let grid = SpatialGrid::new(2_000_000_000, 2_000_000_000, 10_000);
        assert!(i64::from(grid.columns) * i64::from(grid.rows) <= MAX_CELLS);
        let mut grid = grid;
        grid.rebuild([entry(1, 1_999_999_999, 5)].into_iter());
        assert_eq!(
            grid.nearest(
                Position {
                    x: 1_999_999_000,
                    y: 0
                },
                10_000,
                |_| true
            )
            .map(|e| e.id),
            Some(SimId(1))
        );
    }

    #[test]
    fn queries_match_a_brute_force_scan() {
        let mut rng = SimRng::from_seed(3);
        let items: Vec<GridEntry> = (1..=2_000)
            .map(|i| entry(i, rng.range_i32(0, 100_000), rng.range_i32(0, 50_000)))
            .collect();
        let mut grid = SpatialGrid::new(100_000, 50_000, 7_000);
        grid.rebuild(items.iter().copied());
        assert_eq!(grid.len(), 2_000);
        for _ in 0..200 {
            let center = Position {
                x: rng.range_i32(-5_000, 105_000),
                y: rng.range_i32(-5_000, 55_000),
            };
            let radius = rng.range_i32(0, 20_000);
            let mut found = Vec::new();
            grid.for_each_within(center, radius, |e| found.push(e.id));
            found.sort();
            let expected: Vec<SimId> = items
                .iter()
                .filter(|e| within(e.position, center, i64::from(radius)))
                .map(|e| e.id)
                .collect();
            assert_eq!(found, expected);
            let nearest = grid
                .nearest(center, radius, |e| e.id.0 % 2 == 0)
                .map(|e| e.id);
            let brute = items
                .iter()
                .filter(|e| e.id.0 % 2 == 0 && within(e.position, center, i64::from(radius)))
                .min_by_key(|e| (distance_sq(e.position, center), e.id))
                .map(|e| e.id);
            assert_eq!(nearest, brute);
        }
    }

    /// What `nearest_k_within` must find: a scan of everything in reach,
    /// the `k` smallest by (distance, id).
    fn brute_k(items: &[GridEntry], center: Position, radius: i32, k: usize) -> Vec<u64> {
        let mut all: Vec<(i64, u64)> = items
            .iter()
            .filter(|e| e.id.0 % 3 != 0 && within(e.position, center, i64::from(radius)))
            .map(|e| (distance_sq(e.position, center), e.id.0))
            .collect();
        all.sort_unstable();
        all.truncate(k);
        let mut ids: Vec<u64> = all.into_iter().map(|(_, id)| id).collect();
        ids.sort_unstable();
        ids
    }

    proptest::proptest! {
        /// Crowds (everyone in a few cells, many at equal distances) and
        /// scattered worlds, centers inside and outside the grid, any `k`.
        #[test]
        fn the_k_nearest_are_those_a_full_scan_picks(
            seed in 0u64..1_000,
            crowd in 0i32..3,
            cell in 1_000i32..12_000,
            k in 0usize..80,
            radius in 0i32..70_000,
        ) {
            let mut rng = SimRng::from_seed(seed);
            let (width, height) = (120_000, 90_000);
            // A crowd stands on a coarse lattice: ties of distance abound.
            let spread = [120_000, 20_000, 3_000][crowd as usize];
            let step = if crowd == 2 { 500 } else { 1 };
            let items: Vec<GridEntry> = (1..=600)
                .map(|i| {
                    let x = 50_000 + rng.range_i32(0, spread / step) * step - spread / 2;
                    let y = 40_000 + rng.range_i32(0, spread / step) * step - spread / 2;
                    entry(i, x.clamp(0, width), y.clamp(0, height))
                })
                .collect();
            // In the lattice crowd, cells and centers sit on the lattice
            // too, so entries lie exactly on a ring's nearest edge.
            let cell = if crowd == 2 { (cell / step).max(2) * step } else { cell };
            let mut grid = SpatialGrid::new(width, height, cell);
            grid.rebuild(items.iter().copied());
            let mut out = Vec::new();
            for _ in 0..10 {
                let center = if crowd == 2 {
                    let mut near = |mid: i32| mid + rng.range_i32(-8, 9) * step;
                    Position { x: near(50_000), y: near(40_000) }
                } else {
                    Position {
                        x: rng.range_i32(-10_000, width + 10_000),
                        y: rng.range_i32(-10_000, height + 10_000),
                    }
                };
                grid.nearest_k_within(center, radius, k, |e| e.id.0 % 3 != 0, &mut out);
                for (d, id, index) in &out {
                    let entry = grid.entries()[*index];
                    proptest::prop_assert_eq!(entry.id.0, *id);
                    proptest::prop_assert_eq!(distance_sq(entry.position, center), *d);
                }
                let mut found: Vec<u64> = out.iter().map(|(_, id, _)| *id).collect();
                found.sort_unstable();
                proptest::prop_assert_eq!(found, brute_k(&items, center, radius, k));
            }
        }
    }
}
