"""Foreign pydantic models with exo's shapes (exo-explore/exo, ``src/exo/shared/types/``), written for the tests.

They are not clusterstate's classes and share no base with them: their own ``CamelCaseModel`` (strict, camelCase
aliases, not frozen) and ``TaggedModel`` (a wrap-mode model serializer that writes ``{"ClassName": {...}}``), ids
that are ``str`` subclasses, a ``StrEnum`` for task statuses, exo's payload models (model cards, shard metadata,
task parameters, chunks) instead of clusterstate's opaque JSON. Two event schemas:

- exo's (this module): ``NodeGatheredInfo`` carries the producer's wall clock ``when``, the master times a node
  out with ``NodeTimedOut{node_id}``, and ``IndexedEvent`` is ``{idx, event}``;
- clusterstate's (:data:`CurrentEvent`, :class:`CurrentIndexedEvent`): no ``when``,
  ``NodeDisconnected{node_id, last_index, stale_cycles}``, and ``IndexedEvent{idx, origin, event}``.

A model's class name is its tag, so the two ``NodeGatheredInfo`` classes both have that ``__name__``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self
from uuid import uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    computed_field,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

__all__ = ["CurrentEvent", "CurrentIndexedEvent", "Event", "IndexedEvent", "State"]


class Id(str):
    """An id: a ``str`` subclass, as exo's ``Id``."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


class NodeId(Id):
    pass


class TaskId(Id):
    pass


def _new_id() -> str:
    return str(uuid4())


class CamelCaseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="forbid", strict=True)


class FrozenModel(CamelCaseModel):
    model_config = ConfigDict(frozen=True)


class TaggedModel(CamelCaseModel):
    @model_serializer(mode="wrap")
    def _tag(self, handler: SerializerFunctionWrapHandler) -> Any:
        return {type(self).__name__: handler(self)}

    @model_validator(mode="wrap")
    @classmethod
    def _untag(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        if isinstance(value, dict) and len(value) == 1 and cls.__name__ in value:
            value = value[cls.__name__]
        result: Self = handler(value)
        return result


# --- profiling ---


class Memory(CamelCaseModel):
    in_bytes: int


class MemoryUsage(CamelCaseModel):
    ram_total: Memory
    ram_available: Memory
    swap_total: Memory
    swap_available: Memory


class DiskUsage(CamelCaseModel):
    total: Memory
    available: Memory


class SystemPerformanceProfile(CamelCaseModel):
    gpu_usage: float = 0.0
    temp: float = 0.0
    sys_power: float = 0.0
    pcpu_usage: float = 0.0
    ecpu_usage: float = 0.0


class NetworkInterfaceInfo(CamelCaseModel):
    name: str
    ip_address: str
    interface_type: Literal["wifi", "ethernet", "maybe_ethernet", "thunderbolt", "unknown"] = "unknown"


class ThunderboltIdentifier(CamelCaseModel):
    rdma_interface: str
    domain_uuid: str
    link_speed: str = ""


class ThunderboltConnection(CamelCaseModel):
    source_uuid: str
    sink_uuid: str


class ThunderboltBridgeStatus(CamelCaseModel):
    enabled: bool
    exists: bool
    service_name: str | None = None


class NodeIdentity(CamelCaseModel):
    model_id: str = "Unknown"
    chip_id: str = "Unknown"
    friendly_name: str = "Unknown"
    os_version: str = "Unknown"
    os_build_version: str = "Unknown"


class NodeNetworkInfo(CamelCaseModel):
    interfaces: list[NetworkInterfaceInfo] = []


class NodeThunderboltInfo(CamelCaseModel):
    interfaces: list[ThunderboltIdentifier] = []


class NodeRdmaCtlStatus(CamelCaseModel):
    enabled: bool


class MacmonMetrics(TaggedModel):
    system_profile: SystemPerformanceProfile
    memory: MemoryUsage


class NodeNetworkInterfaces(TaggedModel):
    ifaces: list[NetworkInterfaceInfo]


class MacThunderboltIdentifiers(TaggedModel):
    idents: list[ThunderboltIdentifier]


class MacThunderboltConnections(TaggedModel):
    conns: list[ThunderboltConnection]


class RdmaCtlStatus(TaggedModel):
    enabled: bool


class ThunderboltBridgeInfo(TaggedModel):
    status: ThunderboltBridgeStatus


class NodeConfig(TaggedModel):
    pass


class MiscData(TaggedModel):
    friendly_name: str


class StaticNodeInformation(TaggedModel):
    model: str
    chip: str
    os_version: str
    os_build_version: str


class NodeDiskUsage(TaggedModel):
    disk_usage: DiskUsage


GatheredInfo = (
    MacmonMetrics
    | MemoryUsage
    | NodeNetworkInterfaces
    | MacThunderboltIdentifiers
    | MacThunderboltConnections
    | RdmaCtlStatus
    | ThunderboltBridgeInfo
    | NodeConfig
    | MiscData
    | StaticNodeInformation
    | NodeDiskUsage
)

# --- topology ---


class Multiaddr(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ip_address(self) -> str:
        return self.address.split("/")[2]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def address_type(self) -> str:
        return self.address.split("/")[1]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def port(self) -> int:
        return int(self.address.split("/tcp/")[1].split("/")[0])

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: item for key, item in value.items() if key not in ("ip_address", "address_type", "port")}
        return value


class SocketConnection(FrozenModel):
    sink_multiaddr: Multiaddr


class RDMAConnection(FrozenModel):
    source_rdma_iface: str
    sink_rdma_iface: str


class Connection(FrozenModel):
    source: NodeId
    sink: NodeId
    edge: RDMAConnection | SocketConnection


# --- instances, runners, downloads ---


class ModelCard(CamelCaseModel):
    model_id: str
    storage_size: Memory
    n_layers: int
    hidden_size: int
    supports_tensor: bool
    tasks: list[str]
    family: str = ""
    quantization: str = ""


class _Shard(TaggedModel):
    model_card: ModelCard
    device_rank: int
    world_size: int
    immediate_exception: bool = False
    should_timeout: float | None = None
    start_layer: int
    end_layer: int
    n_layers: int


class PipelineShardMetadata(_Shard):
    pass


class TensorShardMetadata(_Shard):
    pass


class CfgShardMetadata(_Shard):
    cfg_rank: int
    cfg_world_size: int = 2
    pipeline_rank: int
    pipeline_world_size: int


ShardMetadata = PipelineShardMetadata | CfgShardMetadata | TensorShardMetadata


class ShardAssignments(CamelCaseModel):
    model_id: str
    runner_to_shard: dict[str, ShardMetadata]
    node_to_runner: dict[NodeId, str]


class Host(CamelCaseModel):
    ip: str
    port: int


class MlxRingInstance(TaggedModel):
    instance_id: str
    shard_assignments: ShardAssignments
    hosts_by_node: dict[NodeId, list[Host]]
    ephemeral_port: int


class MlxJacclInstance(TaggedModel):
    instance_id: str
    shard_assignments: ShardAssignments
    jaccl_devices: list[list[str | None]]
    jaccl_coordinators: dict[NodeId, str]


Instance = MlxRingInstance | MlxJacclInstance


class BoundInstance(CamelCaseModel):
    instance: Instance
    bound_runner_id: str
    bound_node_id: NodeId


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


RunnerStatus = (
    RunnerIdle
    | RunnerConnecting
    | RunnerConnected
    | RunnerLoading
    | RunnerLoaded
    | RunnerWarmingUp
    | RunnerReady
    | RunnerRunning
    | RunnerShuttingDown
    | RunnerShutdown
    | RunnerFailed
)


class DownloadProgressData(CamelCaseModel):
    total_bytes: Memory
    downloaded_bytes: Memory
    downloaded_bytes_this_session: Memory
    completed_files: int
    total_files: int
    speed: float
    eta_ms: int
    files: dict[str, DownloadProgressData]


class _Download(TaggedModel):
    node_id: NodeId
    shard_metadata: ShardMetadata


class DownloadPending(_Download):
    pass


class DownloadCompleted(_Download):
    total_bytes: Memory


class DownloadFailed(_Download):
    error_message: str


class DownloadOngoing(_Download):
    download_progress: DownloadProgressData


DownloadProgress = DownloadPending | DownloadCompleted | DownloadFailed | DownloadOngoing

# --- tasks ---


class TaskStatus(StrEnum):
    Pending = "Pending"
    Running = "Running"
    Complete = "Complete"
    TimedOut = "TimedOut"
    Failed = "Failed"
    Cancelled = "Cancelled"


class _Task(TaggedModel):
    task_id: TaskId = Field(default_factory=lambda: TaskId(_new_id()))
    task_status: TaskStatus = TaskStatus.Pending
    instance_id: str


class CreateRunner(_Task):
    bound_instance: BoundInstance


class DownloadModel(_Task):
    shard_metadata: ShardMetadata


class LoadModel(_Task):
    pass


class ConnectToGroup(_Task):
    pass


class StartWarmup(_Task):
    pass


class Shutdown(_Task):
    runner_id: str


class CancelTask(_Task):
    cancelled_task_id: TaskId
    runner_id: str


class InputMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant", "system", "developer"]
    content: str


class TextGenerationTaskParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    input: list[InputMessage]
    max_output_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False


class ImageGenerationTaskParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt: str
    model: str
    n: int = 1
    size: str = "1024x1024"


class ImageEditsTaskParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    image_data: str = ""
    total_input_chunks: int = 0
    prompt: str
    model: str


class _GenerationTask(_Task):
    command_id: str
    error_type: str | None = None
    error_message: str | None = None


class TextGeneration(_GenerationTask):
    task_params: TextGenerationTaskParams


class ImageGeneration(_GenerationTask):
    task_params: ImageGenerationTaskParams


class ImageEdits(_GenerationTask):
    task_params: ImageEditsTaskParams


Task = (
    CreateRunner
    | DownloadModel
    | LoadModel
    | ConnectToGroup
    | StartWarmup
    | Shutdown
    | CancelTask
    | TextGeneration
    | ImageGeneration
    | ImageEdits
)

# --- chunks and traces ---


class TokenChunk(TaggedModel):
    model: str
    text: str
    token_id: int
    usage: dict[str, int] | None
    finish_reason: Literal["stop", "length", "content_filter"] | None = None
    logprob: float | None = None


class ErrorChunk(TaggedModel):
    model: str
    error_message: str
    finish_reason: Literal["error"] = "error"


class ToolCallChunk(TaggedModel):
    model: str
    tool_calls: list[dict[str, str]]
    finish_reason: Literal["tool_calls"] = "tool_calls"


class ImageChunk(TaggedModel):
    model: str
    data: str
    chunk_index: int
    total_chunks: int
    image_index: int
    is_partial: bool = False


GenerationChunk = TokenChunk | ImageChunk | ToolCallChunk | ErrorChunk


class InputImageChunk(TaggedModel):
    model: str
    command_id: str
    data: str
    chunk_index: int
    total_chunks: int


class TraceEventData(FrozenModel):
    name: str
    start_us: int
    duration_us: int
    rank: int
    category: str


# --- events ---


class BaseEvent(TaggedModel):
    event_id: str = Field(default_factory=_new_id)


class TestEvent(BaseEvent):
    __test__ = False


class TaskCreated(BaseEvent):
    task_id: TaskId
    task: Task


class TaskStatusUpdated(BaseEvent):
    task_id: TaskId
    task_status: TaskStatus


class TaskFailed(BaseEvent):
    task_id: TaskId
    error_type: str
    error_message: str


class TaskDeleted(BaseEvent):
    task_id: TaskId


class TaskAcknowledged(BaseEvent):
    task_id: TaskId


class InstanceCreated(BaseEvent):
    instance: Instance


class InstanceDeleted(BaseEvent):
    instance_id: str


class RunnerStatusUpdated(BaseEvent):
    runner_id: str
    runner_status: RunnerStatus


class RunnerDeleted(BaseEvent):
    runner_id: str


class NodeTimedOut(BaseEvent):
    node_id: NodeId


class NodeGatheredInfo(BaseEvent):
    node_id: NodeId
    when: str
    info: GatheredInfo


class NodeDownloadProgress(BaseEvent):
    download_progress: DownloadProgress


class ChunkGenerated(BaseEvent):
    command_id: str
    chunk: GenerationChunk


class InputChunkReceived(BaseEvent):
    command_id: str
    chunk: InputImageChunk


class TopologyEdgeCreated(BaseEvent):
    conn: Connection


class TopologyEdgeDeleted(BaseEvent):
    conn: Connection


class TracesCollected(BaseEvent):
    task_id: TaskId
    rank: int
    traces: list[TraceEventData]


class TracesMerged(BaseEvent):
    task_id: TaskId
    traces: list[TraceEventData]


_SharedEvent = (
    TestEvent
    | TaskCreated
    | TaskStatusUpdated
    | TaskFailed
    | TaskDeleted
    | TaskAcknowledged
    | InstanceCreated
    | InstanceDeleted
    | RunnerStatusUpdated
    | RunnerDeleted
    | NodeDownloadProgress
    | ChunkGenerated
    | InputChunkReceived
    | TopologyEdgeCreated
    | TopologyEdgeDeleted
    | TracesCollected
    | TracesMerged
)

Event = _SharedEvent | NodeTimedOut | NodeGatheredInfo


class IndexedEvent(CamelCaseModel):
    idx: int = Field(ge=0)
    event: Event


class CurrentNodeGatheredInfo(BaseEvent):
    node_id: NodeId
    info: GatheredInfo


class NodeDisconnected(BaseEvent):
    node_id: NodeId
    last_index: int | None
    stale_cycles: int


CurrentNodeGatheredInfo.__name__ = "NodeGatheredInfo"  # its tag, as the class it stands for

CurrentEvent = _SharedEvent | NodeTimedOut | NodeDisconnected | CurrentNodeGatheredInfo


class CurrentIndexedEvent(CamelCaseModel):
    idx: int = Field(ge=0)
    origin: NodeId | None = None
    event: CurrentEvent


class TopologySnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: list[NodeId] = []
    connections: dict[NodeId, dict[NodeId, list[RDMAConnection | SocketConnection]]] = {}


class State(CamelCaseModel):
    """exo's State, with clusterstate's ``last_event_index_by_node`` in place of the wall-clock ``last_seen`` and
    the topology held as its snapshot (exo holds a graph object it serialises as one)."""

    instances: dict[str, Instance] = {}
    runners: dict[str, RunnerStatus] = {}
    downloads: dict[NodeId, list[DownloadProgress]] = {}
    tasks: dict[TaskId, Task] = {}
    last_event_index_by_node: dict[NodeId, int] = {}
    topology: TopologySnapshot = TopologySnapshot()
    last_event_applied_idx: int = -1
    node_identities: dict[NodeId, NodeIdentity] = {}
    node_memory: dict[NodeId, MemoryUsage] = {}
    node_disk: dict[NodeId, DiskUsage] = {}
    node_system: dict[NodeId, SystemPerformanceProfile] = {}
    node_network: dict[NodeId, NodeNetworkInfo] = {}
    node_thunderbolt: dict[NodeId, NodeThunderboltInfo] = {}
    node_thunderbolt_bridge: dict[NodeId, ThunderboltBridgeStatus] = {}
    node_rdma_ctl: dict[NodeId, NodeRdmaCtlStatus] = {}
    thunderbolt_bridge_cycles: list[list[NodeId]] = []
