//! A parallel dump's claim renewals, at the SDK level (aws-smithy-mocks):
//! what the emulator cannot show on demand. Each renewal goes only over
//! this run's last write; a renewal refused because the claim is another
//! run's, or gone, or an older write of this run's made current again by
//! another run deleting it, ends the dump; a transient failure, a renewal
//! of this run's that landed with its answer lost, a conflict with a
//! concurrent write, or a claim that cannot be read, does not, unless the
//! claim then goes unrenewed for as long as the lapse. A claim dropped at
//! the end takes with it a renewal of this run's that landed unseen.

use super::test_support::pg_dump;
use super::*;
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_s3::types::error::NotFound;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use std::sync::Arc;

const RUN: &str = "run-a";
/// Renewals in the tests: every few milliseconds.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_millis(5);
/// A lapse no test reaches.
const NEVER: std::time::Duration = std::time::Duration::from_secs(3600);
const KEY: &str = "pg/nightly/orders/20261207T0200Z.dump";

fn target() -> Target {
    Target {
        bucket: "dumps".into(),
        key: KEY.into(),
        tagging: "managed-by=lifeboat".into(),
        kms_key_id: None,
        run: RUN.into(),
    }
}

/// A renewal of the claim, matched only over the write of ETag `over`.
fn renewal(
    over: &'static str,
) -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_s3::operation::put_object::PutObjectInput,
    PutObjectOutput,
    PutObjectError,
> {
    mock!(aws_sdk_s3::Client::put_object).match_requests(move |r| {
        r.key() == Some(format!("{KEY}{CLAIM_SUFFIX}").as_str()) && r.if_match() == Some(over)
    })
}

fn renewed(over: &'static str, version: &'static str, e_tag: &'static str) -> Rule {
    renewal(over).then_output(move || {
        PutObjectOutput::builder()
            .version_id(version)
            .e_tag(e_tag)
            .build()
    })
}

fn refused(over: &'static str, code: &'static str) -> Rule {
    renewal(over)
        .then_error(move || PutObjectError::generic(ErrorMetadata::builder().code(code).build()))
}

/// The claim as HeadObject finds it: written by `run`, at `version`.
fn found(run: &'static str, version: &'static str, e_tag: &'static str) -> Rule {
    mock!(aws_sdk_s3::Client::head_object)
        .match_requests(|r| r.key() == Some(format!("{KEY}{CLAIM_SUFFIX}").as_str()))
        .then_output(move || {
            HeadObjectOutput::builder()
                .metadata(upload::RUN_METADATA, run)
                .version_id(version)
                .e_tag(e_tag)
                .build()
        })
}

fn versions(claim: &Claim) -> Vec<Option<String>> {
    claim.versions.lock().expect("versions").clone()
}

/// The claim as first written: version `v1`, ETag `e1`, just now.
fn first_claim() -> Claim {
    Claim::new(
        Some("v1".into()),
        Some("\"e1\"".into()),
        tokio::time::Instant::now(),
    )
}

/// Renews a claim first written as version `v1`, ETag `e1`, against `rules`
/// in order, until it is lost: why, the claim, and each rule's calls.
async fn renew_until_lost(rules: &[Rule]) -> (String, Claim, Vec<usize>) {
    let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, rules);
    let claim = first_claim();
    let lost = pg_dump(s3)
        .keep_claim(&target(), &claim, (RENEW_EVERY, NEVER))
        .await;
    let DumpError::Taken(why) = lost else {
        panic!("the dump must stand aside, not fail with: {lost}");
    };
    (why, claim, rules.iter().map(Rule::num_calls).collect())
}

#[tokio::test]
async fn renewals_go_over_the_last_write_and_a_claim_made_current_again_ends_the_dump() {
    let rules = [
        renewed("\"e1\"", "v2", "\"e2\""),
        // Any other refusal: tried again shortly, over the same write.
        refused("\"e2\"", "AccessDenied"),
        // A renewal whose answer was lost (the SDK's retry of it refused):
        // the write of a version this run does not know yet is its own.
        refused("\"e2\"", "PreconditionFailed"),
        found(RUN, "v3", "\"e3\""),
        renewed("\"e3\"", "v4", "\"e4\""),
        // Another run, taking this one for dead, deletes its claim newest
        // first: an older version of this run's is current again.
        refused("\"e4\"", "PreconditionFailed"),
        found(RUN, "v2", "\"e2\""),
    ];
    let (why, claim, calls) = renew_until_lost(&rules).await;
    assert!(
        why.contains("another run took this one for dead") && why.contains("this run stops"),
        "{why}"
    );
    assert_eq!(calls, [1; 7], "every step taken once");
    // Every version this run wrote, for its clean-up to delete.
    assert_eq!(
        versions(&claim),
        ["v1", "v2", "v3", "v4"]
            .map(|v| Some(v.to_owned()))
            .to_vec()
    );
}

#[tokio::test]
async fn a_claim_another_run_holds_or_deleted_ends_the_dump() {
    let cases: [(&str, Rule, Rule, &str); 2] = [
        (
            "written over by another run",
            refused("\"e1\"", "PreconditionFailed"),
            found("run-b", "v9", "\"e9\""),
            "is now run run-b's",
        ),
        (
            "deleted by another run",
            refused("\"e1\"", "NoSuchKey"),
            mock!(aws_sdk_s3::Client::head_object).then_error(|| {
                HeadObjectError::NotFound(aws_sdk_s3::types::error::NotFound::builder().build())
            }),
            "is deleted",
        ),
    ];
    for (case, put, head, says) in cases {
        let (why, _, calls) = renew_until_lost(&[put, head]).await;
        assert!(why.contains(says), "{case}: {why}");
        assert_eq!(calls, [1, 1], "{case}");
    }
}

/// S3 answers a renewal without an ETag: the next goes over the last one
/// known, never unconditionally (over whatever another run wrote).
#[tokio::test]
async fn a_renewal_answered_without_an_etag_keeps_the_last_one() {
    let without_etag =
        renewal("\"e1\"").then_output(|| PutObjectOutput::builder().version_id("v2").build());
    let rules = [
        without_etag,
        refused("\"e1\"", "PreconditionFailed"),
        found("run-b", "v9", "\"e9\""),
    ];
    let (why, claim, calls) = renew_until_lost(&rules).await;
    assert!(why.contains("is now run run-b's"), "{why}");
    assert_eq!(calls, [1, 1, 1]);
    assert_eq!(
        versions(&claim),
        ["v1", "v2"].map(|v| Some(v.to_owned())).to_vec()
    );
}

/// A renewal that meets a concurrent conditional write (409
/// `ConditionalRequestConflict`), or a claim that cannot be read after a
/// refusal, proves nothing: the renewal is tried again, over the same write,
/// and the dump goes on until the claim is seen to be another run's.
#[tokio::test]
async fn a_conflict_or_an_unreadable_claim_is_tried_again_not_lost() {
    let rules = [
        refused("\"e1\"", "ConditionalRequestConflict"),
        refused("\"e1\"", "PreconditionFailed"),
        mock!(aws_sdk_s3::Client::head_object).then_error(|| {
            HeadObjectError::generic(ErrorMetadata::builder().code("AccessDenied").build())
        }),
        refused("\"e1\"", "PreconditionFailed"),
        found("run-b", "v9", "\"e9\""),
    ];
    let (why, claim, calls) = renew_until_lost(&rules).await;
    assert!(why.contains("is now run run-b's"), "{why}");
    assert_eq!(calls, [1; 5], "every step taken once");
    assert_eq!(versions(&claim), [Some("v1".to_owned())]);
}

/// Renews `claim` on `s3` until it lapses, `lapse` after its last write:
/// why the dump then stops.
async fn renew_until_lapsed(
    s3: aws_sdk_s3::Client,
    claim: &Claim,
    lapse: std::time::Duration,
) -> String {
    let (function, target) = (pg_dump(s3), target());
    let keep = function.keep_claim(&target, claim, (RENEW_EVERY, lapse));
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), keep)
        .await
        .expect("the lapse stops the renewals");
    let DumpError::PgDump(why) = stopped else {
        panic!("a failure, not: {stopped}");
    };
    assert!(why.contains("could not be renewed"), "{why}");
    why
}

/// A claim that cannot be renewed for as long as the lapse (a renewal
/// refused every time: a policy that denies it, say) stops the dump, as a
/// failure that names the last error: another run could soon take the slot.
#[tokio::test]
async fn a_claim_not_renewed_for_the_lapse_stops_the_dump() {
    let denied = refused("\"e1\"", "AccessDenied");
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&denied]);
    let claim = first_claim();
    let lapse = std::time::Duration::from_millis(100);
    let started = tokio::time::Instant::now();
    let why = renew_until_lapsed(s3, &claim, lapse).await;
    assert!(started.elapsed() >= lapse, "{:?}", started.elapsed());
    assert!(why.contains("AccessDenied"), "{why}");
    assert!(denied.num_calls() >= 2, "{}", denied.num_calls());
    assert_eq!(versions(&claim), [Some("v1".to_owned())]);
}

/// Each renewal starts the lapse again: a claim renewed after failures is
/// lost only a whole lapse after that renewal was sent.
#[tokio::test]
async fn a_renewal_starts_the_lapse_again() {
    let denied = || PutObjectError::generic(ErrorMetadata::builder().code("AccessDenied").build());
    let renewed_at = Arc::new(std::sync::Mutex::new(None));
    let at = renewed_at.clone();
    let renewals = mock!(aws_sdk_s3::Client::put_object)
        .sequence()
        .error(denied)
        .times(10)
        .output(move || {
            *at.lock().expect("renewed at") = Some(tokio::time::Instant::now());
            PutObjectOutput::builder()
                .version_id("v2")
                .e_tag("\"e2\"")
                .build()
        })
        .error(denied)
        .repeatedly()
        .build();
    let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&renewals]);
    let claim = first_claim();
    let lapse = std::time::Duration::from_secs(1);
    renew_until_lapsed(s3, &claim, lapse).await;
    let renewed_at = renewed_at
        .lock()
        .expect("renewed at")
        .expect("renewed once");
    // Ten failures, at least 5 ms apart, came before the renewal; the lapse
    // counted from the claim's first write would have ended 50 ms sooner.
    let after = renewed_at.elapsed();
    assert!(
        after >= lapse - std::time::Duration::from_millis(25),
        "lost {after:?} after the renewal"
    );
    assert_eq!(
        versions(&claim),
        ["v1", "v2"].map(|v| Some(v.to_owned())).to_vec()
    );
}

/// The deletion of one version of the claim.
fn deleted(version: &'static str) -> Rule {
    mock!(aws_sdk_s3::Client::delete_object)
        .match_requests(move |r| {
            r.key() == Some(format!("{KEY}{CLAIM_SUFFIX}").as_str())
                && r.version_id() == Some(version)
        })
        .then_output(|| DeleteObjectOutput::builder().build())
}

/// The claim's key with no version left.
fn gone() -> Rule {
    mock!(aws_sdk_s3::Client::head_object)
        .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()))
}

/// Drops a claim whose known versions are `v1` and `v2` against `rules` in
/// order; each rule's calls.
async fn drop_claim_of_v1_and_v2(rules: &[Rule]) -> Vec<usize> {
    let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, rules);
    let claim = first_claim();
    claim.add(
        Some("v2".into()),
        Some("\"e2\"".into()),
        tokio::time::Instant::now(),
    );
    pg_dump(s3).drop_claim(&target(), claim).await;
    rules.iter().map(Rule::num_calls).collect()
}

#[tokio::test]
async fn a_renewal_that_landed_unseen_is_removed_with_the_claim_and_another_runs_is_not() {
    // The known versions, oldest first; then the newest, this run's but
    // unknown to it (a renewal cut off at the lapse that landed).
    let rules = [
        deleted("v1"),
        deleted("v2"),
        found(RUN, "v3", "\"e3\""),
        deleted("v3"),
        gone(),
    ];
    assert_eq!(drop_claim_of_v1_and_v2(&rules).await, [1, 1, 1, 1, 1]);
    // Another run's claim is current: it stays.
    let rules = [deleted("v1"), deleted("v2"), found("run-b", "v7", "\"e7\"")];
    assert_eq!(drop_claim_of_v1_and_v2(&rules).await, [1, 1, 1]);
}

#[tokio::test]
async fn a_run_holds_the_slot_at_its_end_unless_its_claim_was_taken_or_lapsed() {
    let failed = || Err::<Manifest, _>(DumpError::PgDump("pg_dump exited with status 1".into()));
    let fresh = first_claim();
    let until = fresh.held_after(&failed()).expect("held");
    assert!(until > tokio::time::Instant::now() + CLAIM_LAPSE - std::time::Duration::from_secs(5));
    let taken = Err(DumpError::Taken(
        "this run's claim of the slot is now run b's".into(),
    ));
    assert_eq!(fresh.held_after(&taken), None, "taken by another run");
    let lapsed = Claim::new(
        Some("v1".into()),
        Some("\"e1\"".into()),
        tokio::time::Instant::now() - CLAIM_LAPSE,
    );
    assert_eq!(lapsed.held_after(&failed()), None, "lapsed");
}
