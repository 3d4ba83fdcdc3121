//! AMI drills: the source instance's chosen Lifeboat image must be
//! `available`, and every snapshot it refers to must exist and be
//! `completed`. Nothing is launched; the result is tagged on the image
//! (`lifeboat:drilled-at`, `lifeboat:drill-outcome`).

use crate::fields::{ImageDrills, RestoreDrillFields};
use aws_sdk_ec2::Client;
use chrono::Utc;
use lifeboat::aws::ec2;
use lifeboat::model::tag as tags;
use lifeboat::report::{Drill, DrillOutcome, Failed, Report, Skipped};
use lifeboat::rules::drill;
use lifeboat::runtime::Invocation;
use lifeboat::{Error, ItemError, Kind, Plan, Request, Slot};

/// Checks AMIs.
pub struct ImageDriller<'a> {
    /// EC2 in the home region.
    pub ec2: &'a Client,
}

impl ImageDriller<'_> {
    /// Checks the due instances' images into `report`.
    pub async fn run(
        &self,
        request: &Request<RestoreDrillFields>,
        drills: &ImageDrills,
        invocation: &Invocation,
        report: &mut Report,
    ) -> Result<(), Error> {
        let fields = &request.fields;
        let (sources, missing) = ec2::select_instances(self.ec2, &drills.select).await?;
        for id in missing {
            report.failed.push(Failed::new(
                Kind::Ami,
                &id,
                ItemError::new(format!("instance {id} does not exist: nothing to drill")),
            ));
        }
        let plan = drills
            .backup_plan
            .as_deref()
            .and_then(|p| Plan::new(p).ok());
        let images = ec2::list_images(self.ec2, plan.as_ref()).await?;
        let every = fields.every();
        for source in &sources {
            let own: Vec<_> = images
                .iter()
                .filter(|(_, l)| l.source == source.id)
                .collect();
            let tagged: Vec<_> = own
                .iter()
                .map(|(image, _)| ec2::tag_map(image.tags()))
                .collect();
            let last = crate::last_drilled(tagged.iter());
            if !drill::due(last, every.as_ref(), invocation.now) {
                report
                    .skipped
                    .push(crate::not_due(Kind::Ami, &source.id, last, fields));
                continue;
            }
            let slots: Vec<Slot> = own.iter().map(|(_, l)| l.slot).collect();
            let Some(chosen) = drill::choose(&slots, fields.pick, crate::seed()) else {
                report.failed.push(Failed::new(
                    Kind::Ami,
                    &source.id,
                    ItemError::new(format!("no Lifeboat image of {} to drill", source.id)),
                ));
                continue;
            };
            let (image, label) = own[chosen];
            let image_id = image.image_id().unwrap_or_default().to_owned();
            if request.dry_run {
                report.skipped.push(Skipped::new(
                    Kind::Ami,
                    &source.id,
                    Some(image_id),
                    "dry run: would check the image and its snapshots",
                ));
                continue;
            }
            let mut done = Drill {
                kind: Kind::Ami,
                source: source.id.clone(),
                backup: image_id.clone(),
                backup_slot: Some(label.slot),
                size_bytes: None,
                restored_into: "nothing: the image and its snapshots are checked".to_owned(),
                restore_seconds: None,
                rto_seconds: fields.rto_minutes * 60,
                checks: Vec::new(),
                outcome: DrillOutcome::Passed,
                failed_step: None,
                reason: None,
            };
            match self.check(image).await {
                Ok(checks) => done.checks = checks,
                Err(reason) => {
                    done.outcome = DrillOutcome::Failed;
                    done.failed_step = Some("check".to_owned());
                    report.failed.push(Failed::new(
                        Kind::Ami,
                        &source.id,
                        ItemError::new(format!(
                            "the drill of {image_id} failed at check: {reason}"
                        )),
                    ));
                    done.reason = Some(reason);
                }
            }
            self.record(&image_id, done.outcome).await;
            report.drills.push(done);
        }
        Ok(())
    }

    /// What holds of an image, or the first thing that does not.
    async fn check(&self, image: &aws_sdk_ec2::types::Image) -> Result<Vec<String>, String> {
        let ids = ec2::image_snapshot_ids(image);
        let found = if ids.is_empty() {
            Vec::new()
        } else {
            ec2::list_snapshots(self.ec2, vec![ec2::filter("snapshot-id", ids.clone())])
                .await
                .map_err(|e| lifeboat::aws::describe(&e))?
        };
        let states: Vec<(&str, &str)> = found
            .iter()
            .map(|s| (s.id.as_str(), s.state.as_str()))
            .collect();
        verdict(
            image.state().map(|s| s.as_str()).unwrap_or_default(),
            &ids,
            &states,
        )
    }

    /// Tags the image with the drill's result; a failure to tag is logged.
    async fn record(&self, image: &str, outcome: DrillOutcome) {
        let outcome = if outcome == DrillOutcome::Passed {
            "passed"
        } else {
            "failed"
        };
        let record = [
            (tags::DRILLED_AT, Utc::now().to_rfc3339()),
            (tags::DRILL_OUTCOME, outcome.to_owned()),
        ];
        if let Err(e) = self
            .ec2
            .create_tags()
            .resources(image)
            .set_tags(Some(ec2::ec2_tags(&record)))
            .send()
            .await
        {
            tracing::warn!(image, error = %ItemError::aws(&e).message, "the drill's result could not be recorded on the image");
        }
    }
}

/// An image in `state` refers to the snapshots `ids`, and `found` lists the
/// ones that exist with their states: the checks that held, or the first
/// that did not.
fn verdict(state: &str, ids: &[String], found: &[(&str, &str)]) -> Result<Vec<String>, String> {
    if state != "available" {
        return Err(format!("the image is `{state}`, not available"));
    }
    if ids.is_empty() {
        return Err("the image refers to no EBS snapshot".to_owned());
    }
    for id in ids {
        match found.iter().find(|(found, _)| found == id) {
            None => return Err(format!("its snapshot {id} does not exist")),
            Some((_, state)) if *state != "completed" => {
                return Err(format!("its snapshot {id} is `{state}`, not completed"));
            }
            Some(_) => {}
        }
    }
    Ok(vec![
        "the image is available".to_owned(),
        format!(
            "its {} snapshots exist and are completed: {}",
            ids.len(),
            ids.join(", ")
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_passes_only_when_available_with_every_snapshot_completed() {
        let ids = vec!["snap-1".to_owned(), "snap-2".to_owned()];
        let both = [("snap-1", "completed"), ("snap-2", "completed")];
        assert!(verdict("available", &ids, &both).is_ok());
        for (state, ids, found, says) in [
            (
                "pending",
                ids.clone(),
                both.to_vec(),
                "the image is `pending`, not available",
            ),
            (
                "failed",
                ids.clone(),
                both.to_vec(),
                "the image is `failed`, not available",
            ),
            (
                "available",
                vec![],
                vec![],
                "the image refers to no EBS snapshot",
            ),
            (
                "available",
                ids.clone(),
                vec![("snap-1", "completed")],
                "its snapshot snap-2 does not exist",
            ),
            (
                "available",
                ids.clone(),
                vec![("snap-1", "completed"), ("snap-2", "pending")],
                "its snapshot snap-2 is `pending`, not completed",
            ),
            (
                "available",
                ids.clone(),
                vec![("snap-1", "error"), ("snap-2", "completed")],
                "its snapshot snap-1 is `error`, not completed",
            ),
        ] {
            assert_eq!(verdict(state, &ids, &found), Err(says.to_owned()));
        }
    }
}
