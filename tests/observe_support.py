"""Helpers for the observability tests: an in-process proxy, a UDP sink,
the event log read back, and the control API's port."""
import json
import re
import socket
import threading

import support
from inproc import InProcessVaurien, call_in_loop

_CONTROL = re.compile(r'control API on http://\S+:(\d+)')


class InProcessProxy:
    """A real :class:`vaurien.proxy.Proxy` served by gevent in a thread of
    this process, on 127.0.0.1:0, in front of *backend*.

    :meth:`call` runs a function in the proxy's own thread (its gevent
    hub) and returns its result, so that counters are read where they are
    written.
    """

    def __init__(self, backend, behavior='100:dummy', seed=1, handlers=(),
                 **kwargs):
        from vaurien.config import parse_behavior
        from vaurien.handlers import Registry
        from vaurien.control import build_behavior
        self.error = None
        ready = threading.Event()

        def main():
            try:
                from vaurien.proxy import Proxy
                registry = Registry(entry_points=False)
                for name, target in handlers:
                    registry.add(name, target, 'test')
                pairs = parse_behavior(behavior)
                proxy = Proxy(('127.0.0.1', 0), backend,
                              lambda proxy: build_behavior(
                                  registry, pairs, {}, proxy)[0],
                              seed=seed, **kwargs)
                proxy.start()
                self.proxy = proxy
            except BaseException as exc:   # reported to the test thread
                self.error = exc
                ready.set()
                return
            ready.set()
            proxy.serve_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(15), 'the proxy thread did not start'
        if self.error is not None:
            raise self.error
        self.address = self.proxy.address

    def call(self, function, *args):
        """``function(*args)`` in the proxy's thread; its result."""
        return call_in_loop(self.proxy.loop, function, *args)

    def connect(self):
        return socket.create_connection(self.address, timeout=10)

    def close(self):
        try:
            self.call(self.proxy.stop)
        except AssertionError:
            pass
        self.thread.join(10)


class UDPSink:
    """A real UDP listener on 127.0.0.1:0 keeping every datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((support.HOST, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.datagrams = []
        self._stop = False
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.datagrams.append(data.decode('utf-8', 'replace'))

    def lines(self):
        """Every statsd line received so far."""
        with self._lock:
            return [line for datagram in self.datagrams
                    for line in datagram.split('\n') if line]

    def totals(self):
        """``{name: sum of the counter values}`` of the ``|c`` lines
        (sampled lines scaled back, as a statsd daemon does)."""
        totals = {}
        for line in self.lines():
            name, _, rest = line.partition(':')
            parts = rest.split('|')
            if len(parts) < 2 or parts[1] != 'c':
                continue
            value = float(parts[0])
            for part in parts[2:]:
                if part.startswith('@'):
                    value /= float(part[1:])
            totals[name] = totals.get(name, 0) + value
        return totals

    def close(self):
        self._stop = True
        self.thread.join(5)
        self.sock.close()




def talk(address, messages, connections=1, same=True):
    """Open *connections* one after the other; on each, exchange every
    message of *messages* with an echo backend, then half-close and wait
    for the end. Returns the bytes sent.

    With *same*, the answers must be the messages; otherwise (an error
    handler may spoil them) only as long."""
    sent = 0
    for _ in range(connections):
        with socket.create_connection(address, timeout=10) as sock:
            for message in messages:
                answer = support.exchange(sock, message)
                if same:
                    assert answer == message
                else:
                    assert len(answer) == len(message)
                sent += len(message)
            sock.shutdown(socket.SHUT_WR)
            assert support.recv_all(sock) == b''
    return sent


def read_events(path):
    """The event log at *path*, one dict per line."""
    with open(path, encoding='utf-8') as fh:
        return [json.loads(line) for line in fh if line.strip()]


def http_port(proc):
    """The control API port of a VaurienProcess started with --http."""
    match = _CONTROL.search(proc.log())
    assert match, proc.log()
    return int(match.group(1))


HTTP_ARGS = ('--http', '--http-host', support.HOST, '--http-port', '0')


def finish(proc, timeout=10.0):
    """End a VaurienProcess with SIGTERM (as a user's Ctrl-C) and wait, so
    that its event log is flushed; its log stays readable (the fixture
    cleans up). An :class:`inproc.InProcessVaurien` is stopped as the
    command's service ends: ``GroupService.stop``, then the observers
    closed (no --grace drain)."""
    import signal
    if isinstance(proc, InProcessVaurien):
        proc.stop(timeout)
        return proc.log()
    if proc.proc.poll() is None:
        proc.proc.send_signal(signal.SIGTERM)
        proc.proc.wait(timeout)
    return proc.log()
