"""The ``error`` handler: random bytes instead of (or inside) the answer."""
import socket

import pytest

from vaurien.handlers.error import Error

import support


def _corrupted(sock, message):
    sock.sendall(message)
    return support.recv_exact(sock, len(message))


def test_class_defaults_and_corrupt():
    import random
    handler = Error()
    assert handler.option('inject') is False and handler.option('warmup') == 0
    rng = random.Random(1)
    data = b'A' * 100
    out = handler.corrupt(data, rng)
    assert len(out) == 100 and out != data
    injecting = Error(settings={'inject': True})
    out = injecting.corrupt(data, rng)
    assert 100 < len(out) <= 132
    assert out[:50] == data[:50] and out[-50:] == data[50:]
    with pytest.raises(ValueError, match="error: option 'warmup' expects"):
        Error.check_options({'warmup': '-1'})


def test_replaces_backend_data_same_length(vaurien_inproc):
    server = support.RecordingServer(reply=lambda data: data)
    try:
        proxy = vaurien_inproc('--behavior', '100:error',
                               backend=server.address)
        with proxy.connect() as sock:
            for size in (1000, 50, 4000):
                message = b'm' * size
                got = _corrupted(sock, message)
                assert len(got) == size
                assert got != message
            sock.shutdown(socket.SHUT_WR)
            assert support.recv_all(sock) == b''   # no extra bytes after
        # the client's data reached the backend untouched
        assert bytes(server.received[0]) == b'm' * 5050
    finally:
        server.close()


def test_inject_keeps_prefix_and_suffix(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:error',
                           '--handlers.error.inject', 'yes',
                           backend=echo_server.address)
    with proxy.connect() as sock:
        for _ in range(3):
            message = bytes(range(200))
            sock.sendall(message)
            sock.settimeout(5)
            got = support.recv_exact(sock, len(message) + 1)
            # read what else the injection added (1 to 32 bytes)
            sock.settimeout(0.3)
            try:
                while len(got) < len(message) + 32:
                    more = sock.recv(64)
                    if not more:
                        break
                    got += more
            except socket.timeout:
                pass
            assert len(message) < len(got) <= len(message) + 32
            assert got[:100] == message[:100]
            assert got[-100:] == message[100:]


def test_warmup_counts_calls(vaurien_inproc, echo_server):
    """warmup=2: the first two calls (a request and its answer) pass, the
    next answer is errored."""
    proxy = vaurien_inproc('--behavior', '100:error',
                           '--handlers.error.warmup', '2',
                           backend=echo_server.address)
    with proxy.connect() as sock:
        message = b'w' * 300
        assert _corrupted(sock, message) == message
        assert _corrupted(sock, message) != message


def test_warmup_shared_across_connections_downstream_only(vaurien_inproc,
                                                          echo_server):
    proxy = vaurien_inproc('--behavior', '100:error',
                           '--handlers.error.warmup', '3',
                           '--handlers.error.direction', 'downstream',
                           backend=echo_server.address)
    message = b'z' * 300
    with proxy.connect() as sock:
        assert _corrupted(sock, message) == message
        assert _corrupted(sock, message) == message
    with proxy.connect() as sock:
        assert _corrupted(sock, message) == message
        assert _corrupted(sock, message) != message
