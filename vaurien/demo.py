"""``vaurien --demo``: the proxy in front of a built-in backend, exercised.

The demo needs nothing installed besides Vaurien: it starts a small HTTP
backend on a free port of 127.0.0.1, the real proxy in front of it (same
engine, same handlers, same options as the command line gives), sends a few
hundred requests through, each on a fresh connection, and prints what
happened to them per outcome with latency percentiles (nearest rank,
see :func:`vaurien.stats.percentile`), then what the faults did as the
proxy itself counted them (per request with ``--protocol``, and per
connection): "20.1% of 300 requests delayed (by 0.5 s), ...".

Outcomes, as a client sees them:

``passed``  the right answer, in normal time;
``delayed`` the right answer, late (at least ``delay``'s sleep, or 3x the
            median of the fast answers for other handlers);
``errored`` an answer, but not the right one (corrupted or replaced bytes);
``cut``     the connection was closed or reset before a whole answer came;
``hung``    no answer within the demo's client timeout: 2 s, or 4x
            ``delay``'s sleep when that is longer (a delayed answer must
            be able to arrive to be counted as delayed).

``--demo-timeout`` and ``--demo-slow`` set the two limits, for a machine
too busy for the defaults (the test suite's, on a loaded machine).
"""
import socket
import sys
import time

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer

from vaurien.config import format_hostport
from vaurien.service import Service, load
from vaurien.stats import effect_shares, percentile, snapshot

__all__ = ['run_demo', 'DEFAULT_BEHAVIOR', 'OUTCOMES']

DEFAULT_BEHAVIOR = [(10, 'delay'), (10, 'error'), (5, 'blackout'),
                    (5, 'hang')]
OUTCOMES = ('passed', 'delayed', 'errored', 'cut', 'hung')
REQUESTS = 300
CONCURRENCY = 25
CLIENT_TIMEOUT = 2.0    # at least; 4x delay's sleep when that is longer
DEMO_DELAY = 0.5    # delay's sleep in the demo unless the user sets one

_BODY = b''.join(b'%05d the quick brown fox jumps over the lazy dog\n' % i
                 for i in range(20))
_RESPONSE = (b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
             b'Content-Length: %d\r\nConnection: close\r\n\r\n'
             % len(_BODY)) + _BODY


def _backend(sock, address):
    """The built-in backend: read one request head, answer, close."""
    data = b''
    sock.settimeout(30)
    try:
        while b'\r\n\r\n' not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        sock.sendall(_RESPONSE)
    except OSError:
        pass


def _request(address, number, timeout):
    """One request through the proxy: ``(outcome, seconds)``; ``hung``
    when no whole answer came within *timeout* seconds."""
    start = time.perf_counter()
    sock = None
    try:
        with gevent.Timeout(timeout):
            sock = socket.create_connection(address)
            sock.sendall(b'GET /%d HTTP/1.1\r\nHost: demo\r\n'
                         b'Connection: close\r\n\r\n' % number)
            received = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received.append(chunk)
        answer = b''.join(received)
    except gevent.Timeout:
        return 'hung', time.perf_counter() - start
    except OSError:
        return 'cut', time.perf_counter() - start
    finally:
        if sock is not None:
            sock.close()
    elapsed = time.perf_counter() - start
    if answer == _RESPONSE:
        return 'ok', elapsed
    if not answer or (len(answer) < len(_RESPONSE)
                      and _RESPONSE.startswith(answer)):
        return 'cut', elapsed
    return 'errored', elapsed


def run_demo(options, seed, out=None, requests=REQUESTS, timeout=None,
             slow=None):
    """Run the demo with the parsed command-line *options*; exit status.

    *timeout* (``--demo-timeout``): seconds after which a request without
    a whole answer is hung (default: the client timeout above); *slow*
    (``--demo-slow``): seconds from which a right answer is delayed
    (default: 0.9x delay's sleep, or 3x the median of the fast answers).

    The proxy is the service the settings describe (handlers, options,
    ``--protocol``, ``--pick``, the event log...), on a free port of
    127.0.0.1 in front of the built-in backend, without the control API.
    """
    out = out or sys.stdout
    behavior_given = options.settings['behavior'] != [(100, 'dummy')]
    if not behavior_given:
        options.settings['behavior'] = list(DEFAULT_BEHAVIOR)
    delay_options = options.handler_options.setdefault('delay', {})
    delay_options.setdefault('sleep', DEMO_DELAY)
    plan = load(options)
    plan.log_warnings()
    backend = StreamServer(('127.0.0.1', 0), _backend, spawn=Pool(200))
    backend.start()
    try:
        service = Service(plan, seed, local=('127.0.0.1', 0),
                          distant=backend.address, http=False)
        service.start()
    except BaseException:
        backend.stop(timeout=1)
        raise
    proxy = service.proxy
    behavior = proxy.behavior
    checked = plan.checked
    sleep = float(checked.get('delay', {}).get('sleep', DEMO_DELAY))
    client_timeout = timeout
    if client_timeout is None:
        client_timeout = CLIENT_TIMEOUT
        if 'delay' in behavior.names:
            client_timeout = max(CLIENT_TIMEOUT, 4 * sleep)
    out.write('vaurien demo: %d requests, %d at a time, each on a new '
              'connection\n' % (requests, CONCURRENCY))
    out.write('  client -> proxy %s -> built-in backend %s\n'
              % (format_hostport(proxy.address),
                 format_hostport(backend.address)))
    protocol = options.protocol
    out.write('  behavior %s, protocol %s, seed %d (replay: vaurien --demo '
              '--seed %d%s%s)\n\n'
              % (behavior.text, protocol, seed, seed,
                 ' --behavior %s' % behavior.text if behavior_given else '',
                 ' --protocol %s' % protocol if protocol != 'tcp' else ''))
    out.flush()
    started = time.perf_counter()
    try:
        pool = Pool(CONCURRENCY)
        results = pool.map(lambda n: _request(proxy.address, n,
                                              client_timeout),
                           range(requests))
    finally:
        service.stop()
        # Handler calls woken by the stop (hang) count what they did as
        # their greenlets end: let them run before counting.
        gevent.sleep(0.1)
        counted = snapshot(proxy)
        service.close()
        backend.stop(timeout=1)
    wall = time.perf_counter() - started

    fast = [t for outcome, t in results if outcome == 'ok']
    threshold = sleep * 0.9 if 'delay' in behavior.names else None
    if slow is not None:
        threshold = slow
    elif threshold is None or threshold <= 0:
        threshold = 3 * percentile(fast, 0.5) if fast else float('inf')
        threshold = max(threshold, 0.05)
    table = {name: [] for name in OUTCOMES}
    for outcome, elapsed in results:
        if outcome == 'ok':
            outcome = 'delayed' if elapsed >= threshold else 'passed'
        table[outcome].append(elapsed)

    out.write('%-9s %6s %7s %10s %10s %10s\n'
              % ('outcome', 'count', 'share', 'p50 ms', 'p90 ms', 'p99 ms'))
    for name in OUTCOMES:
        times = table[name]
        if times:
            cells = tuple('%10.1f' % (percentile(times, p) * 1000)
                          for p in (0.5, 0.9, 0.99))
        else:
            cells = ('%10s' % '-',) * 3
        out.write('%-9s %6d %6.1f%% %s %s %s\n'
                  % ((name, len(times), 100.0 * len(times) / len(results))
                     + cells))
    out.write('\n%d requests in %.1f s; "hung" means no answer within %.1f s,'
              ' "delayed" at least %.0f ms.\n'
              % (len(results), wall, client_timeout, threshold * 1000))
    notes = {'delayed': 'by %g s' % sleep} \
        if 'delay' in behavior.names and sleep else {}
    lines = [effect_shares(counted.requests_by_effect(), 'requests', notes),
             effect_shares(counted.connections, 'connections', notes,
                           counted.closed)]
    lines = [line for line in lines if line]
    if lines:
        out.write('\nwhat the faults did, as the proxy counted them:\n')
        for line in lines:
            out.write('  %s\n' % line)
    out.flush()
    return 0
