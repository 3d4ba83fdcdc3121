//! Which resources a run protects: every resource carrying all the given tags,
//! plus every listed id.

use crate::error::PayloadError;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// A `select` block of a payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Tags a resource must all carry (`{"backup": "nightly"}`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Resource ids selected by name, whatever their tags.
    #[serde(default)]
    pub ids: Vec<String>,
}

impl Selection {
    /// Refuses a selection that selects nothing, or blank tags and ids. `field` names the block.
    pub fn validate(&self, field: &str) -> Result<(), PayloadError> {
        if self.tags.is_empty() && self.ids.is_empty() {
            return Err(PayloadError::new(
                field,
                "selects nothing: give `tags` and/or `ids`",
            ));
        }
        if self.tags.keys().any(|k| k.trim().is_empty()) {
            return Err(PayloadError::new(
                format!("{field}.tags"),
                "a tag key is empty",
            ));
        }
        if let Some(i) = self.ids.iter().position(|id| id.trim().is_empty()) {
            return Err(PayloadError::new(format!("{field}.ids[{i}]"), "is empty"));
        }
        Ok(())
    }

    /// Whether a resource with this id and these tags is selected.
    pub fn matches<'a>(
        &self,
        id: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        if self.ids.iter().any(|wanted| wanted == id) {
            return true;
        }
        if self.tags.is_empty() {
            return false;
        }
        let have: BTreeMap<&str, &str> = tags.into_iter().collect();
        self.tags
            .iter()
            .all(|(k, v)| have.get(k.as_str()) == Some(&v.as_str()))
    }

    /// The listed ids that are not among `found`: each is a failure of that id.
    pub fn missing_ids<'a>(&'a self, found: &BTreeSet<&str>) -> Vec<&'a str> {
        let mut missing: Vec<&str> = self
            .ids
            .iter()
            .map(String::as_str)
            .filter(|id| !found.contains(id))
            .collect();
        missing.dedup();
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(tags: &[(&str, &str)], ids: &[&str]) -> Selection {
        Selection {
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ids: ids.iter().map(|s| (*s).into()).collect(),
        }
    }

    #[test]
    fn needs_every_tag_or_a_listed_id() {
        let s = selection(&[("backup", "nightly"), ("env", "prod")], &["db-9"]);
        assert!(s.matches("db-1", [("backup", "nightly"), ("env", "prod"), ("x", "y")]));
        assert!(!s.matches("db-2", [("backup", "nightly")]));
        assert!(!s.matches("db-3", [("backup", "weekly"), ("env", "prod")]));
        assert!(s.matches("db-9", []));
    }

    #[test]
    fn ids_only_selects_nothing_by_tags() {
        let s = selection(&[], &["db-1"]);
        assert!(!s.matches("db-2", [("backup", "nightly")]));
    }

    #[test]
    fn reports_listed_ids_not_found() {
        let s = selection(&[], &["a", "b", "c"]);
        let found = BTreeSet::from(["b"]);
        assert_eq!(s.missing_ids(&found), vec!["a", "c"]);
    }

    #[test]
    fn empty_or_blank_selections_are_refused_by_name() {
        assert_eq!(
            selection(&[], &[])
                .validate("select")
                .expect_err("empty")
                .field,
            "select"
        );
        assert_eq!(
            selection(&[("", "x")], &[])
                .validate("clusters")
                .expect_err("blank")
                .field,
            "clusters.tags"
        );
        assert_eq!(
            selection(&[], &["a", " "])
                .validate("select")
                .expect_err("blank")
                .field,
            "select.ids[1]"
        );
    }
}
