"""``make bench`` (``python -m tests.bench [--quick]``): the product's speed figures, side by side.

Five figures, each a ratio or a rate measured in the same run on the same (shared,
noisy) machine: the event hook's cost against a bare interpreter start, export
throughput at amoCRM's real limit, the end-to-end pipeline with limits off, peak
memory of the export process, and event-to-amoCRM latency with the worker daemon.
One table is printed and written to ``tests/bench/last-results.md`` (a partial run to
``last-partial-results.md``). Benchmarks
report; they never fail (exit 0 even when a target is missed).

Modules: ``sitesetup`` (temp MGR5_ROOT + sandbox database + emulator subprocess),
``hook_cost``, ``grid`` (figure 2 at several answer delays: the export and a spooled
backlog, ``drain_child``), ``arrivals`` (what the emulator's request log says about a run),
``settling`` (lost answers: lookups per write), ``throughput`` (export figures, run in
``export_child`` processes), ``profiling`` (``--profile``: every thread, yappi),
``latency`` (daemon), ``report`` (table, machine, markdown), ``naive_hook`` (the
inline hook a naive module would ship, for comparison).
"""
