"""Command lines and INI files of Vaurien 1.x and of the seed's era
(vaurien/compat.py, the legacy parts of vaurien/config.py), run as their
users ran them."""
import logging
import socket
import textwrap
import time

import pytest

from vaurien.compat import translate_argv
from vaurien.config import ConfigError

import support


# -- the rewriting itself -----------------------------------------------------

@pytest.mark.parametrize('argv, expected', [
    (['--behavior-delay-sleep', '2'], ['--handlers.delay.sleep', '2']),
    (['--behavior-delay-sleep=2'], ['--handlers.delay.sleep', '2']),
    (['--behavior-error-warmup', '3'], ['--handlers.error.warmup', '3']),
    # 1.x's booleans were store_true flags
    (['--behavior-error-inject'], ['--handlers.error.inject', 'true']),
    (['--behavior-error-inject', '--behavior', '10:error'],
     ['--handlers.error.inject', 'true', '--behavior', '10:error']),
    # the option's dashes were its underscores
    (['--protocol-http-overwrite-host-header'],
     ['--protocols.http.overwrite_host_header', 'true']),
    (['--protocol-tcp-buffer', '512'], ['--bufsize', '512']),
    (['--statsd.sample-rate', '0.5'], ['--statsd.sample_rate', '0.5']),
    (['--stay-connected', '--proxy', 'h:1'], ['--proxy', 'h:1']),
    (['--protocol-tcp-keep-alive'], []),
    (['--pool-max-size', '10', '--pool-timeout', '3', '--sync',
      '--backlog', '5'], []),
    # ours, untouched
    (['--protocol', 'http', '--behavior', '20:delay', '--handlers.delay.sleep',
      '1', '--', '--behavior-x-y'],
     ['--protocol', 'http', '--behavior', '20:delay', '--handlers.delay.sleep',
      '1', '--', '--behavior-x-y']),
])
def test_translate(argv, expected):
    assert translate_argv(argv)[0] == expected


def test_notes_say_why():
    _, notes = translate_argv(['--stay-connected', '--sync',
                               '--pool-max-size', '3',
                               '--protocol-tcp-keep-alive',
                               '--protocol-tcp-reuse-socket'])
    levels = [level for level, _ in notes]
    texts = [text for _, text in notes]
    assert levels == [logging.INFO, logging.WARNING, logging.WARNING,
                      logging.INFO, logging.WARNING]
    assert 'no effect here' in texts[0] and 'stays open' in texts[0]
    assert 'synchronous' in texts[1]
    assert 'no pool' in texts[2]
    assert 'stays open' in texts[3]
    assert 'own new backend' in texts[4]


@pytest.mark.parametrize('argv, words', [
    (['--pool-max-size', 'lots'], ['--pool-max-size', 'integer', 'lots']),
    (['--backlog'], ['--backlog expects a value']),
    (['--sync=yes'], ['--sync takes no value']),
    (['--behavior-delay'], ['--behavior-delay', 'NAME-OPTION']),
])
def test_translate_errors(argv, words):
    with pytest.raises(ConfigError) as info:
        translate_argv(argv)
    for word in words:
        assert word in str(info.value)


# -- 1.x command lines, run ---------------------------------------------------

def _round_trip(sock, message):
    sock.sendall(message)
    return support.recv_exact(sock, len(message))


def test_behavior_delay_sleep_2(vaurien_inproc, echo_server):
    # the 1.x documentation's "--behavior 20:delay --behavior-delay-sleep 2",
    # with all the traffic delayed so that the test sees it
    proxy = vaurien_inproc(
        '--proxy', '%s:0' % support.HOST, '--backend',
        '%s:%d' % echo_server.address, '--behavior', '100:delay',
        '--behavior-delay-sleep', '2')
    with proxy.connect() as sock:
        start = time.monotonic()
        assert _round_trip(sock, b'ping') == b'ping'
        assert time.monotonic() - start >= 2


def test_behavior_error_warmup_3(vaurien_inproc, echo_server):
    # "--behavior 100:error --behavior-error-warmup 3": three calls pass
    # (request, answer, request), the fourth (an answer) is an error
    proxy = vaurien_inproc(
        '--backend', '%s:%d' % echo_server.address, '--behavior',
        '100:error', '--behavior-error-warmup', '3')
    message = b'0123456789abcdef' * 4
    with proxy.connect() as sock:
        assert _round_trip(sock, message) == message
        assert _round_trip(sock, message) != message


def test_ssh_tunnel_example_stays_connected(vaurien_inproc, echo_server):
    # 1.x's "quick'n'dirty SSH tunnel" example: many exchanges on one
    # connection, and the notes about the flags in the log
    proxy = vaurien_inproc(
        '--stay-connected', '--proxy', '%s:0' % support.HOST,
        '--backend', '%s:%d' % echo_server.address,
        '--protocol-tcp-keep-alive')
    with proxy.connect() as sock:
        for i in range(5):
            assert _round_trip(sock, b'line %d\n' % i) == b'line %d\n' % i
    log = proxy.stop()
    assert '[INFO] --stay-connected is a Vaurien 1.x option' in log
    assert '[INFO] --protocol-tcp-keep-alive is a Vaurien 1.x option' in log


def test_mysql_example_with_every_1x_flag(vaurien_inproc, echo_server):
    # "--stay-connected --behavior 100:delay --behavior-delay-sleep 1" plus
    # every other flag of 1.x's --help that this release only notes
    proxy = vaurien_inproc(
        '--proxy', '%s:0' % support.HOST, '--backend',
        '%s:%d' % echo_server.address, '--stay-connected',
        '--behavior', '100:delay', '--behavior-delay-sleep', '0',
        '--pool-max-size', '10', '--pool-timeout', '5', '--sync',
        '--backlog', '64', '--bufsize', '4096', '--timeout', '5',
        '--statsd.sample-rate', '1.0', '--http-host', support.HOST,
        '--log-level', 'INFO', '--protocol', 'tcp',
        '--protocol-tcp-reuse-socket', '--protocol-tcp-buffer', '2048')
    with proxy.connect() as sock:
        assert _round_trip(sock, b'select 1') == b'select 1'
    log = proxy.stop()
    for flag in ('--sync', '--pool-max-size', '--pool-timeout', '--backlog',
                 '--protocol-tcp-reuse-socket'):
        assert '[WARNING] %s is a Vaurien 1.x option with no effect' % flag \
            in log, flag
    assert '--protocol-tcp-buffer 2048 is read as --bufsize 2048' in log


def test_unknown_behavior_option_is_an_error():
    result = support.run_cli('--behavior-delay-slep', '2', '--distant',
                             'localhost:1')
    assert result.returncode == 2
    assert result.stderr.startswith('vaurien: error: delay: unknown option '
                                    "'slep'")


def test_python_m_vaurien_run():
    result = support.run_cli('--version', module='vaurien.run')
    assert result.returncode == 0
    assert result.stdout.startswith('vaurien ')


# -- 1.x INI files ------------------------------------------------------------

def test_1x_documented_ini(vaurien_inproc, http_server, tmp_path):
    # the INI file of 1.x's documentation, pointed at a local backend
    ini = tmp_path / 'vaurien.ini'
    ini.write_text(textwrap.dedent('''
        [vaurien]
        backend = %s:%d
        proxy = %s:0
        protocol = http
        behavior = 100:delay

        [behavior:delay]
        sleep = 2
    ''' % (support.HOST, http_server.port, support.HOST)))
    proxy = vaurien_inproc('--config', str(ini))
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        assert sock.recv(100).startswith(b'HTTP/1.1 200')
        assert time.monotonic() - start >= 2


def test_1x_ini_legacy_keys_and_protocol_options(vaurien_inproc, echo_server,
                                                 tmp_path):
    ini = tmp_path / 'vaurien.ini'
    ini.write_text(textwrap.dedent('''
        [vaurien]
        backend = %s:%d
        proxy = %s:0
        stay_connected = true
        pool_max_size = 100
        pool_timeout = 30
        sync = false
        backlog = 8192

        [protocol:tcp]
        keep_alive = true
        reuse_socket = false
        buffer = 512
    ''' % (echo_server.address + (support.HOST,))))
    proxy = vaurien_inproc('--config', str(ini))
    with proxy.connect() as sock:
        assert _round_trip(sock, b'x' * 2000) == b'x' * 2000
    log = proxy.stop()
    for key in ('stay_connected', 'pool_max_size', 'pool_timeout', 'sync',
                'backlog'):
        assert "key %r is from an older Vaurien and has no effect" % key \
            in log, key
    assert '[protocol:tcp] keep_alive: an option of Vaurien 1.x protocols' \
        in log
    assert '[protocol:tcp] buffer: read as bufsize = 512' in log


def test_handler_and_behavior_sections_for_one_name(tmp_path):
    ini = tmp_path / 'v.ini'
    ini.write_text('[handler:delay]\nsleep = 1\n[behavior:delay]\nsleep = 2\n')
    result = support.run_cli('--config', str(ini))
    assert result.returncode == 2
    assert '[behavior:delay] and [handler:delay] both configure' \
        in result.stderr


# -- 1.x behaviors and protocols ----------------------------------------------

LEGACY_BEHAVIORS = '''
import gevent

from vaurien.behaviors import BaseBehavior, Behavior
from vaurien.util import get_data


class Slow(BaseBehavior):
    """1.x's delay, as a user would have copied it."""
    name = 'slow'
    options = {'sleep': ("Delay in seconds (float)", float, 1),
               'before': ("If True adds before the backend is called. "
                          "Otherwise after", bool, True)}

    def on_before_handle(self, protocol, source, dest, to_backend):
        if self.option('before'):
            gevent.sleep(self.option('sleep'))
        return True

    def on_after_handle(self, protocol, source, dest, to_backend):
        if not self.option('before'):
            gevent.sleep(self.option('sleep'))


class Shout(BaseBehavior):
    """Reads the data itself and answers it upper-cased (1.x's error
    behavior's way of replacing data)."""
    name = 'shout'
    options = {'mode': ("How loud", str, 'upper', ['upper', 'lower'])}

    def on_before_handle(self, protocol, source, dest, to_backend):
        if to_backend:
            return True
        data = get_data(source)
        if not data:
            return False
        if protocol.name == 'tcp' and self.option('mode') == 'upper':
            data = data.upper()
        dest.sendall(data)
        return False


class MySuperBehavior(object):
    """The example of 1.x's documentation."""
    name = 'super'
    options = {}
    calls = []

    def on_before_handle(self, protocol, source, dest, to_backend):
        self.calls.append(('before', to_backend))
        return True

    def on_after_handle(self, protocol, source, dest, to_backend):
        self.calls.append(('after', to_backend))
        return True


Behavior.register(MySuperBehavior)
Behavior.register(Slow)
'''

LEGACY_PROTOCOLS = '''
from vaurien.protocols import Protocol
from vaurien.protocols.base import BaseProtocol


class TCP(BaseProtocol):
    name = 'tcp1x'
    options = {'reuse_socket': ("If True, the socket is reused.",
                                bool, False),
               'buffer': ("Buffer size", int, 8124),
               'keep_alive': ("Keep the connection alive", bool, False)}

    def _handle(self, source, dest, to_backend):
        data = self._get_data(source)
        if data:
            dest.sendall(data)
        return data != ''


class Plain(object):
    name = 'plain'

    def __call__(self, source, dest, to_backend, behavior):
        return True


Protocol.register(TCP)
'''


@pytest.fixture
def legacy_dir(tmp_path):
    support.write_module(tmp_path, 'legacy_behaviors', LEGACY_BEHAVIORS)
    support.write_module(tmp_path, 'legacy_protocols', LEGACY_PROTOCOLS)
    return tmp_path


def test_1x_behavior_section_and_flag(vaurien, echo_server, legacy_dir):
    ini = legacy_dir / 'v.ini'
    ini.write_text('[vaurien]\nbehavior = 100:slow\n\n[behavior:slow]\n'
                   'callable = legacy_behaviors.Slow\n')
    proxy = vaurien('--config', str(ini), '--behavior-slow-sleep', '0.5',
                    backend=echo_server.address, cwd=str(legacy_dir))
    with proxy.connect() as sock:
        start = time.monotonic()
        assert _round_trip(sock, b'ping') == b'ping'
        assert time.monotonic() - start >= 0.5


def test_1x_behavior_by_dotted_path_replaces_data(vaurien, echo_server,
                                                  legacy_dir):
    proxy = vaurien('--behavior', '100:legacy_behaviors.Shout',
                    backend=echo_server.address, cwd=str(legacy_dir))
    with proxy.connect() as sock:
        assert _round_trip(sock, b'quiet please') == b'QUIET PLEASE'


def test_1x_behavior_option_choices_are_checked(legacy_dir):
    result = support.run_cli('--behavior', '100:legacy_behaviors.Shout',
                             '--handlers.legacy_behaviors.Shout.mode', 'loud',
                             '--distant', 'localhost:1', cwd=str(legacy_dir))
    assert result.returncode == 2, result.stderr
    assert "option 'mode' expects" in result.stderr
    assert 'Traceback' not in result.stderr


def test_1x_documented_behavior_hooks_around_the_relay(legacy_dir,
                                                       monkeypatch):
    # in-process, on a socket pair: before, the data relayed, after
    monkeypatch.syspath_prepend(str(legacy_dir))
    import legacy_behaviors
    from vaurien.behaviors import Behavior, adapt
    cls = adapt(legacy_behaviors.MySuperBehavior)
    assert cls.name == 'super'
    assert Behavior.get_behaviors()['super'] is \
        legacy_behaviors.MySuperBehavior
    handler = cls(settings={}, proxy=None)
    client, client_peer = socket.socketpair()
    backend, backend_peer = socket.socketpair()
    with client, client_peer, backend, backend_peer:
        client_peer.sendall(b'hello')
        assert handler(client, backend, True) is True
        assert backend_peer.recv(10) == b'hello'
        assert legacy_behaviors.MySuperBehavior.calls == [
            ('before', True), ('after', True)]


@pytest.mark.parametrize('args', [
    ['--protocol', 'legacy_protocols.TCP'],
    ['--protocol', 'legacy_protocols.Plain'],
    ['--protocol', 'mine', '--config', 'p.ini'],
])
def test_1x_protocol_is_refused_with_advice(legacy_dir, args):
    (legacy_dir / 'p.ini').write_text(
        '[protocol:mine]\ncallable = legacy_protocols.TCP\n')
    result = support.run_cli('--distant', 'localhost:1', *args,
                             cwd=str(legacy_dir))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert 'is a Vaurien 1.x protocol' in lines[0]
    assert 'request(stream, session)' in lines[0]
    assert 'docs/protocols.rst' in lines[0]


def test_seed_era_handler_classes_import_from_the_package():
    # the 2012 releases defined their handlers in vaurien/handlers/__init__
    from vaurien.handlers import Blackout, Delay, Dummy, Error, Hang
    assert [cls.name for cls in (Blackout, Delay, Dummy, Error, Hang)] == [
        'blackout', 'delay', 'dummy', 'error', 'hang']
    import vaurien.handlers
    with pytest.raises(AttributeError):
        vaurien.handlers.Nope
