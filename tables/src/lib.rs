//! # tessera-tables
//!
//! Game design data. Designers edit `.xlsx` workbooks; each sheet is a table
//! whose first row names the columns. Loading runs in two steps:
//!
//! 1. [`sheet::read_sheet`] deserialises each row into a typed row
//!    ([`schema`]) through a strict cell deserializer ([`cell`]): no silent
//!    coercion, and every problem is located to file, sheet, row and column.
//! 2. [`validate`] checks unique ids, references between sheets and ranges,
//!    and builds the indexed [`Tables`], whose [`TablesHash`] names the data
//!    a world (and its replay) ran with.
//!
//! All problems of a load come back together in one [`Report`].
//! [`TablesHandle`] shares the tables and swaps in a new version after a
//! valid reload (file watcher or explicit call); a bad file keeps the old
//! version. [`generate`] writes the shipped default game; [`dump`] prints
//! tables as CSV for review.

pub mod bench;
pub mod cell;
pub mod dump;
pub mod error;
pub mod generate;
pub mod load;
pub mod reload;
pub mod schema;
pub mod sheet;
pub mod tables;
pub mod validate;
pub mod values;

use std::fmt;

pub use crate::{
    error::{CellRef, Report, TableError},
    load::{LoadOptions, load_dir, load_dir_with},
    reload::{ReloadFailure, TablesHandle, Watcher},
    tables::{Table, Tables},
};

/// A stable 64-bit digest of table contents (0 means "no tables").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TablesHash(pub u64);

impl TablesHash {
    /// FNV-1a over named byte strings, in the order given, each length-prefixed.
    pub fn of<'a>(items: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for byte in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (name, content) in items {
            feed(name.as_bytes());
            feed(content);
        }
        Self(hash)
    }
}

impl fmt::Display for TablesHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_names_contents_and_framing() {
        let a = TablesHash::of([("skills", &b"fireball,10"[..])]);
        assert_eq!(a, TablesHash::of([("skills", &b"fireball,10"[..])]));
        assert_ne!(a, TablesHash::of([("skills", &b"fireball,11"[..])]));
        assert_ne!(a, TablesHash::of([("skill", &b"sfireball,10"[..])]));
        assert_eq!(a.to_string().len(), 16);
    }
}
