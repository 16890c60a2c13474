//! Reading back the table ids inside components.
//!
//! Table ids are validated when tables load, and the tables' `Id` parser
//! refuses or trims anything else; but a sandbox world (no classes) takes
//! any class text. A checkpoint must bring back exactly what was there, so
//! components read their ids back through plain strings.

use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use tessera_tables::values::Id;

/// `deserialize_with` for fields holding [`Id`]s.
pub(crate) fn unchecked_ids<'de, D: Deserializer<'de>, T: UncheckedIds>(
    deserializer: D,
) -> Result<T, D::Error> {
    T::Raw::deserialize(deserializer).map(T::from_raw)
}

/// A value holding [`Id`]s, read back through plain strings.
pub(crate) trait UncheckedIds: Sized {
    type Raw: DeserializeOwned;
    fn from_raw(raw: Self::Raw) -> Self;
}

impl UncheckedIds for Id {
    type Raw = String;
    fn from_raw(raw: String) -> Self {
        Id(raw)
    }
}

impl<B: DeserializeOwned> UncheckedIds for (Id, B) {
    type Raw = (String, B);
    fn from_raw((id, b): Self::Raw) -> Self {
        (Id(id), b)
    }
}

impl<T: UncheckedIds> UncheckedIds for Vec<T> {
    type Raw = Vec<T::Raw>;
    fn from_raw(raw: Self::Raw) -> Self {
        raw.into_iter().map(T::from_raw).collect()
    }
}

impl<T: UncheckedIds> UncheckedIds for Option<T> {
    type Raw = Option<T::Raw>;
    fn from_raw(raw: Self::Raw) -> Self {
        raw.map(T::from_raw)
    }
}
