"""The ``dummy`` handler: everything passes untouched."""
import os
import socket
import threading

from vaurien.handlers import get_handlers
from vaurien.handlers.dummy import Dummy

import support


def test_dummy_class_forwards_both_ways():
    """Socket-free of the engine: the class itself on socket pairs."""
    handler = Dummy()
    client, client_peer = socket.socketpair()
    backend, backend_peer = socket.socketpair()
    with client, client_peer, backend, backend_peer:
        client_peer.sendall(b'request')
        assert handler(client, backend, True) is True
        assert backend_peer.recv(100) == b'request'
        backend_peer.sendall(b'response')
        assert handler(client, backend, False) is True
        assert client_peer.recv(100) == b'response'
        client_peer.shutdown(socket.SHUT_WR)
        assert handler(client, backend, True) is False


def test_dummy_is_registered():
    assert get_handlers()['dummy'] is Dummy
    assert Dummy.name == 'dummy' and Dummy.options == {}
    assert Dummy.__doc__.strip()


def test_dummy_named_explicitly(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:dummy',
                           backend=echo_server.address)
    payload = os.urandom(3 << 20)
    with proxy.connect() as sock:
        got = []
        reader = threading.Thread(target=lambda: got.append(support.recv_all(sock)))
        reader.start()
        for i in range(0, len(payload), 100000):
            sock.sendall(payload[i:i + 100000])
        sock.shutdown(socket.SHUT_WR)
        reader.join(30)
    assert got[0] == payload


def test_dummy_http_keep_alive(vaurien_inproc, http_server):
    proxy = vaurien_inproc('--behavior', '100:dummy',
                           backend=http_server.address)
    with proxy.connect() as sock:
        for _ in range(3):
            sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            head = b''
            while b'\r\n\r\n' not in head:
                head += sock.recv(1)
            assert head.startswith(b'HTTP/1.1 200')
            assert support.recv_exact(sock, len(support.BODY)) == support.BODY
