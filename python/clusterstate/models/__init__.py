"""Models of the cluster: events, their envelopes, the State and everything they hold."""

from ._base import CamelCaseModel, JsonObject, TaggedJson, TaggedModel
from .events import *  # noqa: F403
from .events import __all__ as _events
from .ids import *  # noqa: F403
from .ids import __all__ as _ids
from .profiling import *  # noqa: F403
from .profiling import __all__ as _profiling
from .state import *  # noqa: F403
from .state import __all__ as _state
from .topology import *  # noqa: F403
from .topology import __all__ as _topology
from .work import *  # noqa: F403
from .work import __all__ as _work

__all__ = [
    "CamelCaseModel",
    "JsonObject",
    "TaggedJson",
    "TaggedModel",
    *_events,
    *_ids,
    *_profiling,
    *_state,
    *_topology,
    *_work,
]
