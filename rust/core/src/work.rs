//! The work placed on the cluster: instances, runners, downloads and tasks (`python/clusterstate/models/work.py`).
//!
//! The reducer reads only ids, statuses, error fields and the node a download belongs to. Inference payloads it
//! never looks inside (shard metadata, task parameters, download progress details, bound instances) are carried as
//! validated JSON ([`JsonObject`], [`TaggedJson`]) so exo's full payloads round-trip unchanged.

use indexmap::IndexMap;
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::ids::{CommandId, InstanceId, ModelId, NodeId, RunnerId, TaskId};
use crate::json::{payload, JsonObject, TagSet, TaggedJson};
use crate::profiling::{str_enum, Memory};

/// The tags of [`ShardMetadata`].
#[derive(Debug)]
pub enum ShardTags {}

impl TagSet for ShardTags {
    const TAGS: &'static [&'static str] = &["PipelineShardMetadata", "CfgShardMetadata", "TensorShardMetadata"];
}

/// Which layers of which model a runner holds; opaque to the reducer (compared by value).
pub type ShardMetadata = TaggedJson<ShardTags>;

// --- instances ---

/// A host and port of a ring instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub ip: String,
    pub port: u16,
}

/// Which runner holds which shard, and which node runs which runner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardAssignments {
    pub model_id: ModelId,
    pub runner_to_shard: IndexMap<RunnerId, ShardMetadata>,
    pub node_to_runner: IndexMap<NodeId, RunnerId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardAssignmentsInput {
    #[serde(alias = "modelId")]
    model_id: ModelId,
    #[serde(alias = "runnerToShard")]
    runner_to_shard: IndexMap<RunnerId, ShardMetadata>,
    #[serde(alias = "nodeToRunner")]
    node_to_runner: IndexMap<NodeId, RunnerId>,
}

impl<'de> Deserialize<'de> for ShardAssignments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let input = ShardAssignmentsInput::deserialize(deserializer)?;
        let mut missing: Vec<&str> = input
            .node_to_runner
            .values()
            .filter(|runner| !input.runner_to_shard.contains_key(*runner))
            .map(RunnerId::as_str)
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            return Err(de::Error::custom(format_args!(
                "runners assigned to nodes without a shard: {missing:?}"
            )));
        }
        Ok(Self {
            model_id: input.model_id,
            runner_to_shard: input.runner_to_shard,
            node_to_runner: input.node_to_runner,
        })
    }
}

/// `MlxRingInstance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlxRingInstance {
    #[serde(alias = "instanceId")]
    pub instance_id: InstanceId,
    #[serde(alias = "shardAssignments")]
    pub shard_assignments: ShardAssignments,
    #[serde(alias = "hostsByNode")]
    pub hosts_by_node: IndexMap<NodeId, Vec<Host>>,
    #[serde(alias = "ephemeralPort")]
    pub ephemeral_port: i64,
}

/// `MlxJacclInstance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlxJacclInstance {
    #[serde(alias = "instanceId")]
    pub instance_id: InstanceId,
    #[serde(alias = "shardAssignments")]
    pub shard_assignments: ShardAssignments,
    #[serde(alias = "jacclDevices")]
    pub jaccl_devices: Vec<Vec<Option<String>>>,
    #[serde(alias = "jacclCoordinators")]
    pub jaccl_coordinators: IndexMap<NodeId, String>,
}

/// A running model instance. Externally tagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Instance {
    MlxRingInstance(MlxRingInstance),
    MlxJacclInstance(MlxJacclInstance),
}

impl Instance {
    /// The instance's id.
    pub fn instance_id(&self) -> &InstanceId {
        match self {
            Self::MlxRingInstance(instance) => &instance.instance_id,
            Self::MlxJacclInstance(instance) => &instance.instance_id,
        }
    }
}

// --- runners ---

macro_rules! empty_structs {
    ($($name:ident),*) => {$(
        #[doc = concat!("`", stringify!($name), "`: no fields.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {}
    )*};
}

empty_structs!(
    RunnerIdle,
    RunnerConnecting,
    RunnerConnected,
    RunnerLoading,
    RunnerLoaded,
    RunnerWarmingUp,
    RunnerReady,
    RunnerRunning,
    RunnerShuttingDown,
    RunnerShutdown
);

/// `RunnerFailed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerFailed {
    #[serde(default, alias = "errorMessage")]
    pub error_message: Option<String>,
}

/// A runner's status. Externally tagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunnerStatus {
    RunnerIdle(RunnerIdle),
    RunnerConnecting(RunnerConnecting),
    RunnerConnected(RunnerConnected),
    RunnerLoading(RunnerLoading),
    RunnerLoaded(RunnerLoaded),
    RunnerWarmingUp(RunnerWarmingUp),
    RunnerReady(RunnerReady),
    RunnerRunning(RunnerRunning),
    RunnerShuttingDown(RunnerShuttingDown),
    RunnerShutdown(RunnerShutdown),
    RunnerFailed(RunnerFailed),
}

// --- downloads ---

/// `DownloadPending`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadPending {
    #[serde(alias = "nodeId")]
    pub node_id: NodeId,
    #[serde(alias = "shardMetadata")]
    pub shard_metadata: ShardMetadata,
}

/// `DownloadCompleted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadCompleted {
    #[serde(alias = "nodeId")]
    pub node_id: NodeId,
    #[serde(alias = "shardMetadata")]
    pub shard_metadata: ShardMetadata,
    #[serde(alias = "totalBytes")]
    pub total_bytes: Memory,
}

/// `DownloadFailed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadFailed {
    #[serde(alias = "nodeId")]
    pub node_id: NodeId,
    #[serde(alias = "shardMetadata")]
    pub shard_metadata: ShardMetadata,
    #[serde(alias = "errorMessage")]
    pub error_message: String,
}

/// `DownloadOngoing`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadOngoing {
    #[serde(alias = "nodeId")]
    pub node_id: NodeId,
    #[serde(alias = "shardMetadata")]
    pub shard_metadata: ShardMetadata,
    /// exo's `DownloadProgressData` (bytes, files, speed, eta), carried as JSON.
    #[serde(alias = "downloadProgress", deserialize_with = "payload::object")]
    pub download_progress: JsonObject,
}

/// A node's progress downloading one shard. Externally tagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DownloadProgress {
    DownloadPending(DownloadPending),
    DownloadCompleted(DownloadCompleted),
    DownloadFailed(DownloadFailed),
    DownloadOngoing(DownloadOngoing),
}

impl DownloadProgress {
    /// The downloading node.
    pub fn node_id(&self) -> &NodeId {
        match self {
            Self::DownloadPending(p) => &p.node_id,
            Self::DownloadCompleted(p) => &p.node_id,
            Self::DownloadFailed(p) => &p.node_id,
            Self::DownloadOngoing(p) => &p.node_id,
        }
    }

    /// The shard being downloaded.
    pub fn shard_metadata(&self) -> &ShardMetadata {
        match self {
            Self::DownloadPending(p) => &p.shard_metadata,
            Self::DownloadCompleted(p) => &p.shard_metadata,
            Self::DownloadFailed(p) => &p.shard_metadata,
            Self::DownloadOngoing(p) => &p.shard_metadata,
        }
    }
}

// --- tasks ---

str_enum! {
    /// A task's status.
    TaskStatus {
        #[default]
        Pending = "Pending",
        Running = "Running",
        Complete = "Complete",
        TimedOut = "TimedOut",
        Failed = "Failed",
        Cancelled = "Cancelled",
    }
}

/// The fields every task starts with, in the Python declaration order.
macro_rules! task_struct {
    ($(#[$doc:meta])* $name:ident { $($(#[$fattr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(default = "TaskId::new_random", alias = "taskId")]
            pub task_id: TaskId,
            #[serde(default, alias = "taskStatus")]
            pub task_status: TaskStatus,
            #[serde(alias = "instanceId")]
            pub instance_id: InstanceId,
            $($(#[$fattr])* pub $field: $ty,)*
        }
    };
}

task_struct!(
    /// `CreateRunner`.
    CreateRunner {
        #[serde(alias = "boundInstance", deserialize_with = "payload::object")]
        bound_instance: JsonObject,
    }
);
task_struct!(
    /// `DownloadModel`.
    DownloadModel {
        #[serde(alias = "shardMetadata")]
        shard_metadata: ShardMetadata,
    }
);
task_struct!(
    /// `LoadModel`.
    LoadModel {}
);
task_struct!(
    /// `ConnectToGroup`.
    ConnectToGroup {}
);
task_struct!(
    /// `StartWarmup`.
    StartWarmup {}
);
task_struct!(
    /// `Shutdown`.
    Shutdown {
        #[serde(alias = "runnerId")]
        runner_id: RunnerId,
    }
);
task_struct!(
    /// `CancelTask`.
    CancelTask {
        #[serde(alias = "cancelledTaskId")]
        cancelled_task_id: TaskId,
        #[serde(alias = "runnerId")]
        runner_id: RunnerId,
    }
);

/// A master-created task serving a user request: `TextGeneration`, `ImageGeneration` or `ImageEdits`; the only
/// kind that carries error fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationTask {
    #[serde(default = "TaskId::new_random", alias = "taskId")]
    pub task_id: TaskId,
    #[serde(default, alias = "taskStatus")]
    pub task_status: TaskStatus,
    #[serde(alias = "instanceId")]
    pub instance_id: InstanceId,
    #[serde(alias = "commandId")]
    pub command_id: CommandId,
    #[serde(alias = "taskParams", deserialize_with = "payload::object")]
    pub task_params: JsonObject,
    #[serde(default, alias = "errorType")]
    pub error_type: Option<String>,
    #[serde(default, alias = "errorMessage")]
    pub error_message: Option<String>,
}

/// A task. Externally tagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Task {
    CreateRunner(CreateRunner),
    DownloadModel(DownloadModel),
    LoadModel(LoadModel),
    ConnectToGroup(ConnectToGroup),
    StartWarmup(StartWarmup),
    Shutdown(Shutdown),
    CancelTask(CancelTask),
    TextGeneration(GenerationTask),
    ImageGeneration(GenerationTask),
    ImageEdits(GenerationTask),
}

impl Task {
    /// The task's status.
    pub fn task_status(&self) -> TaskStatus {
        match self {
            Self::CreateRunner(t) => t.task_status,
            Self::DownloadModel(t) => t.task_status,
            Self::LoadModel(t) => t.task_status,
            Self::ConnectToGroup(t) => t.task_status,
            Self::StartWarmup(t) => t.task_status,
            Self::Shutdown(t) => t.task_status,
            Self::CancelTask(t) => t.task_status,
            Self::TextGeneration(t) | Self::ImageGeneration(t) | Self::ImageEdits(t) => t.task_status,
        }
    }

    /// A mutable reference to the task's status.
    pub fn task_status_mut(&mut self) -> &mut TaskStatus {
        match self {
            Self::CreateRunner(t) => &mut t.task_status,
            Self::DownloadModel(t) => &mut t.task_status,
            Self::LoadModel(t) => &mut t.task_status,
            Self::ConnectToGroup(t) => &mut t.task_status,
            Self::StartWarmup(t) => &mut t.task_status,
            Self::Shutdown(t) => &mut t.task_status,
            Self::CancelTask(t) => &mut t.task_status,
            Self::TextGeneration(t) | Self::ImageGeneration(t) | Self::ImageEdits(t) => &mut t.task_status,
        }
    }

    /// The generation fields, for the kinds that have them.
    pub fn as_generation_mut(&mut self) -> Option<&mut GenerationTask> {
        match self {
            Self::TextGeneration(t) | Self::ImageGeneration(t) | Self::ImageEdits(t) => Some(t),
            _ => None,
        }
    }

    /// `true` for `TextGeneration`, `ImageGeneration` and `ImageEdits`.
    pub fn is_generation(&self) -> bool {
        matches!(
            self,
            Self::TextGeneration(_) | Self::ImageGeneration(_) | Self::ImageEdits(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_assignments_need_shards_for_every_runner() {
        let ok =
            r#"{"model_id":"m","runner_to_shard":{"r":{"PipelineShardMetadata":{"a":1}}},"node_to_runner":{"n":"r"}}"#;
        let value: ShardAssignments = serde_json::from_str(ok).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), ok);
        let bad = r#"{"model_id":"m","runner_to_shard":{},"node_to_runner":{"n":"r"}}"#;
        assert!(serde_json::from_str::<ShardAssignments>(bad).is_err());
        let bad_tag = r#"{"model_id":"m","runner_to_shard":{"r":{"Nope":{}}},"node_to_runner":{}}"#;
        assert!(serde_json::from_str::<ShardAssignments>(bad_tag).is_err());
    }

    #[test]
    fn tasks_default_their_id_and_status() {
        let task: Task = serde_json::from_str(r#"{"LoadModel":{"instanceId":"i"}}"#).unwrap();
        let Task::LoadModel(load) = &task else {
            panic!("{task:?}")
        };
        assert_eq!(load.task_status, TaskStatus::Pending);
        assert_eq!(load.task_id.as_str().len(), 36);
        assert!(serde_json::from_str::<Task>(r#"{"LoadModel":{"instance_id":"i","task_status":"Nope"}}"#).is_err());
        assert!(
            serde_json::from_str::<Task>(r#"{"LoadModel":{"instance_id":"i","task_status":{"Pending":null}}}"#)
                .is_err()
        );
        let text = r#"{"TextGeneration":{"task_id":"t","task_status":"Failed","instance_id":"i","command_id":"c","task_params":{"b":1.0,"a":[1e+16]},"error_type":null,"error_message":"x"}}"#;
        let task: Task = serde_json::from_str(text).unwrap();
        assert_eq!(crate::json::to_string(&task, crate::json::Case::Snake).unwrap(), text);
    }

    #[test]
    fn runner_statuses() {
        let status: RunnerStatus = serde_json::from_str(r#"{"RunnerIdle":{}}"#).unwrap();
        assert_eq!(serde_json::to_string(&status).unwrap(), r#"{"RunnerIdle":{}}"#);
        let status: RunnerStatus = serde_json::from_str(r#"{"RunnerFailed":{}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"RunnerFailed":{"error_message":null}}"#
        );
        assert!(serde_json::from_str::<RunnerStatus>(r#""RunnerIdle""#).is_err());
    }
}
