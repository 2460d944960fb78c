"""``python -m SimpleHTTPServer [PORT]``, as the original suites run it.

Python 2's module, for Python 3: it serves the current directory over HTTP
with ``http.server``, like ``python -m http.server PORT``. Under the
original suites, ``tests/conftest.py`` already listens on the port and
hands the socket over the Unix socket named by ``VAURIEN_TEST_LISTENER``:
a request sent before this process is up waits in the queue instead of
being refused. Otherwise it listens itself, first thing.
"""
import os
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000

_HANDOVER = os.environ.get('VAURIEN_TEST_LISTENER')
if _HANDOVER:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as _unix:
        _unix.connect(_HANDOVER)
        _, _fds, _, _ = socket.recv_fds(_unix, 1, 1)
    listener = socket.socket(fileno=_fds[0])
else:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('', PORT))
    listener.listen(128)

from http.server import HTTPServer, SimpleHTTPRequestHandler  # noqa: E402

server = HTTPServer(('', PORT), SimpleHTTPRequestHandler,
                    bind_and_activate=False)
server.socket.close()
server.socket = listener
print('Serving HTTP on 0.0.0.0 port %d ...' % PORT, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
