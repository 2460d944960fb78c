"""vaurien/handlers/base.py: the handler author's API.

Every built-in handler uses the public helpers; the older names stay
working as aliases; the helpers work on bare sockets too (no proxy).
"""
import ast
import os
import random
import socket

import pytest

import support
from vaurien.handlers import BaseHandler

pytestmark = pytest.mark.timeout(10)

HELPERS = {'_get_data': 'read', '_forward': 'forward', '_sleep': 'sleep',
           '_random': 'random', '_state': 'state',
           '_connection': 'connection'}


def test_the_older_names_are_aliases():
    for old, new in HELPERS.items():
        assert getattr(BaseHandler, old) is getattr(BaseHandler, new), old


def test_every_builtin_uses_only_the_public_helpers():
    folder = os.path.join(support.ROOT, 'vaurien', 'handlers')
    found = []
    for filename in sorted(os.listdir(folder)):
        if not filename.endswith('.py') or filename == 'base.py':
            continue
        with open(os.path.join(folder, filename), encoding='utf-8') as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and (
                    node.attr in HELPERS or node.attr == 'conn'):
                found.append('%s:%d .%s' % (filename, node.lineno, node.attr))
    assert not found, found


class Count(BaseHandler):
    name = 'count'

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        state = self.state(client_sock)
        state['bytes'] = state.get('bytes', 0) + len(data)
        if data:
            self.forward(client_sock, backend_sock, to_backend, data)
        return bool(data)


def test_helpers_on_bare_sockets():
    """Outside a proxy: reads and sends on the sockets given, state per
    socket, the random module, a plain sleep, no connection."""
    client, client_peer = socket.socketpair()
    backend, backend_peer = socket.socketpair()
    with client, client_peer, backend, backend_peer:
        handler = Count()
        client_peer.sendall(b'abc')
        assert handler(client, backend, True)
        assert backend_peer.recv(10) == b'abc'
        backend_peer.sendall(b'xy')
        assert handler(client, backend, False)
        assert client_peer.recv(10) == b'xy'
        # Kept per socket outside a proxy (per connection inside one).
        assert handler.state(client) == {'bytes': 5}
        assert handler.state(backend) == {}
        assert Count().state(client) == {}
        assert handler.random(client) is random
        assert handler.connection(client) is None
        handler.sleep(0)
        backend_peer.close()
        assert handler(client, backend, False) is False
