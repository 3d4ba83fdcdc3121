//! The invocation every function takes: the common fields (`plan`,
//! `scheduled_time`, `dry_run`) parsed here, and the function's own fields
//! (each function crate defines them) parsed by serde with unknown fields
//! refused. Every refusal names the field, because a typo must never silently
//! widen or narrow a backup.

use crate::error::PayloadError;
use crate::model::{Plan, Slot};
use crate::report::Report;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A function's own payload fields: parsed by serde (unknown fields denied),
/// then checked as a whole.
pub trait Fields: DeserializeOwned {
    /// Checks what serde cannot: empty selections, ranges, combinations.
    fn validate(&self) -> Result<(), PayloadError>;
}

/// A parsed and validated invocation.
#[derive(Debug, Clone)]
pub struct Request<F> {
    /// The backup plan this run belongs to.
    pub plan: Plan,
    /// The schedule slot (from `scheduled_time`, or the current minute).
    pub slot: Slot,
    /// Report what would be done; make no change.
    pub dry_run: bool,
    /// The function's own fields.
    pub fields: F,
}

impl<F: Fields> Request<F> {
    /// Parses and validates a payload, with `now` as the clock for the slot.
    pub fn parse(event: Value, now: DateTime<Utc>) -> Result<Self, PayloadError> {
        let Value::Object(mut map) = event else {
            return Err(PayloadError::new(".", "the payload must be a JSON object"));
        };
        let plan = take_string(&mut map, "plan")?
            .ok_or_else(|| PayloadError::new("plan", "missing; every run belongs to a plan"))?;
        let plan = Plan::new(&plan).map_err(|m| PayloadError::new("plan", m))?;
        let slot = match take_string(&mut map, "scheduled_time")? {
            Some(text) => {
                Slot::parse(&text, now).map_err(|m| PayloadError::new("scheduled_time", m))?
            }
            None => Slot::containing(now),
        };
        let dry_run = match map.remove("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(PayloadError::new(
                    "dry_run",
                    format!("must be true or false, not {other}"),
                ));
            }
        };
        let fields: F = serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            // serde names a missing field only in its message; name it in the path too.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'));
            let field = match missing {
                Some(name) if path == "." => name.to_owned(),
                Some(name) => format!("{path}.{name}"),
                None => path,
            };
            PayloadError::new(field, message)
        })?;
        fields.validate()?;
        Ok(Request {
            plan,
            slot,
            dry_run,
            fields,
        })
    }
}

impl<F> Request<F> {
    /// The empty report of a run of `function` for this request.
    pub fn report(&self, function: &str) -> Report {
        Report::new(function, self.plan.clone(), self.slot, self.dry_run)
    }
}

fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, PayloadError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(PayloadError::new(
            field,
            format!("must be a string, not {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Only {
        ids: Vec<String>,
    }

    impl Fields for Only {
        fn validate(&self) -> Result<(), PayloadError> {
            if self.ids.is_empty() {
                return Err(PayloadError::new("ids", "is empty"));
            }
            Ok(())
        }
    }

    fn parse(payload: Value) -> Result<Request<Only>, PayloadError> {
        let now = DateTime::parse_from_rfc3339("2026-11-20T02:03:00Z")
            .expect("time")
            .with_timezone(&Utc);
        Request::parse(payload, now)
    }

    #[test]
    fn common_fields_parse_and_default() {
        let r = parse(json!({"plan": "p", "ids": ["a"]})).expect("valid");
        assert_eq!(r.slot.to_string(), "2026-11-20T02:03:00Z");
        assert!(!r.dry_run);
        let r = parse(json!({"plan": "p", "ids": ["a"], "dry_run": true, "scheduled_time": "2026-11-20T02:00:00Z"}))
            .expect("valid");
        assert!(r.dry_run);
        assert_eq!(r.slot.to_string(), "2026-11-20T02:00:00Z");
    }

    #[test]
    fn refusals_name_the_field() {
        for (payload, field) in [
            (json!([1]), "."),
            (json!({"ids": ["a"]}), "plan"),
            (json!({"plan": 7, "ids": ["a"]}), "plan"),
            (json!({"plan": "Nightly", "ids": ["a"]}), "plan"),
            (
                json!({"plan": "p", "ids": ["a"], "scheduled_time": "tomorrow"}),
                "scheduled_time",
            ),
            (
                json!({"plan": "p", "ids": ["a"], "dry_run": "yes"}),
                "dry_run",
            ),
            (json!({"plan": "p"}), "ids"),
            (json!({"plan": "p", "ids": []}), "ids"),
            (json!({"plan": "p", "ids": ["a"], "idz": 1}), "idz"),
        ] {
            let err = parse(payload.clone()).expect_err("refused");
            assert_eq!(err.field, field, "{payload} gave {err}");
        }
    }
}
