"""Vaurien's benchmark suite: ``python -m benchmarks`` from the repository.

It measures, in one run and side by side, a direct connection, Vaurien with
``100:dummy``, a bare gevent relay (:mod:`benchmarks.bare_relay`), socat and
HAProxy, on bulk throughput, HTTP keep-alive, connection churn,
single-connection latency, idle connections and faults, and reports each
figure with the proxy's own CPU time per unit of work. See
docs/benchmarks.rst.
"""
