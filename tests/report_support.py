"""A real, seeded run whose event log the report tests (and the docs'
example, ``docs/report/events.jsonl``) are made from.

``python tests/report_support.py`` records a fresh run into
``docs/report/events.jsonl`` and regenerates what the docs show of it
(``python -m vaurien.docgen``).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import support  # noqa: E402
from observe_support import finish  # noqa: E402

SEED = 4242
BEHAVIOR = '20:delay,10:error,5:blackout'
ARGS = ('--protocol', 'http', '--seed', str(SEED), '--behavior', BEHAVIOR,
        '--handlers.delay.sleep', '0.1')
CONNECTIONS = 12
REQUESTS = 3
REQUEST = b'GET / HTTP/1.1\r\nHost: backend\r\n\r\n'


def _one_answer(sock):
    """Read one HTTP answer (head and Content-Length body); False when the
    connection ended first."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    length = 0
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


def record(vaurien_factory, path, sent=None):
    """Run the scenario: an HTTP backend, CONNECTIONS clients one after
    the other, each sending REQUESTS keep-alive requests through
    ``vaurien ARGS --event-log path`` (a client whose connection is cut
    or answered garbage moves on). Returns the path; *sent* (a list),
    when given, gets one item per request sent."""
    server = support.HTTPServer()
    try:
        proc = vaurien_factory('--event-log', str(path), *ARGS,
                               backend=server.address)
        for _ in range(CONNECTIONS):
            with proc.connect() as sock:
                sock.settimeout(5)
                try:
                    for _ in range(REQUESTS):
                        sock.sendall(REQUEST)
                        if sent is not None:
                            sent.append(REQUEST)
                        if not _one_answer(sock):
                            break
                except OSError:
                    pass
        support.wait_until(
            lambda: os.path.exists(path) and open(path).read().count(
                '"event":"close"') >= CONNECTIONS or None,
            timeout=30, what='every close line')
        finish(proc)
    finally:
        server.close()
    return path


if __name__ == '__main__':
    target = os.path.join(support.ROOT, 'docs', 'report', 'events.jsonl')
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
        os.remove(target)
    proc = None

    def factory(*args, **kwargs):
        global proc
        proc = support.VaurienProcess(*args, **kwargs)
        return proc
    try:
        record(factory, target)
    finally:
        if proc is not None:
            proc.stop()
    print('recorded %s' % target)
    subprocess.run([sys.executable, '-m', 'vaurien.docgen'], cwd=support.ROOT,
                   env=support.env_with_root(), check=True)
