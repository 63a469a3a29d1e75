"""The cluster runtime: what `clusterstate node` runs on every machine.

The runtime is split into pure decision modules and the code that moves bytes and time:

- ``keys``: the zenoh key expressions of a cluster (``cs/{cluster}/v1/...``) and the validation of
  cluster names and node ids;
- ``election``: candidate records, the ranking, the winner of a round, the quorum rule, the trigger
  rules and the term rules;
- ``gating``: acknowledgements held until the producer's own node has applied them (and, with a
  quorum, until they are committed), and the commit index;
- ``lineage``: the sessions a replica log followed, and where two logs stop agreeing;
- ``actions``: the small frozen values the decisions return;
- ``transport``: one ``Transport`` protocol, implemented over zenoh (``transport.zenoh``) and in
  memory (``transport.memory``, seeded, with loss, duplication, reordering and delay).

Boundary rules:

1. Nothing outside ``node.py`` and ``transport/`` awaits.
2. Nothing in the decision modules (``keys``, ``election``, ``gating``, ``lineage``, ``actions``)
   reads a clock, imports zenoh or touches a file: time comes in as an argument (``now``), and what
   must be written or sent goes out as a returned action (e.g. ``PersistTerm``).
3. ``transport.zenoh`` is the only module that imports zenoh.
"""
