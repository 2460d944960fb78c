"""What the original suites imported from ``vaurien.tests.support``.

Re-typed for Python 3: ``start_simplehttp_server`` runs ``python -m
SimpleHTTPServer`` (tests/SimpleHTTPServer.py, which ``tests/conftest.py``
makes importable) on *port*, as 1.x did, and returns its process. Unlike
1.x, it returns once the server accepts connections (polled, at most
10 s), so a loaded machine does not make the suites' first request race
the server's start-up.
"""
import subprocess
import sys

from vaurien.poll import port_open, wait_for

__all__ = ['start_simplehttp_server']


def start_simplehttp_server(port=8888):
    cmd = [sys.executable, '-m', 'SimpleHTTPServer', str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: server.poll() is not None
                 or port_open('localhost', port), 10,
                 'SimpleHTTPServer on port %d' % port)
    except TimeoutError:
        pass    # as 1.x: the suite's own requests say what went wrong
    return server
