"""Fixtures: real backends and a real vaurien process, all on 127.0.0.1."""
import compileall
import os
import socket
import subprocess
import sys
import threading
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import inproc  # noqa: E402
import support  # noqa: E402
import toxiproxy_support  # noqa: E402


# -- the quick subset -------------------------------------------------------------
#
# ``python -m pytest -m quick``: every test that runs in this process, with
# no child process and no server binary: the parsers, the settings, the
# registry, the in-process proxy. A test is left out when it uses one of
# SLOW_FIXTURES or when its code, or the code of a test helper it calls
# (followed through the names it uses), names one of PROCESS_NAMES.
# ``vaurien_inproc`` starts no process, but the handler tests that use it
# wait out their faults (seconds each): they are not for the edit-test loop.

SLOW_FIXTURES = frozenset([
    'vaurien', 'vaurien_proxy', 'pytester', 'redis_backend',
    'memcached_backend', 'mysql_backend', 'smtp_backend', 'smtp_tls_backend',
    'module_vaurien', 'vaurien_inproc', 'httpserver_app', 'toxiproxy',
    'toxiproxy_python', 'named_vaurien',
])
PROCESS_NAMES = frozenset([
    'subprocess', 'run_cli', 'VaurienProcess', 'start_proxy', 'ProxyProcess',
    'soak', 'ToxiproxyServer', 'NamedVaurien',
    'Browser',     # tests/browser_support.py: a headless Chromium
])


def _names(code):
    """The global and attribute names *code* and its nested code use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _starts_a_process(function, seen=None):
    """True when *function*, or a function of tests/ it names, names one of
    PROCESS_NAMES."""
    seen = set() if seen is None else seen
    code = getattr(function, '__code__', None)
    if code is None or code in seen:
        return False
    seen.add(code)
    names = _names(code)
    if names & PROCESS_NAMES:
        return True
    scope = function.__globals__
    for name in names:
        target = scope.get(name)
        if isinstance(target, type):
            target = getattr(target, '__init__', None)
        if isinstance(target, types.FunctionType) and \
                target.__code__.co_filename.startswith(HERE):
            if _starts_a_process(target, seen):
                return True
        elif isinstance(target, types.ModuleType) and \
                (getattr(target, '__file__', None) or '').startswith(HERE):
            for attribute in names:
                helper = getattr(target, attribute, None)
                if isinstance(helper, type):
                    helper = getattr(helper, '__init__', None)
                if isinstance(helper, types.FunctionType) and \
                        _starts_a_process(helper, seen):
                    return True
    return False


def pytest_collection_modifyitems(config, items):
    """Mark ``quick`` the tests that start no process (see above)."""
    for item in items:
        function = getattr(item, 'function', None)
        # a unittest suite starts its processes in setUp
        set_up = getattr(getattr(item, 'cls', None), 'setUp', None)
        if function is not None \
                and SLOW_FIXTURES.isdisjoint(item.fixturenames) \
                and not _starts_a_process(function) \
                and not (set_up is not None and _starts_a_process(set_up)):
            item.add_marker(pytest.mark.quick)


@pytest.fixture(autouse=True)
def _quick_starts_no_process(request, monkeypatch):
    """A ``quick`` test that starts a process fails: the rule above missed
    it, and ``-m quick`` would not be quick any more."""
    if request.node.get_closest_marker('quick') is None:
        yield
        return
    started = []
    original = subprocess.Popen.__init__

    def record(self, args, *rest, **kwargs):
        started.append(args)
        return original(self, args, *rest, **kwargs)
    monkeypatch.setattr(subprocess.Popen, '__init__', record)
    yield
    assert not started, (
        'a quick test started %r: add the helper that does it to '
        'PROCESS_NAMES in tests/conftest.py' % (started,))


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (tox.ini): two workers per core; none (one process)
    for ``-m quick``.

    Most tests wait on sockets, timers and child processes rather than
    compute, so two workers per core keep the cores busy. The quick subset
    runs in one process in less time than the workers take to start.
    """
    if config.getoption('markexpr') == 'quick':
        return 0    # in-process tests: done before workers would be up
    return 2 * (os.cpu_count() or 1)


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
def vaurien_inproc():
    """Factory: ``vaurien_inproc(*args, backend=(host, port))`` runs the
    command's proxy in a thread of this process (``inproc.py``): for the
    tests about a handler, not about the command. Every proxy started is
    stopped at the end of the test."""
    started = []

    def start(*args, **kwargs):
        proxy = inproc.InProcessVaurien(*args, **kwargs)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def recorder():
    """A real TCP backend that records what each connection sent and
    answers it (``fault_support.Recorder``)."""
    from fault_support import Recorder
    server = Recorder()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _simplehttpserver_for_the_original_suites(request, monkeypatch, tmp_path):
    """The original suites start ``python -m SimpleHTTPServer 8888``
    (Python 2's module) and send their first request half a second later:
    tests/SimpleHTTPServer.py is found by their child processes, and it
    serves a socket this fixture already listens with on port 8888 (handed
    over a Unix socket), so that the first request waits in the queue
    rather than being refused when the machine is too loaded for a Python
    process to start in half a second."""
    if not request.module.__name__.startswith('test_original_'):
        yield
        return
    paths = [HERE] + [p for p in os.environ.get('PYTHONPATH', '').split(
        os.pathsep) if p]
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(paths))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('', 8888))
    listener.listen(128)
    path = str(tmp_path / 'listener.sock')
    handover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handover.bind(path)
    handover.listen(8)
    handover.settimeout(0.2)
    done = threading.Event()

    def hand_over():
        while not done.is_set():
            try:
                conn, _ = handover.accept()
            except OSError:
                continue
            with conn:
                socket.send_fds(conn, [b'L'], [listener.fileno()])
    thread = threading.Thread(target=hand_over, daemon=True)
    thread.start()
    monkeypatch.setenv('VAURIEN_TEST_LISTENER', path)
    try:
        yield
    finally:
        done.set()
        thread.join(5)
        handover.close()
        listener.close()


def pytest_configure(config):
    if not hasattr(config, 'workerinput'):
        # Once, before the xdist workers start: the tests start hundreds of
        # Python processes on this tree, and where PYTHONDONTWRITEBYTECODE
        # is set none of them would leave its compiled modules behind, so
        # each would compile every module it imports from source again
        # (about 80 ms of CPU per process). Compiled once here, they are
        # read by all (a changed source file is recompiled as usual).
        for name in ('vaurien', 'benchmarks', 'tests'):
            compileall.compile_dir(os.path.join(ROOT, name), quiet=2)
    # Known to pytest-xdist (--dist loadgroup); declared here too so that a
    # run without xdist (-p no:xdist) does not warn about it.
    config.addinivalue_line(
        'markers', 'xdist_group(name): tests run by one xdist worker, in '
                   'turn (fixed_ports: the tests on the original default '
                   'ports 8000, 8080 and 8888)')


@pytest.fixture
def toxiproxy():
    """A running ``vaurien-toxiproxy`` (seed 1) on a free port, stopped
    afterwards (:class:`toxiproxy_support.ToxiproxyServer`)."""
    server = toxiproxy_support.ToxiproxyServer()
    yield server
    server.stop()
