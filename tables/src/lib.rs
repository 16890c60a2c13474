//! # tessera-tables
//!
//! Game design data. Designers edit `.xlsx` workbooks; this crate will load
//! them with calamine into typed, validated tables. What exists today is the
//! piece worlds and replays already need: the content hash that names which
//! data a world ran with ([`TablesHash`]).

use std::fmt;

/// A stable 64-bit digest of table contents (0 means "no tables").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TablesHash(pub u64);

impl TablesHash {
    /// FNV-1a over named byte strings, in the order given. Callers pass
    /// tables sorted by name so that file order cannot change the hash.
    pub fn of<'a>(items: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for len_byte in (bytes.len() as u64).to_le_bytes() {
                hash = (hash ^ u64::from(len_byte)).wrapping_mul(0x0100_0000_01b3);
            }
            for byte in bytes {
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
