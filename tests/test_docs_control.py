"""The control docs stay true: every console example of docs/api.rst and
docs/cli.rst is run, in order, against a real proxy, and its answer is
compared with the one printed in the docs (``...`` matches anything).

``$ vaurien ...`` lines start the proxy the following examples talk to (on
free ports: ``8000`` and ``8080`` in the docs are mapped to the real ones,
both ways); ``$ curl`` and ``$ vaurienctl`` lines are run as they are, and
``$ export NAME=VALUE`` sets an environment variable for the next ones.
"""
import doctest
import os
import re
import shlex
import subprocess
import sys

import pytest

import support
from control_support import start_controlled

pytestmark = pytest.mark.timeout(120)

DOCS = os.path.join(support.ROOT, 'docs')
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def console_examples(path):
    """``[(line number, command, expected output), ...]`` of a page."""
    with open(path, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    examples = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != '.. code-block:: console':
            i += 1
            continue
        i += 1
        block = []
        while i < len(lines) and (not lines[i].strip()
                                  or lines[i].startswith(' ')):
            block.append((i + 1, lines[i].strip()))
            i += 1
        current = None
        for number, line in block:
            if line.startswith('$ '):
                current = [number, line[2:], []]
                examples.append(current)
            elif current is not None and line:
                current[2].append(line)
    return [(n, cmd, '\n'.join(out)) for n, cmd, out in examples]


class Runner:
    """Runs the examples of one page, in order."""

    def __init__(self, vaurien, backend):
        self.vaurien = vaurien
        self.backend = backend
        self.proxy = None
        self.env = support.env_with_root()
        self.env.pop('VAURIEN_HTTP_TOKEN', None)

    def start(self, argv):
        # The documented command, on free ports and with the log to a file.
        args = []
        skip = False
        for arg in argv[1:]:
            if skip:
                skip = False
                continue
            if arg in ('--local', '--http-host', '--http-port'):
                skip = True
                continue
            args.append(arg)
        self.proxy = start_controlled(self.vaurien, None, *args)

    def ports(self, text, back=False):
        pairs = [('8000', str(self.proxy.port)),
                 ('8080', str(self.proxy.http_port))]
        for doc, real in pairs:
            if back:
                text = re.sub(r'(?<=[:\s])%s\b' % real, doc, text)
            else:
                text = re.sub(r'(?<=localhost:)%s\b' % doc, real, text)
        return text

    def run(self, command):
        argv = shlex.split(command)
        if argv[0] == 'vaurien':
            self.start(argv)
            return None
        if argv[0] == 'export':
            name, _, value = argv[1].partition('=')
            self.env[name] = value
            return None
        assert self.proxy is not None, 'no "$ vaurien ..." example before'
        argv = [self.ports(arg) for arg in argv]
        if argv[0] == 'curl':
            # -sS: no progress meter (as on a terminal), errors still shown.
            argv = ['curl', '-sS'] + argv[1:]
        elif argv[0] == 'vaurienctl':
            argv = [sys.executable, '-m', 'vaurien.ctl'] + argv[1:]
            if '--host' not in argv:
                argv[3:3] = ['--host', 'http://localhost:%d'
                             % self.proxy.http_port]
        else:
            raise AssertionError('unexpected command %r' % command)
        result = subprocess.run(argv, env=self.env, capture_output=True,
                                timeout=30, cwd=support.ROOT)
        output = (result.stdout + result.stderr).decode('utf-8', 'replace')
        return self.ports(output.replace('\r\n', '\n'), back=True)


def _check(page, vaurien, http_server):
    runner = Runner(vaurien, http_server.address)
    examples = console_examples(os.path.join(DOCS, page))
    assert len(examples) > 5
    for number, command, expected in examples:
        got = runner.run(command)
        if got is None:
            assert not expected, '%s:%d: a command without output' % (
                page, number)
            continue
        want = expected + '\n' if expected else ''
        if not got.endswith('\n'):
            got += '\n'
        assert _CHECKER.check_output(want, got, _FLAGS), (
            '%s:%d: $ %s\nexpected:\n%s\ngot:\n%s'
            % (page, number, command, want, got))


def test_api_examples(vaurien_inproc, http_server):
    _check('api.rst', vaurien_inproc, http_server)


def test_cli_examples(vaurien_inproc, http_server):
    _check('cli.rst', vaurien_inproc, http_server)


def test_every_error_and_route_is_documented():
    from vaurien.webserver import ERRORS, App
    with open(os.path.join(DOCS, 'api.rst'), encoding='utf-8') as fh:
        text = fh.read()
    for name, spec in ERRORS.items():
        assert re.search(r'``%s``\s+%d\s+%s\s' % (name, spec.status,
                                                   spec.location), text), name
    app = App(control=None)
    for path, methods in app.routes.items():
        for method in methods:
            assert re.search(r'%s\s+``%s``' % (method, path), text), \
                (method, path)


def test_pages_are_in_the_toctree():
    with open(os.path.join(DOCS, 'index.rst'), encoding='utf-8') as fh:
        index = fh.read()
    for page in ('api', 'cli', 'testing'):
        assert re.search(r'\n   %s\n' % page, index), page


def _readme_live_control():
    with open(os.path.join(support.ROOT, 'README.rst'), encoding='utf-8') as fh:
        text = fh.read()
    section = text.split('Live control\n------------\n', 1)[1]
    section = section.split('\n----', 1)[0]
    commands = [line.strip()[2:] for line in section.splitlines()
                if line.strip().startswith('$ ')]
    python = re.search(r'\n    (from vaurien import Client\n.*?)\n\n',
                       section, re.S).group(1)
    return commands, python


def test_readme_live_control(vaurien_inproc, http_server):
    """The README's live-control lines work against a real proxy."""
    from vaurien import Client
    commands, python = _readme_live_control()
    assert commands[0].startswith('vaurien ') and '--http' in commands[0]
    runner = Runner(vaurien_inproc, http_server.address)
    runner.run(commands[0].replace('localhost:5432', '%s:%d'
                                   % http_server.address))
    client = Client(host=support.HOST, port=runner.proxy.http_port)
    assert 'error' not in runner.run(commands[1])
    assert client.get_handler() == 'delay'
    assert runner.run(commands[2]).strip() == 'ok'
    assert client.get_handler() == 'blackout'
    client.set_handler('dummy')
    # The Python lines, with the example's "..." made a real request that
    # must fail inside the block.
    import textwrap
    code = textwrap.dedent('    ' + python)
    code = code.replace('Client()', 'Client(host=%r, port=%d)'
                        % (support.HOST, runner.proxy.http_port))
    code = re.sub(r'\.\.\.   # every request .*', 'request_fails()', code)
    assert 'request_fails()' in code, code
    port = runner.proxy.port

    def request_fails():
        import socket
        with socket.create_connection((support.HOST, port)) as sock:
            sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
            try:
                assert sock.recv(10) == b''
            except ConnectionResetError:
                pass
    exec(compile(code, 'README.rst', 'exec'),
         {'request_fails': request_fails})
    assert client.get_handler() == 'dummy'
