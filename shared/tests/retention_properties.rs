//! Property tests of the retention engine over random histories: whatever the
//! backups and the policy, the plan keeps its promises.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lifeboat::rules::retention::{KeepPolicy, Point, Span, apply, cap};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time")
}

/// Up to 120 backups over about two years, some incomplete, some in the
/// future, some sharing a time.
fn history() -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec((-800i64 * 24..6, 0u8..10, any::<bool>()), 0..120).prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (hours, flavour, round))| {
                let minutes = if round { 0 } else { i64::from(flavour) * 7 };
                Point {
                    id: format!("snap-{i:04}"),
                    time: now() + Duration::hours(hours) + Duration::minutes(minutes),
                    complete: flavour != 0,
                }
            })
            .collect()
    })
}

fn count() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![3 => Just(None), 1 => Just(Some(-1)), 4 => (1i64..12).prop_map(Some)]
}

fn span() -> impl Strategy<Value = Option<Span>> {
    prop_oneof![
        4 => Just(None),
        1 => (0i64..2, 0i64..6, 0i64..40, 0i64..48).prop_map(|(years, months, days, hours)| Some(Span { years, months, days, hours })),
    ]
}

fn policy() -> impl Strategy<Value = KeepPolicy> {
    (
        (count(), count(), count(), count(), count(), count()),
        (span(), span(), span(), span(), span(), span()),
    )
        .prop_map(
            |(
                (last, hourly, daily, weekly, monthly, yearly),
                (within, within_hourly, within_daily, within_weekly, within_monthly, within_yearly),
            )| KeepPolicy {
                last,
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
                within,
                within_hourly,
                within_daily,
                within_weekly,
                within_monthly,
                within_yearly,
            },
        )
        .prop_filter("a policy that keeps something", |p| p.validate().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn keep_and_delete_partition_the_input(backups in history(), policy in policy()) {
        let plan = apply(&policy, backups.clone(), now());
        let kept: BTreeSet<&str> = plan.keep.iter().map(|(b, _)| b.id.as_str()).collect();
        let deleted: BTreeSet<&str> = plan.delete.iter().map(|b| b.id.as_str()).collect();
        let input: BTreeSet<&str> = backups.iter().map(|b| b.id.as_str()).collect();
        prop_assert!(kept.is_disjoint(&deleted));
        prop_assert_eq!(kept.union(&deleted).copied().collect::<BTreeSet<_>>(), input);
        prop_assert_eq!(plan.keep.len() + plan.delete.len(), backups.len());
        prop_assert!(plan.keep.iter().all(|(_, reasons)| !reasons.is_empty()), "every kept backup says why");
    }

    #[test]
    fn the_newest_complete_backup_is_kept_and_incomplete_ones_never_deleted(backups in history(), policy in policy()) {
        let plan = apply(&policy, backups.clone(), now());
        prop_assert!(plan.delete.iter().all(|b| b.complete && b.time <= now()), "only complete, past backups are deleted");
        let newest = backups.iter().filter(|b| b.complete && b.time <= now()).max_by(|a, b| a.time.cmp(&b.time).then_with(|| b.id.cmp(&a.id)));
        if let Some(newest) = newest {
            prop_assert!(plan.keep.iter().any(|(b, _)| b.id == newest.id), "newest complete {} deleted", newest.id);
        }
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order(backups in history(), policy in policy(), seed in any::<u64>()) {
        let mut shuffled = backups.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(apply(&policy, backups, now()), apply(&policy, shuffled, now()));
    }

    #[test]
    fn deletions_never_exceed_the_cap(backups in history(), policy in policy(), max in 0usize..20) {
        let plan = apply(&policy, backups, now());
        let all = plan.delete.len();
        let (now_, deferred) = cap(plan.delete.iter().map(|b| (b.time, b.id.clone())).collect(), max);
        prop_assert!(now_.len() <= max);
        prop_assert_eq!(now_.len() + deferred.len(), all);
        let newest_now = plan.delete.iter().filter(|b| now_.contains(&b.id)).map(|b| b.time).max();
        let oldest_deferred = plan.delete.iter().filter(|b| deferred.contains(&b.id)).map(|b| b.time).min();
        if let (Some(a), Some(b)) = (newest_now, oldest_deferred) {
            prop_assert!(a <= b, "the oldest surplus goes first");
        }
    }
}
