"""Closes a gap between the moto emulator and AWS that Lifeboat's tests rely on.

Python loads this file at start-up because the test harness (tests/src/lib.rs)
puts this folder on the moto server's PYTHONPATH.

AMI names are unique per account and region on AWS: a second CreateImage with
a name in use fails with InvalidAMIName.Duplicate, which is what makes
ami-backup idempotent. moto 5 accepts the duplicate; here it refuses it, under
a lock, because the server is threaded and duplicate deliveries race.

CreateImage on AWS takes a `snapshot` tag specification and tags the image's
backing snapshots with it; moto 5 raises NotImplementedError for it (HTTP
500). Here the image is made from the other specifications and the snapshot
tags are then put on the snapshot moto made for it, as AWS would.

RDS DescribeAccountAttributes reports the account's quotas with their usage;
moto 5 does not implement it. Here it answers the two quotas Lifeboat reads,
ManualSnapshots and ManualClusterSnapshots, counted from moto's own manual
snapshots, with moto's own snapshot limit (MOTO_RDS_SNAPSHOT_LIMIT) as the
maximum, so a test sees the usage move as snapshots come and go.

S3's conditional writes (If-None-Match: * on PutObject and
CompleteMultipartUpload) are atomic on AWS: of two writes racing for one key,
one wins and the other gets 412. moto checks the key and then writes it, and
its server is threaded, so two racing writes can both pass the check. Here
object writes take one lock, which makes the check and the write one step.
"""

import threading

try:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend
except Exception:  # not the moto server: nothing to patch
    AmiBackend = None

if AmiBackend is not None:
    _lock = threading.Lock()
    _create_image = AmiBackend.create_image

    def create_image(self, instance_id, name, description, tag_specifications=None):
        specs = tag_specifications or []
        snapshot_tags = [
            tag
            for spec in specs
            if spec.get("ResourceType") == "snapshot"
            for tag in spec.get("Tags", [])
        ]
        others = [spec for spec in specs if spec.get("ResourceType") != "snapshot"]
        with _lock:
            for ami in self.amis.values():
                if ami.name == name and ami.state != "deregistered":
                    raise EC2ClientError(
                        "InvalidAMIName.Duplicate",
                        f"AMI name {name} is already in use by AMI {ami.id}",
                    )
            ami = _create_image(
                self, instance_id, name, description, tag_specifications=others
            )
        snapshot = getattr(ami, "ebs_snapshot", None)
        if snapshot is not None:
            for tag in snapshot_tags:
                snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    AmiBackend.create_image = create_image


try:
    from moto.core.responses import ActionResult
    from moto.rds.responses import RDSResponse
except Exception:  # not the moto server: nothing to patch
    RDSResponse = None

if RDSResponse is not None and not hasattr(RDSResponse, "describe_account_attributes"):

    def describe_account_attributes(self):
        backend = self.backend

        def manual(snapshots):
            return sum(1 for s in snapshots.values() if s.snapshot_type == "manual")

        quotas = [
            ("ManualSnapshots", manual(backend.database_snapshots)),
            ("ManualClusterSnapshots", manual(backend.cluster_snapshots)),
        ]
        return ActionResult(
            {
                "AccountQuotas": [
                    {"AccountQuotaName": name, "Used": used, "Max": backend.SNAPSHOT_QUOTA}
                    for name, used in quotas
                ]
            }
        )

    RDSResponse.describe_account_attributes = describe_account_attributes


try:
    from moto.s3.responses import S3Response
except Exception:  # not the moto server: nothing to patch
    S3Response = None

if S3Response is not None:
    _s3_write = threading.Lock()

    def _atomic(method):
        def locked(self, *args, **kwargs):
            with _s3_write:
                return method(self, *args, **kwargs)

        return locked

    S3Response.put_object = _atomic(S3Response.put_object)
    S3Response._key_response_post = _atomic(S3Response._key_response_post)
