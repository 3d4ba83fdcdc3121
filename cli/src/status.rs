//! `lifeboat status`: the freshness check as a table for a person at a terminal.

use freshness::Findings;
use lifeboat::report::Freshness as State;
use std::io::IsTerminal;

/// The table (kind, source, newest backup, age, threshold, last proven
/// restore, state; coloured on a terminal), then what could not be checked and RDS's snapshot quotas.
pub fn render(found: &Findings) -> String {
    let (checks, failed) = (&found.checks, &found.failed);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let rows: Vec<[String; 7]> = checks
        .iter()
        .map(|c| {
            [
                c.kind.to_string(),
                c.source.clone(),
                c.newest_time
                    .map_or_else(|| "none".to_owned(), |t| t.to_string()),
                c.age_hours
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.1} h")),
                format!("{} h", c.max_age_hours),
                freshness::last_proven(c),
                if c.unproven {
                    format!("{}, unproven", c.state)
                } else {
                    c.state.to_string()
                },
            ]
        })
        .collect();
    let mut out = lifeboat::alert::table(
        [
            "kind",
            "source",
            "newest backup",
            "age",
            "threshold",
            "last proven restore",
            "state",
        ],
        rows,
    );
    if colour {
        // Colour only the state column, after alignment, so widths stay right.
        out = out
            .lines()
            .map(|line| {
                let painted = [
                    ("unproven", "33"),
                    ("unprotected", "31"),
                    ("stale", "33"),
                    ("ok", "32"),
                ]
                .iter()
                .find(|(word, _)| line.ends_with(&format!(" {word}")))
                .map(|(word, code)| {
                    format!(
                        "{}\x1b[{code}m{word}\x1b[0m",
                        &line[..line.len() - word.len()]
                    )
                });
                painted.unwrap_or_else(|| line.to_owned())
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
    }
    for f in failed {
        out.push_str(&format!(
            "could not check {} {}: {}\n",
            f.kind, f.source, f.error
        ));
    }
    for q in &found.quotas {
        out.push_str(&format!(
            "RDS quota {}: {} of {} used ({:.0} %){}\n",
            q.name,
            q.used,
            q.max,
            q.percent(),
            if q.is_near() {
                ": near the limit, new snapshots will fail there; prune, or ask AWS for more"
            } else {
                ""
            }
        ));
    }
    let bad = checks.iter().filter(|c| c.state != State::Ok).count();
    let unproven = checks.iter().filter(|c| c.unproven).count();
    out.push_str(&format!(
        "{} resources checked, {bad} without a fresh backup, {unproven} without a proven restore within its limit\n",
        checks.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat::Kind;
    use lifeboat::report::{Check, Quota};

    fn quota(used: i64) -> Quota {
        Quota {
            name: "ManualSnapshots".to_owned(),
            used,
            max: 100,
        }
    }

    fn check(source: &str, days_since_drill: Option<i64>, unproven: bool) -> Check {
        Check {
            kind: Kind::Ebs,
            source: source.to_owned(),
            newest: Some("snap-1".to_owned()),
            newest_time: None,
            age_hours: Some(2.0),
            max_age_hours: 26.0,
            state: State::Ok,
            last_proven: days_since_drill.map(|d| {
                chrono::DateTime::parse_from_rfc3339("2026-11-30T03:00:00Z")
                    .expect("time")
                    .with_timezone(&chrono::Utc)
                    - chrono::Duration::days(d)
            }),
            proven_within_days: Some(35),
            unproven,
        }
    }

    #[test]
    fn the_last_proven_restore_is_a_column_and_an_unproven_one_is_counted() {
        let found = Findings {
            checks: vec![check("vol-a", Some(3), false), check("vol-b", None, true)],
            ..Findings::default()
        };
        let out = render(&found);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].contains("last proven restore"), "{out}");
        assert!(
            lines[2].contains("2026-11-27 03:00 UTC (limit 35 d)") && lines[2].ends_with(" ok"),
            "{out}"
        );
        assert!(
            lines[3].contains("never (limit 35 d)") && lines[3].ends_with(" ok, unproven"),
            "{out}"
        );
        assert_eq!(
            lines.last().copied(),
            Some(
                "2 resources checked, 0 without a fresh backup, 1 without a proven restore within its limit"
            )
        );
    }

    #[test]
    fn quotas_are_shown_and_a_near_one_says_what_to_do() {
        let found = Findings {
            quotas: vec![quota(79), quota(80)],
            ..Findings::default()
        };
        let out = render(&found);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[lines.len() - 3],
            "RDS quota ManualSnapshots: 79 of 100 used (79 %)"
        );
        assert!(
            lines[lines.len() - 2]
                .starts_with("RDS quota ManualSnapshots: 80 of 100 used (80 %): near the limit"),
            "{out}"
        );
    }
}
