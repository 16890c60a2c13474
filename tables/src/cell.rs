//! A strict serde deserializer for one cell.
//!
//! calamine's own serde support coerces silently (text "5" becomes a number,
//! an empty cell becomes `false`, 2.7 becomes 2 for an integer) and reports
//! no position. Designers deserve better: here a cell either holds what the
//! field's type asks for or yields an error saying what was found.

use std::fmt;

use calamine::Data;
use serde::de::{self, IntoDeserializer, Visitor};

/// A cell did not hold what its column needs; says what was expected (the
/// caller knows the cell, so it describes what was found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError(pub String);

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.0)
    }
}

impl std::error::Error for CellError {}

impl de::Error for CellError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CellError(msg.to_string())
    }
}

/// How a cell's content reads in an error message.
pub fn describe(cell: &Data) -> String {
    match cell {
        Data::Empty => "an empty cell".into(),
        Data::String(s) if s.trim().is_empty() => "an empty cell".into(),
        Data::String(s) => format!("text {s:?}"),
        Data::Int(i) => format!("the number {i}"),
        Data::Float(f) => format!("the number {f}"),
        Data::Bool(b) => format!("the boolean {}", if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(d) => format!("a date/time ({})", d.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => format!("a date/time ({s})"),
        Data::Error(e) => format!("the error {e}"),
    }
}

/// Deserializes one cell, strictly.
pub struct CellDeserializer<'a>(pub &'a Data);

fn is_blank(cell: &Data) -> bool {
    match cell {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

impl<'a> CellDeserializer<'a> {
    fn integer(&self, what: &str) -> Result<i128, CellError> {
        match self.0 {
            Data::Int(i) => Ok(i128::from(*i)),
            // Excel stores every number as a float: 5.0 is an integer, 5.5 is not.
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i128),
            _ => Err(CellError(what.to_string())),
        }
    }

    fn bounded<T: TryFrom<i128>>(&self, what: &str) -> Result<T, CellError> {
        let value = self.integer(what)?;
        T::try_from(value).map_err(|_| CellError(what.to_string()))
    }

    fn text(&self) -> Result<String, CellError> {
        match self.0 {
            Data::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Data::Int(i) => Ok(i.to_string()),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok((*f as i64).to_string()),
            _ => Err(CellError("text".into())),
        }
    }
}

macro_rules! int_methods {
    ($($method:ident $visit:ident $t:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
            visitor.$visit(self.bounded::<$t>($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for CellDeserializer<'_> {
    type Error = CellError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        match self.0 {
            Data::Empty => visitor.visit_none(),
            Data::String(s) if s.trim().is_empty() => visitor.visit_none(),
            Data::String(s) => visitor.visit_str(s.trim()),
            Data::Int(i) => visitor.visit_i64(*i),
            Data::Float(f) => visitor.visit_f64(*f),
            Data::Bool(b) => visitor.visit_bool(*b),
            _ => Err(CellError("a number, text or TRUE/FALSE".into())),
        }
    }

    int_methods! {
        deserialize_u8 visit_u8 u8, "a whole number from 0 to 255";
        deserialize_u16 visit_u16 u16, "a whole number from 0 to 65535";
        deserialize_u32 visit_u32 u32, "a whole number from 0 to 4294967295";
        deserialize_u64 visit_u64 u64, "a non-negative whole number";
        deserialize_i8 visit_i8 i8, "a whole number from -128 to 127";
        deserialize_i16 visit_i16 i16, "a whole number from -32768 to 32767";
        deserialize_i32 visit_i32 i32, "a whole number from -2147483648 to 2147483647";
        deserialize_i64 visit_i64 i64, "a whole number";
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        match self.0 {
            Data::Int(i) => visitor.visit_f64(*i as f64),
            Data::Float(f) => visitor.visit_f64(*f),
            _ => Err(CellError("a number".into())),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        match self.0 {
            Data::Bool(b) => visitor.visit_bool(*b),
            Data::String(s) if s.trim().eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            Data::String(s) if s.trim().eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            _ => Err(CellError("TRUE or FALSE".into())),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        visitor.visit_string(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        visitor.visit_string(self.text()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        visitor.visit_string(self.text()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CellError> {
        if is_blank(self.0) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, CellError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CellError> {
        match self.0 {
            Data::String(s) if !s.trim().is_empty() => visitor
                .visit_enum(s.trim().to_string().into_deserializer())
                .map_err(|_: CellError| CellError(format!("one of {}", variants.join(", ")))),
            _ => Err(CellError(format!("one of {}", variants.join(", ")))),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn read<T: for<'de> Deserialize<'de>>(cell: Data) -> Result<T, CellError> {
        T::deserialize(CellDeserializer(&cell))
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(read::<u32>(Data::Float(5.0)), Ok(5));
        assert_eq!(read::<u32>(Data::Int(7)), Ok(7));
        let whole = "a whole number from 0 to 4294967295";
        assert_eq!(read::<u32>(Data::Float(2.5)).unwrap_err().0, whole);
        assert_eq!(
            read::<u32>(Data::String("5".into())).unwrap_err().0,
            whole,
            "text is not a number"
        );
        assert_eq!(read::<u32>(Data::Empty).unwrap_err().0, whole);
        assert_eq!(read::<u32>(Data::Int(-1)).unwrap_err().0, whole);
        assert_eq!(
            read::<u8>(Data::Int(300)).unwrap_err().0,
            "a whole number from 0 to 255"
        );
    }

    #[test]
    fn empty_is_none_not_false() {
        assert_eq!(read::<Option<u32>>(Data::Empty), Ok(None));
        assert_eq!(read::<Option<String>>(Data::String("  ".into())), Ok(None));
        assert!(read::<bool>(Data::Empty).is_err());
        assert_eq!(read::<bool>(Data::Bool(true)), Ok(true));
    }

    #[test]
    fn enums_name_their_variants() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Zone,
            Room,
        }
        assert_eq!(read::<Kind>(Data::String(" room ".into())), Ok(Kind::Room));
        assert_eq!(
            read::<Kind>(Data::String("dungeon".into())).unwrap_err().0,
            "one of zone, room"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_cell_gives_a_value_or_an_error(i: i64, f: f64, s: String, b: bool) {
            for cell in [Data::Int(i), Data::Float(f), Data::String(s.clone()), Data::Bool(b), Data::Empty] {
                let _ = read::<u32>(cell.clone());
                let _ = read::<i64>(cell.clone());
                let _ = read::<Option<String>>(cell.clone());
                let _ = read::<bool>(cell.clone());
                let _ = read::<f64>(cell);
            }
        }
    }
}
