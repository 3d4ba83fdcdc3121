//! The backup domain's words, and nothing else: plan, kind, slot, a backup's
//! label and the record of one backup. A leaf: it imports nothing from the
//! rest of the crate, and everything else is written in its terms.

mod label;
mod slot;

pub use label::{BackupLabel, proven_at, tag};
pub use slot::{MAX_AHEAD, Slot};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A backup plan's name: `^[a-z0-9][a-z0-9-]{0,30}$`. Tagged on every backup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Plan(String);

impl Plan {
    /// Checks `name` against the plan pattern.
    pub fn new(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && name.len() <= 31 {
            Ok(Plan(name.to_owned()))
        } else {
            Err(format!(
                "`{name}` is not a plan name: 1 to 31 characters of a-z, 0-9 and `-`, starting with a letter or digit"
            ))
        }
    }

    /// The plan's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Plan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Plan::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The kinds of backup Lifeboat makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A manual RDS DB instance snapshot.
    Rds,
    /// A manual Aurora DB cluster snapshot.
    RdsCluster,
    /// An EBS snapshot, or a crash-consistent set of an instance's snapshots.
    Ebs,
    /// An AMI with its snapshots.
    Ami,
    /// A `pg_dump` archive in S3 with its manifest.
    PgDump,
}

impl Kind {
    /// What the source of this kind of backup is, for messages (`DB instance`).
    pub fn source_noun(self) -> &'static str {
        match self {
            Kind::Rds => "DB instance",
            Kind::RdsCluster => "DB cluster",
            Kind::Ebs => "volume",
            Kind::Ami => "instance",
            Kind::PgDump => "database",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Rds => "rds",
            Kind::RdsCluster => "rds-cluster",
            Kind::Ebs => "ebs",
            Kind::Ami => "ami",
            Kind::PgDump => "pg-dump",
        })
    }
}

/// One managed backup, as `prune` and `freshness` see it, whatever its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Its kind.
    pub kind: Kind,
    /// What its tags (or, for a dump, its key) say: plan, source, slot.
    pub label: BackupLabel,
    /// Its id for people: a snapshot id, an AMI id, a dump key; the parts joined for an instance set.
    pub id: String,
    /// What deleting it removes: the snapshots of a set or an AMI, a dump and its manifest.
    pub parts: Vec<String>,
    /// Whether it is complete (available, completed, with a manifest).
    pub complete: bool,
    /// The resources it protects: the source, and for EBS the volumes it holds
    /// (an instance set protects each of its volumes).
    pub covers: Vec<String>,
    /// What else tells its group apart: for a dump, the key prefix (two
    /// databases of one name under different prefixes are different sources).
    pub scope: String,
    /// When a restore drill of it last passed, if one did (for a dump, read
    /// from its drill record only when asked: `Catalog::prove_dumps`).
    pub proven: Option<chrono::DateTime<chrono::Utc>>,
}

impl Backup {
    /// A backup of one source, covering that source.
    pub fn new(
        kind: Kind,
        label: BackupLabel,
        id: String,
        parts: Vec<String>,
        complete: bool,
    ) -> Self {
        Backup {
            kind,
            covers: vec![label.source.clone()],
            label,
            id,
            parts,
            complete,
            scope: String::new(),
            proven: None,
        }
    }

    /// The source it is a backup of.
    pub fn source(&self) -> &str {
        &self.label.source
    }

    /// Its slot.
    pub fn slot(&self) -> Slot {
        self.label.slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_follow_the_pattern() {
        for good in ["nightly", "9-to-5", &"p".repeat(31)] {
            assert!(Plan::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Nightly", "-x", "a_b", &"p".repeat(32)] {
            assert!(Plan::new(bad).is_err(), "{bad}");
        }
        let parsed: Result<Plan, _> = serde_json::from_value(serde_json::json!("Bad"));
        assert!(parsed.is_err());
    }

    #[test]
    fn kinds_read_and_print_alike() {
        for kind in [
            Kind::Rds,
            Kind::RdsCluster,
            Kind::Ebs,
            Kind::Ami,
            Kind::PgDump,
        ] {
            let json = serde_json::to_value(kind).expect("kind");
            assert_eq!(json, serde_json::json!(kind.to_string()));
        }
    }
}
