"""The ``vaurien`` command line (vaurien/run.py), run as a user runs it."""
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

import vaurien
from vaurien.config import SETTINGS

import support


def assert_user_error(result, *words):
    """Exit 2, one stderr line ``vaurien: error: ...`` with *words*, no
    traceback, nothing on stdout."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert 'Traceback' not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith('vaurien: error: '), line
    for word in words:
        assert word in line, (word, line)
    assert result.stdout == ''
    return line


@pytest.fixture
def raiser_dir(tmp_path):
    support.write_module(tmp_path, 'raiser',
                         'raise RuntimeError("broken on purpose")\n')
    support.write_module(tmp_path, 'okmod', textwrap.dedent('''
        from vaurien.handlers import BaseHandler

        class Fine(BaseHandler):
            name = 'fine'

            def __call__(self, client_sock, backend_sock, to_backend):
                return super().__call__(client_sock, backend_sock,
                                        to_backend)

        NOT_CALLABLE = 42

        class Grumpy(BaseHandler):
            name = 'grumpy'

            def __init__(self, settings=None, proxy=None):
                super().__init__(settings, proxy)
                raise ValueError('will not be built')

            def __call__(self, client_sock, backend_sock, to_backend):
                return True
    '''))
    return tmp_path


BAD_ARGS = [
    # unknown handler: the known ones are listed
    (['--behavior', '10:nosuch'],
     ["unknown handler 'nosuch'", 'known: abort, bandwidth, blackout, ',
      ' delay, dummy, error, hang, ']),
    # malformed entries
    (['--behavior', 'delay'], ["'delay' is not PERCENT:NAME"]),
    (['--behavior', '10:delay,,5:error'], ['empty entry']),
    (['--behavior', '10'], ['PERCENT:NAME']),
    # not a whole percent
    (['--behavior', '2.5:delay'], ['whole number']),
    (['--behavior=-3:delay'], ['whole number']),
    (['--behavior', '150:delay'], ['whole number']),
    # over 100
    (['--behavior', '60:delay, 50:error'], ['add up to 110']),
    # unimportable dotted paths: module, attribute, or not callable
    (['--behavior', '10:nosuchmod.Handler'],
     ["cannot load 'nosuchmod.Handler'", "no module named 'nosuchmod'"]),
    (['--behavior', '10:vaurien.handlers.delay.Nope'],
     ["'vaurien.handlers.delay' has no attribute 'Nope'"]),
    (['--behavior', '10:vaurien.handlers.delay:Nope'],
     ["has no attribute 'Nope'"]),
    (['--behavior', '10:vaurien.nosuchsub.Handler'],
     ["no module named 'vaurien.nosuchsub'"]),
    # bad HOST:PORT
    (['--distant', 'localhost'], ['--distant', 'HOST:PORT']),
    (['--distant', 'localhost:99999'], ['--distant', '65535']),
    (['--local', 'localhost:http'], ['--local', 'HOST:PORT']),
    (['--distant', '127.0.0.1:0'], ['--distant', 'between 1 and 65535']),
    # wrong option values
    (['--handlers.delay.sleep', 'abc'],
     ["delay: option 'sleep' expects a number", "got 'abc'"]),
    (['--handlers.delay.sleep=-2'], ["delay: option 'sleep' expects"]),
    (['--handlers.delay.before', 'sometimes'],
     ["delay: option 'before' expects a boolean"]),
    (['--handlers.error.warmup', '1.5'], ["error: option 'warmup' expects"]),
    (['--handlers.hang.direction', 'left'],
     ["hang: option 'direction' expects one of both, upstream, downstream"]),
    (['--bufsize', 'big'], ['--bufsize expects an integer', "'big'"]),
    (['--bufsize', '0'], ['--bufsize expects a whole number above 0']),
    (['--timeout', 'soon'], ['--timeout expects a number']),
    (['--timeout', '0'], ['--timeout expects']),
    (['--seed', 'x'], ['--seed expects']),
    (['--log-level', 'loud'],
     ['--log-level expects one of debug, info, warning, error, critical']),
    # unknown options of built-in handlers: the valid ones are listed
    (['--handlers.delay.colour', 'red'],
     ["delay: unknown option 'colour'", 'before, direction, jitter, sleep']),
    (['--handlers.dummy.speed', '1'],
     ["dummy: unknown option 'speed' (valid options: direction)"]),
    (['--handlers.nosuch.x', '1'], ["unknown handler 'nosuch'"]),
    # malformed handler options and unknown flags
    (['--handlers.delay.sleep'], ['--handlers.delay.sleep expects a value']),
    (['--handlers.delay', '1'], ['--handlers.NAME.OPTION']),
    (['--frobnicate'], ['unrecognized arguments: --frobnicate']),
    (['stray'], ['unrecognized arguments: stray']),
    # a listening address that does not resolve
    (['--local', 'nonexistent.invalid:0'],
     ['cannot listen on nonexistent.invalid:0']),
    # missing config file
    (['--config', '/nonexistent/vaurien.ini'],
     ['/nonexistent/vaurien.ini', 'no such file']),
]


@pytest.mark.parametrize('args, words', BAD_ARGS,
                         ids=[' '.join(a) for a, _ in BAD_ARGS])
def test_bad_input(args, words):
    assert_user_error(support.run_cli(*args), *words)


def test_module_raising_on_import(raiser_dir):
    result = support.run_cli('--behavior', '10:raiser.Handler',
                             extra_paths=[str(raiser_dir)])
    assert_user_error(result, "importing 'raiser' failed",
                      'RuntimeError: broken on purpose')


def test_dotted_path_not_callable(raiser_dir):
    result = support.run_cli('--behavior', '10:okmod.NOT_CALLABLE',
                             cwd=str(raiser_dir))
    assert_user_error(result, "'okmod.NOT_CALLABLE'", 'not a class or a callable')


def test_handler_failing_to_build(raiser_dir):
    result = support.run_cli('--behavior', '10:okmod.Grumpy',
                             cwd=str(raiser_dir))
    # known by its class's name (the seed's rule), as it is everywhere
    assert_user_error(result, 'grumpy: could not be created',
                      'ValueError: will not be built')


def test_config_is_a_directory(tmp_path):
    # tests run as root here, so chmod 000 would not stop a read: a
    # directory is a config path that cannot be read either
    assert_user_error(support.run_cli('--config', str(tmp_path)),
                      str(tmp_path), 'is a directory')


def test_config_unreadable(tmp_path):
    prefix = support.unprivileged_prefix()
    if prefix is None:
        pytest.skip('root without setpriv reads any file')
    path = tmp_path / 'secret.ini'
    path.write_text('[vaurien]\n')
    path.chmod(0)
    assert_user_error(support.run_cli('--config', str(path), prefix=prefix),
                      'permission denied')


INI_ERRORS = [
    ('this is not ini\n', ['not valid INI']),
    ('[vaurien]\nbehavior = 10:delay\nbehavior = 20:delay\n',
     ['not valid INI', 'behavior']),
    ('[vaurien]\nbehavior = 10:nosuch\n', ["unknown handler 'nosuch'"]),
    ('[vaurien]\nbehavior = 70:delay,70:error\n', ['add up to 140']),
    ('[vaurien]\ndistant = nowhere\n', ['[vaurien] distant expects HOST:PORT']),
    ('[vaurien]\nbufsize = lots\n', ['[vaurien] bufsize expects an integer']),
    ('[vaurien]\ncolour = red\n', ["unknown key 'colour'"]),
    ('[vaurien]\ndistant = h:${VAURIEN_TEST_UNSET_VAR}\n',
     ['${VAURIEN_TEST_UNSET_VAR}', 'not set']),
    ('[handler:delay]\nsleep = long\n', ["delay: option 'sleep' expects"]),
    ('[handler:nosuch]\nx = 1\n', ['[handler:nosuch] has no "callable"']),
    ('[handler:foobar]\ncallable = nosuchmod.X\n',
     ["no module named 'nosuchmod'"]),
    ('[elsewhere]\nx = 1\n', ['unknown section [elsewhere]']),
]


@pytest.mark.parametrize('text, words', INI_ERRORS,
                         ids=[t.splitlines()[-1] for t, _ in INI_ERRORS])
def test_bad_ini(tmp_path, text, words):
    path = tmp_path / 'bad.ini'
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, '-m', 'vaurien', '--config', str(path)],
        cwd=support.ROOT,
        env=_without(support.env_with_root(), 'VAURIEN_TEST_UNSET_VAR'),
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert_user_error(result, *words)


def _without(env, name):
    env = dict(env)
    env.pop(name, None)
    return env


def test_port_already_in_use(echo_server):
    with socket.socket() as taken:
        taken.bind((support.HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = support.run_cli('--local', '%s:%d' % (support.HOST, port),
                                 '--distant', '%s:%d' % echo_server.address)
    assert_user_error(result, 'cannot listen on 127.0.0.1:%d' % port,
                      'address already in use')


def test_log_output_unwritable(tmp_path):
    result = support.run_cli('--log-output', str(tmp_path),
                             '--local', '127.0.0.1:0')
    assert_user_error(result, 'cannot write the log to %s' % tmp_path)


# -- help, version, entry points ---------------------------------------------------------

def test_help_lists_every_option_with_default():
    result = support.run_cli('--help')
    assert result.returncode == 0
    # one block of help per option: from its "  --flag" line to the next
    blocks = {}
    flag = None
    for line in result.stdout.split('\n', 1)[1].split('options:', 1)[1] \
            .splitlines():
        if line.startswith('  -'):
            flag = line.split()[0].rstrip(',')
            blocks[flag] = line
        elif flag is not None and line.startswith('   '):
            blocks[flag] += ' ' + line.strip()
        else:
            flag = None
    blocks = {f: ' '.join(b.split()) for f, b in blocks.items()}
    for setting in SETTINGS:
        assert setting.flag in blocks, setting.flag
        assert '(default: ' in blocks[setting.flag], blocks[setting.flag]
    text = ' '.join(blocks.values())
    for flag, default in [('--local', 'localhost:8000'),
                          ('--distant', 'localhost:80'),
                          ('--behavior', '100:dummy'), ('--bufsize', '65536'),
                          ('--timeout', '30'), ('--log-level', 'info')]:
        assert '(default: %s' % default in blocks[flag], blocks[flag]
    for flag in ('--handlers.delay.sleep', '--handlers.delay.before',
                 '--handlers.error.inject', '--handlers.error.warmup'):
        assert '(default: ' in blocks[flag], blocks[flag]
    assert 'delay: Delay in seconds' in text
    assert '--config' in text and '--version' in text and '--seed' in text
    epilog = ' '.join(result.stdout.split())
    assert '--handlers.NAME.OPTION' in epilog
    from vaurien.handlers import BUILTINS
    assert 'Built-in handlers: %s.' % ', '.join(sorted(BUILTINS)) in epilog
    assert '--handlers.NAME.direction (both|upstream|downstream)' in epilog
    assert '(default: both)' in epilog


def test_version():
    result = support.run_cli('--version')
    assert result.returncode == 0
    assert result.stdout.strip() == 'vaurien %s' % vaurien.__version__


@pytest.mark.skipif(shutil.which('vaurien') is None,
                    reason='the vaurien console script is not installed')
def test_console_script():
    result = subprocess.run(['vaurien', '--version'], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == 'vaurien %s' % vaurien.__version__


def test_python_dash_m_serves(vaurien, echo_server):
    # VaurienProcess runs "python -m vaurien", the way a user may
    proxy = vaurien(backend=echo_server.address)
    assert proxy.argv[1:3] == ['-m', 'vaurien']
    with proxy.connect() as sock:
        sock.sendall(b'ping')
        assert support.recv_exact(sock, 4) == b'ping'


# -- precedence and INI values ---------------------------------------------------------------

_PROXYING = re.compile(r'proxying (\S+) -> (\S+), behavior (\S*), pick per '
                       r'(\w+), protocol \S+, seed (\d+)')


def proxying(proxy):
    """(local, distant, behavior, pick, seed) from the start-up line."""
    return _PROXYING.search(proxy.log()).groups()


def test_defaults(vaurien_inproc):
    proxy = vaurien_inproc()
    local, distant, behavior, pick, _ = proxying(proxy)
    assert local == '127.0.0.1:%d' % proxy.port
    assert distant == 'localhost:80'
    assert behavior == '100:dummy'


def test_precedence_defaults_ini_cli(vaurien_inproc, tmp_path):
    ini = tmp_path / 'v.ini'
    ini.write_text(textwrap.dedent('''
        [vaurien]
        distant = 127.0.0.1:1111
        behavior = 20:delay, 10:error
        seed = 77
        timeout = 2
    '''))
    proxy = vaurien_inproc('--config', str(ini))
    _, distant, behavior, _, seed = proxying(proxy)
    assert (distant, behavior, seed) == ('127.0.0.1:1111', '20:delay,10:error',
                                         '77')
    proxy = vaurien_inproc('--config', str(ini), '--distant', '127.0.0.1:2222',
                           '--seed', '78')
    _, distant, behavior, _, seed = proxying(proxy)
    assert (distant, behavior, seed) == ('127.0.0.1:2222', '20:delay,10:error',
                                         '78')
    proxy = vaurien_inproc('--behavior', '5:hang', '--config', str(ini))
    assert proxying(proxy)[2] == '5:hang'


def test_ini_values(vaurien_inproc, echo_server, tmp_path, monkeypatch):
    """integers, true/false, quoted strings and ${ENV} expansion."""
    ini = tmp_path / 'v.ini'
    ini.write_text(textwrap.dedent('''
        [vaurien]
        distant = "127.0.0.1:${VAURIEN_TEST_BACKEND_PORT}"
        behavior = '100:delay'
        seed = 31337
        bufsize = 4

        [handler:delay]
        sleep = 0
        before = false
    '''))
    monkeypatch.setenv('VAURIEN_TEST_BACKEND_PORT', str(echo_server.port))
    proxy = vaurien_inproc('--config', str(ini))
    _, distant, behavior, _, seed = proxying(proxy)
    assert distant == '127.0.0.1:%d' % echo_server.port
    assert (behavior, seed) == ('100:delay', '31337')
    with proxy.connect() as sock:   # tiny reads (bufsize 4) still relay it all
        message = b'0123456789' * 50
        sock.sendall(message)
        assert support.recv_exact(sock, len(message)) == message


def test_sample_style_ini_with_legacy_key(vaurien_inproc, tmp_path):
    ini = tmp_path / 'v.ini'
    ini.write_text('[vaurien]\nbackend = 127.0.0.1:3333\nproxy = 127.0.0.1:0\n'
                   'stay_connected = 1\n')
    proxy = vaurien_inproc('--config', str(ini))
    assert proxying(proxy)[1] == '127.0.0.1:3333'
    assert "'stay_connected' is from an older Vaurien" in proxy.log()


@pytest.mark.parametrize('level', ['DEBUG', 'Info', 'debug'])
def test_log_level_any_case(vaurien_inproc, level):
    proxy = vaurien_inproc('--log-level', level)
    assert proxying(proxy)


@pytest.mark.timeout(30)
def test_log_level_warning_hides_info(tmp_path, echo_server):
    log = tmp_path / 'out.log'
    # The log hides the line that names the port: the port is given.
    with support.reserved_port() as port:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'vaurien',
             '--local', '127.0.0.1:%d' % port,
             '--distant', '%s:%d' % echo_server.address,
             '--log-level', 'WaRnInG', '--log-output', str(log)],
            cwd=support.ROOT, env=support.env_with_root(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
    try:
        support.wait_until(lambda: proc.poll() is not None
                           or support.port_open(port), what='the port')
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert 'proxying' not in log.read_text()
    assert err == b'' and out == b''


@pytest.mark.timeout(30)
def test_log_output_file(tmp_path, echo_server):
    log = tmp_path / 'out.log'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'vaurien', '--local', '127.0.0.1:0',
         '--distant', '%s:%d' % echo_server.address,
         '--log-output', str(log)],
        cwd=support.ROOT, env=support.env_with_root(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        support.wait_until(lambda: proc.poll() is not None or (
            log.exists() and 'proxying' in log.read_text()), what='the log')
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert err == b'' and out == b''
    text = log.read_text()
    assert '[INFO] proxying 127.0.0.1:' in text
    assert 'stopping' in text


@pytest.mark.timeout(30)
def test_log_to_stderr_by_default(echo_server):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'vaurien', '--local', '127.0.0.1:0',
         '--distant', '%s:%d' % echo_server.address],
        cwd=support.ROOT, env=support.env_with_root(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        first = proc.stderr.readline().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert 'proxying 127.0.0.1:' in first
