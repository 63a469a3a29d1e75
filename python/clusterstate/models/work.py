"""The work placed on the cluster: instances, runners, downloads and tasks.

The reducer reads only ids, statuses, error fields and the node a download belongs to. Inference
payloads it never looks inside (shard metadata and model cards, task parameters, download
progress details, bound instances) are carried as validated JSON (``JsonObject`` / ``TaggedJson``)
so exo's full payloads round-trip unchanged without this library modelling every field of them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Tag, model_validator

from ._base import CamelCaseModel, JsonObject, TaggedJson, TaggedModel, one_of_tags, tag_discriminator
from .ids import CommandId, InstanceId, Int64, ModelId, NodeId, RunnerId, TaskId, new_task_id
from .profiling import Memory

__all__ = [
    "GENERATION_TASKS",
    "CancelTask",
    "ConnectToGroup",
    "CreateRunner",
    "DownloadCompleted",
    "DownloadFailed",
    "DownloadModel",
    "DownloadOngoing",
    "DownloadPending",
    "DownloadProgress",
    "Host",
    "ImageEdits",
    "ImageGeneration",
    "Instance",
    "LoadModel",
    "MlxJacclInstance",
    "MlxRingInstance",
    "RunnerConnected",
    "RunnerConnecting",
    "RunnerFailed",
    "RunnerIdle",
    "RunnerLoaded",
    "RunnerLoading",
    "RunnerReady",
    "RunnerRunning",
    "RunnerShutdown",
    "RunnerShuttingDown",
    "RunnerStatus",
    "RunnerWarmingUp",
    "ShardAssignments",
    "ShardMetadata",
    "Shutdown",
    "StartWarmup",
    "Task",
    "TaskStatus",
    "TextGeneration",
]

ShardMetadata = Annotated[TaggedJson, one_of_tags("PipelineShardMetadata", "CfgShardMetadata", "TensorShardMetadata")]
"""Which layers of which model a runner holds; opaque to the reducer (compared by value)."""

# --- instances ---


class Host(CamelCaseModel):
    ip: str
    port: int = Field(ge=0, le=65535)


class ShardAssignments(CamelCaseModel):
    model_id: ModelId
    runner_to_shard: dict[RunnerId, ShardMetadata]
    node_to_runner: dict[NodeId, RunnerId]

    @model_validator(mode="after")
    def _runners_have_shards(self) -> ShardAssignments:
        missing = set(self.node_to_runner.values()) - set(self.runner_to_shard)
        if missing:
            raise ValueError(f"runners assigned to nodes without a shard: {sorted(missing)}")
        return self


class MlxRingInstance(TaggedModel):
    instance_id: InstanceId
    shard_assignments: ShardAssignments
    hosts_by_node: dict[NodeId, list[Host]]
    ephemeral_port: Int64


class MlxJacclInstance(TaggedModel):
    instance_id: InstanceId
    shard_assignments: ShardAssignments
    jaccl_devices: list[list[str | None]]
    jaccl_coordinators: dict[NodeId, str]


Instance = Annotated[
    Annotated[MlxRingInstance, Tag("MlxRingInstance")] | Annotated[MlxJacclInstance, Tag("MlxJacclInstance")],
    tag_discriminator(),
]

# --- runners ---


class RunnerIdle(TaggedModel):
    pass


class RunnerConnecting(TaggedModel):
    pass


class RunnerConnected(TaggedModel):
    pass


class RunnerLoading(TaggedModel):
    pass


class RunnerLoaded(TaggedModel):
    pass


class RunnerWarmingUp(TaggedModel):
    pass


class RunnerReady(TaggedModel):
    pass


class RunnerRunning(TaggedModel):
    pass


class RunnerShuttingDown(TaggedModel):
    pass


class RunnerShutdown(TaggedModel):
    pass


class RunnerFailed(TaggedModel):
    error_message: str | None = None


RunnerStatus = Annotated[
    Annotated[RunnerIdle, Tag("RunnerIdle")]
    | Annotated[RunnerConnecting, Tag("RunnerConnecting")]
    | Annotated[RunnerConnected, Tag("RunnerConnected")]
    | Annotated[RunnerLoading, Tag("RunnerLoading")]
    | Annotated[RunnerLoaded, Tag("RunnerLoaded")]
    | Annotated[RunnerWarmingUp, Tag("RunnerWarmingUp")]
    | Annotated[RunnerReady, Tag("RunnerReady")]
    | Annotated[RunnerRunning, Tag("RunnerRunning")]
    | Annotated[RunnerShuttingDown, Tag("RunnerShuttingDown")]
    | Annotated[RunnerShutdown, Tag("RunnerShutdown")]
    | Annotated[RunnerFailed, Tag("RunnerFailed")],
    tag_discriminator(),
]

# --- downloads ---


class DownloadPending(TaggedModel):
    node_id: NodeId
    shard_metadata: ShardMetadata


class DownloadCompleted(TaggedModel):
    node_id: NodeId
    shard_metadata: ShardMetadata
    total_bytes: Memory


class DownloadFailed(TaggedModel):
    node_id: NodeId
    shard_metadata: ShardMetadata
    error_message: str


class DownloadOngoing(TaggedModel):
    node_id: NodeId
    shard_metadata: ShardMetadata
    download_progress: JsonObject
    """exo's ``DownloadProgressData`` (bytes, files, speed, eta), carried as JSON."""


DownloadProgress = Annotated[
    Annotated[DownloadPending, Tag("DownloadPending")]
    | Annotated[DownloadCompleted, Tag("DownloadCompleted")]
    | Annotated[DownloadFailed, Tag("DownloadFailed")]
    | Annotated[DownloadOngoing, Tag("DownloadOngoing")],
    tag_discriminator(),
]

# --- tasks ---

TaskStatus = Literal["Pending", "Running", "Complete", "TimedOut", "Failed", "Cancelled"]


class _BaseTask(TaggedModel):
    task_id: TaskId = Field(default_factory=new_task_id)
    task_status: TaskStatus = "Pending"
    instance_id: InstanceId


class CreateRunner(_BaseTask):
    bound_instance: JsonObject


class DownloadModel(_BaseTask):
    shard_metadata: ShardMetadata


class LoadModel(_BaseTask):
    pass


class ConnectToGroup(_BaseTask):
    pass


class StartWarmup(_BaseTask):
    pass


class Shutdown(_BaseTask):
    runner_id: RunnerId


class CancelTask(_BaseTask):
    cancelled_task_id: TaskId
    runner_id: RunnerId


class _GenerationTask(_BaseTask):
    """A master-created task serving a user request; the only kind that carries error fields."""

    command_id: CommandId
    task_params: JsonObject
    error_type: str | None = None
    error_message: str | None = None


class TextGeneration(_GenerationTask):
    pass


class ImageGeneration(_GenerationTask):
    pass


class ImageEdits(_GenerationTask):
    pass


GENERATION_TASKS = (TextGeneration, ImageGeneration, ImageEdits)

Task = Annotated[
    Annotated[CreateRunner, Tag("CreateRunner")]
    | Annotated[DownloadModel, Tag("DownloadModel")]
    | Annotated[LoadModel, Tag("LoadModel")]
    | Annotated[ConnectToGroup, Tag("ConnectToGroup")]
    | Annotated[StartWarmup, Tag("StartWarmup")]
    | Annotated[Shutdown, Tag("Shutdown")]
    | Annotated[CancelTask, Tag("CancelTask")]
    | Annotated[TextGeneration, Tag("TextGeneration")]
    | Annotated[ImageGeneration, Tag("ImageGeneration")]
    | Annotated[ImageEdits, Tag("ImageEdits")],
    tag_discriminator(),
]
