"""A handler is known by its ``name`` (the seed's "Writing Handlers"):
dotted-path handlers, ``[handler:X]`` sections, undeclared INI keys and
mistakes in a handler class caught at start-up."""
import json
import os
import textwrap
import time

import pytest

import support
from control_support import api, start_controlled

pytestmark = pytest.mark.timeout(90)

EXAMPLES = os.path.join(support.ROOT, 'examples')

# The seed's "Full handler example", as written there (Python 3 syntax),
# reachable as path.to.the.callable like the seed's "Using handlers".
SEED_DELAY = '''
import gevent

from vaurien.handlers import BaseHandler


class Delay(BaseHandler):
    """Adds a delay before the backend is called.
    """
    name = 'delay'
    options = {'sleep': ("Delay in seconds", int, 1),
            'before':
                    ("If True adds before the backend is called. Otherwise"
                    " after", bool, True)}

    def __call__(self, client_sock, backend_sock, to_backend):
        before = to_backend and self.options('before')
        after = not to_backend and not self.options('before')

        if before:
            gevent.sleep(self.options('sleep'))

        data = self._get_data(client_sock, backend_sock, to_backend)

        if after:
            gevent.sleep(self.options('sleep'))

        if data:
            dest = to_backend and backend_sock or client_sock
            dest.sendall(data)


callable = Delay


class Settings(BaseHandler):
    """Answers with the settings it was given, as JSON."""
    name = 'settings'
    options = {'greeting': ("A declared option", str, 'hi')}

    def __call__(self, client_sock, backend_sock, to_backend):
        import json
        data = self._get_data(client_sock, backend_sock, to_backend)
        if data and not to_backend:
            data = json.dumps(self.settings, sort_keys=True).encode()
        if data:
            (backend_sock if to_backend else client_sock).sendall(data)
        return bool(data)
'''

BROKEN = '''
from vaurien.handlers import BaseHandler


class NoCall(BaseHandler):
    name = 'nocall'


class Plain:
    name = 'plain'


class TwoTuple(BaseHandler):
    name = 'twotuple'
    options = {'sleep': ("Delay in seconds", int)}

    def __call__(self, client_sock, backend_sock, to_backend):
        return True


class BadDefault(BaseHandler):
    name = 'baddefault'
    options = {'sleep': ("Delay in seconds", int, 'soon')}

    def __call__(self, client_sock, backend_sock, to_backend):
        return True


class NotADict(BaseHandler):
    name = 'notadict'
    options = [('sleep', "Delay in seconds", int, 1)]

    def __call__(self, client_sock, backend_sock, to_backend):
        return True


class OtherDelay(BaseHandler):
    name = 'delay'

    def __call__(self, client_sock, backend_sock, to_backend):
        return True
'''


@pytest.fixture
def code_dir(tmp_path):
    support.write_module(tmp_path, 'path.to.the', SEED_DELAY)
    support.write_module(tmp_path, 'broken', BROKEN)
    return tmp_path


def _round_trip(proxy, message=b'ping'):
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(message)
        answer = support.recv_exact(sock, len(message)) \
            if message != b'json' else sock.recv(4096)
        return answer, time.monotonic() - start


def test_seed_using_handlers_command_line(vaurien_inproc, echo_server,
                                          code_dir):
    # "--behavior 20:path.to.the.callable --handlers.delay.sleep 2", as the
    # seed writes it: the option reaches the dotted-path handler, which is
    # known as "delay" everywhere
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--behavior', '20:path.to.the.callable',
                             '--handlers.delay.sleep', '2', '--seed', '1',
                             extra_paths=[str(code_dir)])
    state = api(proxy.http_port, 'GET', '/proxy').json
    assert state['behavior'] == '20:delay'
    assert state['options'] == {'delay': {'sleep': 2}}
    assert 'delay' in api(proxy.http_port, 'GET', '/handlers').json[
        'handlers']
    assert 'behavior 20:delay,' in proxy.log()


def test_seed_delay_sleeps_the_option_given_by_its_name(vaurien_inproc,
                                                      echo_server, code_dir,
                                                      tmp_path):
    events = tmp_path / 'events.log'
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--behavior',
                             '100:path.to.the.callable',
                             '--handlers.delay.sleep', '2', '--event-log',
                             str(events), '--event-log-flush',
                             extra_paths=[str(code_dir)])
    answer, seconds = _round_trip(proxy)
    assert answer == b'ping'
    assert seconds >= 2       # not the class's default of 1 s
    metrics = api(proxy.http_port, 'GET', '/metrics').text
    assert 'vaurien_handler_picks_total{handler="delay"' in metrics
    assert 'path.to.the' not in metrics
    proxy.stop()
    handlers = {json.loads(line).get('handler')
                for line in events.read_text().splitlines()}
    assert 'delay' in handlers and 'path.to.the.callable' not in handlers


def test_options_by_path_and_by_name_merge(vaurien_inproc, echo_server,
                                           code_dir):
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--behavior',
                             '100:path.to.the.callable',
                             '--handlers.delay.sleep', '0',
                             '--handlers.path.to.the.callable.before', 'no',
                             extra_paths=[str(code_dir)])
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'delay': {'sleep': 0, 'before': False}}


def test_seed_ini_example(vaurien_inproc, echo_server, code_dir):
    # the seed's INI example as written (a section named foobar, an option
    # foo the handler does not declare): it starts, foo is in the
    # handler's settings, and one WARNING names it
    ini = code_dir / 'config.ini'
    ini.write_text(textwrap.dedent('''
        [vaurien]
        behavior = 20:foobar

        [handler:foobar]
        callable = path.to.the.callable
        foo=bar
    '''))
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--config',
                             str(ini), extra_paths=[str(code_dir)])
    log = proxy.stop()
    warnings = [line for line in log.splitlines()
                if '[WARNING]' in line and "'foo'" in line]
    assert len(warnings) == 1, log
    assert '[handler:foobar]' in warnings[0]
    assert 'before, direction, sleep' in warnings[0]


def test_undeclared_ini_key_reaches_settings(vaurien_inproc, echo_server,
                                             code_dir):
    ini = code_dir / 'config.ini'
    ini.write_text('[vaurien]\nbehavior = 100:show\n\n[handler:show]\n'
                   'callable = path.to.the.Settings\nfoo = bar\n'
                   'greeting = hello\n')
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--config',
                             str(ini), extra_paths=[str(code_dir)])
    answer, _ = _round_trip(proxy, b'json')
    assert json.loads(answer) == {'foo': 'bar', 'greeting': 'hello'}


def test_undeclared_option_outside_ini_stays_an_error(code_dir):
    result = support.run_cli('--behavior', '100:path.to.the.callable',
                             '--handlers.delay.foo', 'bar', '--distant',
                             'localhost:1', cwd=str(code_dir))
    assert result.returncode == 2
    assert result.stderr == ("vaurien: error: delay: unknown option 'foo' "
                             "(valid options: before, direction, sleep)\n")


@pytest.mark.parametrize('behavior, words', [
    ('100:broken.NoCall', ['broken.NoCall', 'no __call__']),
    ('100:broken.Plain', ['broken.Plain', 'no __call__']),
    ('100:broken.TwoTuple', ['broken.TwoTuple', "option 'sleep'",
                             '(description, type, default)']),
    ('100:broken.BadDefault', ['broken.BadDefault', "option 'sleep'",
                               "default 'soon'", 'integer']),
    ('100:broken.NotADict', ['broken.NotADict', 'options', 'mapping']),
    ('10:delay,10:broken.OtherDelay', ["two handlers named 'delay'",
                                       'built-in', 'broken.OtherDelay']),
    ('10:path.to.the.callable,10:broken.OtherDelay',
     ["two handlers named 'delay'", 'path.to.the.callable',
      'broken.OtherDelay']),
])
def test_mistakes_in_a_handler_class_stop_the_start(code_dir, behavior,
                                                    words):
    result = support.run_cli('--behavior', behavior, '--distant',
                             'localhost:1', cwd=str(code_dir))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('vaurien: error: '), \
        result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_same_class_twice_is_one_handler(vaurien_inproc, echo_server,
                                         code_dir):
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--behavior',
                             '10:path.to.the.callable,10:path.to.the.Delay',
                             extra_paths=[str(code_dir)])
    assert api(proxy.http_port, 'GET', '/proxy').json['behavior'] == \
        '10:delay,10:delay'


def test_writing_handlers_example_by_its_name(vaurien_inproc, echo_server):
    # docs/writing-handlers.rst: "--handlers.uppercase.every 2 sets its
    # option as well"
    proxy = vaurien_inproc('--behavior', '100:myhandlers.Uppercase',
                           '--handlers.uppercase.every', '2',
                           backend=echo_server.address,
                           extra_paths=[EXAMPLES])
    with proxy.connect() as sock:
        answers = [support.exchange(sock, b'hello %d' % i) for i in range(4)]
    assert answers == [b'hello 0', b'HELLO 1', b'hello 2', b'HELLO 3']
    assert 'behavior 100:uppercase,' in proxy.log()


def test_section_handler_takes_options_by_its_class_name(vaurien_inproc,
                                                         echo_server):
    # README's [handler:shouty] (myhandlers.Uppercase) keeps its name and
    # takes --handlers.uppercase.* too
    proxy = vaurien_inproc('--config', os.path.join(EXAMPLES, 'shouty.ini'),
                           '--behavior', '100:shouty',
                           '--handlers.uppercase.every', '3',
                           backend=echo_server.address,
                           extra_paths=[EXAMPLES])
    with proxy.connect() as sock:
        answers = [support.exchange(sock, b'hi %d' % i) for i in range(3)]
    assert answers == [b'hi 0', b'hi 1', b'HI 2']
    assert 'behavior 100:shouty,' in proxy.log()


def test_section_of_its_name_gives_options_to_a_dotted_path(vaurien_inproc,
                                                            echo_server,
                                                            code_dir):
    # [handler:delay] (no callable) configures the dotted-path class known
    # as delay, not the built-in the behavior does not use
    ini = code_dir / 'config.ini'
    ini.write_text('[handler:delay]\nsleep = 0\nbefore = no\n')
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--config',
                             str(ini), '--behavior',
                             '100:path.to.the.callable',
                             extra_paths=[str(code_dir)])
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'delay': {'sleep': 0, 'before': False}}
    # the built-in's own option would be refused: it is the user's class
    result = support.run_cli('--config', str(ini), '--behavior',
                             '100:path.to.the.callable',
                             '--handlers.delay.jitter', '1', '--distant',
                             'localhost:1', cwd=str(code_dir))
    assert result.returncode == 2
    assert "delay: unknown option 'jitter'" in result.stderr


def test_undeclared_key_of_a_builtin_section_is_a_warning(tmp_path):
    ini = tmp_path / 'v.ini'
    ini.write_text('[vaurien]\nbehavior = 10:delay\n\n[handler:delay]\n'
                   'sleep = 1\ncolour = red\n')
    result = support.run_cli('--check', '--config', str(ini))
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'vaurien: configuration OK\n'
    assert ("[WARNING] [handler:delay] in %s: 'colour' is not declared by "
            "the handler delay (its options: before, direction, jitter, "
            "sleep); passed to it in its settings as it is" % ini) \
        in result.stderr


def test_one_warning_with_workers(vaurien, echo_server, tmp_path):
    ini = tmp_path / 'v.ini'
    ini.write_text('[handler:delay]\nsleep = 0\ncolour = red\n')
    proxy = vaurien('--config', str(ini), '--workers', '2', '--behavior',
                    '100:delay', backend=echo_server.address)
    with proxy.connect() as sock:
        assert support.exchange(sock, b'ping') == b'ping'
    log = proxy.stop()
    assert log.count("'colour' is not declared by the handler delay") == 1, \
        log
