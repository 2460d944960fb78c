"""Waiting for a condition by polling, with a deadline: the one loop.

``start_proxy`` and the pytest plugin (:mod:`vaurien.testing`), the test
suite and the benchmarks wait for a process to be ready, a port to
listen or a connection to end with :func:`wait_for`; :func:`port_open`
is the usual condition. Standard library only, and blocking: for the
process that waits, not for the proxy's own gevent loop.
"""
import socket
import time

__all__ = ['wait_for', 'port_open']


def wait_for(predicate, timeout, what='condition', interval=0.02,
             error=TimeoutError):
    """Call *predicate* every *interval* seconds until it returns a true
    value, and return that value.

    After *timeout* seconds (*predicate* is called once more at the
    deadline), raise ``error('timed out after Ns waiting for WHAT')``.
    An exception raised by *predicate* ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error('timed out after %gs waiting for %s' % (timeout, what))
        time.sleep(interval)


def port_open(host, port, timeout=0.5):
    """True if something accepts TCP connections on *host*:*port* now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
