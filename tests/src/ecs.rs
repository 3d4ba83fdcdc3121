//! pg-dump's ECS task as Terraform makes it (terraform/task.tf), in the
//! emulator: a VPC, subnet and security group, a cluster and a Fargate task
//! definition; and a look at the tasks it has started.

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, KeyValuePair, NetworkMode, Task};

/// The container that runs `lifeboat` (Terraform's `pg_dump_task_container`).
pub const CONTAINER: &str = "pg-dump";

/// Where pg-dump's task runs: what the function's `LIFEBOAT_TASK_*` name.
#[derive(Debug, Clone)]
pub struct DumpTask {
    /// The cluster's ARN.
    pub cluster: String,
    /// The task definition's ARN.
    pub task_definition: String,
    /// The task's one subnet.
    pub subnet: String,
    /// The task's one security group.
    pub security_group: String,
}

impl DumpTask {
    /// Makes them, the container with `environment` (a dump's settings, as
    /// Terraform gives the task). The VPC has DNS host names, without which
    /// the emulator's RunTask fails, and the container its `memory`, ditto.
    pub async fn create(aws: &aws_config::SdkConfig, environment: &[(&str, &str)]) -> Self {
        let ec2 = aws_sdk_ec2::Client::new(aws);
        let vpc = crate::vpc(&ec2, "10.20.0.0/16").await;
        ec2.modify_vpc_attribute()
            .vpc_id(&vpc)
            .enable_dns_hostnames(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(true)
                    .build(),
            )
            .send()
            .await
            .expect("dns host names");
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.20.1.0/24")
            .send()
            .await
            .expect("subnet")
            .subnet
            .and_then(|s| s.subnet_id)
            .expect("subnet id");
        let security_group = ec2
            .create_security_group()
            .vpc_id(&vpc)
            .group_name("lifeboat-pg-dump-task")
            .description("pg-dump's task: out to its databases and AWS")
            .send()
            .await
            .expect("security group")
            .group_id
            .expect("group id");
        let ecs = aws_sdk_ecs::Client::new(aws);
        let cluster = ecs
            .create_cluster()
            .cluster_name("lifeboat")
            .send()
            .await
            .expect("cluster")
            .cluster
            .and_then(|c| c.cluster_arn)
            .expect("cluster arn");
        let environment = environment
            .iter()
            .map(|(name, value)| KeyValuePair::builder().name(*name).value(*value).build())
            .collect();
        let task_definition = ecs
            .register_task_definition()
            .family("lifeboat-pg-dump")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("1024")
            .memory("2048")
            .container_definitions(
                ContainerDefinition::builder()
                    .name(CONTAINER)
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/lifeboat@sha256:0")
                    .memory(2048)
                    .essential(true)
                    .set_environment(Some(environment))
                    .build(),
            )
            .send()
            .await
            .expect("task definition")
            .task_definition
            .and_then(|d| d.task_definition_arn)
            .expect("definition arn");
        DumpTask {
            cluster,
            task_definition,
            subnet,
            security_group,
        }
    }

    /// The function's settings for this task, as Terraform sets them.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LIFEBOAT_TASK_CLUSTER", self.cluster.clone()),
            ("LIFEBOAT_TASK_DEFINITION", self.task_definition.clone()),
            ("LIFEBOAT_TASK_CONTAINER", CONTAINER.to_owned()),
            ("LIFEBOAT_TASK_SUBNETS", self.subnet.clone()),
            ("LIFEBOAT_TASK_SECURITY_GROUPS", self.security_group.clone()),
        ]
    }

    /// The container's environment, as the task definition holds it.
    pub async fn container_environment(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Vec<(String, String)> {
        aws_sdk_ecs::Client::new(aws)
            .describe_task_definition()
            .task_definition(&self.task_definition)
            .send()
            .await
            .expect("describe task definition")
            .task_definition
            .expect("task definition")
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(CONTAINER))
            .expect("the container")
            .environment()
            .iter()
            .map(|pair| {
                (
                    pair.name().unwrap_or_default().to_owned(),
                    pair.value().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// Every task `cluster` holds, described (its command among its overrides).
pub async fn tasks(aws: &aws_config::SdkConfig, cluster: &str) -> Vec<Task> {
    let ecs = aws_sdk_ecs::Client::new(aws);
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .send()
        .await
        .expect("list tasks")
        .task_arns
        .unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("describe tasks")
        .tasks
        .unwrap_or_default()
}
