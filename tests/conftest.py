"""Fixtures: real backends and a real vaurien process, all on 127.0.0.1."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import support  # noqa: E402


@pytest.fixture
def echo_server():
    """A real TCP echo server; ``.address`` is (host, port)."""
    server = support.TCPServer(support.echo)
    yield server
    server.close()


@pytest.fixture
def hash_server():
    """A real TCP server that reads to EOF then answers "sha256 count"."""
    server = support.TCPServer(support.sink_then_hash)
    yield server
    server.close()


@pytest.fixture
def http_server():
    """A real HTTP/1.1 server (keep-alive) serving ``support.BODY`` on GET."""
    server = support.HTTPServer()
    yield server
    server.close()


@pytest.fixture
def vaurien():
    """Factory: ``vaurien(*args, backend=(host, port))`` starts the CLI.

    Every process started is stopped at the end of the test.
    """
    started = []

    def start(*args, **kwargs):
        proc = support.VaurienProcess(*args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def recorder():
    """A real TCP backend that records what each connection sent and
    answers it (``fault_support.Recorder``)."""
    from fault_support import Recorder
    server = Recorder()
    yield server
    server.close()


def pytest_configure(config):
    # Known to pytest-xdist (--dist loadgroup); declared here too so that a
    # run without xdist (-p no:xdist) does not warn about it.
    config.addinivalue_line(
        'markers', 'xdist_group(name): tests run by one xdist worker, in '
                   'turn (fixed_ports: the tests on the original default '
                   'ports 8000, 8080 and 8888)')
