"""The zero-copy pass-through (splice(2) through a pipe) of tcp mode.

A direction that passes a whole ``--bufsize`` buffer through gets a pipe
and splices from then on. What must still hold there, on a real proxy in
this process in front of a real echo server: every byte in order, at most
``--bufsize`` bytes per event, the byte counts of the event log and the
statistics, a live change of behavior taking effect at the next event,
back-pressure, half-close, and no descriptor left behind.
"""
import io
import json
import os
import socket
import threading

import pytest

import support
from observe_support import InProcessProxy
from vaurien.handlers import BaseHandler

pytestmark = pytest.mark.skipif(not hasattr(os, 'splice'),
                                reason='os.splice needs Linux, Python 3.10+')

BUFSIZE = 4096


class Upper(BaseHandler):
    """A handler turning the client's data to upper case."""
    name = 'upper'

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False
        if to_backend:
            data = data.upper()
        self.forward(client_sock, backend_sock, to_backend, data)
        return True


def _pipes(proxy):
    """The splicing flows' pipes, read in the proxy's thread."""
    return proxy.call(lambda: [flow.pipe for conn in proxy.proxy.connections
                               for flow in conn.flows
                               if flow.pipe is not None])


def _exchange(sock, data):
    """Send *data* while reading its echo back; the echo."""
    got = bytearray()

    def reader():
        while len(got) < len(data):
            more = sock.recv(65536)
            if not more:
                break
            got.extend(more)
    thread = threading.Thread(target=reader)
    thread.start()
    sock.sendall(data)
    thread.join(30)
    assert not thread.is_alive()
    return bytes(got)


def _open_fds():
    return len(os.listdir('/proc/self/fd'))


@pytest.mark.timeout(60)
def test_bulk_is_spliced_with_counts_and_events(echo_server):
    from vaurien.events import EventLog
    log = io.StringIO()
    proxy = InProcessProxy(echo_server.address, bufsize=BUFSIZE,
                           events=EventLog(log, owned=False))
    data = os.urandom(3 * 1024 * 1024 + 17)
    try:
        baseline = _open_fds()
        with proxy.connect() as sock:
            assert _exchange(sock, data) == data
            # Both directions carried full buffers: both splice now, each
            # with a pipe (two descriptors) of its own. (The echo server
            # runs in this process too: client, proxy's two sockets,
            # server's socket, two pipes.)
            assert len(_pipes(proxy)) == 2
            assert _open_fds() == baseline + 1 + 2 + 1 + 4
            sock.shutdown(socket.SHUT_WR)
            assert support.recv_all(sock) == b''
        support.wait_until(lambda: proxy.call(
            lambda: not proxy.proxy.connections), 10, what='the close')
        # The pipes went with the connection.
        support.wait_until(lambda: _open_fds() == baseline, 10,
                           what='the descriptors to be closed')
        stats = proxy.proxy.stats
        assert proxy.call(lambda: (stats.bytes_up, stats.bytes_down)) == \
            (len(data), len(data))
        # What was written, on the splice path too (sent_up: to the backend).
        assert proxy.call(lambda: (stats.sent_up, stats.sent_down)) == \
            (len(data), len(data))
        proxy.call(proxy.proxy.events.flush)
    finally:
        proxy.close()
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    for direction in ('upstream', 'downstream'):
        counts = [e['bytes'] for e in events if e['event'] == 'data'
                  and e['direction'] == direction]
        assert sum(counts) == len(data)
        assert max(counts) <= BUFSIZE
        assert 0 not in counts          # the end of stream is no pick
    closed = [e for e in events if e['event'] == 'close']
    assert [(e['bytes_up'], e['bytes_down']) for e in closed] == \
        [(len(data), len(data))]


@pytest.mark.timeout(60)
def test_a_live_change_leaves_the_splice_path_at_the_next_event(
        echo_server):
    proxy = InProcessProxy(echo_server.address, bufsize=BUFSIZE,
                           handlers=[('upper', Upper)])
    try:
        with proxy.connect() as sock:
            data = b'a' * (256 * 1024)
            assert _exchange(sock, data) == data
            assert len(_pipes(proxy)) == 2
            from vaurien.control import build_behavior
            from vaurien.handlers import Registry
            registry = Registry(entry_points=False)
            registry.add('upper', Upper, 'test')

            def change():
                behavior = build_behavior(registry, [(100, 'upper')], {},
                                          proxy.proxy)[0]
                proxy.proxy.set_behavior(behavior)
            proxy.call(change)
            assert _exchange(sock, data) == data.upper()
    finally:
        proxy.close()


def _held(proxy):
    """Bytes waiting in the pipes for a destination that is full."""
    return proxy.call(lambda: [flow.held for conn in proxy.proxy.connections
                               for flow in conn.flows if flow.writing])


@pytest.mark.timeout(60)
def test_back_pressure_and_half_close_on_the_splice_path(echo_server):
    """The client sends and does not read: the proxy holds what the client
    cannot take in its pipe, stops reading the backend (so the echo server
    and then the client's sends stall), and loses nothing; once the client
    reads, everything comes, and its half-close ends the exchange."""
    proxy = InProcessProxy(echo_server.address, bufsize=BUFSIZE)
    data = os.urandom(16 * 1024 * 1024)
    try:
        with proxy.connect() as sock:
            sent = [0]

            def writer():
                view = memoryview(data)
                while sent[0] < len(data):
                    sent[0] += sock.send(view[sent[0]:sent[0] + 65536])
                sock.shutdown(socket.SHUT_WR)
            thread = threading.Thread(target=writer)
            thread.start()
            support.wait_until(lambda: any(_held(proxy)), 20,
                               what='the proxy to hold data for the client')
            assert sent[0] < len(data)
            got = support.recv_all(sock)
            thread.join(20)
            assert not thread.is_alive()
            assert got == data
    finally:
        proxy.close()
