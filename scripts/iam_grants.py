#!/usr/bin/env python3
"""Lifeboat's two IAM guards, over the policies Terraform rendered.

  check      every AWS call a function made in the emulator tests is granted by
             that function's role, on the resource types and with condition
             keys that AWS's Service Authorization Reference (SAR) lists for the
             action; grants no call uses are listed, and fail unless justified
             in UNCALLED_GRANTS below.
  lint       parliament on every rendered policy document: zero findings, each
             suppression in scripts/parliament.yaml justified beside it.
  self-test  the check refuses a policy without a needed statement and one
             whose condition key does not apply to the action, naming it.
  simulate   restore-drill's rendered role, evaluated by a real IAM policy
             evaluator (npm's @cloud-copilot/iam-simulate, pinned in
             tools/iam-simulate, test-only, AGPL-3.0-or-later): it refuses to
             delete, tag or restore over an untagged (production) instance,
             cluster or volume and to create a volume without lifeboat:drill,
             and allows each for a drill's own tagged resource; then the same
             requests with the delete statements' conditions removed must be
             allowed, so the simulation is shown to be able to fail.

Inputs: target/aws-calls/*.calls (lines `<function> <region> <prefix>
<Operation> [version] [tags]`, written by tests/src/recorded.rs) and
target/aws-policies.json (written by tests/tests/integration/terraform.rs after its apply).
The SAR is parliament's copy (parliament/iam_definition.json), the one its
linter uses too; nothing of it is transcribed here.
"""

import argparse
import fnmatch
import glob
import json
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*pkg_resources.*")
import parliament  # noqa: E402
from parliament import is_arn_match  # noqa: E402
from parliament.statement import is_condition_key_match  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CALLS = os.environ.get("LIFEBOAT_AWS_CALLS", os.path.join(TARGET, "aws-calls"))
POLICIES = os.environ.get("LIFEBOAT_AWS_POLICIES", os.path.join(TARGET, "aws-policies.json"))
SUPPRESSIONS = os.path.join(ROOT, "scripts", "parliament-suppressions.yaml")
FUNCTIONS = ["rds-snapshot", "ebs-snapshot", "ami-backup", "pg-dump", "prune", "freshness", "restore-drill"]
SIMULATOR = os.path.join(ROOT, "tools", "iam-simulate")

SAR = {service["prefix"]: service for service in parliament.iam_definition}

# SDK operations whose IAM action is not `<prefix>:<Operation>`: S3's, from
# the SAR's own table "API operations defined by Amazon S3"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)
# and the S3 User Guide's "Required permissions for Amazon S3 API operations"
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html;
# multipart: .../userguide/mpuAndPermissions.html). Each entry: the action,
# and the action when the request names an object version. Every action here
# is looked up in the SAR before it is used.
S3_ACTIONS = {
    "CreateMultipartUpload": ("s3:PutObject", None),
    "UploadPart": ("s3:PutObject", None),
    "CompleteMultipartUpload": ("s3:PutObject", None),
    "PutObject": ("s3:PutObject", None),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", None),
    "ListParts": ("s3:ListMultipartUploadParts", None),
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "DeleteObjects": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "ListObjectsV2": ("s3:ListBucket", None),
    "ListObjects": ("s3:ListBucket", None),
    "ListObjectVersions": ("s3:ListBucketVersions", None),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", None),
}
# Tags sent with an S3 write (x-amz-tagging) need s3:PutObjectTagging as well
# (S3 API Reference, PutObject and CreateMultipartUpload, "Permissions"); for
# EC2 and RDS the SAR itself lists the tagging action as a dependent action.
S3_TAGGING = "s3:PutObjectTagging"

# Grants no recorded call uses, each kept for its reason: by action (any
# function) or by "function action". Anything else granted and never called
# fails the check ("and no more").
LAMBDA_VPC = "Lambda manages a VPC function's network interfaces with its role (pg-dump's vpc policy)"
UNCALLED_GRANTS = {
    # Used with the role's rights by AWS services, not by the code's calls.
    "logs:CreateLogStream": "Lambda's runtime writes the function's logs with the role",
    "logs:PutLogEvents": "Lambda's runtime writes the function's logs with the role",
    "ec2:CreateNetworkInterface": LAMBDA_VPC,
    "ec2:DescribeNetworkInterfaces": LAMBDA_VPC,
    "ec2:DescribeSubnets": LAMBDA_VPC,
    "ec2:DeleteNetworkInterface": LAMBDA_VPC,
    "ec2:AssignPrivateIpAddresses": LAMBDA_VPC,
    "ec2:UnassignPrivateIpAddresses": LAMBDA_VPC,
    "kms:GenerateDataKey": "SNS (the encrypted topic) and S3 (SSE-KMS dumps) use KMS with the caller's rights (kms:ViaService)",
    "kms:Decrypt": "SNS, S3 and Secrets Manager use KMS with the caller's rights (kms:ViaService)",
    "pg-dump iam:PassRole": "no call of its own: RunTask passes the task's two roles to ECS (RunTask's dependent action in the SAR)",
    "pg-dump s3:ListBucket": "no call: it makes HeadObject of a missing manifest answer 404, not 403 (S3 HeadObject docs)",
    # Calls the code makes on paths the emulator tests do not reach.
    "freshness ec2:DescribeImages": "ami checks (shared/src/aws/ec2.rs list_images); no emulator test checks AMIs",
    "freshness ec2:DescribeInstances": "ami checks select instances; no emulator test checks AMIs",
    "freshness rds:DescribeDBClusters": "rds-cluster checks; no emulator test checks clusters",
    "freshness rds:DescribeDBClusterSnapshots": "rds-cluster checks; no emulator test checks clusters",
    "prune rds:DescribeDBClusterSnapshots": "cluster snapshots (shared/src/aws/catalog.rs); no emulator test prunes them",
    "prune rds:DeleteDBClusterSnapshot": "cluster snapshots (shared/src/aws/catalog.rs); no emulator test prunes them",
    "rds-snapshot rds:CopyDBClusterSnapshot": "copy_to of cluster snapshots (snapshots.rs); no emulator test copies one",
}
# Granted, and called by no code at all: to be removed from terraform/iam.tf.
# Listed (and printed as UNNEEDED) rather than failed only because this guard
# came in without changing the policies it reports on.
UNNEEDED_GRANTS = {
    # "<function> <action>": why it stays for now (printed as UNNEEDED, not a failure).
}


def load_calls(directory):
    """{(function, region, action, resource-hint)} from the recorded lines, and per function the operations."""
    files = sorted(glob.glob(os.path.join(directory, "*.calls")))
    if not files:
        sys.exit(f"iam_grants: no recorded calls in {directory}: run the emulator tests first "
                 "(cargo test -p lifeboat-tests; `make test` clears and refills it)")
    calls = set()
    for path in files:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) < 4:
                    sys.exit(f"iam_grants: {path}: not a call line: {line!r}")
                function, region, prefix, operation, *flags = fields
                calls.add((function, region, prefix, operation, tuple(sorted(flags))))
    return calls


def load_policies(path):
    if not os.path.exists(path):
        sys.exit(f"iam_grants: no rendered policies at {path}: run "
                 "`cargo test -p lifeboat-tests --test integration terraform::` (it writes them after its apply)")
    newest_tf = max(os.path.getmtime(p) for p in glob.glob(os.path.join(ROOT, "terraform", "**", "*.tf*"), recursive=True))
    if os.path.getmtime(path) < newest_tf:
        sys.exit(f"iam_grants: {path} is older than terraform/: run "
                 "`cargo test -p lifeboat-tests --test integration terraform::` again")
    with open(path) as f:
        return json.load(f)


def privilege(action):
    prefix, name = action.split(":", 1)
    service = SAR.get(prefix)
    for p in (service or {}).get("privileges", []):
        if p["privilege"].lower() == name.lower():
            return service, p
    return service, None


def actions_of(prefix, operation, flags):
    """The IAM actions a recorded call needs: (action, its resource types to check, why)."""
    if prefix == "s3":
        if operation not in S3_ACTIONS:
            raise KeyError(f"s3:{operation} is not in S3_ACTIONS: add it with its source")
        plain, versioned = S3_ACTIONS[operation]
        main = versioned if "version" in flags and versioned else plain
    else:
        main = f"{prefix}:{operation}"
    needed = [(main, None, operation)]
    # A tagging call (AddTagsToResource) sends tags as what it does: its own action covers them.
    if "tags" in flags and prefix != "s3" and (privilege(main)[1] or {}).get("access_level") == "Tagging":
        return needed
    if "tags" in flags:
        if prefix == "s3":
            needed.append((S3_TAGGING, None, f"{operation} with tags"))
        else:
            _, p = privilege(main)
            dependents = {d for rt in (p or {}).get("resource_types", []) for d in rt["dependent_actions"]}
            # The create's own service tags what it creates; another service's
            # tagging dependent is for a resource the call makes only on
            # request (rds:CreateDBInstance lists secretsmanager:TagResource
            # for the secret of ManageMasterUserPassword, which Lifeboat never asks for).
            tagging = [d for d in sorted(dependents) if (privilege(d)[1] or {}).get("access_level") == "Tagging"
                       and d.split(":", 1)[0] == prefix]
            if not tagging:
                raise KeyError(f"{main} sent tags but the SAR lists no tagging dependent action for it")
            for d in tagging:
                needed.append((d, created_types(p, d), f"{operation} with tags"))
    return needed


def created_types(primary, tagging_action):
    """The resource types a create tags: its required types whose row takes
    aws:RequestTag (EC2), else (RDS's rows list none) any one of its required
    types that the tagging action also lists."""
    _, tagging = privilege(tagging_action)
    taggable = {rt["resource_type"].rstrip("*") for rt in tagging["resource_types"]}
    required = [rt for rt in primary["resource_types"] if rt["resource_type"].endswith("*")]
    with_tags = [rt["resource_type"].rstrip("*") for rt in required
                 if any(k.lower().startswith("aws:requesttag/") for k in rt["condition_keys"])]
    if with_tags:
        return [[t] for t in with_tags]
    return [[rt["resource_type"].rstrip("*") for rt in required if rt["resource_type"].rstrip("*") in taggable]]


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(policy):
    return as_list(policy.get("Statement"))


def action_matches(patterns, action):
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def is_global_key(key):
    """A global `aws:` key applies to every action, except the tag keys, which
    apply only where the SAR lists them."""
    key = key.lower()
    return key.startswith("aws:") and not key.startswith(("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys"))


def arn_of(service, resource_type, where):
    for r in service["resources"]:
        if r["resource"] == resource_type:
            arn = r["arn"].replace("${Partition}", where["partition"])
            arn = arn.replace("${Region}", where["region"]).replace("${Account}", where["account"])
            return re.sub(r"\$\{.*?\}", "*", arn)
    raise KeyError(f"{service['prefix']}: no resource type {resource_type} in the SAR")


def check_action(policies, action, type_sets, where):
    """Problems (empty if granted): for each required resource type, some Allow
    statement names the action, a resource of that type, and only condition
    keys that apply to it."""
    service, p = privilege(action)
    if p is None:
        return [f"{action} is not an action in the SAR"]
    rows = {rt["resource_type"].rstrip("*"): rt for rt in p["resource_types"]}
    general = rows.get("", {"condition_keys": []})["condition_keys"]
    if type_sets is None:
        required = [rt.rstrip("*") for rt in (x["resource_type"] for x in p["resource_types"]) if rt.endswith("*")]
        type_sets = [[t] for t in required] or [[None]]
    problems = []
    for alternatives in type_sets:
        near = []
        granted = False
        for resource_type in alternatives:
            if resource_type is None:
                # No required resource type: "*", or a type the SAR lists as optional.
                formats = ["*"] + [arn_of(service, t, where) for t in rows if t]
                keys = general
            else:
                formats = [arn_of(service, resource_type, where)]
                # The resource type's own keys (RDS lists them only there), but
                # not its request keys: aws:RequestTag and aws:TagKeys apply to
                # an action only where its row lists them (a create, not a delete).
                declared = [k for r in service["resources"] if r["resource"] == resource_type
                            for k in r["condition_keys"]
                            if not k.lower().startswith(("aws:requesttag/", "aws:tagkeys"))]
                keys = rows[resource_type]["condition_keys"] + general + declared
            for address, policy in policies.items():
                for i, s in enumerate(statements(policy)):
                    if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s:
                        continue
                    if not action_matches(as_list(s.get("Action")), action):
                        continue
                    resources = as_list(s.get("Resource"))
                    if not any((r == "*" and f == "*") or (f != "*" and is_arn_match(resource_type or "", f, r))
                               for r in resources for f in formats):
                        continue
                    used = [k for block in (s.get("Condition") or {}).values() for k in block]
                    foreign = [k for k in used
                               if not is_global_key(k) and not any(is_condition_key_match(d, k) for d in keys)]
                    if foreign:
                        near.append(f"{address} statement {s.get('Sid', i)} names it, but its condition key "
                                    f"{', '.join(foreign)} does not apply to {action}"
                                    f"{' on ' + resource_type if resource_type else ''} (so it never matches)")
                        continue
                    granted = True
        if not granted:
            what = " or ".join(f"{t} ({arn_of(service, t, where)})" if t else '"*"' for t in alternatives)
            problems.append(f"{action}: no statement grants it on {what}" + "".join(f"\n      - {n}" for n in near))
    # An explicit Deny of the action wins over any Allow.
    for address, policy in policies.items():
        for s in statements(policy):
            if s.get("Effect") == "Deny" and action_matches(as_list(s.get("Action")), action) and not s.get("Condition"):
                problems.append(f"{action}: denied by {address} statement {s.get('Sid', '?')}")
    return problems


def granted_actions(policies):
    """Every action an Allow statement of these policies names, expanded with the SAR."""
    out = set()
    for policy in policies.values():
        for s in statements(policy):
            if s.get("Effect") != "Allow":
                continue
            for pattern in as_list(s.get("Action")):
                for a in parliament.expand_action(pattern, raise_exceptions=False):
                    out.add(f"{a['service']}:{a['action']}")
    return out


def check(calls, rendered, allowed_uncalled=UNCALLED_GRANTS, out=sys.stdout):
    """Returns the failures; prints the report."""
    where = {k: rendered[k] for k in ("partition", "account")}
    failures = []
    functions = rendered["functions"]
    called = {f for f, *_ in calls}
    for function in FUNCTIONS:
        if function not in called:
            failures.append(f"{function}: no recorded calls (its emulator tests did not run?)")
        if function not in functions:
            failures.append(f"{function}: no rendered role policies")
    for function in sorted(functions):
        policies = functions[function]["policies"]
        mine = sorted(c for c in calls if c[0] == function)
        used = set()
        checked = 0
        print(f"{function}: {len(mine)} recorded operations", file=out)
        for _, region, prefix, operation, flags in mine:
            try:
                needed = actions_of(prefix, operation, flags)
            except KeyError as e:
                failures.append(f"{function}: {e}")
                continue
            for action, type_sets, why in needed:
                used.add(action)
                checked += 1
                problems = check_action(policies, action, type_sets, dict(where, region=region))
                state = "ok" if not problems else "NOT GRANTED"
                print(f"  {state:11} {action:40} {why} in {region}", file=out)
                failures += [f"{function}: {p} (needed by {why} in {region})" for p in problems]
        uncalled = sorted(granted_actions(policies) - used)
        print(f"  {checked} actions checked; granted but not called: {len(uncalled)}", file=out)
        for action in uncalled:
            why = allowed_uncalled.get(f"{function} {action}") or allowed_uncalled.get(action)
            unneeded = UNNEEDED_GRANTS.get(f"{function} {action}")
            if unneeded:
                print(f"  UNNEEDED    {action:40} {unneeded}", file=out)
            elif why:
                print(f"  uncalled    {action:40} {why}", file=out)
            else:
                print(f"  UNCALLED    {action:40} no reason kept", file=out)
                failures.append(f"{function}: {action} is granted but no recorded call needs it "
                                "(remove it, exercise it in a test, or justify it in UNCALLED_GRANTS)")
    return failures


def lint(rendered, out=sys.stdout):
    """parliament's findings on every rendered document, less the justified suppressions."""
    import yaml
    community = os.path.join(os.path.dirname(parliament.__file__), "community_auditors", "config_override.yaml")
    parliament.override_config(community)
    with open(SUPPRESSIONS) as f:
        suppressions = yaml.safe_load(f) or []
    for s in suppressions:
        if not str(s.get("why", "")).strip():
            sys.exit(f"iam_grants: {SUPPRESSIONS}: a suppression without its reason: {s}")
    used = [0] * len(suppressions)
    findings = []
    for doc in rendered["documents"]:
        policy = parliament.analyze_policy_string(
            json.dumps(doc["policy"]), filepath=doc["address"], include_community_auditors=True)
        for f in policy.findings:
            f = parliament.enhance_finding(f)
            detail = str(f.detail)
            matched = [i for i, s in enumerate(suppressions)
                       if s["issue"] == f.issue and re.search(s["document"], doc["address"])
                       and re.search(s.get("detail", ""), detail)]
            for i in matched:
                used[i] += 1
            if not matched:
                findings.append(f"{doc['address']} ({doc['kind']}): {f.issue} {f.severity}: {detail} {f.location}")
    for s, n in zip(suppressions, used):
        if n == 0:
            findings.append(f"stale suppression (matches no finding): {s['issue']} {s['document']}")
    print(f"parliament {parliament.__version__}: {len(rendered['documents'])} documents, "
          f"{len(findings)} findings, {sum(used)} suppressed by {len(suppressions)} justified entries", file=out)
    return findings


def self_test(rendered=None):
    """The check must fail, naming the action, on a policy without a needed
    statement and on one whose condition key does not apply."""
    import io
    where = {"partition": "aws", "region": "us-east-1", "account": "123456789012"}
    good = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Describe", "Effect": "Allow", "Action": "ec2:DescribeSnapshots", "Resource": "*"},
        {"Sid": "Delete", "Effect": "Allow", "Action": "ec2:DeleteSnapshot",
         "Resource": "arn:aws:ec2:us-east-1::snapshot/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "lifeboat"}}},
        {"Sid": "Alerts", "Effect": "Allow", "Action": "sns:Publish",
         "Resource": "arn:aws:sns:us-east-1:123456789012:alerts"},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": "Lifeboat"}}},
    ]}
    calls = {("prune", "us-east-1", "ec2", "DescribeSnapshots", ()),
             ("prune", "us-east-1", "ec2", "DeleteSnapshot", ()),
             ("prune", "us-east-1", "sns", "Publish", ()),
             ("prune", "us-east-1", "cloudwatch", "PutMetricData", ())}

    def run(policy, function="prune", extra=None):
        r = dict(where, functions={function: {"policies": {"p": policy}}})
        everyone = {(f, "us-east-1", "sns", "Publish", ()) for f in FUNCTIONS}
        failures = check(calls | everyone | (extra or set()), r, out=io.StringIO())
        return [f for f in failures if f.startswith(function + ":") and "no rendered role policies" not in f]

    errors = []
    if run(good):
        errors.append(f"the good policy must pass: {run(good)}")
    missing = json.loads(json.dumps(good))
    missing["Statement"] = [s for s in missing["Statement"] if s["Sid"] != "Delete"]
    if not any("ec2:DeleteSnapshot: no statement grants it" in f for f in run(missing)):
        errors.append(f"a policy without the delete statement must fail naming ec2:DeleteSnapshot: {run(missing)}")
    foreign = json.loads(json.dumps(good))
    foreign["Statement"][1]["Condition"] = {"StringEquals": {"s3:ExistingObjectTag/managed-by": "lifeboat"}}
    if not any("ec2:DeleteSnapshot" in f and "s3:ExistingObjectTag/managed-by does not apply" in f for f in run(foreign)):
        errors.append(f"a condition key of another service must fail naming it: {run(foreign)}")
    requested = json.loads(json.dumps(good))
    requested["Statement"][1]["Condition"] = {"StringEquals": {"aws:RequestTag/managed-by": "lifeboat"}}
    if not any("aws:RequestTag/managed-by does not apply" in f for f in run(requested)):
        errors.append(f"aws:RequestTag on a delete (not listed by the SAR) must fail: {run(requested)}")
    wrong_region = json.loads(json.dumps(good))
    wrong_region["Statement"][1]["Resource"] = "arn:aws:ec2:eu-west-1::snapshot/*"
    if not any("ec2:DeleteSnapshot" in f for f in run(wrong_region)):
        errors.append("a grant in another region must not cover a call here")
    unused = json.loads(json.dumps(good))
    unused["Statement"][0]["Action"] = ["ec2:DescribeSnapshots", "ec2:DescribeVolumes"]
    if not any("ec2:DescribeVolumes is granted but no recorded call" in f for f in run(unused)):
        errors.append(f"a grant no call uses must be refused: {run(unused)}")
    tagged = {("prune", "us-east-1", "ec2", "CreateSnapshot", ("tags",))}
    if not any("ec2:CreateTags" in f for f in run(good, extra=tagged)):
        errors.append("a create with tags needs the SAR's dependent tagging action")
    if rendered is not None:
        # The real policies: pg-dump without its WriteDumps statement, and prune
        # with its EC2 deletion held by a key that does not apply.
        errors += real_mutations(rendered)
    return errors


def real_mutations(rendered):
    import io
    errors = []
    calls = load_calls(CALLS)
    for function, sid, mutate, expect in [
        ("pg-dump", "WriteDumps", "remove", "s3:PutObject: no statement grants it"),
        ("prune", "DeleteLifeboatEc2Backups", "foreign-key", "ec2:DeleteSnapshot"),
    ]:
        broken = json.loads(json.dumps(rendered))
        policies = broken["functions"][function]["policies"]
        found = False
        for policy in policies.values():
            kept = []
            for s in statements(policy):
                if s.get("Sid") == sid:
                    found = True
                    if mutate == "remove":
                        continue
                    s["Condition"] = {"StringEquals": {"rds:snapshot-tag/managed-by": "lifeboat"}}
                kept.append(s)
            policy["Statement"] = kept
        if not found:
            errors.append(f"{function} has no statement {sid} to break")
            continue
        report = io.StringIO()
        failures = [f for f in check(calls, broken, out=report) if f.startswith(function)]
        shown = "\n".join(failures)
        print(f"self-test: {function} with {sid} {'removed' if mutate == 'remove' else 'held by rds:snapshot-tag'}:")
        print("  " + "\n  ".join(failures[:3]))
        if expect not in shown:
            errors.append(f"{function} without {sid} must fail naming {expect}: {shown}")
    return errors


def drill_cases(rendered):
    """The requests restore-drill's role must refuse and allow, with the
    context AWS would send: resource tags (aws:ResourceTag/*), request tags
    and their keys (aws:RequestTag/*, aws:TagKeys), ec2:CreateAction."""
    part, account, region = rendered["partition"], rendered["account"], rendered["region"]
    policies = rendered["functions"]["restore-drill"]["policies"]
    listed = [r for p in policies.values() for s in statements(p) if s.get("Sid") == "ListDumps"
              for r in as_list(s.get("Resource"))]
    if not listed:
        sys.exit("iam_grants simulate: restore-drill's policy has no ListDumps statement naming the dump bucket")
    bucket = listed[0]
    rds = f"arn:{part}:rds:{region}:{account}"
    ec2 = f"arn:{part}:ec2:{region}:{account}"
    snapshot = f"arn:{part}:ec2:{region}::snapshot/snap-0123456789abcdef0"
    lifeboat = {"aws:ResourceTag/managed-by": "lifeboat"}
    drill = dict(lifeboat, **{"aws:ResourceTag/lifeboat:drill": "rds:lifeboat-nightly-orders-202612010200"})
    creating = {"aws:RequestTag/managed-by": "lifeboat", "aws:RequestTag/lifeboat:drill": "snap-0123456789abcdef0",
                "aws:TagKeys": ["managed-by", "lifeboat:plan", "lifeboat:drill", "lifeboat:drill-source", "lifeboat:drill-started"]}
    result_keys = {"aws:TagKeys": ["lifeboat:drilled-at", "lifeboat:drill-outcome", "lifeboat:drill-seconds"]}
    deny, allow = "denied", "Allowed"
    cases = [
        # RDS: deletes
        ("DeleteDBInstance of an untagged production instance", "rds:DeleteDBInstance", f"{rds}:db:orders", {}, deny),
        ("DeleteDBInstance of a production instance someone tagged as a drill", "rds:DeleteDBInstance", f"{rds}:db:orders", drill, deny),
        ("DeleteDBInstance of an untagged lifeboat-drill-* instance", "rds:DeleteDBInstance", f"{rds}:db:lifeboat-drill-0123456789abcdef", {}, deny),
        ("DeleteDBInstance of a drill instance (tagged)", "rds:DeleteDBInstance", f"{rds}:db:lifeboat-drill-0123456789abcdef", drill, allow),
        ("DeleteDBCluster of an untagged production cluster", "rds:DeleteDBCluster", f"{rds}:cluster:orders-aurora", {}, deny),
        ("DeleteDBCluster of a drill cluster (tagged)", "rds:DeleteDBCluster", f"{rds}:cluster:lifeboat-drill-0123456789abcdef", drill, allow),
        # RDS: creates
        ("RestoreDBInstanceFromDBSnapshot without lifeboat:drill in the request", "rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:db:lifeboat-drill-0123456789abcdef", {"aws:RequestTag/managed-by": "lifeboat", "aws:TagKeys": ["managed-by"]}, deny),
        ("RestoreDBInstanceFromDBSnapshot over a production instance's name", "rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:db:orders", creating, deny),
        ("RestoreDBInstanceFromDBSnapshot into a drill instance", "rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:db:lifeboat-drill-0123456789abcdef", creating, allow),
        ("RestoreDBInstanceFromDBSnapshot from a snapshot that is not Lifeboat's", "rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:snapshot:someone-elses", {}, deny),
        ("RestoreDBInstanceFromDBSnapshot from a Lifeboat snapshot", "rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:snapshot:lifeboat-nightly-orders-202612010200", lifeboat, allow),
        ("RestoreDBClusterFromSnapshot into a drill cluster", "rds:RestoreDBClusterFromSnapshot", f"{rds}:cluster:lifeboat-drill-0123456789abcdef", creating, allow),
        ("CreateDBInstance outside a drill cluster's name", "rds:CreateDBInstance", f"{rds}:db:orders-2", creating, deny),
        # RDS: tags
        ("AddTagsToResource marking a production instance as a drill", "rds:AddTagsToResource", f"{rds}:db:orders", creating, deny),
        ("AddTagsToResource of a drill's step on its instance", "rds:AddTagsToResource", f"{rds}:db:lifeboat-drill-0123456789abcdef", dict(drill, **{"aws:TagKeys": ["lifeboat:drill-step", "lifeboat:drill-outcome"]}), allow),
        ("AddTagsToResource of a drill's result on a Lifeboat snapshot", "rds:AddTagsToResource", f"{rds}:snapshot:lifeboat-nightly-orders-202612010200", dict(lifeboat, **result_keys), allow),
        ("AddTagsToResource of managed-by on a snapshot that is not Lifeboat's", "rds:AddTagsToResource", f"{rds}:snapshot:someone-elses", {"aws:TagKeys": ["managed-by"], "aws:RequestTag/managed-by": "lifeboat"}, deny),
        # EC2
        ("DeleteVolume of an untagged production volume", "ec2:DeleteVolume", f"{ec2}:volume/vol-0123456789abcdef0", {}, deny),
        ("DeleteVolume of a Lifeboat-tagged volume that is no drill", "ec2:DeleteVolume", f"{ec2}:volume/vol-0123456789abcdef0", lifeboat, deny),
        ("DeleteVolume of a drill volume (tagged)", "ec2:DeleteVolume", f"{ec2}:volume/vol-0123456789abcdef0", drill, allow),
        ("CreateVolume without lifeboat:drill in the request", "ec2:CreateVolume", f"{ec2}:volume/*", {"aws:RequestTag/managed-by": "lifeboat", "aws:TagKeys": ["managed-by"]}, deny),
        ("CreateVolume of a drill volume", "ec2:CreateVolume", f"{ec2}:volume/*", creating, allow),
        ("CreateVolume from a snapshot that is not Lifeboat's", "ec2:CreateVolume", snapshot, {}, deny),
        ("CreateVolume from a Lifeboat snapshot", "ec2:CreateVolume", snapshot, lifeboat, allow),
        ("CreateTags marking a production volume as a drill", "ec2:CreateTags", f"{ec2}:volume/vol-0123456789abcdef0", creating, deny),
        ("CreateTags of a new drill volume, in CreateVolume", "ec2:CreateTags", f"{ec2}:volume/vol-0123456789abcdef0", dict(creating, **{"ec2:CreateAction": "CreateVolume"}), allow),
        ("CreateTags of a drill's result on a Lifeboat snapshot", "ec2:CreateTags", snapshot, dict(lifeboat, **result_keys), allow),
        ("CreateTags of managed-by on a Lifeboat snapshot", "ec2:CreateTags", snapshot, dict(lifeboat, **{"aws:TagKeys": ["managed-by"], "aws:RequestTag/managed-by": "lifeboat"}), deny),
        # S3
        ("PutObject over a dump", "s3:PutObject", f"{bucket}/orders/nightly/orders-202612010200.dump", {}, deny),
        ("PutObject of a drill record", "s3:PutObject", f"{bucket}/orders/nightly/orders-202612010200.dump.drill.json", {}, allow),
    ]
    identity = [{"name": address, "policy": policy} for address, policy in policies.items()]
    return [{"name": n, "action": a, "resource": r, "account": account, "context": c, "expect": e,
             "policies": identity} for n, a, r, c, e in cases]


def run_simulator(rendered, cases):
    import subprocess
    script = os.path.join(SIMULATOR, "simulate.mjs")
    if not os.path.isdir(os.path.join(SIMULATOR, "node_modules", "@cloud-copilot", "iam-simulate")):
        sys.exit(f"iam_grants simulate: no simulator in {SIMULATOR}/node_modules: run make setup (npm ci there)")
    role = rendered["functions"]["restore-drill"].get("role", "lifeboat-restore-drill")
    principal = f"arn:{rendered['partition']}:iam::{rendered['account']}:role/{role}"
    out = subprocess.run(["node", script], input=json.dumps({"principal": principal, "cases": cases}),
                         capture_output=True, text=True, cwd=SIMULATOR)
    if out.returncode != 0:
        sys.exit(f"iam_grants simulate: node {script} failed: {out.stderr}")
    return json.loads(out.stdout)


def simulate(rendered, out=sys.stdout):
    """The failures: a case the simulator decided otherwise than expected
    (or could not evaluate), or a mutation that it did not notice."""
    cases = drill_cases(rendered)
    failures = []
    results = run_simulator(rendered, cases)
    print(f"simulate: restore-drill's role, {len(cases)} requests, @cloud-copilot/iam-simulate", file=out)
    for case, result in zip(cases, results):
        got = result["result"]
        ok = (got == "Allowed") if case["expect"] == "Allowed" else got in ("ImplicitlyDenied", "ExplicitlyDenied")
        why = f" by {', '.join(result.get('allowedBy') or [])}" if got == "Allowed" else ""
        print(f"  {'ok' if ok else 'WRONG':5} {got:16} {case['action']:38} {case['name']}{why}", file=out)
        if not ok:
            failures.append(f"simulate: {case['name']}: {case['action']} on {case['resource']} is {got}, "
                            f"expected {case['expect']} {result.get('errors') or ''}")
    # The same requests with the deletions' conditions removed: the untagged
    # deletes must now be allowed, or the simulation above proved nothing.
    broken = json.loads(json.dumps(rendered))
    for policy in broken["functions"]["restore-drill"]["policies"].values():
        for s in statements(policy):
            if s.get("Sid") in ("DeleteDrillDatabases", "DeleteDrillVolumes"):
                s.pop("Condition", None)
    mutated = drill_cases(broken)
    flipped = [c["name"] for c, r in zip(mutated, run_simulator(broken, mutated))
               if c["name"].startswith(("DeleteDBInstance of an untagged lifeboat-drill", "DeleteVolume of an untagged"))
               and r["result"] == "Allowed"]
    print(f"simulate: without the delete statements' tag conditions, allowed: {'; '.join(flipped) or 'nothing'}", file=out)
    if len(flipped) != 2:
        failures.append(f"simulate: without their tag conditions the untagged deletes must be allowed, got {flipped}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "lint", "self-test", "simulate", "all"])
    args = parser.parse_args()
    failed = []
    if args.command in ("self-test", "all"):
        rendered = load_policies(POLICIES) if args.command == "all" else None
        errors = self_test(rendered)
        print(f"self-test: {'ok' if not errors else 'FAILED'}")
        failed += [f"self-test: {e}" for e in errors]
    if args.command in ("check", "all"):
        failed += check(load_calls(CALLS), load_policies(POLICIES))
    if args.command in ("lint", "all"):
        failed += lint(load_policies(POLICIES))
    if args.command in ("simulate", "all"):
        failed += simulate(load_policies(POLICIES))
    for f in failed:
        print(f"FAIL {f}", file=sys.stderr)
    if failed:
        sys.exit(1)
    print(f"iam_grants {args.command}: ok")


if __name__ == "__main__":
    main()
