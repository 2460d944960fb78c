"""The pytest plugin: test files using ``vaurien_proxy``, run by pytester."""
import os
import shutil
from importlib import metadata

import pytest

import support

pytest_plugins = ['pytester']
pytestmark = pytest.mark.timeout(180)

EXAMPLE = os.path.join(support.ROOT, 'examples', 'test_with_vaurien.py')


def _installed():
    return any(ep.value == 'vaurien.pytest_plugin'
               for ep in metadata.entry_points(group='pytest11'))


@pytest.fixture
def run(pytester, monkeypatch):
    """Run pytest in a subprocess on pytester's directory, with the plugin
    (by -p while vaurien is not installed: the entry point does it then)."""
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [support.ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))

    def run(*args):
        plugin = [] if _installed() else ['-p', 'vaurien.pytest_plugin']
        return pytester.runpytest_subprocess(
            *plugin, '-p', 'no:cacheprovider', '--timeout', '90', *args,
            timeout=170)
    return run


def test_the_documented_example_passes(pytester, run):
    shutil.copy(EXAMPLE, pytester.path)
    result = run('-v', 'test_with_vaurien.py')
    result.assert_outcomes(passed=5)


def test_fixture_attributes_and_cleanup(pytester, run, tmp_path):
    pids = tmp_path / 'pids'
    pytester.makepyfile(test_inner='''
        import socket
        import threading

        from vaurien import Client


        def echo_backend():
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(8)

            def serve():
                while True:
                    conn, _ = server.accept()
                    data = conn.recv(100)
                    conn.sendall(data)
                    conn.close()
            threading.Thread(target=serve, daemon=True).start()
            return server.getsockname()

        def exchange(proxy):
            with socket.create_connection(proxy.address, timeout=10) as sock:
                sock.sendall(b"ping")
                try:
                    return sock.recv(100)
                except ConnectionResetError:
                    return b""

        def test_attributes(vaurien_proxy):
            backend = echo_backend()
            proxy = vaurien_proxy(backend=backend, behavior="100:dummy")
            open(%(pids)r, "a").write("%%d\\n" %% proxy.pid)
            assert proxy.host == "127.0.0.1"
            assert proxy.address == (proxy.host, proxy.port)
            assert isinstance(proxy.client, Client)
            assert exchange(proxy) == b"ping"
            with proxy.with_handler("blackout"):
                assert proxy.client.get_handler() == "blackout"
                assert exchange(proxy) == b""
            assert proxy.client.get_handler() == "dummy"
            assert "proxying 127.0.0.1:%%d" %% proxy.port in proxy.log()
            # Two proxies in one test, with their own ports.
            other = vaurien_proxy(backend="%%s:%%d" %% backend,
                                  behavior="100:delay",
                                  options={"delay": {"sleep": 0.01}})
            open(%(pids)r, "a").write("%%d\\n" %% other.pid)
            assert other.port != proxy.port
            assert other.client.get_handler() == "delay"
            assert exchange(other) == b"ping"

        def test_failing(vaurien_proxy):
            proxy = vaurien_proxy(backend=echo_backend())
            open(%(pids)r, "a").write("%%d\\n" %% proxy.pid)
            assert False, "this test fails on purpose"

        def test_bad_behavior(vaurien_proxy):
            vaurien_proxy(backend=("127.0.0.1", 1), behavior="100:nope")
    ''' % {'pids': str(pids)})
    result = run('-v', 'test_inner.py')
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        '*this test fails on purpose*',
        '*vaurien proxy pid*',
        '*proxying 127.0.0.1:*',
    ])
    assert 'During handling' not in result.stdout.str()
    result.stdout.fnmatch_lines([
        "*vaurien_proxy: vaurien exited with status 2 at start-up: "
        "vaurien: error: unknown handler 'nope'*"])
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) == 3
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_entry_point_is_declared():
    with open(os.path.join(support.ROOT, 'setup.py')) as fh:
        text = fh.read()
    assert "'pytest11': [" in text
    assert "'vaurien = vaurien.pytest_plugin'" in text
