//! Freshness rules: is a resource's newest complete backup younger than its
//! recovery point objective? Pure: plain data in, verdicts out, the clock passed in.

use crate::model::{Backup, Kind, Plan};
use crate::report::{Check, Freshness};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The verdict for a resource whose newest complete backup has slot `newest`
/// (or none), with `max_age_hours` as the threshold: the age in hours too. An
/// age exactly at the threshold is still fresh.
pub fn classify(
    newest: Option<DateTime<Utc>>,
    max_age_hours: f64,
    now: DateTime<Utc>,
) -> (Freshness, Option<f64>) {
    match newest {
        None => (Freshness::Unprotected, None),
        Some(time) => {
            let age = (now - time).num_seconds() as f64 / 3600.0;
            let state = if age > max_age_hours {
                Freshness::Stale
            } else {
                Freshness::Ok
            };
            (state, Some(age))
        }
    }
}

/// The newest complete backup of each resource among `backups`, counting only
/// `plans` if given (a backup of any plan is a backup otherwise) and never a
/// slot after `now`. A backup counts for every resource it covers.
pub fn newest_by_resource<'a>(
    backups: &'a [Backup],
    plans: Option<&[Plan]>,
    now: DateTime<Utc>,
) -> BTreeMap<&'a str, &'a Backup> {
    let mut newest: BTreeMap<&str, &Backup> = BTreeMap::new();
    let counted = backups
        .iter()
        .filter(|b| b.complete && b.slot().time() <= now)
        .filter(|b| plans.is_none_or(|plans| plans.contains(&b.label.plan)));
    for backup in counted {
        for resource in &backup.covers {
            let entry = newest.entry(resource.as_str()).or_insert(backup);
            if backup.slot() > entry.slot() {
                *entry = backup;
            }
        }
    }
    newest
}

/// When a restore drill of each resource's backups last passed: the newest
/// `proven` among its complete backups (of `plans` only, if given).
pub fn proven_by_resource<'a>(
    backups: &'a [Backup],
    plans: Option<&[Plan]>,
) -> BTreeMap<&'a str, DateTime<Utc>> {
    let mut proven: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    let counted = backups
        .iter()
        .filter(|b| b.complete)
        .filter(|b| plans.is_none_or(|plans| plans.contains(&b.label.plan)));
    for backup in counted {
        let Some(at) = backup.proven else { continue };
        for resource in &backup.covers {
            let entry = proven.entry(resource.as_str()).or_insert(at);
            *entry = (*entry).max(at);
        }
    }
    proven
}

/// What one check asks of each resource: a newest complete backup at most
/// `max_age_hours` old and, if given, a restore drill that passed within
/// `proven_within_days`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The recovery point objective, in hours.
    pub max_age_hours: f64,
    /// How recent the last proven restore must be, in days.
    pub proven_within_days: Option<u32>,
}

/// The verdicts of one check: each protected resource of `kind` against the
/// newest complete backup among `backups` (of `plans` only, if given), and
/// the newest passed restore drill of those backups against its limit.
pub fn assess(
    kind: Kind,
    resources: Vec<String>,
    backups: &[Backup],
    plans: Option<&[Plan]>,
    limits: Limits,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let newest = newest_by_resource(backups, plans, now);
    let proven = proven_by_resource(backups, plans);
    resources
        .into_iter()
        .map(|resource| {
            let backup = newest.get(resource.as_str());
            let (state, age_hours) =
                classify(backup.map(|b| b.slot().time()), limits.max_age_hours, now);
            let last_proven = proven.get(resource.as_str()).copied();
            let unproven = limits.proven_within_days.is_some_and(|days| {
                last_proven.is_none_or(|at| now - at > chrono::Duration::days(days.into()))
            });
            Check {
                kind,
                newest: backup.map(|b| b.id.clone()),
                newest_time: backup.map(|b| b.slot()),
                age_hours: age_hours.map(|a| (a * 100.0).round() / 100.0),
                max_age_hours: limits.max_age_hours,
                state,
                source: resource,
                last_proven,
                proven_within_days: limits.proven_within_days,
                unproven,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackupLabel, Slot};
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
            .expect("now")
            .with_timezone(&Utc)
    }

    fn backup(source: &str, plan: &str, hours_ago: i64, complete: bool) -> Backup {
        let slot = Slot::containing(now() - Duration::hours(hours_ago));
        let label = BackupLabel::new(&Plan::new(plan).expect("plan"), source, slot);
        let id = format!("snap-{source}-{plan}-{hours_ago}");
        Backup::new(Kind::Ebs, label, id, vec![], complete)
    }

    fn limits(proven_within_days: Option<u32>) -> Limits {
        Limits {
            max_age_hours: 26.0,
            proven_within_days,
        }
    }

    #[test]
    fn ages_at_the_boundary() {
        let at = |hours: i64| classify(Some(now() - Duration::hours(hours)), 26.0, now());
        assert_eq!(at(2), (Freshness::Ok, Some(2.0)));
        assert_eq!(at(26).0, Freshness::Ok, "exactly at the threshold is fresh");
        assert_eq!(
            classify(
                Some(now() - Duration::hours(26) - Duration::seconds(36)),
                26.0,
                now()
            )
            .0,
            Freshness::Stale
        );
        assert_eq!(at(30), (Freshness::Stale, Some(30.0)));
        assert_eq!(classify(None, 26.0, now()), (Freshness::Unprotected, None));
    }

    #[test]
    fn the_newest_complete_backup_of_any_plan_counts_unless_narrowed() {
        let backups = vec![
            backup("vol-a", "nightly", 30, true),
            backup("vol-a", "hourly", 1, true),
            backup("vol-a", "nightly", 0, false),
            backup("vol-b", "nightly", -3, true),
        ];
        let any = newest_by_resource(&backups, None, now());
        assert_eq!(
            any["vol-a"].label.plan.as_str(),
            "hourly",
            "a backup is a backup, whatever its plan"
        );
        assert!(
            !any.contains_key("vol-b"),
            "a slot in the future does not count"
        );
        let nightly = [Plan::new("nightly").expect("plan")];
        let narrowed = newest_by_resource(&backups, Some(&nightly), now());
        assert_eq!(
            narrowed["vol-a"].slot().time(),
            now() - Duration::hours(30),
            "incomplete ones never count"
        );
    }

    #[test]
    fn an_instance_set_covers_each_of_its_volumes() {
        let mut set = backup("i-1", "nightly", 2, true);
        set.covers = vec!["i-1".into(), "vol-x".into(), "vol-y".into()];
        let backups = [set];
        let newest = newest_by_resource(&backups, None, now());
        assert!(
            newest.contains_key("vol-x")
                && newest.contains_key("vol-y")
                && newest.contains_key("i-1")
        );
    }

    #[test]
    fn a_check_gives_each_resource_its_verdict() {
        let backups = [
            backup("vol-a", "nightly", 2, true),
            backup("vol-b", "nightly", 40, true),
        ];
        let resources = vec!["vol-a".to_owned(), "vol-b".to_owned(), "vol-c".to_owned()];
        let checks = assess(Kind::Ebs, resources, &backups, None, limits(None), now());
        let states: Vec<(&str, Freshness, Option<f64>)> = checks
            .iter()
            .map(|c| (c.source.as_str(), c.state, c.age_hours))
            .collect();
        assert_eq!(
            states,
            [
                ("vol-a", Freshness::Ok, Some(2.0)),
                ("vol-b", Freshness::Stale, Some(40.0)),
                ("vol-c", Freshness::Unprotected, None)
            ]
        );
        assert_eq!(checks[0].newest.as_deref(), Some("snap-vol-a-nightly-2"));
    }

    #[test]
    fn a_restore_is_proven_by_the_newest_passed_drill_within_its_limit() {
        let drilled =
            |source: &str, hours_ago: i64, days_since_drill: Option<i64>, complete: bool| {
                let mut b = backup(source, "nightly", hours_ago, complete);
                b.proven = days_since_drill.map(|d| now() - Duration::days(d));
                b
            };
        let backups = [
            // vol-a: an older backup's drill passed 10 days ago, a newer one's 40 days ago.
            drilled("vol-a", 24 * 20, Some(10), true),
            drilled("vol-a", 24 * 50, Some(40), true),
            drilled("vol-a", 2, None, true),
            // vol-b: its only passed drill is 36 days old.
            drilled("vol-b", 24 * 40, Some(36), true),
            // vol-c: a drill record on an incomplete backup does not count.
            drilled("vol-c", 2, Some(1), false),
            // vol-d: exactly at the limit is still proven.
            drilled("vol-d", 24 * 40, Some(35), true),
        ];
        let resources = ["vol-a", "vol-b", "vol-c", "vol-d", "vol-e"].map(str::to_owned);
        let checks = assess(
            Kind::Ebs,
            resources.to_vec(),
            &backups,
            None,
            limits(Some(35)),
            now(),
        );
        let seen: Vec<(&str, Option<i64>, bool)> = checks
            .iter()
            .map(|c| {
                (
                    c.source.as_str(),
                    c.last_proven.map(|at| (now() - at).num_days()),
                    c.unproven,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("vol-a", Some(10), false),
                ("vol-b", Some(36), true),
                ("vol-c", None, true),
                ("vol-d", Some(35), false),
                ("vol-e", None, true)
            ]
        );
        let unasked = assess(
            Kind::Ebs,
            resources.to_vec(),
            &backups,
            None,
            limits(None),
            now(),
        );
        assert!(
            unasked.iter().all(|c| !c.unproven),
            "a check that does not ask never finds a resource unproven"
        );
        assert_eq!(
            unasked[0].last_proven, checks[0].last_proven,
            "but shows the date"
        );
        let weekly = [Plan::new("weekly").expect("plan")];
        let narrowed = assess(
            Kind::Ebs,
            resources.to_vec(),
            &backups,
            Some(&weekly),
            limits(Some(35)),
            now(),
        );
        assert!(
            narrowed
                .iter()
                .all(|c| c.last_proven.is_none() && c.unproven),
            "only its plans' drills count"
        );
    }
}
