"""The cluster runtime: what `clusterstate node` runs on every machine.

The runtime is split into pure decision modules and the code that moves bytes and time:

- ``keys``: the zenoh key expressions of a cluster (``cs/{cluster}/v1/...``) and the validation of
  cluster names and node ids;
- ``election``: candidate records, the ranking, the winner of a round, the quorum rule, the trigger
  rules and the term rules;
- ``gating``: acknowledgements held until the producer's own node has applied them (and, with a
  quorum, until they are committed), and the commit index;
- ``lineage``: the sessions a replica log followed, and where two logs stop agreeing;
- ``actions``: the small frozen values the decisions (``Action``) and the steps (``Effect``) return;
- ``producer``, ``follower``, ``leader``: the steps around the Rust cores (``ProducerOutbox``, ``NodeCore``,
  ``MasterCore``): they take what was received and the time, and return effects (publish, subscribe,
  fetch a page, answer a query) for the shell to carry out;
- ``wire``: the acknowledgement, heartbeat and page-error messages and the newline-joined frames, one function
  each to encode and decode;
- ``transport``: one ``Transport`` protocol, implemented over zenoh (``transport.zenoh``) and in
  memory (``transport.memory``, seeded, with loss, duplication, reordering and delay).

Boundary rules:

1. Nothing outside ``node.py`` and ``transport/`` awaits.
2. Nothing in the decision modules (``keys``, ``election``, ``gating``, ``lineage``, ``actions``,
   ``wire``) reads a clock, imports zenoh or touches a file: time comes in as an argument
   (``now``), and what must be written or sent goes out as a returned action (e.g. ``PersistTerm``).
   The steps (``producer``, ``follower``, ``leader``) follow the same rule, except that they call their
   core, and the leader's ``MasterCore`` writes its own event log.
3. ``transport.zenoh`` is the only module that imports zenoh.
"""
