//! RDS and Aurora drills: the source's Lifeboat snapshot restored into a
//! temporary DB instance (or a DB cluster with one instance) of the class,
//! subnet group and security groups the payload names, never publicly
//! accessible and without deletion protection; when it is `available`, what
//! can be checked against the snapshot is (engine and version, encryption
//! and key, storage), then it is deleted without a final snapshot.
//!
//! A restore takes longer than a run: the drill's state lives on the
//! temporary resource's own tags (which snapshot, which source, when the
//! restore was called, which step), and every run moves each open drill on:
//! waits, checks, records, cleans up. Its identifier comes from the plan,
//! slot and source, so a duplicate delivery of one run finds the restore the
//! first delivery started instead of starting a second. Every run first
//! deletes drill resources older than `max_age_hours`; a resource without
//! the `lifeboat:drill` tag is never touched.

use crate::fields::{DatabaseDrills, DrillQuery, RestoreDrillFields};
use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use chrono::{DateTime, Utc};
use lifeboat::aws::rds::{self, Snapshot};
use lifeboat::model::tag as tags;
use lifeboat::postgres::database::Database;
use lifeboat::postgres::restore::{self as pg, Target, Tools};
use lifeboat::report::{Drill, DrillOutcome, Failed, Metric, Report, Skipped, Unit};
use lifeboat::rules::drill;
use lifeboat::runtime::Invocation;
use lifeboat::{Error, ItemError, Kind, Plan, Request, Slot};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

/// How long one run waits on its drills before leaving them to the next run.
const WAIT_IN_RUN: Duration = Duration::from_secs(600);
/// The time a run keeps for itself after waiting, before its deadline.
const MARGIN: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_secs(15);
/// How long the payload's query may take, connecting included.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The step tag's value once the checks are done and only clean-up is left.
const CLEAN_UP: &str = "clean-up";

/// Statuses from which a DB instance or cluster will not become `available`.
const FAILED_STATUSES: &[&str] = &[
    "failed",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "restore-error",
    "storage-full",
];

/// What a restore is checked against: the snapshot's own description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `postgres`, `aurora-postgresql`, …
    pub engine: String,
    /// The engine's version.
    pub engine_version: String,
    /// Whether the storage is encrypted.
    pub encrypted: bool,
    /// The KMS key, when encrypted.
    pub kms_key_id: Option<String>,
    /// Allocated storage in GiB; `None` for Aurora, whose storage grows by
    /// itself and whose `AllocatedStorage` AWS documents as no measure of it.
    pub allocated_storage: Option<i32>,
}

/// What the restored resource must match of its snapshot, in words: each
/// check that held, and each that did not.
pub fn compare(snapshot: &Facts, restored: &Facts, public: bool) -> (Vec<String>, Vec<String>) {
    let mut held = Vec::new();
    let mut missed = Vec::new();
    let mut check = |ok: bool, what: String, found: String| {
        if ok {
            held.push(what);
        } else {
            missed.push(format!("{what}, but found {found}"));
        }
    };
    check(
        restored.engine == snapshot.engine && restored.engine_version == snapshot.engine_version,
        format!(
            "engine {} {} as the snapshot",
            snapshot.engine, snapshot.engine_version
        ),
        format!("{} {}", restored.engine, restored.engine_version),
    );
    check(
        restored.encrypted == snapshot.encrypted && restored.kms_key_id == snapshot.kms_key_id,
        match &snapshot.kms_key_id {
            Some(key) if snapshot.encrypted => format!("encrypted with {key} as the snapshot"),
            _ => format!("encrypted: {} as the snapshot", snapshot.encrypted),
        },
        format!(
            "encrypted: {}, key {}",
            restored.encrypted,
            restored.kms_key_id.as_deref().unwrap_or("none")
        ),
    );
    if let Some(least) = snapshot.allocated_storage {
        let got = restored.allocated_storage.unwrap_or_default();
        check(
            got >= least,
            format!("storage of at least the snapshot's {least} GiB"),
            format!("{got} GiB"),
        );
    }
    check(
        !public,
        "not publicly accessible".to_owned(),
        "publicly accessible".to_owned(),
    );
    (held, missed)
}

/// Where an open drill is, from its temporary resource's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Still restoring: the next run goes on.
    Restoring,
    /// A cluster is available without its instance: create it.
    NeedsInstance,
    /// Available: check it.
    Usable,
    /// It will not become available.
    Broken,
    /// Checked and recorded; deleting it is what is left.
    CleanUp,
    /// Already being deleted.
    Deleting,
}

/// The stage of a drill from its step tag, its status and, for a cluster,
/// its instance's status (`None`: it has none).
pub fn stage(step: Option<&str>, status: &str, member: Option<Option<&str>>) -> Stage {
    if status == "deleting" {
        return Stage::Deleting;
    }
    if step == Some(CLEAN_UP) {
        return Stage::CleanUp;
    }
    let broken = |s: &str| FAILED_STATUSES.contains(&s);
    if broken(status) {
        return Stage::Broken;
    }
    match (status, member) {
        ("available", None) => Stage::Usable,
        ("available", Some(None)) => Stage::NeedsInstance,
        (_, Some(Some(s))) if broken(s) => Stage::Broken,
        ("available", Some(Some("available"))) => Stage::Usable,
        _ => Stage::Restoring,
    }
}

/// A drill's temporary DB instance or cluster, as RDS and its tags describe it.
#[derive(Debug, Clone)]
struct Temporary {
    kind: Kind,
    id: String,
    arn: String,
    status: String,
    snapshot: String,
    source: String,
    started: Option<DateTime<Utc>>,
    tags: BTreeMap<String, String>,
    /// For a cluster: its instance's id and status, if it has one.
    member: Option<(String, String)>,
    /// Where it answers (host and port), once RDS says.
    endpoint: Option<(String, u16)>,
    facts: Facts,
    public: bool,
    slot: Option<Slot>,
    /// When its status was read (just before the call that read it).
    observed: DateTime<Utc>,
}

impl Temporary {
    fn stage(&self) -> Stage {
        let member = (self.kind == Kind::RdsCluster)
            .then(|| self.member.as_ref().map(|(_, status)| status.as_str()));
        stage(
            self.tags.get(tags::DRILL_STEP).map(String::as_str),
            &self.status,
            member,
        )
    }

    fn what(&self) -> &'static str {
        self.kind.source_noun()
    }
}

fn tag_map(list: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    rds::pairs(list).into_iter().collect()
}

fn started_at(tags: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    tags.get(tags::DRILL_STARTED)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn is_drill(tags: &BTreeMap<String, String>) -> bool {
    tags.contains_key(tags::DRILL)
        && tags.get(tags::MANAGED_BY).map(String::as_str) == Some(tags::LIFEBOAT)
}

fn instance_facts(db: &DbInstance) -> Facts {
    Facts {
        engine: db.engine().unwrap_or_default().to_owned(),
        engine_version: db.engine_version().unwrap_or_default().to_owned(),
        encrypted: db.storage_encrypted().unwrap_or(false),
        kms_key_id: db.kms_key_id().map(str::to_owned),
        allocated_storage: db.allocated_storage(),
    }
}

fn cluster_facts(c: &DbCluster) -> Facts {
    Facts {
        engine: c.engine().unwrap_or_default().to_owned(),
        engine_version: c.engine_version().unwrap_or_default().to_owned(),
        encrypted: c.storage_encrypted().unwrap_or(false),
        kms_key_id: c.kms_key_id().map(str::to_owned),
        allocated_storage: None,
    }
}

/// The DB instance of a drill cluster: the cluster's identifier and `-1`.
fn member_id(cluster: &str) -> String {
    format!("{cluster}-1")
}

/// Drills RDS and Aurora snapshots.
pub struct DatabaseDriller<'a> {
    /// RDS in the home region.
    pub rds: &'a Client,
    /// Secrets Manager, for the login of the payload's query.
    pub secrets: &'a aws_sdk_secretsmanager::Client,
    /// `pg_restore` as configured: the query runs with the `psql` beside it.
    pub pg_restore: Option<std::path::PathBuf>,
}

impl DatabaseDriller<'_> {
    /// Sweeps stale drill resources, moves open drills on, and starts the due ones.
    pub async fn run(
        &self,
        request: &Request<RestoreDrillFields>,
        drills: &DatabaseDrills,
        invocation: &Invocation,
        report: &mut Report,
    ) -> Result<(), Error> {
        let fields = &request.fields;
        let until = Budget::of(invocation);
        let plan = drills
            .backup_plan
            .as_deref()
            .and_then(|p| Plan::new(p).ok());
        let open = self.temporaries().await?;
        for (kind, selection) in [
            (Kind::Rds, drills.instances.as_ref()),
            (Kind::RdsCluster, drills.clusters.as_ref()),
        ] {
            let Some(selection) = selection else {
                continue;
            };
            let snapshots: Vec<Snapshot> = rds::list_manual(self.rds, kind)
                .await?
                .into_iter()
                .filter(|s| {
                    s.label
                        .as_ref()
                        .is_some_and(|l| plan.as_ref().is_none_or(|p| &l.plan == p))
                })
                .collect();
            let mut busy = BTreeSet::new();
            for mut temporary in open.iter().filter(|t| t.kind == kind).cloned() {
                temporary.slot = snapshots
                    .iter()
                    .find(|s| s.id == temporary.snapshot)
                    .and_then(|s| s.label.as_ref().map(|l| l.slot));
                busy.insert(temporary.source.clone());
                // Another plan's drill is its own schedules' to drive and
                // sweep, with their RTO and age limit; it still keeps this
                // plan from restoring the same source beside it. A drill
                // resource without a plan tag is everyone's to sweep.
                let own_plan = temporary
                    .tags
                    .get(tags::PLAN)
                    .is_none_or(|p| p == request.plan.as_str());
                if !own_plan || request.dry_run || temporary.stage() == Stage::Deleting {
                    continue;
                }
                let age = temporary.started.map(|s| invocation.now - s);
                if age.is_none_or(|age| age > fields.max_age()) {
                    self.sweep(&temporary, fields, report).await;
                    continue;
                }
                let snapshot = snapshots.iter().find(|s| s.id == temporary.snapshot);
                let done = self
                    .drive(temporary, snapshot, drills, fields, until, report)
                    .await;
                report.drills.push(done);
            }
            let (sources, missing) = rds::select(self.rds, kind, selection).await?;
            for id in missing {
                report.failed.push(Failed::new(
                    kind,
                    &id,
                    ItemError::new(format!("{id} does not exist: nothing to drill")),
                ));
            }
            let every = fields.every();
            // A drill's own temporary resources are never sources.
            let own = |id: &str| {
                open.iter()
                    .any(|t| t.id == id || t.member.as_ref().is_some_and(|(m, _)| m == id))
            };
            for source in sources
                .iter()
                .filter(|s| !busy.contains(&s.id) && !own(&s.id))
            {
                let backups: Vec<&Snapshot> = snapshots
                    .iter()
                    .filter(|s| s.status == "available")
                    .filter(|s| s.label.as_ref().is_some_and(|l| l.source == source.id))
                    .collect();
                let last = crate::last_drilled(backups.iter().map(|s| &s.tags));
                if !drill::due(last, every.as_ref(), invocation.now) {
                    report
                        .skipped
                        .push(crate::not_due(kind, &source.id, last, fields));
                    continue;
                }
                let slots: Vec<Slot> = backups
                    .iter()
                    .filter_map(|s| s.label.as_ref().map(|l| l.slot))
                    .collect();
                let Some(chosen) = drill::choose(&slots, fields.pick, crate::seed()) else {
                    report.failed.push(Failed::new(
                        kind,
                        &source.id,
                        ItemError::new(format!(
                            "no available Lifeboat snapshot of {} to drill",
                            source.id
                        )),
                    ));
                    continue;
                };
                let snapshot = backups[chosen];
                if request.dry_run {
                    report.skipped.push(Skipped::new(
                        kind,
                        &source.id,
                        Some(snapshot.id.clone()),
                        format!(
                            "dry run: would restore it as a {} {} in {}, check it and delete it",
                            drills.instance_class,
                            if kind == Kind::RdsCluster {
                                "cluster"
                            } else {
                                "instance"
                            },
                            drills.subnet_group
                        ),
                    ));
                    continue;
                }
                // Another delivery of this run may have drilled the source
                // whole since the listing (its instance, the only lock, then
                // gone): read the record again right before restoring.
                match self.last_drilled(kind, &source.id, plan.as_ref()).await {
                    Ok(last) if !drill::due(last, every.as_ref(), invocation.now) => {
                        report
                            .skipped
                            .push(crate::not_due(kind, &source.id, last, fields));
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        report.failed.push(Failed::new(kind, &source.id, error));
                        continue;
                    }
                }
                let id = crate::token(&[
                    request.plan.as_str(),
                    &request.slot.to_string(),
                    &kind.to_string(),
                    &source.id,
                ]);
                match self.start(kind, &id, snapshot, request, drills).await {
                    Ok(Some(temporary)) => {
                        let done = self
                            .drive(temporary, Some(snapshot), drills, fields, until, report)
                            .await;
                        report.drills.push(done);
                    }
                    Ok(None) => {
                        tracing::info!(%id, snapshot = %snapshot.id, "another delivery of this run started this drill");
                        report.skipped.push(Skipped::new(
                            kind,
                            &source.id,
                            Some(snapshot.id.clone()),
                            format!("another delivery of this run started its drill ({id}); that delivery, or the next run, finishes it"),
                        ));
                    }
                    Err(error) => {
                        if let Err(e) = self.record(&snapshot.arn, DrillOutcome::Failed, None).await
                        {
                            tracing::warn!(snapshot = %snapshot.id, error = %e, "the failed restore could not be recorded on the snapshot");
                        }
                        report.failed.push(Failed::new(kind, &source.id, error));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every DB instance and cluster with the `lifeboat:drill` tag: the open
    /// drills. A drill cluster's instance is its member, not a drill of its own.
    async fn temporaries(&self) -> Result<Vec<Temporary>, Error> {
        let observed = Utc::now();
        let instances = self
            .rds
            .describe_db_instances()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeDBInstances", e))?;
        let clusters = self
            .rds
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| Error::aws("DescribeDBClusters", e))?;
        let mut open = Vec::new();
        for db in &instances {
            let tags = tag_map(db.tag_list());
            if !is_drill(&tags) || db.db_cluster_identifier().is_some() {
                continue;
            }
            open.push(Temporary {
                kind: Kind::Rds,
                id: db.db_instance_identifier().unwrap_or_default().to_owned(),
                arn: db.db_instance_arn().unwrap_or_default().to_owned(),
                status: db.db_instance_status().unwrap_or_default().to_owned(),
                snapshot: tags.get(tags::DRILL).cloned().unwrap_or_default(),
                source: tags.get(tags::DRILL_SOURCE).cloned().unwrap_or_default(),
                started: started_at(&tags),
                facts: instance_facts(db),
                public: db.publicly_accessible().unwrap_or(false),
                tags,
                member: None,
                endpoint: db
                    .endpoint()
                    .and_then(|e| Some((e.address()?.to_owned(), u16::try_from(e.port()?).ok()?))),
                slot: None,
                observed,
            });
        }
        for cluster in &clusters {
            let tags = tag_map(cluster.tag_list());
            if !is_drill(&tags) {
                continue;
            }
            let id = cluster.db_cluster_identifier().unwrap_or_default();
            let member = instances
                .iter()
                .find(|db| db.db_cluster_identifier() == Some(id));
            open.push(Temporary {
                kind: Kind::RdsCluster,
                id: id.to_owned(),
                arn: cluster.db_cluster_arn().unwrap_or_default().to_owned(),
                status: cluster.status().unwrap_or_default().to_owned(),
                snapshot: tags.get(tags::DRILL).cloned().unwrap_or_default(),
                source: tags.get(tags::DRILL_SOURCE).cloned().unwrap_or_default(),
                started: started_at(&tags),
                facts: cluster_facts(cluster),
                public: member.is_some_and(|db| db.publicly_accessible().unwrap_or(false)),
                member: member.map(|db| {
                    (
                        db.db_instance_identifier().unwrap_or_default().to_owned(),
                        db.db_instance_status().unwrap_or_default().to_owned(),
                    )
                }),
                endpoint: cluster
                    .endpoint()
                    .zip(cluster.port())
                    .and_then(|(host, port)| Some((host.to_owned(), u16::try_from(port).ok()?))),
                tags,
                slot: None,
                observed,
            });
        }
        Ok(open)
    }

    /// The tags a drill's temporary resource carries.
    fn drill_tags(
        snapshot: &Snapshot,
        request: &Request<RestoreDrillFields>,
        started: DateTime<Utc>,
    ) -> Vec<aws_sdk_rds::types::Tag> {
        let source = snapshot
            .label
            .as_ref()
            .map(|l| l.source.clone())
            .unwrap_or_default();
        rds::rds_tags(&[
            (tags::MANAGED_BY, tags::LIFEBOAT.to_owned()),
            (tags::PLAN, request.plan.to_string()),
            (tags::DRILL, snapshot.id.clone()),
            (tags::DRILL_SOURCE, source),
            (tags::DRILL_STARTED, started.to_rfc3339()),
            (tags::DRILL_STEP, "restore".to_owned()),
        ])
    }

    /// Calls the restore: a DB instance from a DB snapshot, or a DB cluster
    /// from a cluster snapshot (its instance comes when it is available).
    /// `None`: a restore of the same identifier exists already, which only
    /// another delivery of this run can have started (an earlier run's open
    /// drill is driven before any is started); that delivery, or the next
    /// run, drives it, so this one leaves it alone.
    async fn start(
        &self,
        kind: Kind,
        id: &str,
        snapshot: &Snapshot,
        request: &Request<RestoreDrillFields>,
        drills: &DatabaseDrills,
    ) -> Result<Option<Temporary>, ItemError> {
        let started = Utc::now();
        let source = snapshot
            .label
            .as_ref()
            .map(|l| l.source.clone())
            .unwrap_or_default();
        let failed = |call: &str, e: ItemError| {
            e.context(format!(
                "the drill of {} failed at restore: {call}",
                snapshot.id
            ))
        };
        let temporary = |arn: String, status: String, facts: Facts, public: bool| Temporary {
            kind,
            id: id.to_owned(),
            arn,
            status,
            snapshot: snapshot.id.clone(),
            source: source.clone(),
            started: Some(started),
            tags: BTreeMap::new(),
            member: None,
            endpoint: None,
            facts,
            public,
            slot: snapshot.label.as_ref().map(|l| l.slot),
            observed: started,
        };
        if kind == Kind::RdsCluster {
            let facts = self.cluster_snapshot_facts(&snapshot.id).await?;
            let restored = self
                .rds
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(id)
                .snapshot_identifier(&snapshot.id)
                .engine(&facts.engine)
                .db_subnet_group_name(&drills.subnet_group)
                .set_vpc_security_group_ids(Some(drills.security_groups.clone()))
                .deletion_protection(false)
                .copy_tags_to_snapshot(false)
                .set_tags(Some(Self::drill_tags(snapshot, request, started)))
                .send()
                .await;
            return match restored {
                Ok(out) => {
                    let c = out.db_cluster();
                    Ok(Some(temporary(
                        c.and_then(DbCluster::db_cluster_arn)
                            .unwrap_or_default()
                            .to_owned(),
                        c.and_then(DbCluster::status)
                            .unwrap_or("creating")
                            .to_owned(),
                        c.map(cluster_facts).unwrap_or_default(),
                        false,
                    )))
                }
                Err(e) if already_exists(&e) => Ok(None),
                Err(e) => Err(failed("RestoreDBClusterFromSnapshot", ItemError::aws(&e))),
            };
        }
        let restored = self
            .rds
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(id)
            .db_snapshot_identifier(&snapshot.id)
            .db_instance_class(&drills.instance_class)
            .db_subnet_group_name(&drills.subnet_group)
            .set_vpc_security_group_ids(Some(drills.security_groups.clone()))
            .publicly_accessible(false)
            .multi_az(false)
            .deletion_protection(false)
            .copy_tags_to_snapshot(false)
            .set_tags(Some(Self::drill_tags(snapshot, request, started)))
            .send()
            .await;
        match restored {
            Ok(out) => {
                let db = out.db_instance();
                Ok(Some(temporary(
                    db.and_then(DbInstance::db_instance_arn)
                        .unwrap_or_default()
                        .to_owned(),
                    db.and_then(DbInstance::db_instance_status)
                        .unwrap_or("creating")
                        .to_owned(),
                    db.map(instance_facts).unwrap_or_default(),
                    db.and_then(DbInstance::publicly_accessible)
                        .unwrap_or(false),
                )))
            }
            Err(e) if already_exists(&e) => Ok(None),
            Err(e) => Err(failed(
                "RestoreDBInstanceFromDBSnapshot",
                ItemError::aws(&e),
            )),
        }
    }

    /// The newest drill of `source`, read afresh from its available
    /// Lifeboat snapshots (of `plan` when the payload names one).
    async fn last_drilled(
        &self,
        kind: Kind,
        source: &str,
        plan: Option<&Plan>,
    ) -> Result<Option<DateTime<Utc>>, ItemError> {
        let snapshots = rds::list_manual(self.rds, kind)
            .await
            .map_err(|e| ItemError::new(e.to_string()))?;
        Ok(crate::last_drilled(
            snapshots
                .iter()
                .filter(|s| s.status == "available")
                .filter(|s| {
                    s.label
                        .as_ref()
                        .is_some_and(|l| l.source == source && plan.is_none_or(|p| &l.plan == p))
                })
                .map(|s| &s.tags),
        ))
    }

    /// The facts of a cluster snapshot, which a cluster restore needs (its engine).
    async fn cluster_snapshot_facts(&self, id: &str) -> Result<Facts, ItemError> {
        let out = self
            .rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map_err(|e| ItemError::aws(&e).context(format!("DescribeDBClusterSnapshots {id}")))?;
        let s = out
            .db_cluster_snapshots()
            .first()
            .ok_or_else(|| ItemError::new(format!("cluster snapshot {id} is gone")))?;
        Ok(Facts {
            engine: s.engine().unwrap_or_default().to_owned(),
            engine_version: s.engine_version().unwrap_or_default().to_owned(),
            encrypted: s.storage_encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id().map(str::to_owned),
            allocated_storage: None,
        })
    }

    /// The facts of a DB snapshot.
    async fn instance_snapshot_facts(&self, id: &str) -> Result<Facts, ItemError> {
        let out = self
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(|e| ItemError::aws(&e).context(format!("DescribeDBSnapshots {id}")))?;
        let s = out
            .db_snapshots()
            .first()
            .ok_or_else(|| ItemError::new(format!("snapshot {id} is gone")))?;
        Ok(Facts {
            engine: s.engine().unwrap_or_default().to_owned(),
            engine_version: s.engine_version().unwrap_or_default().to_owned(),
            encrypted: s.encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id().map(str::to_owned),
            allocated_storage: s.allocated_storage(),
        })
    }

    /// Reads one drill resource again.
    async fn refresh(&self, temporary: &Temporary) -> Option<Temporary> {
        let open = self.temporaries().await.ok()?;
        open.into_iter()
            .find(|t| t.id == temporary.id && t.kind == temporary.kind)
            .map(|mut t| {
                t.slot = temporary.slot;
                t
            })
    }

    /// Moves an open drill on for as long as this run may: waits while it
    /// restores, gives a cluster its instance, checks it when usable, then
    /// records the result and deletes it.
    async fn drive(
        &self,
        mut temporary: Temporary,
        snapshot: Option<&Snapshot>,
        drills: &DatabaseDrills,
        fields: &RestoreDrillFields,
        until: Budget,
        report: &mut Report,
    ) -> Drill {
        let rto_seconds = fields.rto_minutes * 60;
        let mut done = Drill {
            kind: temporary.kind,
            source: temporary.source.clone(),
            backup: temporary.snapshot.clone(),
            backup_slot: temporary.slot,
            size_bytes: None,
            restored_into: format!(
                "{} {} ({})",
                temporary.what(),
                temporary.id,
                drills.instance_class
            ),
            restore_seconds: None,
            rto_seconds,
            checks: Vec::new(),
            outcome: DrillOutcome::InProgress,
            failed_step: None,
            reason: None,
        };
        // The last time a run saw it not yet usable: the restore took longer.
        let tagged = |key: &str| {
            temporary
                .tags
                .get(key)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let mut pending = tagged(tags::DRILL_PENDING);
        // When an earlier run saw it usable and left the checks: it took no
        // longer, whatever it is doing since (RDS's `modifying`, `backing-up`).
        let usable = tagged(tags::DRILL_USABLE);
        loop {
            if usable.is_none()
                && matches!(temporary.stage(), Stage::Restoring | Stage::NeedsInstance)
            {
                pending = pending.max(Some(temporary.observed));
            }
            match temporary.stage() {
                Stage::Deleting => return done,
                Stage::Restoring if Instant::now() < until.wait => {
                    tokio::time::sleep(POLL).await;
                    if let Some(again) = self.refresh(&temporary).await {
                        temporary = again;
                    }
                }
                Stage::Restoring => {
                    done.checks.push(format!(
                        "{} is `{}`: the next run goes on",
                        temporary.id, temporary.status
                    ));
                    if let (Some(pending), None) = (pending, usable) {
                        self.tag_times(&temporary, &[(tags::DRILL_PENDING, pending)])
                            .await;
                    }
                    return done;
                }
                Stage::NeedsInstance => {
                    if let Err(error) = self.add_instance(&temporary, drills).await {
                        fail(&mut done, "restore", error.message);
                        break;
                    }
                    done.checks
                        .push(format!("{} available; its instance created", temporary.id));
                    match self.refresh(&temporary).await {
                        Some(again) if again.member.is_some() => temporary = again,
                        _ => {
                            temporary.member =
                                Some((member_id(&temporary.id), "creating".to_owned()))
                        }
                    }
                }
                Stage::Broken => {
                    let status = temporary
                        .member
                        .as_ref()
                        .map_or_else(|| temporary.status.clone(), |(id, s)| format!("{s} ({id})"));
                    fail(
                        &mut done,
                        "restore",
                        format!("{} is `{status}`, not available", temporary.id),
                    );
                    break;
                }
                Stage::CleanUp => {
                    done.outcome = match temporary.tags.get(tags::DRILL_OUTCOME).map(String::as_str)
                    {
                        Some("passed") => DrillOutcome::Passed,
                        _ => DrillOutcome::Failed,
                    };
                    done.restore_seconds = temporary
                        .tags
                        .get(tags::DRILL_SECONDS)
                        .and_then(|s| s.parse().ok());
                    done.checks.push(format!(
                        "checked and recorded by an earlier run; deleting {} again",
                        temporary.id
                    ));
                    self.clean_up(&temporary, &mut done).await;
                    self.report_failure(&done, report);
                    return done;
                }
                // Too little of the run left for the query: the next run
                // checks it, with the time it was first seen usable.
                Stage::Usable
                    if drills.query.is_some() && Instant::now() + QUERY_TIMEOUT > until.checks =>
                {
                    let now = Utc::now();
                    done.checks.push(format!(
                        "{} usable; too little of this run left for its query: the next run checks it",
                        temporary.id
                    ));
                    if usable.is_none() {
                        let mut times = vec![(tags::DRILL_USABLE, now)];
                        times.extend(pending.map(|at| (tags::DRILL_PENDING, at)));
                        self.tag_times(&temporary, &times).await;
                    }
                    return done;
                }
                Stage::Usable => {
                    let since = |at: DateTime<Utc>| {
                        temporary
                            .started
                            .map(|s| (at - s).num_milliseconds() as f64 / 1000.0)
                    };
                    // Usable by now, and not yet when last seen otherwise.
                    let seconds = since(usable.unwrap_or_else(Utc::now));
                    let at_least = pending.and_then(since);
                    done.restore_seconds = seconds;
                    let expected = match temporary.kind {
                        Kind::RdsCluster => self.cluster_snapshot_facts(&temporary.snapshot).await,
                        _ => self.instance_snapshot_facts(&temporary.snapshot).await,
                    };
                    match expected {
                        Err(error) => fail(&mut done, "check", error.message),
                        Ok(expected) => {
                            let (held, mut missed) =
                                compare(&expected, &temporary.facts, temporary.public);
                            done.checks.push(format!("{} available", temporary.id));
                            done.checks.extend(held);
                            if let (true, Some(query)) = (missed.is_empty(), &drills.query) {
                                match self.query(&temporary, query).await {
                                    Ok(held) => done.checks.push(held),
                                    Err(reason) => missed.push(reason),
                                }
                            }
                            let (timed, over) = timing(at_least, seconds, fields.rto_minutes);
                            done.checks.extend(timed);
                            if !missed.is_empty() {
                                fail(&mut done, "check", missed.join("; "));
                            } else if let Some(over) = over {
                                fail(&mut done, "rto", over);
                            } else {
                                done.outcome = DrillOutcome::Passed;
                            }
                        }
                    }
                    break;
                }
            }
        }
        // The result, first on the temporary resource (so that a clean-up
        // that fails is retried, not checked again), then on the snapshot.
        let mut result = vec![
            (tags::DRILL_STEP, CLEAN_UP.to_owned()),
            (tags::DRILL_OUTCOME, outcome_word(done.outcome).to_owned()),
        ];
        if let Some(seconds) = done.restore_seconds {
            result.push((tags::DRILL_SECONDS, format!("{seconds:.1}")));
        }
        self.tag_drill(&temporary, &result).await;
        match snapshot {
            Some(snapshot) => {
                if let Err(e) = self
                    .record(&snapshot.arn, done.outcome, done.restore_seconds)
                    .await
                {
                    // Unrecorded, the source looks due again: say so once.
                    let why = format!("its result could not be tagged on {}: {e}", snapshot.id);
                    if done.outcome == DrillOutcome::Passed {
                        fail(&mut done, "record", why);
                    } else {
                        done.checks.push(format!("not recorded: {why}"));
                    }
                }
            }
            None => {
                tracing::warn!(snapshot = %temporary.snapshot, "the drilled snapshot is no longer listed: its result is in the report only")
            }
        }
        self.clean_up(&temporary, &mut done).await;
        if let Some(seconds) = done.restore_seconds {
            report.metrics.push(Metric {
                name: "RestoreSeconds",
                dimensions: vec![
                    ("Kind", temporary.kind.to_string()),
                    ("Source", temporary.source.clone()),
                ],
                value: seconds,
                unit: Unit::Seconds,
            });
        }
        self.report_failure(&done, report);
        done
    }

    /// Records on the drill's resource when this run last saw it not yet
    /// usable (or first saw it usable), for the run that checks it; a tag
    /// that cannot be written leaves that run a wider window, never a wrong one.
    async fn tag_times(&self, temporary: &Temporary, times: &[(&str, DateTime<Utc>)]) {
        let tags: Vec<(&str, String)> = times.iter().map(|(k, at)| (*k, at.to_rfc3339())).collect();
        self.tag_drill(temporary, &tags).await;
    }

    /// Tags the drill's own resource with its step, result or times; a
    /// failure is logged, and the next run finds the tags as they were.
    async fn tag_drill(&self, temporary: &Temporary, tags: &[(&str, String)]) {
        if let Err(e) = self
            .rds
            .add_tags_to_resource()
            .resource_name(&temporary.arn)
            .set_tags(Some(rds::rds_tags(tags)))
            .send()
            .await
        {
            tracing::warn!(id = %temporary.id, error = %ItemError::aws(&e).message, "the drill's step could not be tagged on its resource");
        }
    }

    /// The payload's query on the restored database, through its endpoint,
    /// with the login of the payload's secret: what held, or what did not.
    async fn query(&self, temporary: &Temporary, query: &DrillQuery) -> Result<String, String> {
        // A drill started in this run knows its endpoint only from a fresh look.
        let endpoint = match temporary.endpoint.clone() {
            Some(endpoint) => Some(endpoint),
            None => self.refresh(temporary).await.and_then(|t| t.endpoint),
        };
        let (host, port) = endpoint
            .ok_or_else(|| format!("{} has no endpoint to run the query on", temporary.id))?;
        let place = format!("{host}:{port}/{}", query.dbname);
        let tools = Tools::find(self.pg_restore.clone())
            .await
            .map_err(|e| format!("the query on {place} could not run: {e}"))?;
        let target = Target::Entry(Database {
            name: temporary.source.clone(),
            host,
            port,
            dbname: query.dbname.clone(),
            secret_arn: query.secret_arn.clone(),
            format: Default::default(),
            sslmode: query.sslmode,
            compression: None,
            require_auth: None,
            runner: Default::default(),
            jobs: 1,
        });
        let asked = pg::query_number(&target, &tools.psql, self.secrets, &query.sql);
        let got = tokio::time::timeout(QUERY_TIMEOUT, asked)
            .await
            .map_err(|_| {
                format!(
                    "the query on {place} did not answer within {} s",
                    QUERY_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("the query `{}` on {place} failed: {e}", query.sql))?;
        if got >= query.at_least {
            Ok(format!(
                "`{}` on {} gave {got}, at least {}",
                query.sql, query.dbname, query.at_least
            ))
        } else {
            Err(format!(
                "`{}` on {} gave {got}, expected at least {}",
                query.sql, query.dbname, query.at_least
            ))
        }
    }

    /// A cluster's one instance, of the payload's class, never public.
    async fn add_instance(
        &self,
        cluster: &Temporary,
        drills: &DatabaseDrills,
    ) -> Result<(), ItemError> {
        let created = self
            .rds
            .create_db_instance()
            .db_instance_identifier(member_id(&cluster.id))
            .db_cluster_identifier(&cluster.id)
            .engine(&cluster.facts.engine)
            .db_instance_class(&drills.instance_class)
            .publicly_accessible(false)
            .set_tags(Some(rds::rds_tags(&[
                (tags::MANAGED_BY, tags::LIFEBOAT.to_owned()),
                (tags::DRILL, cluster.snapshot.clone()),
                (tags::DRILL_SOURCE, cluster.source.clone()),
            ])))
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if already_exists(&e) => Ok(()),
            Err(e) => Err(ItemError::aws(&e).context(format!(
                "the drill of {} failed at restore: CreateDBInstance in {}",
                cluster.snapshot, cluster.id
            ))),
        }
    }

    /// Deletes a drill's resource without a final snapshot: a cluster's
    /// instance first, then the cluster. A delete that fails leaves the
    /// tags on it, so the next run (or the sweep) tries again.
    async fn clean_up(&self, temporary: &Temporary, done: &mut Drill) {
        match self.delete(temporary).await {
            Ok(()) => done.checks.push(format!("{} deleted", temporary.id)),
            Err(error) => fail(done, "clean-up", error.message),
        }
    }

    async fn delete(&self, temporary: &Temporary) -> Result<(), ItemError> {
        if temporary.kind != Kind::RdsCluster {
            return self
                .rds
                .delete_db_instance()
                .db_instance_identifier(&temporary.id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await
                .map(|_| ())
                .or_else(gone)
                .map_err(|e| e.context(format!("deleting drill instance {}", temporary.id)));
        }
        if let Some((member, status)) = &temporary.member
            && status != "deleting"
        {
            self.rds
                .delete_db_instance()
                .db_instance_identifier(member)
                .send()
                .await
                .map(|_| ())
                .or_else(gone)
                .map_err(|e| e.context(format!("deleting drill instance {member}")))?;
        }
        self.rds
            .delete_db_cluster()
            .db_cluster_identifier(&temporary.id)
            .skip_final_snapshot(true)
            .send()
            .await
            .map(|_| ())
            .or_else(gone)
            .map_err(|e| e.context(format!("deleting drill cluster {}", temporary.id)))
    }

    /// Deletes a drill resource that outlived `max_age_hours`: its drill failed.
    async fn sweep(&self, temporary: &Temporary, fields: &RestoreDrillFields, report: &mut Report) {
        let hours = fields.max_age().num_hours();
        let why = match self.delete(temporary).await {
            Ok(()) => format!(
                "the drill of {} failed at sweep: its {} {} was older than {hours} h (max_age_hours) and was deleted",
                temporary.snapshot,
                temporary.what(),
                temporary.id
            ),
            Err(error) => format!(
                "the drill of {} failed at sweep: its {} {} is older than {hours} h and could not be deleted: {}",
                temporary.snapshot,
                temporary.what(),
                temporary.id,
                error.message
            ),
        };
        report.failed.push(Failed::new(
            temporary.kind,
            &temporary.source,
            ItemError::new(why),
        ));
    }

    fn report_failure(&self, done: &Drill, report: &mut Report) {
        if let (Some(step), Some(reason)) = (&done.failed_step, &done.reason) {
            report.failed.push(Failed::new(
                done.kind,
                &done.source,
                ItemError::new(format!(
                    "the drill of {} failed at {step}: {reason}",
                    done.backup
                )),
            ));
        }
    }

    /// Tags the snapshot with the drill's result; a failure to tag is logged
    /// (the drill itself is in the report).
    async fn record(
        &self,
        snapshot_arn: &str,
        outcome: DrillOutcome,
        seconds: Option<f64>,
    ) -> Result<(), String> {
        let mut record = vec![
            (tags::DRILLED_AT, Utc::now().to_rfc3339()),
            (tags::DRILL_OUTCOME, outcome_word(outcome).to_owned()),
        ];
        if let Some(seconds) = seconds {
            record.push((tags::DRILL_SECONDS, format!("{seconds:.1}")));
        }
        self.rds
            .add_tags_to_resource()
            .resource_name(snapshot_arn)
            .set_tags(Some(rds::rds_tags(&record)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ItemError::aws(&e).message)
    }
}

/// What a drill can say of its restore time, seen usable `at_most` seconds
/// after the restore call and not yet `at_least` seconds after it (no run
/// looked between): the window, and the RTO missed only when the restore
/// certainly took longer.
fn timing(
    at_least: Option<f64>,
    at_most: Option<f64>,
    rto_minutes: u64,
) -> (Vec<String>, Option<String>) {
    let Some(at_most) = at_most else {
        return (Vec::new(), None);
    };
    let at_least = at_least.unwrap_or(0.0).min(at_most);
    let window = format!(
        "the restore took between {at_least:.0} s (not yet usable then) and {at_most:.0} s (seen usable) after the restore call"
    );
    if drill::over_rto(at_least, rto_minutes).is_some() {
        let over = format!(
            "the restore took more than {at_least:.0} s (not yet usable then), over the RTO of {rto_minutes} minutes"
        );
        return (vec![window], Some(over));
    }
    if drill::over_rto(at_most, rto_minutes).is_some() {
        let unsure = format!(
            "{window}; whether within the RTO of {rto_minutes} minutes cannot be told: run the drill's progress schedule more often"
        );
        return (vec![unsure], None);
    }
    (vec![window], None)
}

fn fail(done: &mut Drill, step: &str, reason: String) {
    done.outcome = DrillOutcome::Failed;
    done.failed_step = Some(step.to_owned());
    done.reason = Some(reason);
}

fn outcome_word(outcome: DrillOutcome) -> &'static str {
    match outcome {
        DrillOutcome::Passed => "passed",
        _ => "failed",
    }
}

/// When this run stops waiting: after `WAIT_IN_RUN`, or `MARGIN` before its deadline.
/// How long one run may wait on its drills, and until when it may start a
/// drill's checks (its query among them) and still record and clean up.
#[derive(Debug, Clone, Copy)]
struct Budget {
    wait: Instant,
    checks: Instant,
}

impl Budget {
    fn of(invocation: &Invocation) -> Self {
        let now = Instant::now();
        let left = invocation
            .deadline
            .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default());
        let before_deadline = |margin: Duration| match left {
            Some(left) => now + left.saturating_sub(margin),
            // No deadline (`lifeboat run`): a year is as good as never.
            None => now + Duration::from_secs(365 * 86_400),
        };
        Budget {
            wait: (now + WAIT_IN_RUN).min(before_deadline(MARGIN)),
            checks: before_deadline(MARGIN.saturating_sub(QUERY_TIMEOUT)),
        }
    }
}

fn already_exists<E: aws_sdk_rds::error::ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some(
            "DBInstanceAlreadyExists"
                | "DBInstanceAlreadyExistsFault"
                | "DBClusterAlreadyExistsFault"
        )
    )
}

/// A delete of something already gone, or already being deleted, is done.
fn gone<E>(e: aws_sdk_rds::error::SdkError<E>) -> Result<(), ItemError>
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_rds::error::ProvideErrorMetadata;
    let being_deleted = e
        .message()
        .is_some_and(|m| m.contains("already being deleted"));
    match e.code() {
        Some("DBInstanceNotFound" | "DBInstanceNotFoundFault" | "DBClusterNotFoundFault") => Ok(()),
        // Another run (a duplicate delivery, or the other schedule of the
        // plan) deleted it first.
        Some(
            "InvalidDBInstanceState" | "InvalidDBInstanceStateFault" | "InvalidDBClusterStateFault",
        ) if being_deleted => Ok(()),
        _ => Err(ItemError::aws(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            engine: "postgres".into(),
            engine_version: "16.4".into(),
            encrypted: true,
            kms_key_id: Some("arn:aws:kms:us-east-1:1:key/a".into()),
            allocated_storage: Some(20),
        }
    }

    #[test]
    fn a_restore_matches_its_snapshot_or_says_what_differs() {
        let cases: Vec<(&str, Facts, bool, Vec<&str>)> = vec![
            ("the same", facts(), false, vec![]),
            (
                "bigger storage",
                Facts {
                    allocated_storage: Some(40),
                    ..facts()
                },
                false,
                vec![],
            ),
            (
                "another version",
                Facts {
                    engine_version: "16.8".into(),
                    ..facts()
                },
                false,
                vec!["engine postgres 16.4 as the snapshot, but found postgres 16.8"],
            ),
            (
                "another key",
                Facts {
                    kms_key_id: Some("arn:aws:kms:us-east-1:1:key/b".into()),
                    ..facts()
                },
                false,
                vec![
                    "encrypted with arn:aws:kms:us-east-1:1:key/a as the snapshot, but found encrypted: true, key arn:aws:kms:us-east-1:1:key/b",
                ],
            ),
            (
                "smaller storage, public",
                Facts {
                    allocated_storage: Some(10),
                    ..facts()
                },
                true,
                vec![
                    "storage of at least the snapshot's 20 GiB, but found 10 GiB",
                    "not publicly accessible, but found publicly accessible",
                ],
            ),
        ];
        for (name, restored, public, expected) in cases {
            let (held, missed) = compare(&facts(), &restored, public);
            assert_eq!(missed, expected, "{name}");
            assert_eq!(held.len() + missed.len(), 4, "{name}: every check is said");
        }
    }

    #[test]
    fn a_drill_stage_follows_its_step_and_statuses() {
        use Stage::*;
        /// Step tag, status, a cluster's member (`None`: not a cluster), the stage.
        type Case<'a> = (Option<&'a str>, &'a str, Option<Option<&'a str>>, Stage);
        let cases: Vec<Case> = vec![
            (Some("restore"), "creating", None, Restoring),
            (Some("restore"), "available", None, Usable),
            (Some("restore"), "incompatible-restore", None, Broken),
            (Some("clean-up"), "available", None, CleanUp),
            (Some("clean-up"), "deleting", None, Deleting),
            (None, "modifying", None, Restoring),
            (Some("restore"), "creating", Some(None), Restoring),
            (Some("restore"), "available", Some(None), NeedsInstance),
            (
                Some("restore"),
                "available",
                Some(Some("creating")),
                Restoring,
            ),
            (
                Some("restore"),
                "available",
                Some(Some("available")),
                Usable,
            ),
            (Some("restore"), "available", Some(Some("failed")), Broken),
            (
                Some("clean-up"),
                "available",
                Some(Some("deleting")),
                CleanUp,
            ),
        ];
        for (step, status, member, expected) in cases {
            assert_eq!(
                stage(step, status, member),
                expected,
                "{step:?} {status} {member:?}"
            );
        }
    }
}
