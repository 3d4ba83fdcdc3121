//! Retention: which backups to keep, with restic's `forget` semantics and
//! Lifeboat's safety rails on top. Pure: no AWS types, the clock passed in.
//!
//! Restic's rules, per group of backups (Lifeboat groups by kind, source and plan),
//! over the backups sorted newest first:
//!
//! - `last`, `hourly`, `daily`, `weekly` (ISO weeks), `monthly`, `yearly` are
//!   counts (`-1` = unlimited). Each walks the backups newest first and keeps a
//!   backup whenever its hour / day / week / month / year differs from that of
//!   the last one it kept, until its count is used up (`last` keeps every
//!   backup). While a rule still has count left, it also keeps the oldest
//!   backup, so the history reaches as far back as the counts allow.
//! - `within` keeps every backup younger than the duration, measured back from
//!   the newest backup (not from now); `within_hourly` … `within_yearly` keep
//!   one backup per hour … year within the duration (and the oldest backup, when
//!   it lies within).
//! - A backup is kept if any rule keeps it, and carries every rule that did.
//!
//! Lifeboat's rails: an empty policy is an error; incomplete backups are never
//! deleted and never counted; backups whose slot lies after `now` are kept
//! and reported, and not counted; the newest complete backup is always kept;
//! so is the backup whose restore drill passed last (per source, in a prune
//! run), which is the source's last proven restore.

use crate::model::Backup;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A duration in restic's syntax: `1y2m3d4h` (m = months).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Years.
    pub years: i64,
    /// Months.
    pub months: i64,
    /// Days.
    pub days: i64,
    /// Hours.
    pub hours: i64,
}

impl Span {
    /// Parses `1y2m3d4h` (any subset, in any order, each unit at most once).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{text}` is not a duration like 1y2m3d4h (y years, m months, d days, h hours)")
        };
        let mut span = Span::default();
        let mut seen = String::new();
        let mut number = String::new();
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: i64 = number.parse().map_err(|_| bad())?;
            number.clear();
            if seen.contains(c) {
                return Err(bad());
            }
            seen.push(c);
            match c {
                'y' => span.years = n,
                'm' => span.months = n,
                'd' => span.days = n,
                'h' => span.hours = n,
                _ => return Err(bad()),
            }
        }
        if !number.is_empty() || seen.is_empty() {
            return Err(bad());
        }
        // Any length restic accepts (`9999y` is a common "keep every yearly
        // backup"): a span reaching before the calendar's start reaches everything.
        Ok(span)
    }

    /// Whether the span is empty (restic treats `0d` as not set).
    pub fn is_zero(&self) -> bool {
        *self == Span::default()
    }

    /// `time` minus this span, as restic computes it: Go's `AddDate(-y, -m, -d)`
    /// (a day that does not exist in the target month rolls over into the next),
    /// then minus the hours.
    /// A span longer than the calendar reaches back gives its first moment.
    pub fn before(&self, time: DateTime<Utc>) -> DateTime<Utc> {
        self.checked_before(time)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn checked_before(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let months = (i64::from(time.year()) * 12 + i64::from(time.month0()))
            .checked_sub(self.years.checked_mul(12)?)?
            .checked_sub(self.months)?;
        let year = i32::try_from(months.div_euclid(12)).ok()?;
        let first = NaiveDate::from_ymd_opt(year, months.rem_euclid(12) as u32 + 1, 1)?;
        let back = (i64::from(time.day()) - 1).checked_sub(self.days)?;
        let date = first.checked_add_signed(Duration::try_days(back)?)?;
        date.and_time(time.time())
            .and_utc()
            .checked_sub_signed(Duration::try_hours(self.hours)?)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A retention policy: the `keep` block of a `prune` payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeepPolicy {
    /// Keep the newest N backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<i64>,
    /// Keep the newest backup of each of the last N hours that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<i64>,
    /// … days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<i64>,
    /// … ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<i64>,
    /// … months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
    /// … years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i64>,
    /// Keep every backup within this span of the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
    /// Keep one backup per hour within this span of the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_hourly: Option<Span>,
    /// … per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_daily: Option<Span>,
    /// … per ISO week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_weekly: Option<Span>,
    /// … per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_monthly: Option<Span>,
    /// … per year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_yearly: Option<Span>,
}

impl KeepPolicy {
    /// Refuses counts below -1 and a policy that keeps nothing. The error names the rule.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (name, count) in self.counts() {
            if count.is_some_and(|n| n < -1) {
                return Err((
                    name.to_owned(),
                    "must be a count of 0 or more, or -1 for unlimited".to_owned(),
                ));
            }
        }
        if self.is_empty() {
            return Err((
                String::new(),
                "keeps nothing: give at least one of last, hourly, daily, weekly, monthly, yearly, within, within_hourly … within_yearly (a policy that keeps nothing would delete every backup)".to_owned(),
            ));
        }
        Ok(())
    }

    /// Whether no rule is set (counts of 0 and zero spans do not count, as in restic).
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|(_, c)| c.unwrap_or(0) == 0)
            && self
                .spans()
                .iter()
                .all(|(_, _, s)| s.is_none_or(|s| s.is_zero()))
    }

    fn counts(&self) -> [(&'static str, Option<i64>); 6] {
        [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }

    fn spans(&self) -> [(&'static str, Option<Bucket>, Option<Span>); 6] {
        [
            ("within", None, self.within),
            ("within_hourly", Some(Bucket::Hour), self.within_hourly),
            ("within_daily", Some(Bucket::Day), self.within_daily),
            ("within_weekly", Some(Bucket::Week), self.within_weekly),
            ("within_monthly", Some(Bucket::Month), self.within_monthly),
            ("within_yearly", Some(Bucket::Year), self.within_yearly),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Each,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    /// The value that two backups in the same bucket share (restic's "bucker").
    fn of(self, time: DateTime<Utc>, index: usize) -> i64 {
        let (y, m, d, h) = (
            i64::from(time.year()),
            i64::from(time.month()),
            i64::from(time.day()),
            i64::from(time.hour()),
        );
        match self {
            Bucket::Each => index as i64,
            Bucket::Hour => y * 1_000_000 + m * 10_000 + d * 100 + h,
            Bucket::Day => y * 10_000 + m * 100 + d,
            Bucket::Week => {
                let week = time.iso_week();
                i64::from(week.year()) * 100 + i64::from(week.week())
            }
            Bucket::Month => y * 100 + m,
            Bucket::Year => y,
        }
    }
}

/// A count rule as it walks the backups: how many it may still keep, and the bucket it kept last.
struct CountRule {
    name: &'static str,
    bucket: Bucket,
    left: i64,
    last: Option<i64>,
}

/// A span rule as it walks the backups: the oldest time it reaches, and the bucket it kept last.
struct SpanRule {
    name: &'static str,
    bucket: Option<Bucket>,
    span: Span,
    since: DateTime<Utc>,
    last: Option<i64>,
}

/// What retention needs to know of a backup.
pub trait Dated {
    /// Its id (snapshot id, object key); ties in time are broken by it, so a
    /// decision never depends on the order the backups were listed in.
    fn id(&self) -> &str;
    /// Its slot.
    fn time(&self) -> DateTime<Utc>;
    /// Whether it is complete (a snapshot still `pending`, a dump without manifest is not).
    fn complete(&self) -> bool;
}

impl Dated for Backup {
    fn id(&self) -> &str {
        &self.id
    }
    fn time(&self) -> DateTime<Utc> {
        self.label.slot.time()
    }
    fn complete(&self) -> bool {
        self.complete
    }
}

/// A bare point in time with an id, for trying a policy on times alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Its id.
    pub id: String,
    /// Its time.
    pub time: DateTime<Utc>,
    /// Whether it counts as complete.
    pub complete: bool,
}

impl Dated for Point {
    fn id(&self) -> &str {
        &self.id
    }
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn complete(&self) -> bool {
        self.complete
    }
}

/// The decision for one group of backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<B> {
    /// Backups kept, newest first, each with the rules that kept it.
    pub keep: Vec<(B, Vec<String>)>,
    /// Backups to delete, newest first.
    pub delete: Vec<B>,
}

/// Reason given to incomplete backups, which are never deleted.
pub const INCOMPLETE: &str = "incomplete (never deleted, never counted)";
/// Reason given to backups whose slot lies in the future.
pub const FUTURE: &str = "slot in the future (kept, not counted)";
/// Reason given to the newest complete backup.
pub const NEWEST: &str = "newest complete backup";

/// Plans one group: which backups `policy` keeps and which it deletes, with `now` as the clock.
pub fn apply<B: Dated>(policy: &KeepPolicy, backups: Vec<B>, now: DateTime<Utc>) -> Decision<B> {
    let mut plan = Decision {
        keep: Vec::new(),
        delete: Vec::new(),
    };
    let mut counted = Vec::with_capacity(backups.len());
    for backup in backups {
        if !backup.complete() {
            plan.keep.push((backup, vec![INCOMPLETE.to_owned()]));
        } else if backup.time() > now {
            plan.keep.push((backup, vec![FUTURE.to_owned()]));
        } else {
            counted.push(backup);
        }
    }
    counted.sort_by(newest_first);
    let Some(latest) = counted.first().map(Dated::time) else {
        sort(&mut plan);
        return plan;
    };

    let buckets = [
        Bucket::Each,
        Bucket::Hour,
        Bucket::Day,
        Bucket::Week,
        Bucket::Month,
        Bucket::Year,
    ];
    let mut counts: Vec<CountRule> = policy
        .counts()
        .iter()
        .zip(buckets)
        .filter(|((_, n), _)| n.unwrap_or(0) != 0)
        .map(|((name, n), bucket)| CountRule {
            name,
            bucket,
            left: n.unwrap_or(0),
            last: None,
        })
        .collect();
    let mut spans: Vec<SpanRule> = policy
        .spans()
        .iter()
        .filter_map(|(name, bucket, span)| {
            let span = span.filter(|s| !s.is_zero())?;
            Some(SpanRule {
                name,
                bucket: *bucket,
                span,
                since: span.before(latest),
                last: None,
            })
        })
        .collect();

    let oldest = counted.len() - 1;
    for (index, backup) in counted.into_iter().enumerate() {
        let mut reasons = Vec::new();
        for rule in counts.iter_mut().filter(|r| r.left != 0) {
            let value = rule.bucket.of(backup.time(), index);
            if Some(value) != rule.last || index == oldest {
                rule.last = Some(value);
                if rule.left > 0 {
                    rule.left -= 1;
                }
                reasons.push(rule.name.to_owned());
            }
        }
        for rule in spans.iter_mut().filter(|r| backup.time() > r.since) {
            let keeps = match rule.bucket {
                None => true,
                Some(bucket) => {
                    let value = bucket.of(backup.time(), index);
                    let new = Some(value) != rule.last || index == oldest;
                    rule.last = Some(value);
                    new
                }
            };
            if keeps {
                reasons.push(format!("{} {}", rule.name, rule.span));
            }
        }
        if index == 0 && reasons.is_empty() {
            reasons.push(NEWEST.to_owned());
        }
        if reasons.is_empty() {
            plan.delete.push(backup);
        } else {
            plan.keep.push((backup, reasons));
        }
    }
    sort(&mut plan);
    plan
}

fn newest_first<B: Dated>(a: &B, b: &B) -> std::cmp::Ordering {
    b.time().cmp(&a.time()).then_with(|| a.id().cmp(b.id()))
}

fn sort<B: Dated>(plan: &mut Decision<B>) {
    plan.keep.sort_by(|(a, _), (b, _)| newest_first(a, b));
    plan.delete.sort_by(newest_first);
}

/// Splits the deletions of a whole run at `max_deletions`: the oldest go
/// first; the rest wait for the next run. Returns (now, deferred).
pub fn cap<T>(mut deletions: Vec<(DateTime<Utc>, T)>, max_deletions: usize) -> (Vec<T>, Vec<T>) {
    deletions.sort_by_key(|(time, _)| *time);
    let deferred = deletions.split_off(max_deletions.min(deletions.len()));
    (
        deletions.into_iter().map(|(_, t)| t).collect(),
        deferred.into_iter().map(|(_, t)| t).collect(),
    )
}

/// One kind's backups as a prune run listed them.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The kind's managed backups of the run's plan.
    pub backups: Vec<Backup>,
    /// What an earlier run's deletion left of a backup (an AMI's snapshots):
    /// surplus whatever the policy, deleted as the rest of that backup.
    pub leftovers: Vec<Backup>,
}

/// The decision of a whole prune run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDecision {
    /// Backups kept, each with the rules that kept it.
    pub keep: Vec<(Backup, Vec<String>)>,
    /// Backups to delete now, oldest first.
    pub delete: Vec<Backup>,
    /// Backups due for deletion that `max_deletions` holds back for a later run.
    pub deferred: Vec<Backup>,
}

/// Plans a prune run: `policy` applied to each group of backups (kind, source
/// and, for dumps, key prefix), in the order listed, then the surplus of all
/// of them capped at `max_deletions`, oldest first.
pub fn decide(
    policy: &KeepPolicy,
    listings: Vec<Listing>,
    now: DateTime<Utc>,
    max_deletions: usize,
) -> RunDecision {
    let mut keep = Vec::new();
    let mut surplus = Vec::new();
    for listing in listings {
        let mut groups: BTreeMap<(String, String), Vec<Backup>> = BTreeMap::new();
        for backup in listing.backups {
            let key = (backup.label.source.clone(), backup.scope.clone());
            groups.entry(key).or_default().push(backup);
        }
        for group in groups.into_values() {
            let mut decision = apply(policy, group, now);
            keep_last_proven(&mut decision);
            keep.extend(decision.keep);
            surplus.extend(decision.delete);
        }
        surplus.extend(listing.leftovers);
    }
    let dated = surplus.into_iter().map(|b| (b.time(), b)).collect();
    let (delete, deferred) = cap(dated, max_deletions);
    RunDecision {
        keep,
        delete,
        deferred,
    }
}

/// Reason given to the backup of a source whose restore drill passed last.
pub const LAST_PROVEN: &str = "last proven restore: of its source's backups, the one whose restore drill passed most recently";

/// Keeps the one backup of a group whose restore drill passed last, if the
/// policy would delete it: it is what `freshness` and `lifeboat status` show
/// as the source's last proven restore, and a drill runs far less often
/// (monthly) than the policy's shortest span (daily).
fn keep_last_proven(decision: &mut Decision<Backup>) {
    // Ties between deleted backups go to the smaller id, whatever the listing's order.
    let last = |b: &Backup| b.proven.map(|at| (at, std::cmp::Reverse(b.id.clone())));
    let newest_kept = decision.keep.iter().filter_map(|(b, _)| b.proven).max();
    let Some(index) = (0..decision.delete.len())
        .filter(|&i| last(&decision.delete[i]).is_some())
        .max_by_key(|&i| last(&decision.delete[i]))
    else {
        return;
    };
    if decision.delete[index].proven > newest_kept {
        let proven = decision.delete.remove(index);
        decision.keep.push((proven, vec![LAST_PROVEN.to_owned()]));
        sort(decision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn backups(times: &[&str]) -> Vec<Point> {
        times
            .iter()
            .enumerate()
            .map(|(i, time)| Point {
                id: format!("b{i:03}"),
                time: t(time),
                complete: true,
            })
            .collect()
    }

    fn policy(json: &str) -> KeepPolicy {
        let p: KeepPolicy = serde_json::from_str(json).expect("policy");
        p.validate().expect("valid policy");
        p
    }

    /// The kept times, newest first, and the deleted ones, newest first.
    fn run(p: &str, times: &[&str]) -> (Vec<String>, Vec<String>) {
        let plan = apply(&policy(p), backups(times), t("2030-01-01T00:00:00Z"));
        let fmt = |b: &Point| b.time.format("%Y-%m-%dT%H:%M").to_string();
        (
            plan.keep.iter().map(|(b, _)| fmt(b)).collect(),
            plan.delete.iter().map(fmt).collect(),
        )
    }

    fn days(from: u32, to: u32) -> Vec<String> {
        (from..=to)
            .rev()
            .map(|d| format!("2026-11-{d:02}T02:00:00Z"))
            .collect()
    }

    /// A policy, the backups' times, the times it keeps and the times it deletes.
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);

    #[test]
    fn count_rules_keep_one_per_bucket_newest_first() {
        let ten_days = days(11, 20);
        let ten: Vec<&str> = ten_days.iter().map(String::as_str).collect();
        let cases: [Case; 6] = [
            // policy, backups, kept, deleted
            (
                r#"{"last": 3}"#,
                &ten[..5],
                &["2026-11-20T02:00", "2026-11-19T02:00", "2026-11-18T02:00"],
                &["2026-11-17T02:00", "2026-11-16T02:00"],
            ),
            (
                r#"{"daily": 7}"#,
                &ten,
                &ten_kept(7),
                &["2026-11-13T02:00", "2026-11-12T02:00", "2026-11-11T02:00"],
            ),
            (r#"{"daily": 7}"#, &ten[..5], &ten_kept(5), &[]),
            (
                r#"{"hourly": 3}"#,
                &[
                    "2026-11-20T13:00:00Z",
                    "2026-11-20T12:15:00Z",
                    "2026-11-20T11:00:00Z",
                    "2026-11-20T10:30:00Z",
                    "2026-11-20T10:00:00Z",
                ],
                &["2026-11-20T13:00", "2026-11-20T12:15", "2026-11-20T11:00"],
                &["2026-11-20T10:30", "2026-11-20T10:00"],
            ),
            (
                r#"{"monthly": 2}"#,
                &[
                    "2026-11-20T02:00:00Z",
                    "2026-10-31T02:00:00Z",
                    "2026-10-01T02:00:00Z",
                    "2026-09-15T02:00:00Z",
                ],
                &["2026-11-20T02:00", "2026-10-31T02:00"],
                &["2026-10-01T02:00", "2026-09-15T02:00"],
            ),
            (
                r#"{"yearly": -1}"#,
                &[
                    "2026-03-01T02:00:00Z",
                    "2025-12-01T02:00:00Z",
                    "2025-01-01T02:00:00Z",
                    "2024-06-01T02:00:00Z",
                ],
                &["2026-03-01T02:00", "2025-12-01T02:00", "2024-06-01T02:00"],
                &["2025-01-01T02:00"],
            ),
        ];
        for (p, times, kept, deleted) in cases {
            let (k, d) = run(p, times);
            assert_eq!(k, kept, "kept by {p}");
            assert_eq!(d, deleted, "deleted by {p}");
        }
    }

    fn ten_kept(n: u32) -> Vec<&'static str> {
        [
            "2026-11-20T02:00",
            "2026-11-19T02:00",
            "2026-11-18T02:00",
            "2026-11-17T02:00",
            "2026-11-16T02:00",
            "2026-11-15T02:00",
            "2026-11-14T02:00",
        ][..n as usize]
            .to_vec()
    }

    #[test]
    fn weekly_uses_iso_weeks_across_the_new_year() {
        // 2026-12-27 is in 2026-W52; 12-28 and 2027-01-03 in 2026-W53; 2027-01-04 in 2027-W01.
        let times = [
            "2027-01-04T02:00:00Z",
            "2027-01-03T02:00:00Z",
            "2026-12-28T02:00:00Z",
            "2026-12-27T02:00:00Z",
        ];
        let (kept, deleted) = run(r#"{"weekly": 3}"#, &times);
        assert_eq!(
            kept,
            ["2027-01-04T02:00", "2027-01-03T02:00", "2026-12-27T02:00"]
        );
        assert_eq!(deleted, ["2026-12-28T02:00"]);
    }

    #[test]
    fn a_rule_with_count_left_keeps_the_oldest_backup() {
        let times = [
            "2026-11-20T02:00:00Z",
            "2026-11-18T18:00:00Z",
            "2026-11-18T06:00:00Z",
        ];
        let (kept, deleted) = run(r#"{"daily": 5}"#, &times);
        assert_eq!(
            kept.len(),
            3,
            "the oldest shares a day with the one before it, yet is kept"
        );
        assert!(deleted.is_empty());
        // With the count used up, it is not.
        let (_, deleted) = run(r#"{"daily": 2}"#, &times);
        assert_eq!(deleted, ["2026-11-18T06:00"]);
    }

    #[test]
    fn within_is_measured_back_from_the_newest_backup_strictly() {
        let times = [
            "2026-11-20T02:00:00Z",
            "2026-11-19T02:00:00Z",
            "2026-11-18T03:00:00Z",
            "2026-11-18T02:00:00Z",
        ];
        let (kept, deleted) = run(r#"{"within": "2d"}"#, &times);
        assert_eq!(
            kept,
            ["2026-11-20T02:00", "2026-11-19T02:00", "2026-11-18T03:00"]
        );
        assert_eq!(
            deleted,
            ["2026-11-18T02:00"],
            "exactly 2d before the newest is outside"
        );
        // `now` (2030) is far later: the window still hangs off the newest backup.
        let (kept, _) = run(
            r#"{"within": "1m"}"#,
            &[
                "2020-05-20T00:00:00Z",
                "2020-05-01T00:00:00Z",
                "2020-04-01T00:00:00Z",
            ],
        );
        assert_eq!(kept, ["2020-05-20T00:00", "2020-05-01T00:00"]);
    }

    #[test]
    fn within_buckets_keep_one_per_bucket_inside_the_span() {
        let times = [
            "2026-11-20T02:00:00Z",
            "2026-11-19T14:00:00Z",
            "2026-11-19T02:00:00Z",
            "2026-11-18T02:00:00Z",
            "2026-11-17T02:00:00Z",
        ];
        let (kept, deleted) = run(r#"{"within_daily": "3d"}"#, &times);
        assert_eq!(
            kept,
            ["2026-11-20T02:00", "2026-11-19T14:00", "2026-11-18T02:00"]
        );
        assert_eq!(deleted, ["2026-11-19T02:00", "2026-11-17T02:00"]);
        let (kept, _) = run(
            r#"{"within_hourly": "2h"}"#,
            &[
                "2026-11-20T02:50:00Z",
                "2026-11-20T02:10:00Z",
                "2026-11-20T01:30:00Z",
                "2026-11-20T00:30:00Z",
            ],
        );
        assert_eq!(kept, ["2026-11-20T02:50", "2026-11-20T01:30"]);
        let (kept, _) = run(
            r#"{"within_monthly": "1y"}"#,
            &[
                "2026-11-20T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2026-06-01T00:00:00Z",
                "2025-06-01T00:00:00Z",
            ],
        );
        assert_eq!(kept, ["2026-11-20T00:00", "2026-06-01T00:00"]);
        let (kept, _) = run(
            r#"{"within_yearly": "3y"}"#,
            &[
                "2026-11-20T00:00:00Z",
                "2026-01-01T00:00:00Z",
                "2025-06-01T00:00:00Z",
                "2022-06-01T00:00:00Z",
            ],
        );
        assert_eq!(kept, ["2026-11-20T00:00", "2025-06-01T00:00"]);
        let (kept, _) = run(
            r#"{"within_weekly": "14d"}"#,
            &[
                "2026-11-20T00:00:00Z",
                "2026-11-16T00:00:00Z",
                "2026-11-15T00:00:00Z",
                "2026-11-01T00:00:00Z",
            ],
        );
        assert_eq!(kept, ["2026-11-20T00:00", "2026-11-15T00:00"]);
    }

    #[test]
    fn every_kept_backup_carries_every_rule_that_kept_it() {
        let plan = apply(
            &policy(r#"{"last": 1, "daily": 2, "within": "1d"}"#),
            backups(&["2026-11-20T02:00:00Z", "2026-11-19T02:00:00Z"]),
            t("2026-11-21T00:00:00Z"),
        );
        assert_eq!(plan.keep[0].1, ["last", "daily", "within 1d"]);
        assert_eq!(plan.keep[1].1, ["daily"]);
    }

    #[test]
    fn spans_parse_and_subtract_as_restic_does() {
        assert_eq!(
            Span::parse("1y2m3d4h"),
            Ok(Span {
                years: 1,
                months: 2,
                days: 3,
                hours: 4
            })
        );
        assert_eq!(
            Span::parse("36h").map(|s| s.to_string()),
            Ok("36h".to_owned())
        );
        for bad in [
            "",
            "1",
            "d",
            "1w",
            "1d1d",
            "-1d",
            "1.5d",
            "99999999999999999999h",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
        // Restic takes any length: a span beyond the calendar reaches its start.
        for long in [
            "9999y",
            "2000000000d",
            "357913940y",
            "99999999999h",
            "9223372036854775807y",
        ] {
            let span = Span::parse(long).expect(long);
            assert!(
                span.before(t("2026-01-01T00:00:00Z")) < t("1000-01-01T00:00:00Z"),
                "{long}"
            );
        }
        // Go's AddDate: 2026-03-31 minus one month is "February 31", which rolls over to March 3.
        assert_eq!(
            Span::parse("1m")
                .expect("span")
                .before(t("2026-03-31T05:00:00Z")),
            t("2026-03-03T05:00:00Z")
        );
        assert_eq!(
            Span::parse("1y1d2h")
                .expect("span")
                .before(t("2026-01-01T01:00:00Z")),
            t("2024-12-30T23:00:00Z")
        );
    }

    #[test]
    fn empty_and_negative_policies_are_refused() {
        for empty in ["{}", r#"{"daily": 0}"#, r#"{"within": "0d"}"#] {
            let p: KeepPolicy = serde_json::from_str(empty).expect("parses");
            assert!(p.validate().is_err(), "{empty}");
        }
        let p: KeepPolicy = serde_json::from_str(r#"{"weekly": -2}"#).expect("parses");
        assert_eq!(p.validate().expect_err("negative").0, "weekly");
        assert!(
            serde_json::from_str::<KeepPolicy>(r#"{"dayly": 7}"#).is_err(),
            "unknown rule"
        );
        assert!(
            serde_json::from_str::<KeepPolicy>(r#"{"within": "7 days"}"#).is_err(),
            "bad span"
        );
    }

    #[test]
    fn incomplete_backups_are_never_deleted_and_never_counted() {
        let mut list = backups(&[
            "2026-11-20T02:00:00Z",
            "2026-11-19T02:00:00Z",
            "2026-11-18T02:00:00Z",
            "2026-11-17T02:00:00Z",
        ]);
        list[0].complete = false;
        list[3].complete = false;
        let plan = apply(&policy(r#"{"last": 1}"#), list, t("2026-11-21T00:00:00Z"));
        let kept: Vec<(&str, &str)> = plan
            .keep
            .iter()
            .map(|(b, r)| (b.id.as_str(), r[0].as_str()))
            .collect();
        assert_eq!(
            kept,
            [("b000", INCOMPLETE), ("b001", "last"), ("b003", INCOMPLETE)]
        );
        assert_eq!(
            plan.delete
                .iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>(),
            ["b002"]
        );
    }

    #[test]
    fn backups_in_the_future_are_kept_and_not_counted() {
        let plan = apply(
            &policy(r#"{"last": 1}"#),
            backups(&[
                "2026-11-22T02:00:00Z",
                "2026-11-20T02:00:00Z",
                "2026-11-19T02:00:00Z",
            ]),
            t("2026-11-21T00:00:00Z"),
        );
        let kept: Vec<(&str, &str)> = plan
            .keep
            .iter()
            .map(|(b, r)| (b.id.as_str(), r[0].as_str()))
            .collect();
        assert_eq!(kept, [("b000", FUTURE), ("b001", "last")]);
        assert_eq!(plan.delete.len(), 1);
    }

    #[test]
    fn ties_in_time_are_broken_by_id_whatever_the_order() {
        let mut list = backups(&[
            "2026-11-20T02:00:00Z",
            "2026-11-20T02:00:00Z",
            "2026-11-20T02:00:00Z",
        ]);
        let forward = apply(
            &policy(r#"{"last": 1}"#),
            list.clone(),
            t("2026-11-21T00:00:00Z"),
        );
        list.reverse();
        let backward = apply(&policy(r#"{"last": 1}"#), list, t("2026-11-21T00:00:00Z"));
        assert_eq!(forward, backward);
        assert_eq!(forward.keep[0].0.id, "b000");
    }

    #[test]
    fn the_backup_whose_drill_passed_last_is_kept_whatever_the_policy() {
        use crate::model::{BackupLabel, Kind};
        let backup = |source: &str, day: u32, proven: Option<&str>| {
            let slot = crate::Slot::containing(t(&format!("2026-11-{day:02}T02:00:00Z")));
            let label = BackupLabel::new(&crate::Plan::new("nightly").expect("plan"), source, slot);
            let mut backup = Backup::new(
                Kind::Ebs,
                label,
                format!("snap-{source}-{day}"),
                vec![],
                true,
            );
            backup.proven = proven.map(t);
            backup
        };
        let listing = vec![
            // Drilled on the 2nd and on the 12th: the later drill proves the source.
            backup("vol-a", 1, Some("2026-11-02T05:00:00Z")),
            backup("vol-a", 10, Some("2026-11-12T05:00:00Z")),
            backup("vol-a", 11, None),
            backup("vol-a", 19, None),
            backup("vol-a", 20, None),
            // Its drilled backup is kept by the policy anyway: nothing more is kept.
            backup("vol-b", 3, None),
            backup("vol-b", 19, None),
            backup("vol-b", 20, Some("2026-11-20T05:00:00Z")),
            // Never drilled: the policy alone.
            backup("vol-c", 5, None),
            backup("vol-c", 19, None),
            backup("vol-c", 20, None),
        ];
        let decision = decide(
            &policy(r#"{"last": 2}"#),
            vec![Listing {
                backups: listing,
                leftovers: Vec::new(),
            }],
            t("2026-11-21T00:00:00Z"),
            100,
        );
        let ids = |list: Vec<&Backup>| {
            let mut ids: Vec<String> = list.iter().map(|b| b.id.clone()).collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ids(decision.delete.iter().collect()),
            [
                "snap-vol-a-1",
                "snap-vol-a-11",
                "snap-vol-b-3",
                "snap-vol-c-5"
            ]
        );
        let kept: Vec<_> = decision
            .keep
            .iter()
            .filter(|(_, reasons)| reasons == &[LAST_PROVEN.to_owned()])
            .map(|(b, _)| b)
            .collect();
        assert_eq!(ids(kept), ["snap-vol-a-10"]);
        assert_eq!(decision.keep.len(), 7);
    }

    #[test]
    fn the_cap_deletes_the_oldest_first() {
        let deletions = vec![
            (t("2026-11-03T00:00:00Z"), "c"),
            (t("2026-11-01T00:00:00Z"), "a"),
            (t("2026-11-02T00:00:00Z"), "b"),
        ];
        assert_eq!(cap(deletions.clone(), 2), (vec!["a", "b"], vec!["c"]));
        assert_eq!(cap(deletions, 5).1.len(), 0);
    }
}
