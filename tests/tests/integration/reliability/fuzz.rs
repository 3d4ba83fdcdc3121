//! Hostile input: arbitrary JSON, and the real payloads in `events/` with
//! fields dropped, renamed or retyped, parsed as every function's payload.
//! Parsing never panics, and whatever it accepts keeps the contract's rules.

use ami_backup::fields::AmiBackupFields;
use chrono::{DateTime, Duration, Utc};
use ebs_snapshot::fields::EbsSnapshotFields;
use freshness::fields::FreshnessFields;
use lifeboat::Request;
use lifeboat::request::Fields;
use pg_dump::fields::PgDumpFields;
use proptest::prelude::*;
use proptest::sample::Index;
use prune::fields::PruneFields;
use rds_snapshot::fields::RdsSnapshotFields;
use restore_drill::fields::RestoreDrillFields;
use serde_json::{Map, Value};

/// Parses `event` as `F` and checks what an accepted payload promises.
fn parse_as<F: Fields>(event: &Value, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    if let Ok(request) = Request::<F>::parse(event.clone(), now) {
        let plan = request.plan.as_str();
        prop_assert!(
            (1..=31).contains(&plan.len())
                && plan
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !plan.starts_with('-'),
            "accepted plan {plan:?}"
        );
        let slot = request.slot.to_string();
        let slot = DateTime::parse_from_rfc3339(&slot)
            .map_err(|e| TestCaseError::fail(format!("slot {slot}: {e}")))?;
        prop_assert!(
            slot <= now + Duration::minutes(5),
            "accepted a slot in the future: {slot}"
        );
        prop_assert!(
            event
                .get("dry_run")
                .is_none_or(|d| d.is_boolean() || d.is_null()),
            "accepted dry_run {:?}",
            event.get("dry_run")
        );
    }
    Ok(())
}

/// Every function's payload type.
fn parse_as_every_function(event: &Value) -> Result<(), TestCaseError> {
    let now = Utc::now();
    parse_as::<RdsSnapshotFields>(event, now)?;
    parse_as::<EbsSnapshotFields>(event, now)?;
    parse_as::<AmiBackupFields>(event, now)?;
    parse_as::<PgDumpFields>(event, now)?;
    parse_as::<PruneFields>(event, now)?;
    parse_as::<FreshnessFields>(event, now)?;
    parse_as::<RestoreDrillFields>(event, now)?;
    Ok(())
}

/// The sample payloads in `events/`, whatever they are by now.
fn samples() -> Vec<Value> {
    let dir = lifeboat_tests::repo_root().join("events");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p).expect("read event"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Strings near the contract's: names, times, field names.
        prop_oneof![
            "[a-z0-9-]{0,40}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
            "(plan|select|ids|tags|keep|kinds|checks|databases|copy_to|region|last|daily|within|1y2m3d4h|-1|ebs|rds|ami|pg-dump)",
            ".{0,20}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                "(plan|scheduled_time|dry_run|select|clusters|instances|copy_to|tags|ids|keep|kinds|max_deletions|checks|kind|max_age_hours|database|databases|name|host|port|[a-z_]{1,12})",
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Every path to a value inside `value` (object keys and array indices).
fn paths(value: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                here.push(PathStep::Key(k.clone()));
                out.push(here.clone());
                paths(v, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                here.push(PathStep::Index(i));
                out.push(here.clone());
                paths(v, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// How a sample is spoiled at one path.
#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    Rename(String),
    Retype(Value),
}

/// The parent of the last step, and that step.
fn parent<'a>(root: &'a mut Value, path: &[PathStep]) -> Option<(&'a mut Value, PathStep)> {
    let (last, init) = path.split_last()?;
    let mut node = root;
    for step in init {
        node = match step {
            PathStep::Key(k) => node.get_mut(k.as_str())?,
            PathStep::Index(i) => node.get_mut(*i)?,
        };
    }
    Some((node, last.clone()))
}

fn mutate(mut value: Value, at: Index, mutation: Mutation) -> Value {
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return value;
    }
    let path = &all[at.index(all.len())];
    let Some((node, step)) = parent(&mut value, path) else {
        return value;
    };
    match (node, step, mutation) {
        (Value::Object(map), PathStep::Key(k), Mutation::Drop) => {
            map.remove(&k);
        }
        (Value::Object(map), PathStep::Key(k), Mutation::Rename(new)) => {
            if let Some(v) = map.remove(&k) {
                map.insert(new, v);
            }
        }
        (Value::Object(map), PathStep::Key(k), Mutation::Retype(v)) => {
            map.insert(k, v);
        }
        (Value::Array(items), PathStep::Index(i), Mutation::Drop) if i < items.len() => {
            items.remove(i);
        }
        (Value::Array(items), PathStep::Index(i), Mutation::Retype(v)) if i < items.len() => {
            items[i] = v;
        }
        _ => {}
    }
    value
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Drop),
        "[a-z_]{1,14}".prop_map(Mutation::Rename),
        arbitrary_json().prop_map(Mutation::Retype),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_any_payload_parser(event in arbitrary_json()) {
        parse_as_every_function(&event)?;
    }

    #[test]
    fn spoiled_sample_payloads_never_panic_and_keep_the_rules(
        sample in any::<Index>(),
        spoils in prop::collection::vec((any::<Index>(), mutation()), 1..4),
    ) {
        let samples = samples();
        let mut event = samples[sample.index(samples.len())].clone();
        for (at, m) in spoils {
            event = mutate(event, at, m);
        }
        parse_as_every_function(&event)?;
    }
}

#[test]
fn the_samples_are_valid_for_their_function() {
    // The mutations start from valid payloads: otherwise they test little.
    let now = Utc::now();
    let dir = lifeboat_tests::repo_root().join("events");
    for entry in std::fs::read_dir(dir).expect("events/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let ok = match name.split('.').next().unwrap_or_default() {
            "rds-snapshot" => Request::<RdsSnapshotFields>::parse(event, now).is_ok(),
            "ebs-snapshot" | "ebs-snapshot-instances" => {
                Request::<EbsSnapshotFields>::parse(event, now).is_ok()
            }
            "ami-backup" => Request::<AmiBackupFields>::parse(event, now).is_ok(),
            "pg-dump" => Request::<PgDumpFields>::parse(event, now).is_ok(),
            "prune" => Request::<PruneFields>::parse(event, now).is_ok(),
            "freshness" => Request::<FreshnessFields>::parse(event, now).is_ok(),
            "restore-drill" => Request::<RestoreDrillFields>::parse(event, now).is_ok(),
            _ => true,
        };
        assert!(ok, "events/{name} is not valid for its function");
    }
}
