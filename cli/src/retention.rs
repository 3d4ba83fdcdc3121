//! `lifeboat retention`: try a retention policy on a list of backup times
//! before it deletes anything, or see what it holds in the long run.

use chrono::{DateTime, Duration, Utc};
use lifeboat::rules::retention::{self, KeepPolicy, Point, Span};
use serde::Serialize;
use std::io::Read;

/// Parses and validates a policy given on the command line.
pub fn parse_policy(text: &str) -> Result<KeepPolicy, String> {
    let policy: KeepPolicy =
        serde_json::from_str(text).map_err(|e| format!("invalid policy: {e}"))?;
    policy.validate().map_err(|(field, message)| {
        if field.is_empty() {
            format!("invalid policy: {message}")
        } else {
            format!("invalid policy: `{field}` {message}")
        }
    })?;
    Ok(policy)
}

/// Reads a JSON array of RFC 3339 times from stdin and prints the plan.
pub fn plan_stdin(policy: &KeepPolicy, now: DateTime<Utc>) -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    plan(policy, &text, now)
}

/// The plan for the times in `text` (a JSON array of RFC 3339 times, one backup each).
pub fn plan(policy: &KeepPolicy, text: &str, now: DateTime<Utc>) -> Result<String, String> {
    let times: Vec<String> = serde_json::from_str(text)
        .map_err(|e| format!("stdin must be a JSON array of RFC 3339 times: {e}"))?;
    let mut backups = Vec::with_capacity(times.len());
    for (i, text) in times.iter().enumerate() {
        let time = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("entry {i}: `{text}` is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc);
        // The index, zero-padded, keeps repeated times apart and ordered as given.
        backups.push(Point {
            id: format!("{i:09}"),
            time,
            complete: true,
        });
    }
    let plan = retention::apply(policy, backups, now);
    let original = |b: &Point| {
        b.id.parse::<usize>()
            .ok()
            .and_then(|i| times.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let out = Output {
        keep: plan
            .keep
            .iter()
            .map(|(b, reasons)| Kept {
                time: original(b),
                reasons: reasons.clone(),
            })
            .collect(),
        delete: plan
            .delete
            .iter()
            .map(|b| Deleted { time: original(b) })
            .collect(),
    };
    serde_json::to_string_pretty(&out).map_err(|e| e.to_string())
}

/// The printed plan, in the order the contract shows it.
#[derive(Serialize)]
struct Output {
    keep: Vec<Kept>,
    delete: Vec<Deleted>,
}

#[derive(Serialize)]
struct Kept {
    time: String,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct Deleted {
    time: String,
}

/// What the policy holds after `days` of one backup every `every`, pruned after each:
/// the number of backups kept (the storage bill) and their ages.
pub fn simulate(
    policy: &KeepPolicy,
    days: u32,
    every: &str,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let step = Span::parse(every).map_err(|e| format!("--every: {e}"))?;
    if step.years != 0 || step.months != 0 {
        return Err("--every takes days and hours only (e.g. 1d, 6h)".to_owned());
    }
    let step = Duration::try_days(step.days)
        .zip(Duration::try_hours(step.hours))
        .and_then(|(d, h)| d.checked_add(&h))
        .ok_or_else(|| format!("--every `{every}` is too long to step by"))?;
    if step <= Duration::zero() {
        return Err("--every must be longer than zero".to_owned());
    }
    let start = now - Duration::days(i64::from(days));
    let mut held: Vec<Point> = Vec::new();
    let mut made = 0usize;
    let mut time = start;
    while time <= now {
        held.push(Point {
            id: format!("{made:09}"),
            time,
            complete: true,
        });
        made += 1;
        held = retention::apply(policy, held, time)
            .keep
            .into_iter()
            .map(|(b, _)| b)
            .collect();
        time += step;
    }
    let last = time - step;
    let plan = retention::apply(policy, held, last);
    let mut out = format!(
        "After {days} days of one backup every {every} ({made} made), the policy holds {} backups:\n",
        plan.keep.len()
    );
    for (backup, reasons) in &plan.keep {
        let age = last - backup.time;
        out.push_str(&format!(
            "  age {:>5}d {:>2}h  kept by {}\n",
            age.num_days(),
            age.num_hours() % 24,
            reasons.join(", ")
        ));
    }
    if let Some((oldest, _)) = plan.keep.last() {
        out.push_str(&format!(
            "The oldest is {} days old.\n",
            (last - oldest.time).num_days()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z")
            .expect("now")
            .with_timezone(&Utc)
    }

    #[test]
    fn plans_keep_the_given_time_strings_and_repeats() {
        let policy = parse_policy(r#"{"last": 2}"#).expect("policy");
        let out = plan(
            &policy,
            r#"["2026-11-20T02:00:00.250+01:00", "2026-11-19T02:00:00Z", "2026-11-19T02:00:00Z"]"#,
            now(),
        )
        .expect("plan");
        assert!(
            out.find("\"keep\"") < out.find("\"delete\""),
            "keep first, as documented"
        );
        let out: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(out["keep"][0]["time"], "2026-11-20T02:00:00.250+01:00");
        assert_eq!(out["keep"][0]["reasons"][0], "last");
        assert_eq!(out["keep"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            out["delete"],
            json!([{ "time": "2026-11-19T02:00:00Z" }]),
            "a repeated time is one more backup"
        );
    }

    #[test]
    fn invalid_policies_and_input_say_what_is_wrong() {
        assert!(
            parse_policy("{}")
                .expect_err("empty")
                .contains("keeps nothing")
        );
        assert!(
            parse_policy(r#"{"dayly": 7}"#)
                .expect_err("typo")
                .contains("unknown field `dayly`")
        );
        assert!(
            parse_policy(r#"{"daily": -3}"#)
                .expect_err("negative")
                .contains("`daily`")
        );
        let policy = parse_policy(r#"{"daily": 1}"#).expect("policy");
        assert!(
            plan(&policy, r#"["yesterday"]"#, now())
                .expect_err("bad time")
                .contains("entry 0")
        );
        assert!(
            plan(&policy, r#"{"a": 1}"#, now())
                .expect_err("not an array")
                .contains("JSON array")
        );
    }

    #[test]
    fn the_seeds_policy_holds_twenty_five_backups_after_ten_years() {
        let policy = parse_policy(r#"{"daily": 7, "weekly": 4, "monthly": 12, "yearly": 7}"#)
            .expect("policy");
        let out = simulate(&policy, 3650, "1d", now()).expect("simulate");
        // Ending on Saturday 2026-11-21: 7 daily (the 6-day-old one is also its
        // week's newest), 2 more weekly, 10 more monthly (the last shared with a
        // yearly), 5 more yearly, the oldest from 2020.
        assert!(out.contains("the policy holds 25 backups"), "{out}");
        assert!(out.contains("The oldest is 2151 days old."), "{out}");
    }
}
