"""The demo estate in the local emulator: seed it, and show what Lifeboat made.

    estate.py seed        resources to back up, and the alert topic with an inbox queue
    estate.py snapshots   Lifeboat's RDS snapshots, as a table
    estate.py ec2         Lifeboat's EBS snapshots and AMIs, as tables
    estate.py history     sixty earlier nightly snapshots of one volume, for prune to thin out
    estate.py summary     a function's JSON report (stdin), one line per item
    estate.py alerts      the alerts delivered to the inbox since the last look
    estate.py pg-setup    the dump bucket, the database's secret, and pg-dump's payload (written to .state/)
    estate.py dumps       the dumps in the bucket with their tags, and the newest one's manifest
    estate.py drill-setup the drills' network (VPC, two subnets, a security group, DB subnet group
                          `lifeboat-drill`) and restore-drill's payload (written to .state/)
"""
import datetime
import json
import os
import sys

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-1")


def client(service, region=REGION):
    return boto3.client(service, region_name=region)


def tags(pairs):
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def seed():
    rds = client("rds")
    for name, tagged in [("orders-db", True), ("billing-db", True), ("scratch-db", False)]:
        rds.create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
            AllocatedStorage=20, MasterUsername="demo", MasterUserPassword="demo-only-1",
            Tags=tags({"backup": "nightly", "team": "shop"} if tagged else {"team": "lab"}),
        )
    rds.create_db_cluster(
        DBClusterIdentifier="ledger-aurora", Engine="aurora-postgresql",
        MasterUsername="demo", MasterUserPassword="demo-only-1", Tags=tags({"backup": "nightly"}),
    )
    ec2 = client("ec2")
    for i, pairs in enumerate([{"backup": "nightly", "Name": "orders-data"}, {"backup": "nightly", "Name": "logs"},
                               {"backup": "nightly"}, {"team": "lab"}]):
        ec2.create_volume(AvailabilityZone=REGION + "a", Size=10 * (i + 1),
                          TagSpecifications=[{"ResourceType": "volume", "Tags": tags(pairs)}])
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2,
                      BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50}}],
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": tags({"backup-set": "nightly", "ami": "weekly", "Name": "web"})}])
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="lifeboat-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="lifeboat-alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    print(topic)


def history():
    """Sixty days of nightly snapshots of the orders-data volume, as if Lifeboat had run for two months."""
    from datetime import datetime, timedelta, timezone
    ec2 = client("ec2")
    volume = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["orders-data"]}])["Volumes"][0]["VolumeId"]
    last = datetime(2026, 11, 19, 2, 0, tzinfo=timezone.utc)
    for day in range(60):
        slot = (last - timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:00Z")
        ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags({
            "managed-by": "lifeboat", "lifeboat:plan": "nightly", "lifeboat:source": volume,
            "lifeboat:scheduled-time": slot})}])
    print(volume)


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(header))
    print(line("-" * w for w in widths))
    for row in rows:
        print(line(row))


def snapshot_rows(region):
    rds = client("rds", region)
    rows = []
    for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
        rows.append(("rds", s["DBSnapshotIdentifier"], s["DBSnapshotArn"]))
    for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
        rows.append(("rds-cluster", s["DBClusterSnapshotIdentifier"], s["DBClusterSnapshotArn"]))
    out = []
    for kind, ident, arn in rows:
        t = {x["Key"]: x["Value"] for x in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}
        if t.get("managed-by") != "lifeboat":
            continue
        out.append((region, kind, t.get("lifeboat:source", "?"), t.get("lifeboat:plan", "?"),
                    t.get("lifeboat:scheduled-time", "?"), ident))
    return out


def snapshots():
    regions = [REGION] + [r for r in os.environ.get("DEMO_COPY_REGIONS", "").split(",") if r]
    rows = sorted(row for region in regions for row in snapshot_rows(region))
    table(["region", "kind", "source", "plan", "slot", "snapshot"], rows)


def ec2():
    ec2 = client("ec2")
    managed = [{"Name": "tag:managed-by", "Values": ["lifeboat"]}]
    rows = []
    for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=managed)["Snapshots"]:
        t = {x["Key"]: x["Value"] for x in s.get("Tags", [])}
        rows.append((t.get("lifeboat:plan"), t.get("lifeboat:source"), s["VolumeId"], t.get("lifeboat:scheduled-time"),
                     s["SnapshotId"], t.get("lifeboat:image", "")))
    print("EBS snapshots (source: a volume, an instance set, or an AMI's instance)")
    table(["plan", "source", "volume", "slot", "snapshot", "of image"], sorted(rows))
    rows = []
    for i in ec2.describe_images(Owners=["self"], Filters=managed)["Images"]:
        t = {x["Key"]: x["Value"] for x in i.get("Tags", [])}
        snaps = ",".join(m["Ebs"]["SnapshotId"] for m in i["BlockDeviceMappings"] if "Ebs" in m)
        rows.append((t.get("lifeboat:plan"), t.get("lifeboat:source"), t.get("lifeboat:scheduled-time"), i["ImageId"], i["Name"], snaps))
    print("\nAMIs")
    table(["plan", "source", "slot", "image", "name", "snapshots"], sorted(rows))


def summary():
    report = json.load(sys.stdin)
    for key in ("created", "skipped", "deleted", "kept", "checks", "failed"):
        for item in report.get(key, []):
            detail = item.get("reason") or item.get("error") or item.get("region") or item.get("scheduled_time")
            if "state" in item:
                item["backup"] = item.get("newest_time") or "no backup"
                detail = f"{item['state']} (age {item.get('age_hours', '-')} h, threshold {item['max_age_hours']} h)"
            if "reasons" in item:
                detail = f"{item['scheduled_time']}  kept by {', '.join(item['reasons'])}"
            print(f"  {key:8} {item['kind']:12} {item['source']:22} {item.get('backup') or '':42} {detail}")
    for handed in report.get("tasks", []):
        started = "started" if handed["started"] else "already running"
        print(f"  handed   {'pg-dump':12} {handed['source']:22} {handed['backup']:42} task {started}: {handed['reason']}")
    for drill in report.get("drills", []):
        # As the runbooks ask results to be documented: date, backup, size, restore time, checks.
        seconds = drill.get("restore_seconds")
        took = f"{seconds:.1f} s" if seconds is not None else "-"
        print(f"  drill    {drill['kind']:12} {drill['source']:22} {drill['backup']}")
        print(f"           {drill['outcome']}: slot {drill['backup_slot']}, {drill.get('size_bytes') or '-'} bytes, "
              f"restored into {drill['restored_into']} in {took} (RTO {drill['rto_seconds']} s)")
        for check in drill["checks"]:
            print(f"           checked: {check}")
        if drill.get("reason"):
            print(f"           failed at {drill['failed_step']}: {drill['reason']}")


def alerts():
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName="lifeboat-alerts-inbox")["QueueUrl"]
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        for m in messages:
            note = json.loads(m["Body"])
            print(f"Subject: {note.get('Subject')}\n\n{note.get('Message')}")
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


BUCKET = "lifeboat-dumps"


def pg_setup():
    """The bucket, a Secrets Manager secret in the RDS format, and the payload naming it."""
    client("s3").create_bucket(Bucket=BUCKET)
    with open(".state/pg-password") as f:
        password = f.read().strip()
    arn = client("secretsmanager").create_secret(
        Name="lifeboat/demo-shop",
        SecretString=json.dumps({"engine": "postgres", "username": "postgres", "password": password}),
    )["ARN"]
    with open("events/pg-dump.json") as f:
        payload = json.load(f)
    # This minute's slot, written down: a rerun a minute later is still the same slot.
    payload["scheduled_time"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:00Z")
    payload["databases"][0].update(
        {"name": "shop", "host": "127.0.0.1", "port": int(os.environ["LIFEBOAT_PG_PORT"]), "dbname": "shop", "secret_arn": arn}
    )
    with open(".state/pg-dump.demo.json", "w") as f:
        json.dump(payload, f, indent=2)
    print(json.dumps(payload, indent=2))


def dumps():
    s3 = client("s3")
    rows, newest = [], None
    for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        t = {x["Key"]: x["Value"] for x in s3.get_object_tagging(Bucket=BUCKET, Key=o["Key"])["TagSet"]}
        rows.append((o["Key"], str(o["Size"]), t.get("managed-by"), t.get("lifeboat:plan"), t.get("lifeboat:source"),
                     t.get("lifeboat:scheduled-time")))
        if o["Key"].endswith(".manifest.json"):
            newest = o["Key"]
    print(f"s3://{BUCKET}")
    table(["key", "bytes", "managed-by", "plan", "source", "slot"], sorted(rows))
    if newest:
        print(f"\n{newest}:")
        print(s3.get_object(Bucket=BUCKET, Key=newest)["Body"].read().decode())


def drill_setup():
    """Where RDS drills restore to: a private network of their own, and the payload naming it."""
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=REGION + zone)["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    group = ec2.create_security_group(GroupName="lifeboat-drill", Description="restore drills: no ingress",
                                      VpcId=vpc)["GroupId"]
    client("rds").create_db_subnet_group(DBSubnetGroupName="lifeboat-drill", DBSubnetGroupDescription="restore drills",
                                         SubnetIds=subnets)
    with open("events/restore-drill.demo.json") as f:
        payload = json.load(f)
    payload["rds"]["security_groups"] = [group]
    with open(".state/restore-drill.demo.json", "w") as f:
        json.dump(payload, f, indent=2)
    print(json.dumps(payload, indent=2))


def task_setup():
    """pg-dump's Fargate task as Terraform makes it: a VPC (with DNS host names,
    which the emulator's RunTask needs), a subnet and security group, a cluster
    and the task definition; prints the function's LIFEBOAT_TASK_* settings and
    writes the payload that moves `shop` to the task (plan `weekly`: a slot of
    its own)."""
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.43.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.43.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="lifeboat-pg-dump", Description="pg-dump and its task", VpcId=vpc)["GroupId"]
    ecs = client("ecs")
    cluster = ecs.create_cluster(clusterName="lifeboat-pg-dump")["cluster"]["clusterArn"]
    environment = [{"name": k, "value": os.environ[k]} for k in ("LIFEBOAT_BUCKET", "LIFEBOAT_SNS_TOPIC_ARN")]
    definition = ecs.register_task_definition(
        family="lifeboat-pg-dump", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024", memory="2048",
        containerDefinitions=[{"name": "pg-dump", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/lifeboat-pg-dump@sha256:0",
                               "memory": 2048, "essential": True, "environment": environment}],
    )["taskDefinition"]["taskDefinitionArn"]
    with open(".state/pg-dump.demo.json") as f:
        payload = json.load(f)
    payload["plan"] = "weekly"
    payload["databases"][0]["runner"] = "task"
    with open(".state/pg-dump.task.json", "w") as f:
        json.dump(payload, f, indent=2)
    print(f"LIFEBOAT_TASK_CLUSTER={cluster}\nLIFEBOAT_TASK_DEFINITION={definition}\n"
          f"LIFEBOAT_TASK_SUBNETS={subnet}\nLIFEBOAT_TASK_SECURITY_GROUPS={group}")


def task_run():
    """ECS's part for the one task of the cluster: NAME=value pairs of its
    definition's environment and of ECS's (the region, and here the
    emulator's endpoint and dummy keys where Fargate serves the task role's),
    then `--`, then its command; one a line, for scripts/image.sh run."""
    ecs = client("ecs")
    cluster = os.environ["LIFEBOAT_TASK_CLUSTER"]
    task = ecs.describe_tasks(cluster=cluster, tasks=ecs.list_tasks(cluster=cluster)["taskArns"])["tasks"][0]
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    container = definition["containerDefinitions"][0]
    lines = [f"{e['name']}={e['value']}" for e in container.get("environment", [])]
    lines += [f"AWS_REGION={REGION}", f"AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']}",
              "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "--"]
    lines += task["overrides"]["containerOverrides"][0]["command"]
    print("\n".join(lines))


if __name__ == "__main__":
    {"seed": seed, "snapshots": snapshots, "ec2": ec2, "alerts": alerts, "summary": summary, "history": history,
     "pg-setup": pg_setup, "dumps": dumps, "drill-setup": drill_setup, "task-setup": task_setup,
     "task-run": task_run}[sys.argv[1]]()
