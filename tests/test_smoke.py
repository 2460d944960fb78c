import os
import socket
import threading

import support


def test_dummy_echo_roundtrip(vaurien, echo_server):
    proxy = vaurien(backend=echo_server.address)
    with proxy.connect() as sock:
        payload = os.urandom(1 << 20)
        got = []
        reader = threading.Thread(target=lambda: got.append(support.recv_all(sock)))
        reader.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reader.join(20)
    assert got and support.sha256(got[0]) == support.sha256(payload)
