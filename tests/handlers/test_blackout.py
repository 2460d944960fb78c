"""The ``blackout`` handler: the connection is closed at once."""
import socket

from vaurien.handlers.blackout import Blackout

import support


def test_blackout_class_closes_both():
    client, client_peer = socket.socketpair()
    backend, backend_peer = socket.socketpair()
    with client_peer, backend_peer:
        client_peer.sendall(b'request')
        assert Blackout()(client, backend, True) is False
        assert client.fileno() == -1 and backend.fileno() == -1
        assert backend_peer.recv(100) == b''


def test_client_cut_and_backend_closed(vaurien_inproc):
    server = support.RecordingServer(reply=lambda data: data)
    try:
        proxy = vaurien_inproc('--behavior', '100:blackout',
                               backend=server.address)
        for _ in range(3):
            with proxy.connect() as sock:
                sock.sendall(b'hello?')
                assert support.ends_soon(sock, 5)
        support.wait_until(lambda: len(server.eof) == 3, what='3 backends')
        for eof, got in zip(server.eof, server.received):
            assert eof.wait(5)
            assert bytes(got) == b''   # the request never reached it
        assert 'failed' not in proxy.log()
    finally:
        server.close()


def test_blackout_on_backend_data(vaurien_inproc):
    """Aimed downstream: the backend's greeting cuts the client."""
    server = support.RecordingServer(greeting=b'welcome\n')
    try:
        proxy = vaurien_inproc('--behavior', '100:blackout',
                               '--handlers.blackout.direction', 'downstream',
                               backend=server.address)
        with proxy.connect() as sock:
            assert support.ends_soon(sock, 5)
        support.wait_until(lambda: server.eof, what='the backend')
        assert server.eof[0].wait(5)
    finally:
        server.close()
