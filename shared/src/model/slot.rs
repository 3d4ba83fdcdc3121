//! The schedule slot: the minute a backup belongs to. Names, tags and idempotency derive from it.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// How far ahead of the clock a payload's `scheduled_time` may lie before it is refused.
pub const MAX_AHEAD: Duration = Duration::minutes(5);

/// A schedule slot, in UTC, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(DateTime<Utc>);

impl Slot {
    /// The slot that contains `time` (its seconds are dropped).
    pub fn containing(time: DateTime<Utc>) -> Self {
        let minute = time.duration_trunc(Duration::minutes(1)).unwrap_or(time);
        Slot(minute)
    }

    /// Parses an RFC 3339 time (as EventBridge Scheduler sends it) into its slot,
    /// refusing one more than [`MAX_AHEAD`] after `now`.
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<Self, String> {
        let time = DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                format!(
                    "`{text}` is not an RFC 3339 time ({e}); expected e.g. 2026-11-20T02:00:00Z"
                )
            })?
            .with_timezone(&Utc);
        if time > now + MAX_AHEAD {
            return Err(format!(
                "`{text}` lies more than {} minutes in the future (now is {})",
                MAX_AHEAD.num_minutes(),
                now.format("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
        Ok(Slot::containing(time))
    }

    /// Reads a slot back from a backup's tag (or any RFC 3339 time), with no
    /// check against the clock: `None` if it is not a time.
    pub fn from_tag(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Slot::containing(t.with_timezone(&Utc)))
    }

    /// The slot's start.
    pub fn time(&self) -> DateTime<Utc> {
        self.0
    }

    /// The compact form used inside snapshot and image names: `202611200200`.
    pub fn compact(&self) -> String {
        self.0.format("%Y%m%d%H%M").to_string()
    }

    /// The form used inside dump file names: `20261120T0200Z`.
    pub fn stamp(&self) -> String {
        self.0.format("%Y%m%dT%H%MZ").to_string()
    }

    /// Reads [`stamp`](Self::stamp)'s form back.
    pub fn from_stamp(text: &str) -> Option<Self> {
        chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%MZ")
            .ok()
            .map(|t| Slot(t.and_utc()))
    }

    /// The day's path inside dump keys: `2026/11/20`.
    pub fn day_path(&self) -> String {
        self.0.format("%Y/%m/%d").to_string()
    }
}

impl fmt::Display for Slot {
    /// The tag form, RFC 3339 UTC to the minute: `2026-11-20T02:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:00Z"))
    }
}

impl Serialize for Slot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn drops_seconds_and_converts_to_utc() {
        let now = at("2026-11-20T12:00:00Z");
        let slot = Slot::parse("2026-11-20T03:00:59.9+01:00", now).expect("valid");
        assert_eq!(slot.to_string(), "2026-11-20T02:00:00Z");
        assert_eq!(slot.compact(), "202611200200");
        assert_eq!(slot.stamp(), "20261120T0200Z");
        assert_eq!(Slot::from_stamp(&slot.stamp()), Some(slot));
        assert_eq!(slot.day_path(), "2026/11/20");
        assert_eq!(Slot::from_tag(&slot.to_string()), Some(slot));
        assert_eq!(Slot::from_tag("garbage"), None);
    }

    #[test]
    fn accepts_up_to_five_minutes_ahead_and_no_more() {
        let now = at("2026-11-20T02:00:00Z");
        assert!(Slot::parse("2026-11-20T02:05:00Z", now).is_ok());
        let err = Slot::parse("2026-11-20T02:05:01Z", now).expect_err("too far ahead");
        assert!(err.contains("more than 5 minutes in the future"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        let now = at("2026-11-20T02:00:00Z");
        for bad in ["2026-11-20", "2026-11-20 02:00", "yesterday", ""] {
            let err = Slot::parse(bad, now).expect_err(bad);
            assert!(err.contains("not an RFC 3339 time"), "{err}");
        }
    }
}
