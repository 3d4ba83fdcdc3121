//! `lifeboat status`: the freshness check as a table for a person at a terminal.

use freshness::Findings;
use lifeboat::report::Freshness as State;
use std::io::IsTerminal;

/// The table (kind, source, newest backup, age, threshold, state; coloured on
/// a terminal), then what could not be checked and RDS's snapshot quotas.
pub fn render(found: &Findings) -> String {
    let (checks, failed) = (&found.checks, &found.failed);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let rows: Vec<[String; 6]> = checks
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
                c.state.to_string(),
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
            "state",
        ],
        rows,
    );
    if colour {
        // Colour only the state column, after alignment, so widths stay right.
        out = out
            .lines()
            .map(|line| {
                let painted = [("unprotected", "31"), ("stale", "33"), ("ok", "32")]
                    .iter()
                    .find(|(word, _)| line.ends_with(&format!("  {word}")))
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
    out.push_str(&format!(
        "{} resources checked, {bad} without a fresh backup\n",
        checks.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat::report::Quota;

    fn quota(used: i64) -> Quota {
        Quota {
            name: "ManualSnapshots".to_owned(),
            used,
            max: 100,
        }
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
