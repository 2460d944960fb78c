"""The handler API as users write against it: the seed's example verbatim,
dotted paths, plain callables, option values from every source, INI-defined
handlers and entry points."""
import ast
import re
import socket
import textwrap
import time

import pytest

import support

# The seed's "Full handler example", pasted verbatim, plus "import gevent"
# (the seed's snippet uses gevent without importing it).
SEED_DELAY = '''import gevent
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
'''

# A handler that logs its option values (as a Python literal) when built,
# read back from the proxy's log; it forwards like dummy.
SHOW = textwrap.dedent('''
    import logging

    from vaurien.handlers import BaseHandler

    log = logging.getLogger('vaurien')


    class Show(BaseHandler):
        """Logs its options when built, then forwards untouched."""
        name = 'show'
        options = {'count': ("a count", int, 3),
                   'flag': ("a flag", bool, False),
                   'label': ("a label", str, 'none'),
                   'ratio': ("a ratio", float, 0.5)}

        def __init__(self, settings=None, proxy=None):
            super().__init__(settings, proxy)
            values = {key: self.option(key) for key in self.options}
            same = all(self.options(key) == self.option(key)
                       and type(self.options(key)) is type(self.option(key))
                       for key in self.options)
            log.warning('SHOW %r %r', values, same)

        def __call__(self, client_sock, backend_sock, to_backend):
            return super().__call__(client_sock, backend_sock, to_backend)


    class Sleepy(BaseHandler):
        """Calls the standard library's time.sleep on 'slow' requests."""
        name = 'sleepy'

        def __call__(self, client_sock, backend_sock, to_backend):
            import time
            data = self._get_data(client_sock, backend_sock, to_backend)
            if to_backend and data.startswith(b'slow'):
                time.sleep(2)
            if data:
                self._forward(client_sock, backend_sock, to_backend, data)
            return True


    def passthrough(client_sock, backend_sock, to_backend):
        """A plain callable with the handler signature."""
        src = client_sock if to_backend else backend_sock
        dst = backend_sock if to_backend else client_sock
        data = src.recv(4096)
        if data:
            dst.sendall(data)
        return data
''')

EPOCH = 0.02   # gevent timers may fire a hair early


def shown(proxy):
    """Every SHOW line of the proxy's log: [(values, same), ...]."""
    found = re.findall(r'SHOW (\{.*\}) (True|False)$', proxy.log(), re.M)
    return [(ast.literal_eval(values), same == 'True')
            for values, same in found]


def conversation(sock, count=5):
    for i in range(count):
        message = b'round %d ' % i * (i + 1)
        sock.sendall(message)
        assert support.recv_exact(sock, len(message)) == message


@pytest.fixture
def userdir(tmp_path):
    """tmp_path with modules seeddelay, showmod and mypkg.handlers."""
    support.write_module(tmp_path, 'seeddelay', SEED_DELAY)
    support.write_module(tmp_path, 'showmod', SHOW)
    support.write_module(tmp_path, 'mypkg.handlers', SHOW)
    return tmp_path


@pytest.mark.timeout(60)
def test_seed_delay_verbatim_whole_conversation(vaurien_inproc, echo_server,
                                                userdir):
    """Named by dotted path, found from the current directory, default
    sleep of 1 s applied to each request of the conversation."""
    proxy = vaurien_inproc('--behavior', '100:seeddelay.Delay',
                           backend=echo_server.address,
                           extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        for i in range(3):
            message = b'request %d' % i
            start = time.monotonic()
            sock.sendall(message)
            assert support.recv_exact(sock, len(message)) == message
            elapsed = time.monotonic() - start
            assert 1 - EPOCH <= elapsed < 1 + 10
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == b''
    assert 'failed' not in proxy.log()


@pytest.mark.timeout(60)
def test_seed_delay_verbatim_options_and_ini(vaurien_inproc, echo_server,
                                             userdir):
    """The same class with options from the command line and as an INI
    handler: responses delayed (before = false), many messages."""
    proxy = vaurien_inproc('--behavior', '100:seeddelay.Delay',
                           '--handlers.seeddelay.Delay.sleep', '0',
                           '--handlers.seeddelay.Delay.before=false',
                           backend=echo_server.address,
                           extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        conversation(sock, 20)
    ini = userdir / 'seed.ini'
    ini.write_text('[vaurien]\nbehavior = 100:foobar\n\n'
                   '[handler:foobar]\ncallable = seeddelay.Delay\n'
                   'sleep = 0\nbefore = off\n')
    proxy = vaurien_inproc('--config', str(ini), backend=echo_server.address,
                           extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        conversation(sock, 10)
        tail = b'x' * 100000
        sock.sendall(tail)
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == tail


@pytest.mark.parametrize('path', ['mypkg.handlers.Show', 'mypkg.handlers:Show'])
def test_both_dotted_forms(vaurien_inproc, echo_server, userdir, path):
    proxy = vaurien_inproc('--behavior', '100:' + path,
                           '--handlers.%s.count' % path, '7',
                           backend=echo_server.address,
                           extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        conversation(sock)
    (values, same), = shown(proxy)
    assert values['count'] == 7 and same


def test_plain_callable(vaurien_inproc, echo_server, userdir):
    proxy = vaurien_inproc('--behavior', '100:showmod.passthrough',
                           backend=echo_server.address,
                           extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        conversation(sock)
        sock.sendall(b'bye')
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == b'bye'
    assert 'failed' not in proxy.log()


def test_plain_callable_takes_no_options(userdir):
    result = support.run_cli('--behavior', '100:showmod.passthrough',
                             '--handlers.showmod.passthrough.x', '1',
                             extra_paths=[str(userdir)])
    assert result.returncode == 2
    assert 'plain callable takes no options' in result.stderr


def test_option_values_every_form(vaurien_inproc, echo_server, userdir):
    """defaults, then INI keys, then --handlers.NAME.OPTION VALUE and =VALUE
    on top, converted with the declared types."""
    ini = userdir / 'opts.ini'
    ini.write_text(textwrap.dedent('''
        [vaurien]
        behavior = 50:foobar, 50:other

        [handler:foobar]
        callable = showmod.Show
        count = 11
        flag = yes
        label = "from the ini"
        ratio = 2

        [handler:other]
        callable = showmod:Show
        label = other
    '''))
    proxy = vaurien_inproc('--config', str(ini),
                           '--handlers.foobar.count', '12',
                           '--handlers.other.ratio=0.25',
                           '--handlers.other.flag=On',
                           backend=echo_server.address,
                           extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        conversation(sock)
    found = {values['label']: (values, same) for values, same in shown(proxy)}
    assert found['from the ini'] == ({'count': 12, 'flag': True,
                                      'label': 'from the ini', 'ratio': 2.0},
                                     True)
    assert found['other'] == ({'count': 3, 'flag': True, 'label': 'other',
                               'ratio': 0.25}, True)
    assert type(found['from the ini'][0]['ratio']) is float


def test_bool_spellings(vaurien_inproc, echo_server, userdir):
    spellings = {'YES': True, 'no': False, 'True': True, 'fAlSe': False,
                 'On': True, 'OFF': False, '1': True, '0': False}
    lines = ['[vaurien]', 'behavior = %s' % ', '.join(
        '10:h%d' % i for i in range(len(spellings)))]
    for i, text in enumerate(spellings):
        lines += ['[handler:h%d]' % i, 'callable = showmod.Show',
                  'label = %s' % text, 'flag = %s' % text]
    ini = userdir / 'bools.ini'
    ini.write_text('\n'.join(lines) + '\n')
    proxy = vaurien_inproc('--config', str(ini), backend=echo_server.address,
                           extra_paths=[str(userdir)])
    found = {values['label']: values['flag'] for values, _ in shown(proxy)}
    assert found == spellings


def test_wrong_option_type_names_handler_and_option(userdir):
    result = support.run_cli('--behavior', '100:showmod.Show',
                             '--handlers.showmod.Show.count', 'many',
                             extra_paths=[str(userdir)])
    assert result.returncode == 2
    # the handler is known by its class's name, "show"
    assert result.stderr == ("vaurien: error: show: option 'count' "
                             "expects an integer, got 'many'\n")
    result = support.run_cli('--behavior', '100:showmod.Show',
                             '--handlers.showmod.Show.flag', 'maybe',
                             extra_paths=[str(userdir)])
    assert result.returncode == 2
    assert "option 'flag' expects a boolean" in result.stderr


def test_unknown_option_of_user_handler(userdir):
    result = support.run_cli('--behavior', '100:showmod.Show',
                             '--handlers.showmod.Show.colour', 'red',
                             extra_paths=[str(userdir)])
    assert result.returncode == 2
    assert "unknown option 'colour'" in result.stderr
    assert 'count, direction, flag, label, ratio' in result.stderr


# -- entry points ------------------------------------------------------------------------

def make_dist(directory, dist, entries):
    """A real installed distribution: NAME-1.0.dist-info with METADATA and
    entry_points.txt in *directory* (which goes on PYTHONPATH)."""
    info = directory / ('%s-1.0.dist-info' % dist)
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: %s\n'
                                   'Version: 1.0\n' % dist)
    (info / 'entry_points.txt').write_text(
        '[vaurien.handlers]\n' + ''.join('%s = %s\n' % pair
                                         for pair in entries))


def test_entry_point_handler(vaurien, echo_server, userdir):
    # A process of its own: the installed distributions are read once a
    # while per process.
    make_dist(userdir, 'vaurien_shout', [('shout', 'showmod:Show')])
    proxy = vaurien('--behavior', '100:shout', '--handlers.shout.label', 'ep',
                    backend=echo_server.address, extra_paths=[str(userdir)])
    with proxy.connect() as sock:
        conversation(sock)
    (values, same), = shown(proxy)
    assert values['label'] == 'ep' and same


def test_two_handlers_one_name(userdir):
    make_dist(userdir, 'vaurien_clash', [('delay', 'showmod:Show')])
    result = support.run_cli('--behavior', '100:dummy',
                             extra_paths=[str(userdir)])
    assert result.returncode == 2
    line, = result.stderr.splitlines()
    assert line.startswith("vaurien: error: two handlers named 'delay'")
    assert 'built-in' in line and 'vaurien.handlers.delay' in line
    assert 'entry point delay = showmod:Show' in line
    assert 'vaurien_clash' in line


def test_ini_handler_clashing_with_entry_point(userdir):
    make_dist(userdir, 'vaurien_other', [('mine', 'showmod:Show')])
    ini = userdir / 'clash.ini'
    ini.write_text('[vaurien]\nbehavior = 100:mine\n\n'
                   '[handler:mine]\ncallable = showmod.passthrough\n')
    result = support.run_cli('--config', str(ini), extra_paths=[str(userdir)])
    assert result.returncode == 2
    line, = result.stderr.splitlines()
    assert "two handlers named 'mine'" in line
    assert 'entry point' in line and '[handler:mine]' in line


def test_ini_handler_clashing_with_builtin(userdir):
    ini = userdir / 'clash.ini'
    ini.write_text('[handler:error]\ncallable = showmod.Show\n')
    result = support.run_cli('--config', str(ini), extra_paths=[str(userdir)])
    assert result.returncode == 2
    line, = result.stderr.splitlines()
    assert "two handlers named 'error'" in line
    assert 'built-in' in line and '[handler:error]' in line


@pytest.mark.timeout(30)
def test_time_sleep_in_a_handler_does_not_freeze_the_proxy(vaurien, echo_server,
                                                          userdir):
    """The CLI patches the standard library: a handler's time.sleep holds
    its own connection only; another one finishes a whole conversation
    meanwhile."""
    proxy = vaurien('--behavior', '100:showmod.Sleepy',
                    backend=echo_server.address, extra_paths=[str(userdir)])
    with proxy.connect() as slow, proxy.connect() as quick:
        slow.sendall(b'slow please')
        # the quick conversation: many round trips, all while slow sleeps
        conversation(quick, 5)
        # ... and the slow answer is still being held (a frozen proxy
        # would have delivered it before the quick answers)
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.recv(100)
        slow.settimeout(10)
        assert support.recv_exact(slow, 11) == b'slow please'
