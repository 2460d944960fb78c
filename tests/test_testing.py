"""start_proxy / stop_proxy (vaurien/testing.py), with real processes."""
import os
import socket
import subprocess
import sys

import pytest

import support

pytestmark = pytest.mark.timeout(90)

WARMUP = 30   # seconds: a bound, not a sleep; the machine is shared


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _exchange(port, data=b'ping'):
    with socket.create_connection((support.HOST, port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(100)


@pytest.fixture
def stop_later():
    from vaurien import stop_proxy
    pids = []
    yield pids.append
    for pid in pids:
        stop_proxy(pid)


def test_start_and_stop(echo_server):
    from vaurien import Client, start_proxy, stop_proxy
    with support.reserved_port() as port, \
            support.reserved_port() as http_port:
        pid = start_proxy(proxy_host=support.HOST, proxy_port=port,
                          backend_host=support.HOST,
                          backend_port=echo_server.port,
                          http_host=support.HOST, http_port=http_port,
                          warmup=WARMUP, log_output=os.devnull)
    try:
        assert isinstance(pid, int) and _alive(pid)
        assert _exchange(port) == b'ping'
        client = Client(support.HOST, http_port)
        assert client.get_proxy()['pid'] == pid
    finally:
        stop_proxy(pid)
    assert not _alive(pid)
    assert not support.port_open(port)
    stop_proxy(pid)   # twice is harmless


def test_behavior_options_and_no_http(echo_server, stop_later):
    from vaurien import start_proxy
    with support.reserved_port() as port:
        pid = start_proxy(proxy_host=support.HOST, proxy_port=port,
                          backend_host=support.HOST,
                          backend_port=echo_server.port, http=False,
                          warmup=WARMUP, behavior='100:delay',
                          options={'delay': {'sleep': 0.01, 'before': True}},
                          log_output=os.devnull)
    stop_later(pid)
    assert _exchange(port) == b'ping'


def test_options_as_a_list_of_arguments(echo_server, stop_later, tmp_path):
    from vaurien import Client, start_proxy
    log = tmp_path / 'vaurien.log'
    with support.reserved_port() as port, \
            support.reserved_port() as http_port:
        pid = start_proxy(proxy_host=support.HOST, proxy_port=port,
                          backend_host=support.HOST,
                          backend_port=echo_server.port,
                          http_host=support.HOST, http_port=http_port,
                          warmup=WARMUP,
                          options=['--behavior', '100:delay',
                                   '--handlers.delay.sleep', '0.01'],
                          log_output=str(log), log_level='debug')
    stop_later(pid)
    assert Client(support.HOST, http_port).get_behavior_state() == {
        'behavior': 'delay', 'options': {'delay': {'sleep': 0.01}}}
    assert 'behavior 100:delay' in log.read_text()


def test_failure_raises_with_the_proxy_error_output(echo_server):
    from vaurien import start_proxy
    from vaurien.testing import ProxyStartError
    with socket.socket() as taken:
        taken.bind((support.HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ProxyStartError) as info:
            start_proxy(proxy_host=support.HOST, proxy_port=port,
                        backend_port=echo_server.port, http=False,
                        warmup=WARMUP)
    assert ('vaurien: error: cannot listen on 127.0.0.1:%d: address already '
            'in use' % port) in str(info.value)
    assert 'exited with status 2' in str(info.value)
    # The original raised ValueError: code catching it still works.
    assert isinstance(info.value, ValueError)


def _run_python(code):
    """Run *code* in a fresh interpreter (this tree importable); its
    CompletedProcess, with what it wrote on stdout and stderr."""
    return subprocess.run([sys.executable, '-c', code],
                          env=support.env_with_root(), capture_output=True,
                          text=True, timeout=80)


def test_the_log_is_captured_not_mixed_into_stderr(echo_server):
    # A caller's stderr stays its own; the proxy's log is read with
    # proxy_log(), also after stop_proxy().
    with socket.socket() as holder:
        holder.bind((support.HOST, 0))
        port = holder.getsockname()[1]
    result = _run_python(
        'from vaurien.testing import start_proxy, stop_proxy, proxy_log\n'
        'pid = start_proxy(proxy_host="127.0.0.1", proxy_port=0,\n'
        '                  backend_host="127.0.0.1", backend_port=%d,\n'
        '                  http_host="127.0.0.1", http_port=0, http=False,\n'
        '                  warmup=%d, log_level="debug")\n'
        'running = proxy_log(pid)\n'
        'stop_proxy(pid)\n'
        'print(repr(running))\n'
        'print(repr(proxy_log(pid)))\n' % (echo_server.port, WARMUP))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    running, stopped = [eval(line) for line in result.stdout.splitlines()]
    assert 'proxying 127.0.0.1:' in running
    assert stopped.startswith(running) and '[INFO] stopping' in stopped


def _old_ini(tmp_path):
    """An INI file with a key of an older Vaurien: a warning logged before
    anything is started."""
    ini = tmp_path / 'old.ini'
    ini.write_text('[vaurien]\nstay_connected = 1\n')
    return str(ini)


OLD_KEY = "key 'stay_connected' is from an older Vaurien and has no effect"


def test_a_failed_start_says_the_error_once_with_the_log_tail(tmp_path):
    with socket.socket() as taken:
        taken.bind((support.HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _run_python(
            'from vaurien.testing import start_proxy, ProxyStartError\n'
            'try:\n'
            '    start_proxy(proxy_host="127.0.0.1", proxy_port=%d,\n'
            '                http=False, warmup=%d,\n'
            '                options=["--config", %r])\n'
            'except ProxyStartError as exc:\n'
            '    print(exc)\n' % (port, WARMUP, _old_ini(tmp_path)))
    assert result.returncode == 0, result.stderr
    error = ('vaurien: error: cannot listen on 127.0.0.1:%d: address '
             'already in use' % port)
    everything = result.stdout + result.stderr
    assert everything.count(error) == 1, everything
    assert result.stderr == ''
    # The tail of the log comes with it: what was logged before the error.
    assert result.stdout.startswith('vaurien exited with status 2 at '
                                    'start-up: ')
    assert OLD_KEY in result.stdout


def test_a_failed_start_quotes_the_log_file(tmp_path):
    from vaurien import start_proxy
    from vaurien.testing import ProxyStartError
    log = tmp_path / 'proxy.log'
    with socket.socket() as taken:
        taken.bind((support.HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # Something listens on that port: only this process's own start-up
        # line in the log file would mean that it is ready.
        with pytest.raises(ProxyStartError) as info:
            start_proxy(proxy_host=support.HOST, proxy_port=port, http=False,
                        warmup=WARMUP, log_output=str(log),
                        options=['--config', _old_ini(tmp_path)])
    message = str(info.value)
    assert OLD_KEY in message      # from the file
    assert message.count('address already in use') == 1


def test_proxy_log_of_an_unknown_pid():
    from vaurien.testing import proxy_log
    with pytest.raises(LookupError, match='no proxy started here'):
        proxy_log(1)


def test_bad_option_fails_fast(echo_server):
    from vaurien import start_proxy
    from vaurien.testing import ProxyStartError
    with support.reserved_port() as port, \
            support.reserved_port() as http_port, \
            pytest.raises(ProxyStartError, match="delay: option 'sleep' "
                                                 "expects a number"):
        start_proxy(proxy_host=support.HOST, proxy_port=port,
                    http_host=support.HOST, http_port=http_port,
                    warmup=WARMUP, behavior='100:delay',
                    options={'delay': {'sleep': 'abc'}})


def test_stale_proxy_on_the_http_port_is_not_mistaken(echo_server,
                                                      stop_later):
    from vaurien import start_proxy
    from vaurien.testing import ProxyStartError
    with support.reserved_port() as port, \
            support.reserved_port() as http_port:
        first = start_proxy(proxy_host=support.HOST, proxy_port=port,
                            backend_port=echo_server.port,
                            http_host=support.HOST, http_port=http_port,
                            warmup=WARMUP, log_output=os.devnull)
    stop_later(first)
    # Same control port: the second one cannot start, and start_proxy says
    # so instead of trusting the first one's answers.
    with support.reserved_port() as port, \
            pytest.raises(ProxyStartError,
                          match='cannot serve the control API'):
        start_proxy(proxy_host=support.HOST, proxy_port=port,
                    backend_port=echo_server.port, http_host=support.HOST,
                    http_port=http_port, warmup=WARMUP)


def test_not_ready_in_time_is_stopped():
    from vaurien.testing import ProxyProcess, ProxyStartError
    process = ProxyProcess(['--local', '127.0.0.1:0'], echo=False)
    with pytest.raises(ProxyStartError, match='not ready within 0.2s'):
        process.wait_ready(lambda: False, 0.2)
    assert not process.running()


def test_protocol_is_passed_only_when_not_tcp():
    from vaurien.testing import proxy_args
    assert '--protocol' not in proxy_args()
    args = proxy_args(protocol='redis')
    assert args[args.index('--protocol') + 1] == 'redis'


def test_signature_is_compatible_with_the_original():
    import inspect

    from vaurien import start_proxy
    params = list(inspect.signature(start_proxy).parameters.values())
    original = [('proxy_host', 'localhost'), ('proxy_port', 8000),
                ('backend_host', 'localhost'), ('backend_port', 8888),
                ('protocol', 'tcp'), ('http', True), ('warmup', 2),
                ('http_host', 'localhost'), ('http_port', 8080),
                ('options', None), ('log_level', 'info'),
                ('log_output', '-')]
    assert [(p.name, p.default) for p in params[:len(original)]] == original
    names = {p.name for p in params}
    assert {'behavior'} <= names


def test_the_documented_unittest_example_passes():
    result = subprocess.run(
        [sys.executable, '-m', 'unittest', '-v', 'unittest_with_vaurien'],
        cwd=os.path.join(support.ROOT, 'examples'),
        env=support.env_with_root(), capture_output=True, text=True,
        timeout=80)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Ran 2 tests' in result.stderr


def test_seed_era_host_and_port_name_the_backend(echo_server):
    # start_proxy(host, port) of the 2012 releases gave the backend
    from vaurien.util import start_proxy, stop_proxy
    with support.reserved_port() as port, \
            support.reserved_port() as http_port:
        pid = start_proxy(host=support.HOST, port=echo_server.port,
                          proxy_host=support.HOST, proxy_port=port,
                          http_host=support.HOST, http_port=http_port,
                          warmup=WARMUP, log_output=os.devnull)
    try:
        assert _exchange(port) == b'ping'
    finally:
        stop_proxy(pid)
