//! When a source's backups are drilled, and which backup: a drill is due
//! when the source's last one is at least `every` old (or there is none),
//! and it restores the newest backup or, with `random`, any one still kept,
//! so that older backups are proven too.

use crate::model::Slot;
use crate::rules::retention::Span;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Which of a source's backups a drill restores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// The newest.
    #[default]
    Newest,
    /// Any one still kept, chosen afresh each drill.
    Random,
}

/// Whether a drill of a source whose last drill was at `last` is due at
/// `now`: with no `every`, every run drills; a drill exactly `every` old is due.
pub fn due(last: Option<DateTime<Utc>>, every: Option<&Span>, now: DateTime<Utc>) -> bool {
    match (last, every) {
        (None, _) | (_, None) => true,
        (Some(last), Some(every)) => last <= every.before(now),
    }
}

/// The index of the backup to drill among backups of these `slots`: the
/// newest, or for `random` the one `seed` (a different number each run)
/// falls on. `None` when there is none.
pub fn choose(slots: &[Slot], pick: Pick, seed: u64) -> Option<usize> {
    if slots.is_empty() {
        return None;
    }
    match pick {
        Pick::Newest => (0..slots.len()).max_by_key(|&i| slots[i]),
        Pick::Random => usize::try_from(seed % slots.len() as u64).ok(),
    }
}

/// Why a restore of `seconds` misses an RTO of `rto_minutes`, if it does.
pub fn over_rto(seconds: f64, rto_minutes: u64) -> Option<String> {
    (seconds > (rto_minutes * 60) as f64)
        .then(|| format!("the restore took {seconds:.0} s, over the RTO of {rto_minutes} minutes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_drill_is_due_when_the_last_is_every_old_or_there_is_none() {
        let now = at("2026-12-01T03:00:00Z");
        let month = Span::parse("1m").expect("span");
        let days = Span::parse("30d").expect("span");
        for (last, every, expected) in [
            (None, Some(&month), true),
            (Some("2026-11-30T03:00:00Z"), None, true),
            (Some("2026-11-01T03:00:00Z"), Some(&month), true),
            (Some("2026-11-01T03:00:01Z"), Some(&month), false),
            (Some("2026-11-01T03:00:00Z"), Some(&days), true),
            (Some("2026-11-02T03:00:00Z"), Some(&days), false),
            (Some("2026-12-01T03:00:00Z"), Some(&days), false),
        ] {
            assert_eq!(
                due(last.map(at), every, now),
                expected,
                "{last:?} {every:?}"
            );
        }
    }

    #[test]
    fn a_restore_longer_than_the_rto_misses_it() {
        assert_eq!(over_rto(59.9, 1), None);
        assert_eq!(over_rto(60.0, 1), None);
        assert_eq!(
            over_rto(61.2, 1).as_deref(),
            Some("the restore took 61 s, over the RTO of 1 minutes")
        );
        assert_eq!(over_rto(3599.0, 60), None);
    }

    #[test]
    fn the_newest_or_a_random_backup_is_chosen() {
        let slots: Vec<Slot> = [
            "2026-11-20T02:00:00Z",
            "2026-11-22T02:00:00Z",
            "2026-11-21T02:00:00Z",
        ]
        .iter()
        .map(|s| Slot::parse(s, at("2026-12-01T00:00:00Z")).expect("slot"))
        .collect();
        assert_eq!(choose(&slots, Pick::Newest, 7), Some(1));
        assert_eq!(choose(&[], Pick::Newest, 7), None);
        assert_eq!(choose(&[], Pick::Random, 7), None);
        let picked: std::collections::BTreeSet<usize> = (0..30)
            .filter_map(|seed| choose(&slots, Pick::Random, seed))
            .collect();
        assert_eq!(
            picked.into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2],
            "every backup can be drilled"
        );
    }
}
