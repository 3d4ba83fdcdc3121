"""Closes a gap between the moto emulator and AWS that Lifeboat's tests rely on.

Python loads this file at start-up because the test harness (tests/src/lib.rs)
puts this folder on the moto server's PYTHONPATH.

AMI names are unique per account and region on AWS: a second CreateImage with
a name in use fails with InvalidAMIName.Duplicate, which is what makes
ami-backup idempotent. moto 5 accepts the duplicate; here it refuses it, under
a lock, because the server is threaded and duplicate deliveries race.
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

    def create_image(self, instance_id, name, *args, **kwargs):
        with _lock:
            for ami in self.amis.values():
                if ami.name == name and ami.state != "deregistered":
                    raise EC2ClientError(
                        "InvalidAMIName.Duplicate",
                        f"AMI name {name} is already in use by AMI {ami.id}",
                    )
            return _create_image(self, instance_id, name, *args, **kwargs)

    AmiBackend.create_image = create_image
