"""exo-shaped JSON payloads the reducer carries opaquely: model cards, shard metadata, download
progress, text-generation parameters and token chunks.

They are built as exo writes them (snake_case, every field present, ``null`` for unset values)
so that traces have realistic sizes and decode costs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from clusterstate.models import JsonObject, ModelId, TaggedJson

__all__ = [
    "CATALOG",
    "ModelSpec",
    "ShardKind",
    "download_progress",
    "full_shard",
    "model_spec",
    "shard_bytes",
    "shard_metadata",
    "text_generation_params",
    "token_chunk",
]

ShardKind = Literal["PipelineShardMetadata", "TensorShardMetadata"]

_GB = 1_000_000_000  # Hugging Face reports decimal gigabytes


@dataclass(frozen=True)
class ModelSpec:
    """A model as exo's model cards describe it, plus how fast an M3 Ultra generates with it."""

    model_id: ModelId
    storage_bytes: int
    n_layers: int
    hidden_size: int
    family: str
    base_model: str
    safetensors_files: int
    tokens_per_s: float


CATALOG: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(ModelId("mlx-community/Llama-3.2-1B-Instruct-4bit"), 695 * _GB // 1000, 16, 2048, "llama",
                  "Llama 3.2 1B", 1, 240.0),
        ModelSpec(ModelId("mlx-community/Llama-3.2-3B-Instruct-4bit"), 1_807 * _GB // 1000, 28, 3072, "llama",
                  "Llama 3.2 3B", 1, 130.0),
        ModelSpec(ModelId("mlx-community/Qwen3-30B-A3B-4bit"), 17_190 * _GB // 1000, 48, 2048, "qwen",
                  "Qwen3 30B A3B", 4, 85.0),
        ModelSpec(ModelId("mlx-community/Llama-3.3-70B-Instruct-4bit"), 39_710 * _GB // 1000, 80, 8192, "llama",
                  "Llama 3.3 70B", 8, 16.0),
        ModelSpec(ModelId("mlx-community/gpt-oss-120b-MXFP4-Q8"), 63_390 * _GB // 1000, 36, 2880, "gpt-oss",
                  "GPT-OSS 120B", 13, 60.0),
        ModelSpec(ModelId("mlx-community/DeepSeek-V3.1-4bit"), 377_900 * _GB // 1000, 61, 7168, "deepseek",
                  "DeepSeek V3.1", 77, 21.0),
    )
}  # fmt: skip
"""Models a trace can place or find on disk, by id."""


def model_spec(model_id: str) -> ModelSpec:
    """The catalog entry of ``model_id``.

    Raises:
        ValueError: the model is not in :data:`CATALOG`.
    """
    try:
        return CATALOG[model_id]
    except KeyError:
        raise ValueError(f"unknown model {model_id!r}; known: {sorted(CATALOG)}") from None


def _model_card(model: ModelSpec) -> JsonObject:
    return {
        "model_id": model.model_id,
        "storage_size": {"in_bytes": model.storage_bytes},
        "n_layers": model.n_layers,
        "hidden_size": model.hidden_size,
        "supports_tensor": True,
        "tasks": ["TextGeneration"],
        "components": None,
        "family": model.family,
        "quantization": "4bit" if "4bit" in model.model_id else "8bit",
        "base_model": model.base_model,
        "capabilities": ["text"],
        "uses_cfg": False,
    }


def shard_metadata(kind: ShardKind, model: ModelSpec, rank: int, world_size: int) -> TaggedJson:
    """Rank ``rank``'s shard: a contiguous layer range (pipeline) or every layer (tensor)."""
    if kind == "TensorShardMetadata":
        start, end = 0, model.n_layers
    else:
        start = model.n_layers * rank // world_size
        end = model.n_layers * (rank + 1) // world_size
    return {
        kind: {
            "model_card": _model_card(model),
            "device_rank": rank,
            "world_size": world_size,
            "immediate_exception": False,
            "should_timeout": None,
            "start_layer": start,
            "end_layer": end,
            "n_layers": model.n_layers,
        }
    }


def full_shard(model: ModelSpec) -> TaggedJson:
    """The whole model as one shard: what the download rescan reports for a model on disk."""
    return shard_metadata("PipelineShardMetadata", model, 0, 1)


def shard_bytes(model: ModelSpec, world_size: int) -> int:
    """Bytes of weights one of ``world_size`` shards holds (and downloads)."""
    return model.storage_bytes // world_size


def _shard_files(model: ModelSpec, total: int, done: int, speed: float) -> dict[str, JsonValue]:
    # Small metadata files first, then the weight files; files complete in order.
    names = ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json"]
    sizes = [1_500, 17_200_000, 55_000, 85_000]
    count = max(1, math.ceil(model.safetensors_files * total / model.storage_bytes))
    weights = total - sum(sizes)
    names += [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    sizes += [weights // count + (1 if i < weights % count else 0) for i in range(count)]
    files: dict[str, JsonValue] = {}
    remaining = done
    for name, size in zip(names, sizes, strict=True):
        got = min(size, max(remaining, 0))
        remaining -= size
        files[name] = _progress_data(size, got, got, 1 if got == size else 0, 1, speed if 0 < got < size else 0.0)
    return files


def _progress_data(
    total: int, done: int, this_session: int, completed_files: int, total_files: int, speed: float
) -> JsonObject:
    eta_ms = int((total - done) / speed * 1000) if speed > 0 else 0
    return {
        "total_bytes": {"in_bytes": total},
        "downloaded_bytes": {"in_bytes": done},
        "downloaded_bytes_this_session": {"in_bytes": this_session},
        "completed_files": completed_files,
        "total_files": total_files,
        "speed": round(speed, 1),
        "eta_ms": eta_ms,
        "files": {},
    }


def download_progress(model: ModelSpec, total: int, done: int, speed: float) -> JsonObject:
    """exo's ``DownloadProgressData`` for a shard of ``total`` bytes with ``done`` downloaded."""
    files = _shard_files(model, total, done, speed)
    completed = sum(1 for entry in files.values() if isinstance(entry, dict) and entry["completed_files"] == 1)
    progress = _progress_data(total, done, done, completed, len(files), speed)
    progress["files"] = files
    return progress


_PROMPTS = (
    "Summarise the attached design document in three bullet points.",
    "Write a haiku about distributed consensus.",
    "What is the difference between RDMA and TCP for tensor parallelism?",
    "Translate 'the cluster is healthy' into French, German and Japanese.",
    "Explain event sourcing to a new engineer in two paragraphs.",
    "Give me a bash one-liner that counts lines in every .py file.",
    "Why does a Thunderbolt bridge loop cause a broadcast storm?",
    "Draft a polite reply declining a meeting invitation.",
)

_PIECES = (
    " the", " cluster", " event", " state", ",", " and", " is", " a", " node", " of", " to", " each",
    " in", " that", " log", " index", ".", " This", " model", " shard", " layer", " with", " RDMA",
    " over", " Thunderbolt", " master", " worker", " applies", " it", "\n", " first", " then", " we",
)  # fmt: skip


def text_generation_params(rng: random.Random, model: ModelSpec, max_tokens: int) -> tuple[JsonObject, int]:
    """exo's ``TextGenerationTaskParams`` for a seeded chat request, and its prompt length in tokens."""
    prompt = rng.choice(_PROMPTS)
    params: JsonObject = {
        "model": model.model_id,
        "input": [{"role": "user", "content": prompt}],
        "instructions": None,
        "max_output_tokens": max_tokens,
        "temperature": rng.choice([0.2, 0.6, 0.7, 1.0]),
        "top_p": None,
        "stream": True,
        "tools": None,
        "bench": False,
        "top_k": None,
        "stop": None,
        "seed": None,
        "chat_template_messages": None,
        "enable_thinking": None,
        "logprobs": False,
        "top_logprobs": None,
    }
    prompt_tokens = 24 + len(prompt.split()) * 4 // 3
    return params, prompt_tokens


def token_chunk(
    rng: random.Random,
    model: ModelSpec,
    *,
    last: bool,
    prompt_tokens: int,
    completion_tokens: int,
    prompt_tps: float,
    peak_memory: int,
) -> TaggedJson:
    """One generated token; the last one carries the finish reason, usage and stats."""
    usage: JsonObject | None = None
    stats: JsonObject | None = None
    if last:
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        stats = {
            "prompt_tps": round(prompt_tps, 2),
            "generation_tps": round(model.tokens_per_s * rng.uniform(0.9, 1.05), 2),
            "prompt_tokens": prompt_tokens,
            "generation_tokens": completion_tokens,
            "peak_memory_usage": {"in_bytes": peak_memory},
        }
    return {
        "TokenChunk": {
            "model": model.model_id,
            "text": rng.choice(_PIECES),
            "token_id": rng.randrange(128_256),
            "usage": usage,
            "finish_reason": "stop" if last else None,
            "stats": stats,
            "logprob": None,
            "top_logprobs": None,
        }
    }
