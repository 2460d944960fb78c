"""vaurienctl end to end: a real proxy, the command run as a user runs it."""
import http.client
import os

import pytest

import support
from control_support import api, start_controlled

pytestmark = pytest.mark.timeout(90)


def ctl(*args, env=None):
    return support.run_cli(*args, module='vaurien.ctl', env=env)


@pytest.fixture
def proxy(vaurien_inproc, http_server):
    return start_controlled(vaurien_inproc, http_server.address)


def url(proxy):
    return 'http://127.0.0.1:%d' % proxy.http_port


def test_list_get_set(proxy):
    result = ctl('--host', url(proxy), 'list-handlers')
    assert result.returncode == 0, result.stderr
    # the seed era's output: the names on one line, comma-separated
    assert result.stdout.endswith('\n')
    assert {'blackout', 'delay', 'dummy', 'error', 'hang'} <= set(
        result.stdout[:-1].split(', '))
    result = ctl('--host', url(proxy), 'get-handler')
    assert (result.returncode, result.stdout) == (0, 'dummy\n')

    result = ctl('--host', url(proxy), 'set-handler', 'delay',
                 '--option', 'sleep=0.5', '-o', 'before=no')
    assert (result.returncode, result.stdout, result.stderr) == (
        0, 'Handler changed to "delay"\n', '')
    # The options set follow the name (none set: the seed's output alone).
    assert ctl('--host', url(proxy), 'get-handler').stdout == (
        'delay\ndelay.before=false\ndelay.sleep=0.5\n')
    assert ctl('--host', url(proxy), 'get-handler', '--options').stdout == (
        'delay\ndelay.before=false\ndelay.sleep=0.5\n')
    assert ctl('--host', url(proxy), 'get-handler',
               '--name-only').stdout == 'delay\n'
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'delay': {'sleep': 0.5, 'before': False}}
    # Its own name before the option is the same.
    assert ctl('--host', url(proxy), 'set-handler', 'delay', '-o',
               'delay.sleep=0.25').returncode == 0
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'delay': {'sleep': 0.25}}

    # host:port without the scheme works too; a mix is a handler spec.
    hostport = '127.0.0.1:%d' % proxy.http_port
    assert ctl('--host', hostport, 'set-handler', '20:delay').returncode == 0
    assert ctl('--host', hostport, 'get-handler').stdout == '20:delay\n'


def test_options_of_a_mix(proxy):
    result = ctl('--host', url(proxy), 'set-handler', '20:delay,10:error',
                 '-o', 'delay.sleep=0.2', '-o', 'error.warmup=3',
                 '--option', 'delay.before=no')
    assert (result.returncode, result.stdout, result.stderr) == (
        0, 'Handler changed to "20:delay,10:error"\n', '')
    state = api(proxy.http_port, 'GET', '/proxy').json
    assert (state['behavior'], state['options']) == (
        '20:delay,10:error', {'delay': {'sleep': 0.2, 'before': False},
                              'error': {'warmup': 3}})
    result = ctl('--host', url(proxy), 'get-handler', '--options')
    assert result.stdout == ('20:delay,10:error\ndelay.before=false\n'
                             'delay.sleep=0.2\nerror.warmup=3\n')
    # What get-handler prints, set-handler takes back.
    lines = result.stdout.split()
    assert ctl('--host', url(proxy), 'set-handler', 'dummy').returncode == 0
    args = [arg for line in lines[1:] for arg in ('-o', line)]
    assert ctl('--host', url(proxy), 'set-handler', lines[0],
               *args).returncode == 0
    assert ctl('--host', url(proxy), 'get-handler', '--options').stdout \
        == result.stdout


@pytest.mark.parametrize('args, status, message', [
    (['-o', 'sleep=0.2'], 2, '--option of a mix expects NAME.OPTION=VALUE '
     "(like delay.sleep=0.2), got 'sleep=0.2'"),
    (['-o', 'hang.x=1'], 1, "options given for 'hang', which is not in the "
     'behavior'),
    (['-o', 'delay.sleep=0.1', '-o', 'error.warmup=-1'], 1,
     "error: option 'warmup' expects"),
])
def test_options_of_a_mix_refused(proxy, args, status, message):
    assert ctl('--host', url(proxy), 'set-handler', '20:delay',
               '-o', 'delay.sleep=3').returncode == 0
    result = ctl('--host', url(proxy), 'set-handler', '20:delay,10:error',
                 *args)
    assert result.returncode == status
    assert result.stderr.startswith('vaurienctl: error: ' + message), \
        result.stderr
    assert len(result.stderr.splitlines()) == 1
    # Nothing changed.
    assert ctl('--host', url(proxy), 'get-handler', '--options').stdout == (
        '20:delay\ndelay.sleep=3.0\n')


def test_blackout_then_back(proxy):
    assert ctl('--host', url(proxy), 'set-handler', 'blackout').returncode \
        == 0
    conn = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.request('GET', '/')
        conn.getresponse().read()
    conn.close()
    assert ctl('--host', url(proxy), 'set-handler', 'dummy').returncode == 0
    conn = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    conn.request('GET', '/')
    assert conn.getresponse().read() == support.BODY
    conn.close()


@pytest.mark.parametrize('args,message', [
    (['set-handler', 'delay', '-o', 'sleep=abc'],
     "vaurienctl: error: delay: option 'sleep' expects a number"),
    (['set-handler', 'delay', '-o', 'slep=1'],
     "vaurienctl: error: delay: unknown option 'slep'"),
    (['set-handler', 'delay', '--slep', '1'],
     "vaurienctl: error: delay: unknown option 'slep'"),
    (['set-behavior', 'delay', '--sleep', 'abc'],
     "vaurienctl: error: delay: option 'sleep' expects a number"),
])
def test_refusals(proxy, args, message):
    result = ctl('--host', url(proxy), *args)
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ''
    assert ctl('--host', url(proxy), 'get-handler').stdout == 'dummy\n'


@pytest.mark.parametrize('command, listing', [('set-handler', 'list-handlers'),
                                              ('set-behavior',
                                               'list-behaviors')])
def test_unknown_name_prints_the_original_line(proxy, command, listing):
    # what the original printed, then the reason on stderr; unlike the
    # original (exit 0), the exit status says the change was refused
    result = ctl('--host', url(proxy), command, 'nope')
    names = ctl('--host', url(proxy), listing).stdout.strip()
    assert result.returncode == 1
    assert result.stdout == 'The request failed. Please use one of %s\n' \
        % names
    assert result.stderr.startswith("vaurienctl: error: unknown handler "
                                    "'nope' (known: ")
    assert ctl('--host', url(proxy), 'get-handler').stdout == 'dummy\n'


def test_1x_behavior_commands(proxy):
    result = ctl('--host', url(proxy), 'get-behavior')
    assert (result.returncode, result.stdout) == (0, 'dummy\n')
    result = ctl('--host', url(proxy), 'set-behavior', 'delay', '--sleep',
                 '0.25', '--before')
    assert (result.returncode, result.stdout, result.stderr) == (
        0, 'Behavior changed to "delay"\n', '')
    assert ctl('--host', url(proxy), 'get-behavior').stdout == 'delay\n'
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'delay': {'sleep': 0.25, 'before': True}}
    # options given as --KEY VALUE to set-handler too; --timeout after the
    # command is the handler's option, not vaurienctl's
    result = ctl('--host', url(proxy), 'set-handler', 'timeout',
                 '--timeout', '3')
    assert (result.returncode, result.stdout) == (
        0, 'Handler changed to "timeout"\n')
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'timeout': {'timeout': 3.0}}
    result = ctl('--host', url(proxy), 'list-behaviors')
    assert result.returncode == 0
    assert {'blackout', 'delay', 'dummy', 'error', 'hang', 'transient'} <= \
        set(result.stdout.strip().split(', '))


def test_unreachable():
    with support.reserved_port() as port:
        result = ctl('--host', 'http://127.0.0.1:%d' % port, 'get-handler')
    assert result.returncode == 1
    assert result.stderr == (
        'vaurienctl: error: cannot reach the vaurien control API at '
        'http://127.0.0.1:%d: connection refused (is vaurien running with '
        '--http?)\n' % port)


@pytest.mark.parametrize('args,message', [
    ([], 'the following arguments are required: COMMAND'),
    (['frobnicate'], "invalid choice: 'frobnicate'"),
    (['set-handler'], 'the following arguments are required: NAME'),
    (['set-handler', 'delay', '-o', 'sleep'],
     "--option expects KEY=VALUE, got 'sleep'"),
    (['--host', 'ftp://x:1', 'get-handler'], '--host: scheme must be http'),
    (['get-handler', '--sleep', '1'], 'unrecognized arguments: --sleep 1'),
    (['set-behavior', 'delay', 'x'], "unrecognized argument 'x'"),
])
def test_usage_mistakes(args, message):
    result = ctl(*args)
    assert result.returncode == 2
    assert result.stderr.startswith('vaurienctl: error: ')
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_help():
    result = ctl('--help')
    assert result.returncode == 0
    for word in ('list-handlers', 'get-handler', 'set-handler', '--host',
                 '--token', 'list-behaviors', 'get-behavior',
                 'set-behavior'):
        assert word in result.stdout


def test_token(vaurien_inproc, http_server):
    proxy = start_controlled(vaurien_inproc, http_server.address,
                             '--http-token', 'tok')
    result = ctl('--host', url(proxy), 'get-handler')
    assert result.returncode == 1
    assert result.stderr.startswith('vaurienctl: error: missing or wrong '
                                    'token')
    result = ctl('--host', url(proxy), '--token', 'tok', 'get-handler')
    assert (result.returncode, result.stdout) == (0, 'dummy\n')
    env = dict(os.environ, VAURIEN_HTTP_TOKEN='tok')
    result = ctl('--host', url(proxy), 'set-handler', 'hang', env=env)
    assert (result.returncode, result.stdout) == (
        0, 'Handler changed to "hang"\n')


def test_console_script_is_declared():
    with open(os.path.join(support.ROOT, 'setup.py')) as fh:
        text = fh.read()
    assert "'vaurienctl = vaurien.ctl:main'" in text
