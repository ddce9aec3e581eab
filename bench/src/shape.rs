//! Record shapes: how many records of which size one Produce request or Fetch response carries.

use std::fmt;
use std::str::FromStr;

/// One record batch of `records` records, each with a `record_bytes`-byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub record_bytes: usize,
    pub records: usize,
}

impl Shape {
    /// The three shapes of the end-to-end benchmark: a small record (per-request costs dominate),
    /// a typical 1 KiB record, and a 64 KiB batch (per-byte costs dominate).
    pub const SMALL: Shape = Shape { record_bytes: 100, records: 1 };
    pub const KIB: Shape = Shape { record_bytes: 1024, records: 1 };
    pub const BATCH_64K: Shape = Shape { record_bytes: 1024, records: 64 };

    /// Record value bytes in one batch.
    pub fn payload_bytes(&self) -> usize {
        self.record_bytes.saturating_mul(self.records)
    }

    /// The shape's short name, as the command line and the reports spell it.
    pub fn name(&self) -> String {
        match *self {
            Shape::SMALL => "100B".to_string(),
            Shape::KIB => "1KiB".to_string(),
            Shape::BATCH_64K => "64KiB".to_string(),
            Shape { record_bytes, records } => format!("{records}x{record_bytes}"),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Shape {
    type Err = String;

    /// `100B`, `1KiB`, `64KiB`, or `<records>x<record_bytes>` (`64x1024`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "100B" => Ok(Shape::SMALL),
            "1KiB" => Ok(Shape::KIB),
            "64KiB" => Ok(Shape::BATCH_64K),
            other => {
                let (records, bytes) = other.split_once('x').ok_or_else(|| format!("unknown shape {other:?}"))?;
                let records = records.parse().map_err(|_| format!("bad record count in {other:?}"))?;
                let record_bytes = bytes.parse().map_err(|_| format!("bad record size in {other:?}"))?;
                if records == 0 {
                    return Err(format!("shape {other:?} has no records"));
                }
                Ok(Shape { record_bytes, records })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for shape in [Shape::SMALL, Shape::KIB, Shape::BATCH_64K, Shape { record_bytes: 7, records: 3 }] {
            assert_eq!(shape.name().parse::<Shape>(), Ok(shape));
        }
        assert_eq!(Shape::BATCH_64K.payload_bytes(), 65536);
        assert!("0x5".parse::<Shape>().is_err());
        assert!("big".parse::<Shape>().is_err());
    }
}
