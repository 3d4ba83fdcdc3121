//! The slot planner: given the sources a run selected and the backups this
//! slot already holds, what happens to each source (create, skip, fail) and
//! why. Pure, and the same for every function that makes backups; each kind
//! only says what its sources' states allow.

use crate::model::Kind;
use crate::report::ItemError;
use crate::report::{Failed, Report, Skipped};
use std::collections::BTreeMap;

/// What a source's own state allows this run to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// It can be backed up now.
    Ready,
    /// Leave it for now (a passing state); the reason says why. Not a failure:
    /// `freshness` notices if it lasts.
    Wait(String),
    /// It needs an operator (failed, storage full, terminated): a failure of that source.
    Broken(String),
}

/// What this slot already holds for a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Its backup for this slot exists (the ids, joined): nothing to do.
    Done(String),
    /// Something in this slot's place will never be a backup and stops a new
    /// one (a failed RDS snapshot holding the name): a failure, with what to do.
    Blocking(String),
}

/// A source as the planner sees it.
pub trait Source {
    /// Its id.
    fn id(&self) -> &str;
    /// What its state allows.
    fn readiness(&self) -> Readiness;
}

/// The decision for one slot: the sources to back up, and the others with their reasons.
#[derive(Debug)]
pub struct SlotPlan<S> {
    /// Sources to back up now.
    pub create: Vec<S>,
    /// Sources left alone, and why.
    pub skipped: Vec<Skipped>,
    /// Sources that need an operator, and why.
    pub failed: Vec<Failed>,
}

impl<S> SlotPlan<S> {
    /// Moves the skipped and failed sources into `report`; returns the sources to back up.
    pub fn into_report(self, report: &mut Report) -> Vec<S> {
        report.skipped.extend(self.skipped);
        report.failed.extend(self.failed);
        self.create
    }
}

/// Plans one slot for `kind`: a source whose slot is done is skipped, one that
/// is blocked fails, and the others go by their readiness.
pub fn plan<S: Source>(
    kind: Kind,
    sources: Vec<S>,
    existing: &BTreeMap<String, Existing>,
) -> SlotPlan<S> {
    let mut plan = SlotPlan {
        create: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
    };
    for source in sources {
        let id = source.id().to_owned();
        match (existing.get(&id), source.readiness()) {
            (Some(Existing::Done(backup)), _) => plan.skipped.push(Skipped::new(
                kind,
                id,
                Some(backup.clone()),
                "this slot's backup already exists",
            )),
            (Some(Existing::Blocking(why)), _) => {
                plan.failed
                    .push(Failed::new(kind, id, ItemError::new(why.clone())))
            }
            (None, Readiness::Broken(why)) => {
                plan.failed.push(Failed::new(kind, id, ItemError::new(why)))
            }
            (None, Readiness::Wait(why)) => plan.skipped.push(Skipped::new(kind, id, None, why)),
            (None, Readiness::Ready) => plan.create.push(source),
        }
    }
    plan
}

/// This slot's existing backups, from (source, backup id) pairs: one entry per
/// source, its ids joined in the order given.
pub fn done<'a>(
    backups: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, Existing> {
    let mut ids: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (source, id) in backups {
        ids.entry(source.to_owned()).or_default().push(id);
    }
    ids.into_iter()
        .map(|(source, ids)| (source, Existing::Done(ids.join(","))))
        .collect()
}

/// A failure for each listed id that does not exist: `noun` says what was looked for.
pub fn missing(kind: Kind, noun: &str, ids: Vec<String>) -> Vec<Failed> {
    ids.into_iter()
        .map(|id| {
            let error = ItemError::new(format!("no {noun} `{id}` in this region"));
            Failed::new(kind, id, error)
        })
        .collect()
}

/// An EBS volume: it can be snapshotted `available` or `in-use`.
pub fn volume(id: &str, state: &str) -> Readiness {
    match state {
        "available" | "in-use" => Readiness::Ready,
        "error" => Readiness::Broken(format!(
            "volume `{id}` is in state `error`; an operator must look"
        )),
        other => Readiness::Wait(format!("volume is `{other}`; the next run backs it up")),
    }
}

/// An EC2 instance, for a snapshot set or an image: `running`, `stopped` or `stopping`.
pub fn instance(id: &str, state: &str) -> Readiness {
    match state {
        "running" | "stopped" | "stopping" => Readiness::Ready,
        "terminated" | "shutting-down" => Readiness::Broken(format!(
            "instance `{id}` is `{state}`: nothing left to back up"
        )),
        other => Readiness::Wait(format!("instance is `{other}`; the next run backs it up")),
    }
}

/// A DB instance or cluster. RDS can snapshot available and stopped ones;
/// passing states are left to the next run, broken ones need a person. An
/// instance of an Aurora cluster is snapshotted through its cluster.
pub fn database(kind: Kind, id: &str, status: &str, cluster: Option<&str>) -> Readiness {
    let noun = kind.source_noun();
    if let Some(cluster) = cluster {
        return Readiness::Wait(format!(
            "instance of DB cluster `{cluster}`: RDS snapshots the cluster, not its instances; select the cluster under `clusters`"
        ));
    }
    match status {
        "available" | "stopped" | "storage-optimization" => Readiness::Ready,
        "failed"
        | "storage-full"
        | "restore-error"
        | "insufficient-capacity"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable" => Readiness::Broken(format!(
            "{noun} `{id}` is `{status}` and cannot be snapshotted until an operator repairs it"
        )),
        s if s.starts_with("incompatible-") => Readiness::Broken(format!(
            "{noun} `{id}` is `{s}` and cannot be snapshotted until an operator repairs it"
        )),
        // RDS is taking its automated backup: a schedule inside the backup
        // window meets this every night, and the source is never snapshotted.
        "backing-up" => Readiness::Wait(format!(
            "{noun} is `backing-up` (its automated backup); if this schedule lies inside the {noun}'s backup window, move one of them, or this source is skipped every night; the next run snapshots it"
        )),
        _ => Readiness::Wait(format!("{noun} is `{status}`; the next run snapshots it")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S(&'static str, Readiness);

    impl Source for S {
        fn id(&self) -> &str {
            self.0
        }
        fn readiness(&self) -> Readiness {
            self.1.clone()
        }
    }

    #[test]
    fn each_source_gets_one_decision_with_its_reason() {
        let existing = BTreeMap::from([
            ("done".to_owned(), Existing::Done("snap-1,snap-2".into())),
            (
                "blocked".to_owned(),
                Existing::Blocking("name taken".into()),
            ),
        ]);
        let sources = vec![
            S(
                "done",
                Readiness::Broken("ignored: the slot is done".into()),
            ),
            S("blocked", Readiness::Ready),
            S("ready", Readiness::Ready),
            S("waiting", Readiness::Wait("modifying".into())),
            S("broken", Readiness::Broken("storage full".into())),
        ];
        let plan = plan(Kind::Ebs, sources, &existing);
        let created: Vec<&str> = plan.create.iter().map(|s| s.0).collect();
        assert_eq!(created, ["ready"]);
        let skipped: Vec<(&str, Option<&str>, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.source.as_str(), s.backup.as_deref(), s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                (
                    "done",
                    Some("snap-1,snap-2"),
                    "this slot's backup already exists"
                ),
                ("waiting", None, "modifying")
            ]
        );
        let failed: Vec<(&str, &str)> = plan
            .failed
            .iter()
            .map(|f| (f.source.as_str(), f.error.as_str()))
            .collect();
        assert_eq!(
            failed,
            [("blocked", "name taken"), ("broken", "storage full")]
        );
    }

    #[test]
    fn done_joins_each_sources_ids() {
        let map = done([
            ("vol-1", "snap-a"),
            ("vol-2", "snap-c"),
            ("vol-1", "snap-b"),
        ]);
        assert_eq!(map["vol-1"], Existing::Done("snap-a,snap-b".into()));
        assert_eq!(map.len(), 2);
        let failed = missing(Kind::Ami, "instance", vec!["i-9".into()]);
        assert_eq!(failed[0].error, "no instance `i-9` in this region");
    }

    #[test]
    fn states_by_kind() {
        use Readiness::*;
        let ready = |r: &Readiness| *r == Ready;
        let waits = |r: &Readiness| matches!(r, Wait(_));
        let broken = |r: &Readiness| matches!(r, Broken(_));
        type Row = (Readiness, fn(&Readiness) -> bool);
        let table: [Row; 16] = [
            (volume("v", "available"), ready),
            (volume("v", "in-use"), ready),
            (volume("v", "creating"), waits),
            (volume("v", "error"), broken),
            (instance("i", "running"), ready),
            (instance("i", "stopping"), ready),
            (instance("i", "pending"), waits),
            (instance("i", "terminated"), broken),
            (database(Kind::Rds, "d", "available", None), ready),
            (database(Kind::Rds, "d", "stopped", None), ready),
            (database(Kind::Rds, "d", "backing-up", None), waits),
            (database(Kind::Rds, "d", "modifying", None), waits),
            (database(Kind::Rds, "d", "storage-full", None), broken),
            (
                database(Kind::Rds, "d", "incompatible-parameters", None),
                broken,
            ),
            (database(Kind::RdsCluster, "c", "failed", None), broken),
            (
                database(Kind::Rds, "d", "available", Some("aurora-1")),
                waits,
            ),
        ];
        for (i, (readiness, expected)) in table.iter().enumerate() {
            assert!(expected(readiness), "row {i}: {readiness:?}");
        }
        let Wait(why) = database(Kind::Rds, "d", "available", Some("aurora-1")) else {
            panic!("cluster member")
        };
        assert!(
            why.contains("aurora-1") && why.contains("clusters"),
            "{why}"
        );
        let Wait(why) = database(Kind::Rds, "d", "backing-up", None) else {
            panic!("backing-up")
        };
        assert!(
            why.contains("`backing-up`") && why.contains("backup window"),
            "{why}"
        );
    }
}
