//! Time zones from TZif data: the same files Python's `zoneinfo` reads (the
//! system's IANA database, or the `tzdata` package), handed over by the
//! Python side, so that Rust and Python agree on every offset.

use std::sync::Arc;

use crate::errors::{FtError, FtResult};

/// How a wall-clock time maps onto instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// One instant.
    Single(i64),
    /// Repeated hour: (first fold, second fold).
    Fold(i64, i64),
    /// Skipped hour: the instant of the transition (first instant after the gap).
    Gap(i64),
}

#[derive(Clone)]
pub struct Zone {
    pub name: String,
    inner: Option<Arc<tz::TimeZone>>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

/// Largest offset change searched around a wall time (no zone has moved by
/// more than a day at once).
const SPAN: i64 = 26 * 3600;

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            inner: None,
        }
    }

    pub fn from_tzif(name: &str, data: &[u8]) -> FtResult<Zone> {
        let tz = tz::TimeZone::from_tz_data(data).map_err(|e| {
            FtError::config(format!("timezone: cannot read the data of {name:?}: {e}"))
        })?;
        Ok(Zone {
            name: name.to_string(),
            inner: Some(Arc::new(tz)),
        })
    }

    /// A fixed offset from UTC in seconds.
    pub fn fixed(offset: i32) -> FtResult<Zone> {
        let tz = tz::TimeZone::fixed(offset)
            .map_err(|e| FtError::config(format!("timezone: bad fixed offset {offset}: {e}")))?;
        Ok(Zone {
            name: format!("UTC{:+03}:{:02}", offset / 3600, (offset.abs() % 3600) / 60),
            inner: Some(Arc::new(tz)),
        })
    }

    /// UTC offset in seconds at a unix instant.
    pub fn offset_at(&self, unix: i64) -> i64 {
        match &self.inner {
            None => 0,
            Some(tz) => tz
                .find_local_time_type(unix)
                .map(|t| t.ut_offset() as i64)
                .unwrap_or(0),
        }
    }

    /// Wall-clock seconds of a unix instant.
    pub fn local(&self, unix: i64) -> i64 {
        unix + self.offset_at(unix)
    }

    /// The instants at which the wall clock shows `wall`.
    pub fn resolve(&self, wall: i64) -> Local {
        let mut offsets = [
            self.offset_at(wall - SPAN),
            self.offset_at(wall),
            self.offset_at(wall + SPAN),
        ];
        offsets.sort_unstable();
        let mut found: Vec<i64> = Vec::with_capacity(2);
        for (i, o) in offsets.iter().enumerate() {
            if i > 0 && offsets[i - 1] == *o {
                continue;
            }
            let t = wall - o;
            if self.offset_at(t) == *o && !found.contains(&t) {
                found.push(t);
            }
        }
        found.sort_unstable();
        match found.as_slice() {
            [t] => Local::Single(*t),
            [a, .., b] => Local::Fold(*a, *b),
            [] => Local::Gap(self.transition_after(wall)),
        }
    }

    /// The first instant whose wall clock is later than `wall` (`wall` lies
    /// in a gap, so this is the transition that skipped it).
    fn transition_after(&self, wall: i64) -> i64 {
        let (mut lo, mut hi) = (wall - SPAN, wall + SPAN);
        // local(lo) <= wall < local(hi) around a gap; find the smallest t
        // with local(t) > wall.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local(mid) > wall {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        let data = std::fs::read(format!("/usr/share/zoneinfo/{name}"))
            .expect("the system tz database (Debian's tzdata) is installed");
        Zone::from_tzif(name, &data).expect("valid TZif")
    }

    #[test]
    fn london_gap_and_fold() {
        let z = zone("Europe/London");
        // 2024-03-31 01:30 does not exist: clocks go 01:00 GMT -> 02:00 BST
        let wall = crate::sched::civil::Civil {
            year: 2024,
            month: 3,
            day: 31,
            hour: 1,
            minute: 30,
            second: 0,
        }
        .to_secs();
        match z.resolve(wall) {
            Local::Gap(t) => assert_eq!(t, 1_711_846_800), // 2024-03-31T01:00:00Z
            other => panic!("{other:?}"),
        }
        // 2024-10-27 01:30 happens twice (BST then GMT)
        let wall = crate::sched::civil::Civil {
            year: 2024,
            month: 10,
            day: 27,
            hour: 1,
            minute: 30,
            second: 0,
        }
        .to_secs();
        match z.resolve(wall) {
            Local::Fold(a, b) => {
                assert_eq!(a, 1_729_989_000); // 00:30Z
                assert_eq!(b, 1_729_992_600); // 01:30Z
            }
            other => panic!("{other:?}"),
        }
    }
}
