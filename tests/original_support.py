"""What the original suites imported from ``vaurien.tests.support``.

Re-typed for Python 3: ``start_simplehttp_server`` runs ``python -m
SimpleHTTPServer`` (tests/SimpleHTTPServer.py, which ``tests/conftest.py``
makes importable) on *port*, as 1.x did, and returns its process. Unlike
1.x, it returns once the server accepts connections (polled, at most
10 s), so a loaded machine does not make the suites' first request race
the server's start-up.
"""
import socket
import subprocess
import sys
import time

__all__ = ['start_simplehttp_server']


def start_simplehttp_server(port=8888):
    cmd = [sys.executable, '-m', 'SimpleHTTPServer', str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(('localhost', port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.02)
    return server
