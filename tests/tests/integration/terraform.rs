//! The Terraform in `terraform/`, end to end against the emulator: the
//! seeds-policy example applies, a second plan shows no change, and it
//! destroys; every schedule's input, as Terraform renders it, passes its
//! function's own payload validation; and no policy it renders grants `*` actions
//! or deletes backups without Lifeboat's tag (a check proven to fail on
//! policies that do).
//!
//! Formatting, `validate` and checkov run from `make tf-check`; this test
//! needs only `terraform` and the provider mirror that `make setup` configures.

use ami_backup::fields::AmiBackupFields;
use ebs_snapshot::fields::EbsSnapshotFields;
use freshness::fields::FreshnessFields;
use lifeboat::Request;
use lifeboat_tests::{Emulator, TempDir, repo_root};
use pg_dump::fields::PgDumpFields;
use prune::fields::PruneFields;
use rds_snapshot::fields::RdsSnapshotFields;
use restore_drill::fields::RestoreDrillFields;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The example's schedules: two prunes, one per plan, the monthly restore
/// drill and its hourly progress run, and one of every other function.
const EXAMPLE_SCHEDULES: usize = 9;

/// What EventBridge Scheduler replaces with the slot's time.
const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// The example applies to the emulator, plans again with no change, renders
/// valid payloads and least-privilege policies, and destroys.
#[tokio::test(flavor = "multi_thread")]
async fn seeds_policy_example_applies_plans_clean_and_destroys() {
    let emulator = Emulator::start();
    let work = TempDir::new("terraform");
    let module = work.path.join("terraform");
    copy_module(&repo_root().join("terraform"), &module);
    std::fs::write(
        module.join("emulator_override.tf"),
        provider_override(&emulator.endpoint),
    )
    .expect("write the provider override");
    let emulator_vars = work.path.join("emulator.tfvars");
    std::fs::write(&emulator_vars, emulator_tfvars(&emulator, &work.path).await)
        .expect("write the emulator's variables");
    let example = repo_root().join("terraform/examples/seeds-policy/terraform.tfvars");
    let var_files = [
        format!("-var-file={}", example.display()),
        format!("-var-file={}", emulator_vars.display()),
    ];
    let tf = Terraform { dir: module };

    tf.run(&["init", "-input=false", "-backend=false"], &[0]);
    tf.run(&["validate"], &[0]);
    refuses_dangerous_values(&tf, &work.path, &var_files);
    refuses_verify_full_without_a_ca_bundle(&tf, &work.path, &var_files);
    let applied = tf.run_with(
        &["apply", "-auto-approve", "-input=false"],
        &var_files,
        &[0, 1],
    );
    // Destroy whatever an apply left behind before failing on it.
    if applied.0 != 0 {
        tf.run_with(
            &["destroy", "-auto-approve", "-input=false"],
            &var_files,
            &[0, 1],
        );
        panic!("terraform apply failed:\n{}", applied.1);
    }

    let (code, output) = tf.run_with(
        &[
            "plan",
            "-input=false",
            "-detailed-exitcode",
            "-out=second.tfplan",
        ],
        &var_files,
        &[0, 1, 2],
    );
    let (_, shown) = tf.run(&["show", "-json", "second.tfplan"], &[0]);
    // Planned over the applied example, so that what it made is known.
    let query = plans_a_drill_query(&tf, &work.path, &var_files);
    tf.run_with(
        &["destroy", "-auto-approve", "-input=false"],
        &var_files,
        &[0],
    );
    check_drill_query(&query);
    assert_eq!(code, 0, "the second plan must show no changes:\n{output}");

    let plan: Value = serde_json::from_str(&shown).expect("terraform show -json");
    let resources = resources(&plan["planned_values"]["root_module"]);

    let schedules: Vec<&Value> = resources
        .iter()
        .filter(|r| r["type"] == "aws_scheduler_schedule")
        .copied()
        .collect();
    assert_eq!(
        schedules.len(),
        EXAMPLE_SCHEDULES,
        "one schedule per example entry"
    );
    for schedule in schedules {
        let function = function_of(schedule);
        let input = schedule["values"]["target"][0]["input"]
            .as_str()
            .expect("a schedule's input");
        check_schedule_input(&function, input)
            .unwrap_or_else(|e| panic!("{}: {e}", schedule["address"]));
    }

    check_functions_and_alarms(&resources);
    check_retries_and_dead_letters(&resources);
    check_snapshot_quota_alarms(&resources);
    check_pg_dump_endpoints(&resources);
    check_pg_dump_task(&resources);
    check_task_stop_rule(&resources);
    check_drills(&resources);
    // The rule the databases' groups need, for the operator to add.
    let ingress = &plan["planned_values"]["outputs"]["pg_dump_database_ingress"]["value"];
    assert_eq!(
        ingress["source_security_group_id"],
        at(&resources, "aws_security_group.pg_dump[0]")["id"]
    );
    assert_eq!(ingress["port"], 5432);
    assert_eq!(ingress["protocol"], "tcp");

    // Lambda checks the role's right to publish to the on-failure destination
    // when the invoke config is created: it must wait for the role's policy.
    let module = &plan["configuration"]["root_module"]["module_calls"]["function"]["module"];
    let invoke_config = module["resources"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|r| r["address"] == "aws_lambda_function_event_invoke_config.function")
        })
        .expect("the invoke config in the module's configuration");
    assert!(
        strings(&invoke_config["depends_on"]).contains(&"aws_iam_role_policy.function".to_owned()),
        "the on-failure destination must be created after the policy that grants sns:Publish: {invoke_config}"
    );

    write_rendered_policies(&resources);
    let policies = rendered_policies(&resources);
    let roles = policies
        .iter()
        .filter(|(address, _)| address.contains("aws_iam_role_policy."))
        .count();
    assert!(
        roles >= 12,
        "every function's and scheduler's role has a policy"
    );
    for (address, policy) in &policies {
        let violations = policy_violations(policy);
        assert!(violations.is_empty(), "{address}: {violations:#?}");
    }

    // The check sees the faults it exists for on the real policies: prune's
    // deletions without their tag condition, and a wildcard action.
    let (_, prune) = policies
        .iter()
        .find(|(address, _)| {
            address.starts_with("module.function[\"prune\"].aws_iam_role_policy.function")
        })
        .expect("prune's policy");
    let mut untagged = prune.clone();
    for statement in untagged["Statement"].as_array_mut().expect("statements") {
        statement
            .as_object_mut()
            .expect("a statement")
            .remove("Condition");
    }
    let found = policy_violations(&untagged);
    for action in [
        "rds:DeleteDBSnapshot",
        "ec2:DeleteSnapshot",
        "ec2:DeregisterImage",
    ] {
        assert!(
            found.iter().any(|v| v.contains(action)),
            "{action} without a tag condition must be refused: {found:#?}"
        );
    }
    let mut wildcard = prune.clone();
    wildcard["Statement"][0]["Action"] = json!("s3:*");
    assert!(
        !policy_violations(&wildcard).is_empty(),
        "s3:* must be refused"
    );
}

/// Values that would lose backups or alert nobody stop the plan, before any
/// change: each mistake below must be named by its validation block.
/// The example's verify-full databases with a layer built without a CA bundle:
/// refused at plan, saying how to build one in.
fn refuses_verify_full_without_a_ca_bundle(tf: &Terraform, dir: &Path, var_files: &[String]) {
    let bare = dir.join("bare-layer.tfvars");
    let zip = dir.join("zips/bare-layer.zip");
    std::fs::write(
        &bare,
        format!("pg_dump_layer_zip = {}\n", json!(zip.display().to_string())),
    )
    .expect("write bare-layer.tfvars");
    let mut files = var_files.to_vec();
    files.push(format!("-var-file={}", bare.display()));
    let (_, output) = tf.run_with(&["plan", "-input=false"], &files, &[1]);
    let output = output.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        output.contains("needs the servers' CA bundle in pg-dump's layer")
            && output.contains("make build CA_BUNDLE=path/to/global-bundle.pem"),
        "the plan must refuse verify-full without a CA bundle:\n{output}"
    );
}

fn refuses_dangerous_values(tf: &Terraform, dir: &Path, var_files: &[String]) {
    let bad = dir.join("dangerous.tfvars");
    std::fs::write(
        &bad,
        r#"schedules = {
  bad-cron = {
    function   = "rds-snapshot"
    expression = "cron(0 2 * * *)"
    payload    = { plan = "nightly", select = { ids = ["db"] } }
  }
  bad-keep = {
    function   = "prune"
    expression = "cron(0 5 * * ? *)"
    payload    = { plan = "nightly", kinds = ["rds"], keep = { daily = -2 } }
  }
  bad-plan = {
    function   = "ebs-snapshot"
    expression = "rate(1 day)"
    payload    = { plan = "Nightly", select = { ids = ["vol-1"] } }
  }
  bad-rpo = {
    function   = "freshness"
    expression = "rate(1 hour)"
    payload    = { plan = "nightly", checks = [{ kind = "rds", select = { ids = ["db"] }, max_age_hours = 0, proven_within_days = 400 }] }
  }
  bad-field = {
    function   = "freshness"
    expression = "rate(1 hour)"
    payload    = { plan = "nightly", keep = { daily = 7 }, checks = [{ kind = "rds", select = { ids = ["db"] }, max_age_hours = 26 }] }
  }
  bad-drill = {
    function   = "restore-drill"
    expression = "rate(1 hour)"
    payload    = { plan = "drill", every = "0d", ebs = { select = { ids = ["vol-1"] } } }
  }
  bad-drill-query = {
    function   = "restore-drill"
    expression = "rate(1 hour)"
    payload = { plan = "drill", rto_minutes = 60, rds = { instances = { ids = ["db"] }, instance_class = "db.t4g.medium",
      subnet_group = "g", security_groups = ["sg-1"],
      query = { secret_arn = "orders-login", dbname = "orders", sql = "SELECT 1" } } }
  }
  nightly-ebs-snapshots-of-prod-1 = {
    function   = "ebs-snapshot"
    expression = "rate(1 day)"
    payload    = { plan = "nightly", select = { ids = ["vol-1"] } }
  }
}
name_prefix = "lifeboat-production-x-"
dump_bucket = { name = "Lifeboat_Dumps" }
pg_dump = { vpc_id = "vpc-1", subnet_ids = ["subnet-1"], database_cidrs = ["10.0.0.0/8"], vpc_endpoints = true,
  task = { image_digest = "latest", cpu = 256, memory_mb = 4096, ephemeral_storage_gib = 500 } }
restore_drill = { subnet_ids = ["subnet-1"], ephemeral_storage_mb = 20480 }
"#,
    )
    .expect("write dangerous.tfvars");
    let mut files = var_files.to_vec();
    files.push(format!("-var-file={}", bad.display()));
    let (_, output) = tf.run_with(&["plan", "-input=false"], &files, &[1]);
    let output = output.split_whitespace().collect::<Vec<_>>().join(" ");
    for refusal in [
        "Every schedule expression must be cron(",
        "keep counts (last, hourly, daily, weekly, monthly, yearly) must be whole numbers",
        "Every payload.plan must match",
        "checks[].max_age_hours (the RPO) must be more than 0",
        "holds a field its function does not take",
        "EventBridge Scheduler takes at most 64 characters",
        "dump_bucket.name must be an S3 bucket name",
        "pg_dump.vpc_endpoints needs pg_dump.vpc_id and pg_dump.route_table_ids",
        "Every restore-drill schedule needs rto_minutes",
        "checks[].proven_within_days must be a whole number of days from 1 to 366",
        "restore_drill.subnet_ids needs restore_drill.vpc_id and at least two subnets",
        "restore_drill.ephemeral_storage_mb must lie between 512 and 10240",
        "pg_dump.task.image_digest is the image's digest as `make push` prints it",
        "pg_dump.task.ephemeral_storage_gib must lie between 21 and 200",
        "pg_dump.task.memory_mb does not fit its cpu on Fargate",
        "rds.query needs secret_arn (the secret's ARN: the restored database keeps its source's master login), dbname, sql and at_least",
    ] {
        assert!(
            output.contains(refusal),
            "the plan must refuse with {refusal:?}:\n{output}"
        );
    }
}

/// The contract with the functions (DESIGN.md): runtime, handler, the
/// environment each reads, pg-dump's layer and VPC; failed asynchronous runs
/// and every alarm reach the alert topic; freshness's three alarms per plan.
fn check_functions_and_alarms(resources: &[&Value]) {
    let of_type = |kind: &str| -> Vec<&Value> {
        resources
            .iter()
            .filter(|r| r["type"] == kind)
            .map(|r| &r["values"])
            .collect()
    };
    let topic = of_type("aws_sns_topic")[0]["arn"].clone();
    let functions: Vec<&Value> = resources
        .iter()
        .filter(|r| r["type"] == "aws_lambda_function")
        .copied()
        .collect();
    assert_eq!(functions.len(), 7, "seven functions");
    for resource in functions {
        let function = function_of(resource);
        let values = &resource["values"];
        assert_eq!(values["runtime"], "provided.al2023", "{function}");
        assert_eq!(values["handler"], "bootstrap", "{function}");
        assert_eq!(values["architectures"], json!(["x86_64"]), "{function}");
        let env = &values["environment"][0]["variables"];
        assert_eq!(env["LIFEBOAT_SNS_TOPIC_ARN"], topic, "{function}");
        assert_eq!(env["LIFEBOAT_METRIC_NAMESPACE"], "Lifeboat", "{function}");
        let reads_bucket =
            ["pg-dump", "prune", "freshness", "restore-drill"].contains(&function.as_str());
        assert_eq!(
            env["LIFEBOAT_BUCKET"].is_string(),
            reads_bucket,
            "{function}"
        );
        let creates = ["rds-snapshot", "ebs-snapshot", "ami-backup"].contains(&function.as_str());
        assert_eq!(
            env["LIFEBOAT_CONCURRENCY"].is_string(),
            creates,
            "{function}"
        );
        let pg_dump = function == "pg-dump";
        let drill = function == "restore-drill";
        assert_eq!(
            values["layers"].as_array().map_or(0, Vec::len),
            usize::from(pg_dump || drill),
            "{function}: pg-dump and restore-drill carry the PostgreSQL layer"
        );
        assert_eq!(
            values["ephemeral_storage"][0]["size"],
            if drill { 10240 } else { 512 },
            "{function}: restore-drill's throwaway server lives in /tmp"
        );
        assert_eq!(
            values["vpc_config"].as_array().map_or(0, Vec::len),
            usize::from(pg_dump),
            "{function}"
        );
        if pg_dump {
            assert_eq!(env["PG_DUMP_PATH"], "/opt/pgsql/bin/pg_dump");
            assert!(env["LIFEBOAT_KMS_KEY_ID"].is_string(), "pg-dump's dump key");
        }
        if drill {
            // What functions/restore-drill/src/lib.rs reads.
            assert_eq!(env["PG_RESTORE_PATH"], "/opt/pgsql/bin/pg_restore");
            assert_eq!(env["LIFEBOAT_DRILL_DIR"], "/tmp");
            assert_eq!(values["timeout"], 900);
            assert_eq!(values["memory_size"], 4096);
        }
    }
    for invoke in of_type("aws_lambda_function_event_invoke_config") {
        assert_eq!(
            invoke["destination_config"][0]["on_failure"][0]["destination"],
            topic
        );
    }
    let alarms = of_type("aws_cloudwatch_metric_alarm");
    assert_eq!(
        alarms.len(),
        7 * 3 + 4 + 2 + 3,
        "three per function, four for the plan freshness checks, two snapshot quotas, three for the schedules"
    );
    for alarm in &alarms {
        assert_eq!(
            alarm["alarm_actions"],
            json!([topic]),
            "{}",
            alarm["alarm_name"]
        );
    }
    let heartbeat = alarms
        .iter()
        .find(|a| a["metric_name"] == "Heartbeat")
        .expect("a heartbeat alarm");
    assert_eq!(heartbeat["treat_missing_data"], "breaching");
    assert_eq!(heartbeat["dimensions"], json!({"Plan": "nightly"}));
    let unproven = alarms
        .iter()
        .find(|a| a["metric_name"] == "UnprovenResources")
        .expect("an alarm on resources without a recent passed drill");
    assert_eq!(unproven["namespace"], "Lifeboat");
    assert_eq!(unproven["dimensions"], json!({"Plan": "nightly"}));
    assert_eq!(unproven["comparison_operator"], "GreaterThanThreshold");
    assert_eq!(unproven["threshold"], 0.0);
    assert!(
        alarms.iter().any(|a| a["metric_name"] == "Errors"
            && a["dimensions"]["FunctionName"] == "lifeboat-restore-drill"),
        "restore-drill's errors alarm"
    );
}

/// The resources of one type in planned values, by address.
fn of_type<'a>(resources: &[&'a Value], kind: &str) -> Vec<&'a Value> {
    resources
        .iter()
        .filter(|r| r["type"] == kind)
        .copied()
        .collect()
}

/// The one resource at `address`, its values.
fn at<'a>(resources: &[&'a Value], address: &str) -> &'a Value {
    &resources
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("no {address} in the plan"))["values"]
}

/// One failed night alerts once per slot (docs/terraform.md, Retries): Lambda
/// runs no asynchronous retry; what Scheduler could not invoke goes to the
/// encrypted dead-letter queue, which the schedules' roles may send to, and
/// three alarms watch it and Scheduler's drops.
fn check_retries_and_dead_letters(resources: &[&Value]) {
    let invoke_configs = of_type(resources, "aws_lambda_function_event_invoke_config");
    assert_eq!(invoke_configs.len(), 7, "one invoke config per function");
    for config in invoke_configs {
        assert_eq!(
            config["values"]["maximum_retry_attempts"], 0,
            "{}: a failed run has alerted already; a retry would alert again",
            config["address"]
        );
    }

    let queue = at(resources, "aws_sqs_queue.schedule_dead_letters");
    let alert_key = at(resources, "aws_kms_key.alerts");
    assert_eq!(queue["kms_master_key_id"], alert_key["arn"], "{queue}");
    assert_eq!(queue["message_retention_seconds"], 14 * 24 * 3600);
    let group = at(resources, "aws_scheduler_schedule_group.lifeboat");
    for schedule in of_type(resources, "aws_scheduler_schedule") {
        let target = &schedule["values"]["target"][0];
        assert_eq!(
            target["dead_letter_config"][0]["arn"], queue["arn"],
            "{}",
            schedule["address"]
        );
        let retry = &target["retry_policy"][0];
        let attempts = retry["maximum_retry_attempts"].as_i64().unwrap_or(-1);
        let age = retry["maximum_event_age_in_seconds"].as_i64().unwrap_or(0);
        assert!(
            (0..=185).contains(&attempts) && (60..=86_400).contains(&age),
            "Scheduler's retry limits: {retry}"
        );
    }
    let scheduler_policies: Vec<Value> = of_type(resources, "aws_iam_role_policy")
        .into_iter()
        .filter(|r| {
            r["address"]
                .as_str()
                .is_some_and(|a| a.contains(".aws_iam_role_policy.scheduler"))
        })
        .map(|r| {
            serde_json::from_str(r["values"]["policy"].as_str().expect("a policy"))
                .expect("policy JSON")
        })
        .collect();
    assert_eq!(
        scheduler_policies.len(),
        7,
        "every function has schedules in the example"
    );
    for policy in &scheduler_policies {
        let grants = |action: &str, resource: &Value| {
            policy["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|st| {
                    st["Effect"] == "Allow"
                        && strings(&st["Action"]).iter().any(|a| a == action)
                        && strings(&st["Resource"])
                            .contains(&resource.as_str().unwrap_or("").to_owned())
                })
        };
        assert!(grants("sqs:SendMessage", &queue["arn"]), "{policy}");
        assert!(grants("kms:GenerateDataKey", &alert_key["arn"]), "{policy}");
    }

    let alarms = of_type(resources, "aws_cloudwatch_metric_alarm");
    let alarm = |namespace: &str, metric: &str| {
        alarms
            .iter()
            .map(|a| &a["values"])
            .find(|a| a["namespace"] == namespace && a["metric_name"] == metric)
            .unwrap_or_else(|| panic!("an alarm on {namespace} {metric}"))
    };
    for metric in [
        "InvocationDroppedCount",
        "InvocationsFailedToBeSentToDeadLetterCount",
    ] {
        let a = alarm("AWS/Scheduler", metric);
        assert_eq!(
            a["dimensions"],
            json!({"ScheduleGroup": group["name"]}),
            "{metric}"
        );
        assert_eq!(a["threshold"], 0.0, "{metric}");
        assert_eq!(a["comparison_operator"], "GreaterThanThreshold", "{metric}");
    }
    let waiting = alarm("AWS/SQS", "ApproximateNumberOfMessagesVisible");
    assert_eq!(waiting["dimensions"], json!({"QueueName": queue["name"]}));
    assert_eq!(waiting["comparison_operator"], "GreaterThanThreshold");
}

/// freshness's SnapshotQuotaUsedPercent per quota: an alarm at 80% that keeps
/// its state between runs, and a widget of used against max.
fn check_snapshot_quota_alarms(resources: &[&Value]) {
    let topic = at(resources, "aws_sns_topic.alerts")["arn"].clone();
    let dashboard: Value = serde_json::from_str(
        at(resources, "aws_cloudwatch_dashboard.lifeboat")["dashboard_body"]
            .as_str()
            .expect("a dashboard body"),
    )
    .expect("dashboard JSON");
    for quota in ["ManualSnapshots", "ManualClusterSnapshots"] {
        let alarm = of_type(resources, "aws_cloudwatch_metric_alarm")
            .into_iter()
            .map(|a| &a["values"])
            .find(|a| {
                a["metric_name"] == "SnapshotQuotaUsedPercent"
                    && a["dimensions"] == json!({"Quota": quota})
            })
            .unwrap_or_else(|| panic!("an alarm on the {quota} quota"));
        assert_eq!(alarm["namespace"], "Lifeboat", "{quota}");
        assert_eq!(alarm["statistic"], "Maximum", "{quota}");
        assert_eq!(alarm["threshold"], 80.0, "{quota}");
        assert_eq!(
            alarm["comparison_operator"], "GreaterThanOrEqualToThreshold",
            "{quota}"
        );
        assert_eq!(alarm["treat_missing_data"], "ignore", "{quota}");
        assert_eq!(alarm["alarm_actions"], json!([topic]), "{quota}");
        let shows = |widget: &Value, metric: &str| {
            widget["properties"]["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m[0] == "Lifeboat" && m[1] == metric && m[2] == "Quota" && m[3] == quota)
        };
        assert!(
            dashboard["widgets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|w| shows(w, "SnapshotQuotaUsed") && shows(w, "SnapshotQuotaMax")),
            "a widget of {quota} used and max: {dashboard}"
        );
    }
}

/// pg-dump in a VPC reaches every API it calls through the endpoints: S3's
/// gateway in the route tables and an egress rule to its prefix list; Secrets
/// Manager, SNS and CloudWatch with private DNS in pg-dump's subnets, behind a
/// group that admits HTTPS from pg-dump only; and no open HTTPS rule.
fn check_pg_dump_endpoints(resources: &[&Value]) {
    let pg_dump_sg = at(resources, "aws_security_group.pg_dump[0]")["id"].clone();
    let endpoints_sg = at(resources, "aws_security_group.pg_dump_endpoints[0]")["id"].clone();
    let function = at(
        resources,
        "module.function[\"pg-dump\"].aws_lambda_function.function",
    );
    let subnets = &function["vpc_config"][0]["subnet_ids"];

    let endpoints = of_type(resources, "aws_vpc_endpoint");
    let s3 = at(resources, "aws_vpc_endpoint.pg_dump_s3[0]");
    assert_eq!(s3["service_name"], "com.amazonaws.us-east-1.s3");
    assert_eq!(s3["vpc_endpoint_type"], "Gateway");
    assert!(!strings(&s3["route_table_ids"]).is_empty(), "{s3}");
    let mut interfaces: Vec<String> = Vec::new();
    for endpoint in &endpoints {
        let values = &endpoint["values"];
        if values["vpc_endpoint_type"] != "Interface" {
            continue;
        }
        interfaces.push(values["service_name"].as_str().unwrap_or("").to_owned());
        assert_eq!(values["private_dns_enabled"], true, "{values}");
        assert_eq!(values["subnet_ids"], *subnets, "{values}");
        assert_eq!(
            values["security_group_ids"],
            json!([endpoints_sg]),
            "{values}"
        );
    }
    interfaces.sort();
    assert_eq!(
        interfaces,
        [
            "ecr.api",
            "ecr.dkr",
            "ecs",
            "logs",
            "monitoring",
            "secretsmanager",
            "sns"
        ]
        .map(|s| format!("com.amazonaws.us-east-1.{s}")),
        "an interface endpoint for each API pg-dump and its task call but S3"
    );

    let egress: Vec<&Value> = of_type(resources, "aws_vpc_security_group_egress_rule")
        .into_iter()
        .map(|r| &r["values"])
        .filter(|r| r["security_group_id"] == pg_dump_sg)
        .collect();
    let https =
        |r: &&&Value| r["from_port"] == 443 && r["to_port"] == 443 && r["ip_protocol"] == "tcp";
    assert!(
        egress.iter().filter(https).any(
            |r| r["prefix_list_id"] == s3["prefix_list_id"] && s3["prefix_list_id"].is_string()
        ),
        "HTTPS to S3's prefix list: {egress:#?}"
    );
    assert!(
        egress
            .iter()
            .filter(https)
            .any(|r| r["referenced_security_group_id"] == endpoints_sg),
        "HTTPS to the endpoints' group: {egress:#?}"
    );
    assert!(
        egress.iter().all(|r| r["cidr_ipv4"] != "0.0.0.0/0"),
        "with endpoints, no HTTPS to anywhere: {egress:#?}"
    );
    let ingress: Vec<&Value> = of_type(resources, "aws_vpc_security_group_ingress_rule")
        .into_iter()
        .map(|r| &r["values"])
        .filter(|r| r["security_group_id"] == endpoints_sg)
        .collect();
    assert!(
        ingress.len() == 1
            && ingress[0]["from_port"] == 443
            && ingress[0]["referenced_security_group_id"] == pg_dump_sg,
        "the endpoints admit HTTPS from pg-dump only: {ingress:#?}"
    );
}

/// pg-dump's task: a Fargate task definition of x86_64 that refers to its
/// image by digest in the immutable, scanned repository, with its two roles;
/// the function told where to start it; the function's role may start only
/// it, in its cluster, and pass only its roles, to ECS tasks alone; the
/// task's role has pg-dump's dump grants and no ECS or IAM ones.
fn check_pg_dump_task(resources: &[&Value]) {
    let repository = at(resources, "aws_ecr_repository.pg_dump[0]");
    assert_eq!(repository["image_tag_mutability"], "IMMUTABLE");
    assert_eq!(
        repository["image_scanning_configuration"][0]["scan_on_push"],
        true
    );
    let definition = at(resources, "aws_ecs_task_definition.pg_dump[0]");
    assert_eq!(definition["requires_compatibilities"], json!(["FARGATE"]));
    assert_eq!(definition["network_mode"], "awsvpc");
    assert_eq!(
        definition["runtime_platform"][0]["cpu_architecture"],
        "X86_64"
    );
    let task_role = at(resources, "aws_iam_role.pg_dump_task[0]");
    let execution_role = at(resources, "aws_iam_role.pg_dump_task_execution[0]");
    assert_eq!(definition["task_role_arn"], task_role["arn"]);
    assert_eq!(definition["execution_role_arn"], execution_role["arn"]);
    assert_ne!(task_role["arn"], execution_role["arn"]);
    let containers: Value = serde_json::from_str(
        definition["container_definitions"]
            .as_str()
            .expect("container definitions"),
    )
    .expect("JSON");
    let container = &containers[0];
    assert_eq!(
        container["image"],
        json!(format!(
            "{}@{TASK_IMAGE_DIGEST}",
            repository["repository_url"].as_str().expect("url")
        )),
        "the image by digest"
    );
    assert_eq!(container["readonlyRootFilesystem"], true);
    assert_eq!(
        container["mountPoints"][0]["containerPath"], "/tmp",
        "the ephemeral storage, writable: {container}"
    );
    let environment: Vec<&str> = container["environment"]
        .as_array()
        .expect("environment")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(environment.contains(&"LIFEBOAT_BUCKET"), "{environment:?}");
    assert!(
        !environment.iter().any(|e| e.starts_with("LIFEBOAT_TASK_")),
        "the task starts no task: {environment:?}"
    );

    let function = at(
        resources,
        "module.function[\"pg-dump\"].aws_lambda_function.function",
    );
    let variables = &function["environment"][0]["variables"];
    assert_eq!(variables["LIFEBOAT_TASK_DEFINITION"], definition["arn"]);
    let cluster = at(resources, "aws_ecs_cluster.pg_dump[0]");
    assert_eq!(variables["LIFEBOAT_TASK_CLUSTER"], cluster["arn"]);
    assert_eq!(
        variables["LIFEBOAT_TASK_SECURITY_GROUPS"],
        at(resources, "aws_security_group.pg_dump[0]")["id"]
    );

    let statements = |address: &str| -> Vec<Value> {
        let text = at(resources, address)["policy"].as_str().expect("a policy");
        let policy: Value = serde_json::from_str(text).expect("policy JSON");
        policy["Statement"].as_array().cloned().unwrap_or_default()
    };
    let function_policy = statements("module.function[\"pg-dump\"].aws_iam_role_policy.function");
    let by_sid = |sid: &str| {
        function_policy
            .iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap_or_else(|| panic!("no {sid} in pg-dump's policy"))
    };
    let run = by_sid("StartDumpTask");
    assert_eq!(run["Action"], "ecs:RunTask");
    assert_eq!(
        run["Resource"], definition["arn"],
        "this task definition alone"
    );
    assert_eq!(
        by_sid("DescribeDumpTasks")["Resource"],
        json!(format!(
            "arn:aws:ecs:us-east-1:123456789012:task/{}/*",
            cluster["name"].as_str().expect("cluster name")
        ))
    );
    assert_eq!(run["Condition"]["ArnEquals"]["ecs:cluster"], cluster["arn"]);
    let pass = by_sid("PassDumpTaskRoles");
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    let mut passed = strings(&pass["Resource"]);
    passed.sort();
    let mut roles = vec![
        task_role["arn"].as_str().unwrap_or_default().to_owned(),
        execution_role["arn"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ];
    roles.sort();
    assert_eq!(passed, roles);
    for sid in ["ListDumpTasks", "DescribeDumpTasks"] {
        assert_eq!(
            by_sid(sid)["Condition"]["ArnEquals"]["ecs:cluster"],
            cluster["arn"]
        );
    }
    // The task's role: the function's grants but the ones that start tasks.
    let task_policy = statements("aws_iam_role_policy.pg_dump_task[0]");
    let actions = |list: &[Value]| -> Vec<String> {
        let mut all: Vec<String> = list.iter().flat_map(|s| strings(&s["Action"])).collect();
        all.sort();
        all.dedup();
        all
    };
    let dispatch = [
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:RunTask",
        "iam:PassRole",
    ];
    let mut expected: Vec<String> = actions(&function_policy)
        .into_iter()
        .filter(|a| !dispatch.contains(&a.as_str()))
        .collect();
    expected.sort();
    assert_eq!(actions(&task_policy), expected);
    assert!(
        expected.contains(&"s3:PutObject".to_owned()),
        "{expected:?}"
    );
    // The records that steer a database's runners expire with the bucket's lifecycle.
    let lifecycle = at(resources, "aws_s3_bucket_lifecycle_configuration.dumps");
    for record in ["cut", "task", "live"] {
        let id = format!("pg-dump-{record}-records");
        let rule = lifecycle["rule"]
            .as_array()
            .and_then(|rules| rules.iter().find(|r| r["id"] == id.as_str()))
            .unwrap_or_else(|| panic!("no lifecycle rule {id}: {lifecycle}"));
        assert_eq!(rule["filter"][0]["tag"][0]["key"], "lifeboat:record");
        assert_eq!(rule["filter"][0]["tag"][0]["value"], record);
        assert!(
            rule["expiration"][0]["days"]
                .as_u64()
                .is_some_and(|d| d >= 31),
            "{rule}"
        );
    }
}

/// pg-dump's task's stop rule: its pattern, as Terraform rendered it with the
/// applied ARNs, run by a real implementation of EventBridge's pattern
/// language over sample events of every kind of stop
/// (`tests/ecs-events/task-stops.json`); its message, rendered from its
/// input transformer for one of them; and the topic's and key's grants to
/// EventBridge for this rule.
fn check_task_stop_rule(resources: &[&Value]) {
    let rule = at(
        resources,
        "aws_cloudwatch_event_rule.pg_dump_task_stopped[0]",
    );
    let pattern: Value =
        serde_json::from_str(rule["event_pattern"].as_str().expect("a pattern")).expect("JSON");
    let cluster = at(resources, "aws_ecs_cluster.pg_dump[0]")["arn"]
        .as_str()
        .expect("cluster arn");
    let definition = at(resources, "aws_ecs_task_definition.pg_dump[0]")["arn"]
        .as_str()
        .expect("task definition arn");
    let samples: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/ecs-events/task-stops.json"))
            .expect("tests/ecs-events/task-stops.json"),
    )
    .expect("JSON");
    let base = serde_json::to_string(&samples["base"])
        .expect("JSON")
        .replace("@CLUSTER@", cluster)
        .replace("@TASK_DEFINITION@", definition);
    let cases = samples["cases"].as_array().expect("cases");
    let events: Vec<Value> = cases
        .iter()
        .map(|case| {
            let mut event: Value = serde_json::from_str(&base).expect("JSON");
            for (field, value) in case["detail"].as_object().expect("detail") {
                event["detail"][field] = value.clone();
            }
            event
        })
        .collect();
    let matched = event_pattern_matches(&pattern, &events);
    let wrong: Vec<String> = cases
        .iter()
        .zip(&matched)
        .filter(|(case, matched)| case["alert"].as_bool() != Some(**matched))
        .map(|(case, matched)| format!("{} (matched: {matched})", case["name"]))
        .collect();
    assert!(
        wrong.is_empty(),
        "the stop rule is wrong for {wrong:?}: {pattern}"
    );
    assert!(matched.iter().filter(|m| **m).count() >= 7, "{matched:?}");

    let target = at(
        resources,
        "aws_cloudwatch_event_target.pg_dump_task_stopped[0]",
    );
    let topic = at(resources, "aws_sns_topic.alerts")["arn"].clone();
    assert_eq!(target["arn"], topic);
    assert_eq!(target["rule"], rule["name"]);
    let transformer = &target["input_transformer"][0];
    let out_of_memory = cases
        .iter()
        .position(|c| c["name"] == "out of memory")
        .expect("the out-of-memory case");
    let paths = transformer["input_paths"].as_object().expect("input paths");
    let template = transformer["input_template"].as_str().expect("a template");
    let message = transform(paths, template, &events[out_of_memory]);
    assert_eq!(
        message["task"],
        json!("lifeboat/nightly/orders/20261120T0200Z/6d1f0c2a")
    );
    assert_eq!(message["stop_code"], json!("EssentialContainerExited"));
    assert_eq!(message["exit_code"], json!(137));
    assert_eq!(
        message["container_reason"],
        json!("OutOfMemoryError: Container killed due to memory usage")
    );
    assert_eq!(message["log_group"], json!("/ecs/lifeboat-pg-dump"));
    // A stop reason with quotes, and a stop with no exit status: still one message.
    let mut quoted = events[out_of_memory].clone();
    quoted["detail"]["stoppedReason"] = json!("CannotPullContainerError: \"sha256:…\": not found");
    quoted["detail"]["containers"] = json!([{"name": "pg-dump", "lastStatus": "STOPPED"}]);
    let message = transform(paths, template, &quoted);
    assert_eq!(
        message["stopped_reason"],
        json!("CannotPullContainerError: \"sha256:…\": not found")
    );
    assert_eq!(message["exit_code"], Value::Null);

    let statement = |address: &str, sid: &str| -> Value {
        let text = at(resources, address)["policy"].as_str().expect("a policy");
        let policy: Value = serde_json::from_str(text).expect("policy JSON");
        policy["Statement"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["Sid"] == sid).cloned())
            .unwrap_or_else(|| panic!("no {sid} in {address}"))
    };
    let publish = statement("aws_sns_topic_policy.alerts", "TaskStopRulePublishes");
    assert_eq!(publish["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(publish["Action"], "sns:Publish");
    assert_eq!(
        publish["Condition"]["ArnEquals"]["aws:SourceArn"],
        rule["arn"]
    );
    let key = statement("aws_kms_key.alerts", "TaskStopRulePublishes");
    assert_eq!(key["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        key["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );
}

/// Whether `pattern` matches each of `events`, by `scripts/event_pattern.py`.
fn event_pattern_matches(pattern: &Value, events: &[Value]) -> Vec<bool> {
    use std::io::Write;
    let mut child = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("scripts/event_pattern.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(".venv/bin/python (make setup)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            json!({"pattern": pattern, "events": events})
                .to_string()
                .as_bytes(),
        )
        .expect("write");
    let out = child.wait_with_output().expect("event_pattern.py");
    assert!(
        out.status.success(),
        "scripts/event_pattern.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a list of booleans")
}

/// An input transformer's message for `event` from a JSON object template:
/// each `<name>` replaced by the value at its path (`$.a.b[0].c`) as JSON,
/// null where the event has none, as EventBridge fills an object template.
fn transform(paths: &serde_json::Map<String, Value>, template: &str, event: &Value) -> Value {
    let mut message = template.to_owned();
    for (name, path) in paths {
        let mut value = event;
        for step in path
            .as_str()
            .expect("a path")
            .trim_start_matches("$.")
            .split('.')
        {
            let (field, index) = match step.split_once('[') {
                Some((field, rest)) => (field, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (step, None),
            };
            value = &value[field];
            if let Some(index) = index {
                value = &value[index];
            }
        }
        message = message.replace(&format!("<{name}>"), &value.to_string());
    }
    assert!(
        !message.contains('<'),
        "every placeholder has a path: {message}"
    );
    serde_json::from_str(&message).expect("the template is a JSON object")
}

/// restore-drill's RDS drills restore into the subnet group and the closed
/// security group Terraform made for them (the example names neither), and
/// the dashboard shows RestoreSeconds.
fn check_drills(resources: &[&Value]) {
    let group = at(resources, "aws_db_subnet_group.drills[0]");
    let sg = at(resources, "aws_security_group.drills[0]");
    assert_eq!(group["name"], "lifeboat-drills");
    assert_eq!(strings(&group["subnet_ids"]).len(), 2, "{group}");
    assert_eq!(
        sg["ingress"],
        json!([]),
        "nothing reaches a drill's database"
    );
    assert_eq!(
        sg["egress"],
        json!([]),
        "a drill's database reaches nothing"
    );
    let drills: Vec<Value> = of_type(resources, "aws_scheduler_schedule")
        .into_iter()
        .filter(|r| function_of(r) == "restore-drill")
        .map(|r| {
            let input = r["values"]["target"][0]["input"].as_str().expect("input");
            serde_json::from_str(&input.replace(SCHEDULED_TIME, "2026-12-01T04:00:00Z"))
                .expect("JSON")
        })
        .collect();
    assert_eq!(drills.len(), 2, "the monthly drill and its hourly progress");
    for payload in &drills {
        assert_eq!(payload["rds"]["subnet_group"], group["name"], "{payload}");
        assert_eq!(
            payload["rds"]["security_groups"],
            json!([sg["id"]]),
            "{payload}"
        );
    }
    let dashboard = at(resources, "aws_cloudwatch_dashboard.lifeboat")["dashboard_body"]
        .as_str()
        .expect("a dashboard body")
        .to_owned();
    assert!(
        dashboard.contains("MetricName=\\\"RestoreSeconds\\\""),
        "a RestoreSeconds row: {dashboard}"
    );
    assert!(dashboard.contains("UnprovenResources"), "{dashboard}");
}

/// The secret a drill's query reads in [`plans_a_drill_query`].
const QUERY_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:lifeboat/orders-AbCdEf";

/// The example with one more restore-drill schedule, whose RDS drill runs a
/// query on the restored database: `terraform show -json` of its plan.
fn plans_a_drill_query(tf: &Terraform, dir: &Path, var_files: &[String]) -> Value {
    let with_query = dir.join("query.tfvars.json");
    let schedules = json!({"schedules": {"drill-query": {
        "function": "restore-drill",
        "expression": "cron(0 4 1 * ? *)",
        "payload": {
            "plan": "orders-drill",
            "rto_minutes": 120,
            "rds": {
                "instances": {"ids": ["orders"]},
                "backup_plan": "nightly",
                "instance_class": "db.t4g.medium",
                "query": {"secret_arn": QUERY_SECRET, "dbname": "orders", "sql": "SELECT count(*) FROM orders", "at_least": 1000}
            }
        }
    }}});
    std::fs::write(&with_query, schedules.to_string()).expect("write query.tfvars.json");
    let mut files = var_files.to_vec();
    files.push(format!("-var-file={}", with_query.display()));
    tf.run_with(&["plan", "-input=false", "-out=query.tfplan"], &files, &[0]);
    let (_, shown) = tf.run(&["show", "-json", "query.tfplan"], &[0]);
    serde_json::from_str(&shown).expect("terraform show -json")
}

/// With rds.query, restore-drill runs in the drills' subnets with a group
/// of its own that reaches the drills' group on the database port (the
/// only way in to it), reads that query's secret and no other, and its
/// schedule's payload carries the query as the function takes it.
fn check_drill_query(plan: &Value) {
    let resources = resources(&plan["planned_values"]["root_module"]);
    let drills = at(&resources, "aws_security_group.drills[0]");
    let function = at(
        &resources,
        "module.function[\"restore-drill\"].aws_lambda_function.function",
    );
    let subnets = strings(&at(&resources, "aws_db_subnet_group.drills[0]")["subnet_ids"]);
    assert_eq!(subnets.len(), 2);
    assert_eq!(
        strings(&function["vpc_config"][0]["subnet_ids"]),
        subnets,
        "restore-drill runs where it restores: {function}"
    );
    at(&resources, "aws_security_group.restore_drill[0]");
    let out = at(
        &resources,
        "aws_vpc_security_group_egress_rule.restore_drill_database[0]",
    );
    assert_eq!(out["from_port"], 5432);
    assert_eq!(out["to_port"], 5432);
    assert_eq!(
        out["referenced_security_group_id"], drills["id"],
        "to the drills' databases only: {out}"
    );
    let into = at(
        &resources,
        "aws_vpc_security_group_ingress_rule.drills_from_restore_drill[0]",
    );
    assert_eq!(into["security_group_id"], drills["id"]);
    assert_eq!(into["from_port"], 5432);
    let https = at(
        &resources,
        "aws_vpc_security_group_egress_rule.restore_drill_https[\"0.0.0.0/0\"]",
    );
    assert_eq!(https["from_port"], 443);

    let policy = at(
        &resources,
        "module.function[\"restore-drill\"].aws_iam_role_policy.function",
    )["policy"]
        .as_str()
        .expect("restore-drill's policy, known at plan");
    let policy: Value = serde_json::from_str(policy).expect("policy JSON");
    let violations = policy_violations(&policy);
    assert!(violations.is_empty(), "{violations:#?}");
    let reads: Vec<&Value> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| strings(&s["Action"]).contains(&"secretsmanager:GetSecretValue".to_owned()))
        .collect();
    assert_eq!(reads.len(), 1, "{policy}");
    let mut granted = strings(&reads[0]["Resource"]);
    granted.sort();
    assert_eq!(
        granted,
        [QUERY_SECRET.to_owned(), format!("{QUERY_SECRET}-??????")],
        "that secret (by its full ARN or its name's ARN) and no other"
    );

    let schedule = of_type(&resources, "aws_scheduler_schedule")
        .into_iter()
        .find(|r| {
            r["values"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("drill-query"))
        })
        .expect("the drill-query schedule");
    let input = schedule["values"]["target"][0]["input"]
        .as_str()
        .expect("input");
    check_schedule_input("restore-drill", input).expect("a payload restore-drill takes");
    let payload: Value =
        serde_json::from_str(&input.replace(SCHEDULED_TIME, "2026-12-01T04:00:00Z")).expect("JSON");
    assert_eq!(
        payload["rds"]["query"],
        json!({"secret_arn": QUERY_SECRET, "dbname": "orders", "sql": "SELECT count(*) FROM orders", "at_least": 1000}),
        "the query as given, without the fields left out: {payload}"
    );
    assert_eq!(payload["rds"]["security_groups"], json!([drills["id"]]));
}

/// Payloads as the scheduler sends them: the placeholder filled in with a slot.
fn check_schedule_input(function: &str, input: &str) -> Result<(), String> {
    if !input.contains(SCHEDULED_TIME) {
        return Err(format!(
            "the input does not carry {SCHEDULED_TIME}: {input}"
        ));
    }
    let now = chrono::Utc::now();
    let slot = now.format("%Y-%m-%dT%H:%M:00Z").to_string();
    let payload: Value = serde_json::from_str(&input.replace(SCHEDULED_TIME, &slot))
        .map_err(|e| format!("not JSON once filled in: {e}: {input}"))?;
    if payload["scheduled_time"] != json!(slot) {
        return Err(format!("scheduled_time is not the slot: {payload}"));
    }
    let parsed = match function {
        "rds-snapshot" => Request::<RdsSnapshotFields>::parse(payload, now).map(drop),
        "ebs-snapshot" => Request::<EbsSnapshotFields>::parse(payload, now).map(drop),
        "ami-backup" => Request::<AmiBackupFields>::parse(payload, now).map(drop),
        "pg-dump" => Request::<PgDumpFields>::parse(payload, now).map(drop),
        "prune" => Request::<PruneFields>::parse(payload, now).map(drop),
        "freshness" => Request::<FreshnessFields>::parse(payload, now).map(drop),
        "restore-drill" => Request::<RestoreDrillFields>::parse(payload, now).map(drop),
        other => return Err(format!("a schedule of an unknown function {other}")),
    };
    parsed.map_err(|e| format!("{function} refuses its input: {e:?}: {input}"))
}

#[test]
fn schedule_inputs_are_checked_by_their_function() {
    let rds = r#"{"plan":"nightly","scheduled_time":"<aws.scheduler.scheduled-time>","select":{"tags":{"backup":"nightly"}}}"#;
    assert_eq!(check_schedule_input("rds-snapshot", rds), Ok(()));
    // A field of another function, a null Terraform left in, no placeholder, a bad plan.
    for (function, input) in [
        ("prune", rds),
        (
            "ami-backup",
            r#"{"plan":"weekly","scheduled_time":"<aws.scheduler.scheduled-time>","select":{"ids":["i-1"]},"reboot":null}"#,
        ),
        (
            "rds-snapshot",
            r#"{"plan":"nightly","select":{"tags":{"backup":"nightly"}}}"#,
        ),
        (
            "rds-snapshot",
            r#"{"plan":"Nightly","scheduled_time":"<aws.scheduler.scheduled-time>","select":{"ids":["a"]}}"#,
        ),
    ] {
        assert!(
            check_schedule_input(function, input).is_err(),
            "{function} must refuse {input}"
        );
    }
}

/// The actions whose grant deletes a backup: each must carry Lifeboat's tag condition.
const BACKUP_DELETIONS: [&str; 4] = [
    "rds:DeleteDBSnapshot",
    "rds:DeleteDBClusterSnapshot",
    "ec2:DeleteSnapshot",
    "ec2:DeregisterImage",
];

/// Deletions that are allowed on "*" without a tag condition, each for its
/// reason. `ec2:DeleteNetworkInterface`: Lambda manages a VPC function's
/// network interfaces with the execution role and checks the role for it on
/// "*" (AWS's managed AWSLambdaVPCAccessExecutionRole grants exactly that);
/// network interfaces are never backups.
const UNTAGGED_DELETIONS_ALLOWED: [&str; 1] = ["ec2:DeleteNetworkInterface"];

/// Condition keys that hold a deletion to the resource's `managed-by` tag.
const TAG_CONDITION_KEYS: [&str; 5] = [
    "aws:resourcetag/managed-by",
    "ec2:resourcetag/managed-by",
    "rds:snapshot-tag/managed-by",
    "rds:cluster-snapshot-tag/managed-by",
    "s3:existingobjecttag/managed-by",
];

/// What is wrong with an identity policy, one line per fault: an Allow of `*`
/// or `service:*` (or NotAction), a deletion on `*` without a tag condition,
/// and a backup deletion anywhere without one.
fn policy_violations(policy: &Value) -> Vec<String> {
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => return vec!["no Statement".to_owned()],
    };
    let mut violations = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let sid = statement["Sid"].as_str().unwrap_or("").to_owned();
        let at = format!("statement {i} {sid}");
        if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
            violations.push(format!("{at}: Allow with NotAction/NotResource"));
        }
        let actions = strings(&statement["Action"]);
        let resources = strings(&statement["Resource"]);
        let tagged = has_tag_condition(&statement["Condition"]);
        for action in &actions {
            let name = action.split_once(':').map_or(action.as_str(), |(_, n)| n);
            if action == "*" || name == "*" {
                violations.push(format!("{at}: grants every action: {action}"));
                continue;
            }
            // A name, or a pattern that matches some Delete*/Deregister* action.
            let deletes = ["Delete", "Deregister"]
                .iter()
                .any(|d| name.starts_with(d) || glob(name, &format!("{d}X")));
            let allowed = UNTAGGED_DELETIONS_ALLOWED.contains(&action.as_str());
            if deletes && resources.iter().any(|r| r == "*") && !tagged && !allowed {
                violations.push(format!("{at}: {action} on \"*\" without a tag condition"));
            }
            let backup = BACKUP_DELETIONS
                .iter()
                .any(|d| glob(&action.to_ascii_lowercase(), &d.to_ascii_lowercase()));
            if backup && !tagged {
                violations.push(format!(
                    "{at}: {action} without the managed-by=lifeboat condition"
                ));
            }
        }
    }
    violations
}

/// Whether a Condition block holds the resource's `managed-by` tag to `lifeboat`.
fn has_tag_condition(condition: &Value) -> bool {
    let Some(operators) = condition.as_object() else {
        return false;
    };
    operators.iter().any(|(operator, keys)| {
        operator.starts_with("String")
            && !operator.contains("Not")
            && keys.as_object().is_some_and(|keys| {
                keys.iter().any(|(key, values)| {
                    TAG_CONDITION_KEYS.contains(&key.to_ascii_lowercase().as_str())
                        && strings(values) == ["lifeboat"]
                })
            })
    })
}

/// IAM's wildcard match: `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .any(|i| glob(&pattern[1..], &text[i..])),
        Some(p) => text.chars().next().is_some_and(|t| {
            (p == '?' || p == t) && glob(&pattern[p.len_utf8()..], &text[t.len_utf8()..])
        }),
    }
}

#[test]
fn the_policy_check_refuses_wildcards_and_untagged_deletions() {
    let allowed = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:DescribeSnapshots"], "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:DeleteSnapshot", "Resource": "arn:aws:ec2:us-east-1::snapshot/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "lifeboat"}}},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ]});
    assert_eq!(policy_violations(&allowed), Vec::<String>::new());
    for bad in [
        json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
        json!({"Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*"}]}),
        json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "ec2:Delete*", "Resource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "ec2:DeregisterImage", "Resource": "arn:aws:ec2:*::image/*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "rds:DeleteDBSnapshot", "Resource": "*",
               "Condition": {"StringNotEquals": {"aws:ResourceTag/managed-by": "lifeboat"}}}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "ec2:DeleteSnapshot", "Resource": "*",
               "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": ["lifeboat", "anyone"]}}}]}),
    ] {
        assert!(
            !policy_violations(&bad).is_empty(),
            "must be refused: {bad}"
        );
    }
}

/// A string or a list of strings, as IAM writes both.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every resource of a module in `show -json`'s planned values, its children's included.
fn resources(module: &Value) -> Vec<&Value> {
    let mut all: Vec<&Value> = module["resources"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    for child in module["child_modules"].as_array().into_iter().flatten() {
        all.extend(resources(child));
    }
    all
}

/// The Lifeboat function a resource of `module.function["<name>"]` belongs to.
fn function_of(resource: &Value) -> String {
    let address = resource["address"].as_str().unwrap_or_default();
    address
        .strip_prefix("module.function[\"")
        .and_then(|rest| rest.split_once('"'))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_else(|| panic!("{address} is not in a function module"))
}

/// Every policy document Terraform renders, by address, parsed: the roles'
/// policies and trust policies, and the key, topic and bucket policies.
///
/// One statement is left out: a key policy's grant of `kms:*` to the
/// account root. It is how a key hands its administration to the account's
/// IAM policies (AWS's default key policy), and its `*` resource is the key.
fn rendered_policies(resources: &[&Value]) -> Vec<(String, Value)> {
    let documents = [
        ("aws_iam_role_policy", "policy"),
        ("aws_iam_role", "assume_role_policy"),
        ("aws_kms_key", "policy"),
        ("aws_sns_topic_policy", "policy"),
        ("aws_s3_bucket_policy", "policy"),
    ];
    let mut policies = Vec::new();
    for resource in resources {
        for (kind, attribute) in documents {
            if resource["type"] != kind {
                continue;
            }
            let text = resource["values"][attribute]
                .as_str()
                .expect("a rendered policy");
            let mut policy: Value = serde_json::from_str(text).expect("policy JSON");
            if kind == "aws_kms_key" {
                let statements = policy["Statement"].as_array_mut().expect("statements");
                statements.retain(|s| {
                    !(strings(&s["Action"]) == ["kms:*"]
                        && strings(&s["Principal"]["AWS"])
                            .iter()
                            .all(|p| p.ends_with(":root")))
                });
            }
            let address = resource["address"].as_str().unwrap_or_default();
            policies.push((format!("{address} {attribute}"), policy));
        }
    }
    policies
}

/// Every policy Terraform rendered, as `scripts/iam_grants.py` reads them
/// (see docs/terraform.md): each function's role policies, by function, and
/// every policy document with its kind, for the lint. The partition, region
/// and account come from the alert topic's ARN.
fn write_rendered_policies(resources: &[&Value]) {
    let parse = |text: &Value| -> Value {
        serde_json::from_str(text.as_str().expect("a rendered policy")).expect("policy JSON")
    };
    let topic = resources
        .iter()
        .find(|r| r["type"] == "aws_sns_topic")
        .and_then(|r| r["values"]["arn"].as_str())
        .expect("the alert topic's ARN");
    let arn: Vec<&str> = topic.split(':').collect();
    let mut functions = serde_json::Map::new();
    for role in resources.iter().filter(|r| {
        r["type"] == "aws_iam_role"
            && r["address"]
                .as_str()
                .is_some_and(|a| a.ends_with(".aws_iam_role.function"))
    }) {
        let name = &role["values"]["name"];
        let of_role = |kind: &'static str| {
            resources
                .iter()
                .filter(move |r| r["type"] == kind && r["values"]["role"] == *name)
        };
        // The check reads inline policies only: a managed policy would be unseen.
        let attached: Vec<&Value> = of_role("aws_iam_role_policy_attachment")
            .map(|r| &r["address"])
            .collect();
        assert!(
            attached.is_empty()
                && role["values"]["managed_policy_arns"]
                    .as_array()
                    .is_none_or(Vec::is_empty),
            "{}: managed policies are attached ({attached:?}); scripts/iam_grants.py reads only inline ones",
            role["address"]
        );
        let policies: serde_json::Map<String, Value> = of_role("aws_iam_role_policy")
            .map(|r| {
                (
                    r["address"].as_str().unwrap_or_default().to_owned(),
                    parse(&r["values"]["policy"]),
                )
            })
            .collect();
        functions.insert(
            function_of(role),
            json!({ "role": name, "policies": policies }),
        );
    }
    let documents = [
        ("aws_iam_role_policy", "policy", "identity"),
        ("aws_iam_role", "assume_role_policy", "trust"),
        ("aws_kms_key", "policy", "resource"),
        ("aws_sns_topic_policy", "policy", "resource"),
        ("aws_s3_bucket_policy", "policy", "resource"),
    ];
    let mut all = Vec::new();
    for resource in resources {
        for (kind, attribute, role) in documents {
            if resource["type"] == kind {
                all.push(json!({
                    "address": format!("{} {attribute}", resource["address"].as_str().unwrap_or_default()),
                    "kind": role,
                    "policy": parse(&resource["values"][attribute]),
                }));
            }
        }
    }
    let rendered = json!({
        "partition": arn[1],
        "region": arn[3],
        "account": arn[4],
        "functions": functions,
        "documents": all,
    });
    let path = lifeboat_tests::recorded::policies_path();
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the policies' folder");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&rendered).expect("JSON"),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("rendered policies written to {}", path.display());
}

/// The module without local state, so a developer's `terraform init` there does not leak in.
fn copy_module(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create module copy");
    for entry in std::fs::read_dir(from).expect("read terraform/") {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".terraform" || name.contains(".tfstate") || name.ends_with(".tfplan") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_module(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy a module file");
        }
    }
}

/// The provider pointed at the emulator. Terraform merges an `_override.tf`
/// file into the module, so the real module stays free of test settings.
///
/// The provider asks the emulator's STS for the account: it writes a rule's
/// security group of another account as `account/sg-id`, and without the
/// account every group would look foreign. moto returns no description for a
/// rule that names a security group or a prefix list (only for CIDR rules),
/// so those rules ignore their description here, or every plan would add it.
fn provider_override(endpoint: &str) -> String {
    let services = [
        "cloudwatch",
        "ec2",
        "ecr",
        "ecs",
        "events",
        "iam",
        "kms",
        "lambda",
        "logs",
        "rds",
        "s3",
        "scheduler",
        "sns",
        "sqs",
        "sts",
    ];
    let endpoints: String = services
        .iter()
        .map(|s| format!("    {s} = \"{endpoint}\"\n"))
        .collect();
    let ignore_descriptions: String = [
        ("aws_vpc_security_group_egress_rule", "pg_dump_database_sg"),
        ("aws_vpc_security_group_egress_rule", "pg_dump_endpoints"),
        ("aws_vpc_security_group_egress_rule", "pg_dump_s3"),
        ("aws_vpc_security_group_ingress_rule", "pg_dump_endpoints"),
    ]
    .iter()
    .map(|(kind, name)| {
        format!("\nresource \"{kind}\" \"{name}\" {{\n  lifecycle {{\n    ignore_changes = [description]\n  }}\n}}\n")
    })
    .collect();
    format!(
        r#"provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {{
{endpoints}  }}
}}
{ignore_descriptions}"#
    )
}

/// Stand-in zips instead of `make build`'s (the emulator stores functions but
/// cannot run them), and the emulator's default VPC for pg-dump, with the VPC
/// endpoints in its subnets and route tables.
async fn emulator_tfvars(emulator: &Emulator, dir: &Path) -> String {
    let zips = dir.join("zips");
    std::fs::create_dir_all(zips.join("pgsql/bin")).expect("create zips dir");
    std::fs::write(zips.join("bootstrap"), "#!/bin/sh\nexit 1\n").expect("write bootstrap");
    std::fs::write(zips.join("pgsql/bin/pg_dump"), "#!/bin/sh\nexit 1\n").expect("write pg_dump");
    let function_zip = zip(&zips, "bootstrap.zip", "bootstrap");
    zip(&zips, "bare-layer.zip", "pgsql");
    // The example asks for verify-full: a layer built with a CA bundle, as
    // scripts/pg-layer.sh leaves it (the bundle inside, a copy beside the zip).
    let ca = lifeboat_tests::postgres::TestCa::new("Lifeboat test CA");
    std::fs::copy(&ca.cert, zips.join("pgsql/ca-bundle.pem")).expect("bundle into the layer");
    std::fs::copy(&ca.cert, zips.join("layer.ca-bundle.pem")).expect("bundle beside it");
    let layer_zip = zip(&zips, "layer.zip", "pgsql");

    let ec2 = aws_sdk_ec2::Client::new(&emulator.sdk_config("us-east-1").await);
    let default_vpc = aws_sdk_ec2::types::Filter::builder()
        .name("isDefault")
        .values("true")
        .build();
    let vpc = ec2
        .describe_vpcs()
        .filters(default_vpc)
        .send()
        .await
        .expect("describe VPCs")
        .vpcs()[0]
        .vpc_id()
        .expect("the default VPC's id")
        .to_owned();
    let in_vpc = aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(&vpc)
        .build();
    let subnets: Vec<String> = ec2
        .describe_subnets()
        .filters(in_vpc)
        .send()
        .await
        .expect("describe subnets")
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_owned))
        .take(2)
        .collect();
    let in_vpc = aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(&vpc)
        .build();
    let route_tables: Vec<String> = ec2
        .describe_route_tables()
        .filters(in_vpc)
        .send()
        .await
        .expect("describe route tables")
        .route_tables()
        .iter()
        .filter_map(|t| t.route_table_id().map(str::to_owned))
        .collect();

    let functions = [
        "rds-snapshot",
        "ebs-snapshot",
        "ami-backup",
        "pg-dump",
        "prune",
        "freshness",
        "restore-drill",
    ];
    let zips: serde_json::Map<String, Value> = functions
        .iter()
        .map(|f| (f.to_string(), json!(function_zip)))
        .collect();
    // HCL reads JSON's objects, lists and strings as they are.
    format!(
        "function_zips = {}\npg_dump_layer_zip = {}\nrestore_drill = {}\npg_dump = {}\n",
        Value::Object(zips),
        json!(layer_zip),
        json!({ "vpc_id": vpc, "subnet_ids": subnets }),
        json!({
            "vpc_id": vpc,
            "subnet_ids": subnets,
            "route_table_ids": route_tables,
            "vpc_endpoints": true,
            "database_cidrs": ["10.0.16.0/20"],
            "timeout_seconds": 900,
            "memory_mb": 1024,
            "task": {"image_digest": TASK_IMAGE_DIGEST, "cpu": 1024, "memory_mb": 2048},
        }),
    )
}

/// The digest the emulator's pg-dump task refers to its image by.
const TASK_IMAGE_DIGEST: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `entry` (a file or a folder in `dir`) zipped into `dir/name`, with Python's zipfile.
fn zip(dir: &Path, name: &str, entry: &str) -> String {
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-c", name, entry])
        .current_dir(dir)
        .status()
        .expect("run python3 -m zipfile");
    assert!(status.success(), "zip {entry}");
    dir.join(name).display().to_string()
}

/// `terraform` in one module folder, offline from the provider mirror.
struct Terraform {
    dir: PathBuf,
}

impl Terraform {
    fn run(&self, args: &[&str], ok: &[i32]) -> (i32, String) {
        self.run_with(args, &[], ok)
    }

    /// Runs a command; its exit code must be one of `ok`. Returns the code and stdout + stderr.
    fn run_with(&self, args: &[&str], var_files: &[String], ok: &[i32]) -> (i32, String) {
        let started = std::time::Instant::now();
        let output = Command::new(terraform())
            .arg(format!("-chdir={}", self.dir.display()))
            .args(args)
            .args(var_files)
            .arg("-no-color")
            .env("TF_CLI_CONFIG_FILE", repo_root().join(".state/terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("run terraform: is it installed? (make setup)");
        let code = output.status.code().unwrap_or(-1);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "terraform {} -> {code} in {:.1?}",
            args[0],
            started.elapsed()
        );
        assert!(
            ok.contains(&code),
            "terraform {args:?} exited {code}:\n{text}"
        );
        (
            code,
            if args[0] == "show" {
                String::from_utf8_lossy(&output.stdout).into_owned()
            } else {
                text
            },
        )
    }
}

fn terraform() -> PathBuf {
    std::env::var_os("LIFEBOAT_TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"))
}
