"""The ``hang`` handler: nothing comes back, and nothing is left behind."""
import select
import socket

import pytest

import support


@pytest.mark.timeout(60)
def test_hang_client_gets_nothing_then_all_released(vaurien_inproc):
    server = support.RecordingServer(reply=lambda data: data)
    try:
        proxy = vaurien_inproc('--behavior', '100:hang',
                               backend=server.address)
        pid = proxy.pid
        with proxy.connect() as sock:     # settle lazy imports first
            sock.sendall(b'x')
            sock.settimeout(0.3)
            with pytest.raises(socket.timeout):
                sock.recv(10)
        support.wait_until(lambda: server.eof and server.eof[0].is_set(),
                           what='the first backend connection to end')
        baseline = support.fd_count(pid)
        socks = [proxy.connect() for _ in range(5)]
        for sock in socks:
            sock.sendall(b'are you there?')
        # Nothing (no data, no end) on any of them for 0.5 s, all watched
        # at once.
        assert select.select(socks, [], [], 0.5)[0] == []
        # held open: the backend connections are still there
        support.wait_until(lambda: len(server.eof) == 6, what='backends')
        assert not any(eof.is_set() for eof in server.eof[1:])
        assert support.fd_count(pid) >= baseline + 10
        for sock in socks:
            sock.close()
        # the client gave up: its backend connection goes too
        for eof in server.eof:
            assert eof.wait(10)
        assert all(bytes(got) in (b'', b'x') for got in server.received)
        support.wait_fds(pid, baseline)
    finally:
        server.close()


@pytest.mark.timeout(30)
def test_hang_after_half_close_releases(vaurien_inproc):
    """A client that half-closes while hung: the connection goes at once."""
    server = support.RecordingServer(reply=lambda data: data)
    try:
        proxy = vaurien_inproc('--behavior', '100:hang',
                               backend=server.address)
        with proxy.connect() as sock:
            sock.sendall(b'hello')
            sock.shutdown(socket.SHUT_WR)
            assert support.ends_soon(sock, 5)
        support.wait_until(lambda: server.eof, what='the backend')
        assert server.eof[0].wait(5)
        assert bytes(server.received[0]) == b''
    finally:
        server.close()


@pytest.mark.timeout(30)
def test_hang_on_responses(vaurien_inproc):
    """Aimed downstream: the request goes through, the answer never comes."""
    server = support.RecordingServer(reply=lambda data: data.upper())
    try:
        proxy = vaurien_inproc('--behavior', '100:hang',
                               '--handlers.hang.direction', 'downstream',
                               backend=server.address)
        with proxy.connect() as sock:
            sock.sendall(b'hello')
            support.wait_until(lambda: server.received
                               and bytes(server.received[0]) == b'hello',
                               what='the request to arrive')
            sock.settimeout(0.5)
            with pytest.raises(socket.timeout):
                sock.recv(10)
        assert server.eof[0].wait(10)
    finally:
        server.close()
