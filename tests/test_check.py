"""``vaurien --check``: everything loaded and checked, nothing listening."""
import socket
import textwrap

import pytest

import support

OK = 'vaurien: configuration OK\n'


def assert_check_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ''
    assert result.stderr.count('\n') == 1, result.stderr
    assert result.stderr.startswith('vaurien: error: ')
    assert 'Traceback' not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_a_good_configuration_is_ok():
    result = support.run_cli('--check', '--behavior', '20:delay,10:error',
                             '--handlers.delay.sleep', '0.5',
                             '--protocol', 'http', '--http')
    assert (result.returncode, result.stdout) == (0, OK), result.stderr
    assert result.stderr == ''


@pytest.mark.parametrize('args, words', [
    (['--behavior', '10:delay', '--handlers.delay.sleep', 'abc'],
     ["delay: option 'sleep' expects a number, got 'abc'"]),
    (['--handlers.delay.nope', '1'], ['delay', "'nope'"]),
    (['--protocol', 'gopher'], ["unknown protocol 'gopher'"]),
    (['--protocol', 'http', '--protocols.http.nope', '1'], ["'nope'"]),
    (['--behavior', '10:nosuch'], ["unknown handler 'nosuch'"]),
    (['--behavior', '10:okmod.Grumpy'], ['will not be built']),
    (['--event-log', '/nonexistent-dir/events.log'],
     ['cannot write the event log to /nonexistent-dir/events.log: '
      'no such file or directory']),
    (['--log-output', '/nonexistent-dir/vaurien.log'],
     ['cannot write the log to /nonexistent-dir/vaurien.log: '
      'no such file or directory']),
])
def test_a_mistake_is_the_usual_error(args, words, tmp_path):
    support.write_module(tmp_path, 'okmod', textwrap.dedent('''
        from vaurien.handlers import BaseHandler

        class Grumpy(BaseHandler):
            def __init__(self, settings=None, proxy=None):
                super().__init__(settings, proxy)
                raise ValueError('will not be built')

            def __call__(self, client_sock, backend_sock, to_backend):
                return True
    '''))
    result = support.run_cli('--check', *args, extra_paths=[str(tmp_path)])
    assert_check_error(result, *words)


def test_check_reads_the_config_file(tmp_path):
    good = tmp_path / 'good.ini'
    good.write_text(textwrap.dedent('''
        [vaurien]
        behavior = 20:delay, 10:shouty

        [handler:delay]
        sleep = 2

        [handler:shouty]
        callable = myhandlers.Uppercase
        every = 2
    '''))
    examples = str(support.ROOT) + '/examples'
    result = support.run_cli('--check', '--config', str(good),
                             extra_paths=[examples])
    assert (result.returncode, result.stdout) == (0, OK), result.stderr
    bad = tmp_path / 'bad.ini'
    bad.write_text(good.read_text().replace('every = 2', 'every = often'))
    result = support.run_cli('--check', '--config', str(bad),
                             extra_paths=[examples])
    assert_check_error(result, 'shouty', "'every'", "'often'")


def test_check_listens_on_nothing_and_writes_nothing(tmp_path):
    # Both ports taken: serving would fail to bind, checking does not bind.
    with socket.socket() as proxy_port, socket.socket() as api_port:
        for sock in (proxy_port, api_port):
            sock.bind((support.HOST, 0))
            sock.listen(1)
        events = tmp_path / 'events.log'
        logged = tmp_path / 'vaurien.log'
        result = support.run_cli(
            '--check', '--local', '%s:%d' % proxy_port.getsockname(),
            '--http', '--http-host', support.HOST,
            '--http-port', str(api_port.getsockname()[1]),
            '--event-log', str(events), '--log-output', str(logged))
        assert (result.returncode, result.stdout) == (0, OK), result.stderr
        assert not events.exists() and not logged.exists()
        # Without --check, the same settings fail at the bind.
        serving = support.run_cli(
            '--local', '%s:%d' % proxy_port.getsockname(),
            '--event-log', str(events), timeout=30)
    assert serving.returncode == 2 and 'already in use' in serving.stderr


def test_check_with_workers_and_demo_only_checks():
    for extra in (['--workers', '2'], ['--demo']):
        result = support.run_cli('--check', *extra, timeout=30)
        assert (result.returncode, result.stdout) == (0, OK), result.stderr


def test_the_documented_examples():
    """The console examples of docs/configuration.rst, run from the top
    of the source tree."""
    import re
    path = support.ROOT + '/docs/configuration.rst'
    with open(path, encoding='utf-8') as fh:
        text = fh.read()
    section = text.split('Checking a configuration\n', 1)[1]
    section = section.split('\n---', 1)[0]
    block = section.split('.. code-block:: console\n\n', 1)[1]
    examples = re.findall(r'^    \$ vaurien (.*)\n    (.*)$', block, re.M)
    assert len(examples) == 2
    for args, expected in examples:
        result = support.run_cli(*args.split())
        assert (result.stdout + result.stderr).strip() == expected
        assert result.returncode == (0 if expected == OK.strip() else 2)


def test_python_m_vaurien_run_is_the_same_command():
    result = support.run_cli('--check', module='vaurien.run')
    assert (result.returncode, result.stdout) == (0, OK), result.stderr
    result = support.run_cli('--check', '--protocol', 'gopher',
                             module='vaurien.run')
    assert_check_error(result, "unknown protocol 'gopher'")
