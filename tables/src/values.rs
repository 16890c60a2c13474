//! Values designers type into cells, parsed strictly: metres, ids, lists.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, de};

/// A distance or speed given in metres (up to millimetre precision), held as
/// integer millimetres so gameplay never sees a float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Meters {
    /// The value in millimetres.
    pub mm: i64,
}

impl Meters {
    /// From whole millimetres.
    pub const fn from_mm(mm: i64) -> Self {
        Self { mm }
    }

    fn from_f64(value: f64) -> Option<Self> {
        let mm = value * 1000.0;
        let rounded = mm.round();
        // More precision than a millimetre is a typo, not a distance.
        ((mm - rounded).abs() < 1e-6 && rounded.abs() < 1e15).then_some(Self { mm: rounded as i64 })
    }
}

impl fmt::Display for Meters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mm % 1000 == 0 {
            write!(f, "{}", self.mm / 1000)
        } else {
            let text = format!("{}.{:03}", self.mm / 1000, (self.mm % 1000).abs());
            let text = if self.mm < 0 && self.mm > -1000 {
                format!("-{text}")
            } else {
                text
            };
            f.write_str(text.trim_end_matches('0'))
        }
    }
}

const METERS: &str = "a distance in metres (at most 3 decimals)";

impl<'de> Deserialize<'de> for Meters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Meters::from_f64(f64::deserialize(deserializer).map_err(|_| de::Error::custom(METERS))?)
            .ok_or_else(|| de::Error::custom(METERS))
    }
}

/// A row id: letters, digits, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Id(pub String);

impl Id {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let ok = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        ok.then(|| Self(text.to_string()))
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const ID: &str = "an id (letters, digits, _ or -)";

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer).map_err(|_| de::Error::custom(ID))?;
        Id::parse(&text).ok_or_else(|| de::Error::custom(ID))
    }
}

/// A comma-separated list of ids; an empty cell is an empty list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IdList(pub Vec<Id>);

const ID_LIST: &str = "a comma-separated list of ids, like \"slash, fireball\"";

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(text) =
            Option::<String>::deserialize(deserializer).map_err(|_| de::Error::custom(ID_LIST))?
        else {
            return Ok(Self::default());
        };
        text.split(',')
            .map(Id::parse)
            .collect::<Option<Vec<_>>>()
            .map(IdList)
            .ok_or_else(|| de::Error::custom(ID_LIST))
    }
}

/// A point in a zone, in metres from its origin corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    /// East.
    pub x: Meters,
    /// North.
    pub y: Meters,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.x, self.y)
    }
}

fn parse_point(text: &str) -> Option<Point> {
    let (x, y) = text.trim().split_once(':')?;
    let number = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .and_then(Meters::from_f64)
    };
    Some(Point {
        x: number(x)?,
        y: number(y)?,
    })
}

/// A `;`-separated list of `x:y` points in metres.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Points(pub Vec<Point>);

const POINTS: &str = "points in metres like \"10:20; 35.5:40\"";

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(text) =
            Option::<String>::deserialize(deserializer).map_err(|_| de::Error::custom(POINTS))?
        else {
            return Ok(Self::default());
        };
        text.split(';')
            .filter(|t| !t.trim().is_empty())
            .map(parse_point)
            .collect::<Option<Vec<_>>>()
            .map(Points)
            .ok_or_else(|| de::Error::custom(POINTS))
    }
}

/// Where and how many of one NPC a zone spawns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NpcSpawn {
    /// The `npcs` row.
    pub npc: Id,
    /// How many.
    pub count: u32,
    /// Where.
    pub at: Point,
}

/// A `;`-separated list of `npc@x:y` or `npc*count@x:y`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NpcSpawns(pub Vec<NpcSpawn>);

const SPAWNS: &str = "npc spawns like \"wolf@30:40; boar*3@50:50\"";

fn parse_spawn(text: &str) -> Option<NpcSpawn> {
    let (who, at) = text.trim().split_once('@')?;
    let (npc, count) = match who.split_once('*') {
        Some((npc, count)) => (npc, count.trim().parse::<u32>().ok().filter(|c| *c > 0)?),
        None => (who, 1),
    };
    Some(NpcSpawn {
        npc: Id::parse(npc)?,
        count,
        at: parse_point(at)?,
    })
}

impl<'de> Deserialize<'de> for NpcSpawns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(text) =
            Option::<String>::deserialize(deserializer).map_err(|_| de::Error::custom(SPAWNS))?
        else {
            return Ok(Self::default());
        };
        text.split(';')
            .filter(|t| !t.trim().is_empty())
            .map(parse_spawn)
            .collect::<Option<Vec<_>>>()
            .map(NpcSpawns)
            .ok_or_else(|| de::Error::custom(SPAWNS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_keep_millimetres_and_refuse_more() {
        assert_eq!(Meters::from_f64(1.5), Some(Meters::from_mm(1_500)));
        assert_eq!(Meters::from_f64(0.001), Some(Meters::from_mm(1)));
        assert_eq!(Meters::from_f64(0.0005), None);
        assert_eq!(Meters::from_mm(1_500).to_string(), "1.5");
        assert_eq!(Meters::from_mm(-250).to_string(), "-0.25");
        assert_eq!(Meters::from_mm(3_000).to_string(), "3");
    }

    #[test]
    fn lists_parse_and_refuse_junk() {
        assert_eq!(
            parse_point(" 10 : 20.5 "),
            Some(Point {
                x: Meters::from_mm(10_000),
                y: Meters::from_mm(20_500)
            })
        );
        assert_eq!(parse_point("10,20"), None);
        let spawn = parse_spawn("boar*3@50:60").unwrap();
        assert_eq!((spawn.npc.0.as_str(), spawn.count), ("boar", 3));
        assert!(parse_spawn("boar*0@1:1").is_none());
        assert!(parse_spawn("bo ar@1:1").is_none());
        assert!(Id::parse("fire ball").is_none());
    }
}
