"""The docs stay true: generated pages match the code, examples run."""
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

import support

ROOT = support.ROOT
EXAMPLES = os.path.join(ROOT, 'examples')


def test_generated_docs_match_the_code():
    result = subprocess.run([sys.executable, '-m', 'vaurien.docgen', '--check'],
                            cwd=ROOT, env=support.env_with_root(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_builtin_handler_and_setting_is_documented():
    from vaurien.config import SETTINGS
    from vaurien.handlers import BUILTINS, Registry
    with open(os.path.join(ROOT, 'docs', 'handlers.rst')) as fh:
        handlers = fh.read()
    with open(os.path.join(ROOT, 'docs', 'configuration.rst')) as fh:
        configuration = fh.read()
    with open(os.path.join(ROOT, 'vaurien.ini.sample')) as fh:
        sample = fh.read()
    registry = Registry(entry_points=False)
    for name in BUILTINS:
        assert '\n%s\n%s\n' % (name, '-' * len(name)) in handlers
        for option in registry.get(name).options:
            assert '``%s``' % option in handlers
            assert '\n%s = ' % option in sample
    for setting in SETTINGS:
        assert setting.flag in configuration
        assert '\n%s = ' % setting.name in sample


@pytest.mark.timeout(180)
def test_sphinx_builds_without_warnings(tmp_path):
    pytest.importorskip('sphinx')
    result = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-q', '-W', '-b', 'html',
         os.path.join(ROOT, 'docs'), str(tmp_path / 'html')],
        capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sample_ini_starts(vaurien_inproc, echo_server):
    # The sample listens on localhost:8000 and logs to stderr; the command
    # line given by the fixture (--local, --distant, --log-output) wins.
    proxy = vaurien_inproc('--config',
                           os.path.join(ROOT, 'vaurien.ini.sample'),
                           backend=echo_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'ping')
        assert sock.recv(10) == b'ping'


def test_writing_handlers_example_class(vaurien_inproc, echo_server):
    """docs/writing-handlers.rst: the Uppercase example, by dotted path."""
    proxy = vaurien_inproc('--behavior', '100:myhandlers.Uppercase',
                           '--handlers.myhandlers.Uppercase.every', '2',
                           backend=echo_server.address, extra_paths=[EXAMPLES])
    with proxy.connect() as sock:
        answers = [support.exchange(sock, b'hello %d' % i) for i in range(4)]
    assert answers == [b'hello 0', b'HELLO 1', b'hello 2', b'HELLO 3']


def test_writing_handlers_api_example(vaurien_inproc, echo_server, tmp_path):
    """docs/writing-handlers.rst: examples/stutter.py, which uses every
    helper of the handler author's API, through a real proxy."""
    log = tmp_path / 'events.jsonl'
    proxy = vaurien_inproc('--behavior', '100:stutter.Stutter',
                           '--handlers.stutter.Stutter.pause', '0.3',
                           '--handlers.stutter.Stutter.spare', '1',
                           '--event-log', str(log), '--event-log-flush',
                           backend=echo_server.address, extra_paths=[EXAMPLES])
    with proxy.connect() as sock:
        # The first answer is spared: it comes whole.
        assert support.exchange(sock, b'abcdefgh') == b'abcdefgh'
        # The second comes cut in two, the rest only after the pause.
        sock.sendall(b'ijklmnop')
        first = sock.recv(100)
        assert 0 < len(first) < 8 and b'ijklmnop'.startswith(first)
        rest = support.recv_exact(sock, 8 - len(first))
        assert first + rest == b'ijklmnop'
    lines = support.wait_until(
        lambda: [line for line in log.read_text().splitlines()
                 if '"handler":"stutter"' in line
                 and '"direction":"downstream"' in line
                 and '"bytes":8' in line], what='the event log')
    assert all('"effect":"delayed"' in line for line in lines)


def test_writing_handlers_example_ini(vaurien_inproc, echo_server):
    """examples/shouty.ini defines both example handlers by name."""
    proxy = vaurien_inproc('--config', os.path.join(EXAMPLES, 'shouty.ini'),
                           '--behavior', '100:shouty',
                           backend=echo_server.address, extra_paths=[EXAMPLES])
    with proxy.connect() as sock:
        assert support.exchange(sock, b'abc') == b'abc'
        assert support.exchange(sock, b'abc') == b'ABC'
    proxy = vaurien_inproc('--config', os.path.join(EXAMPLES, 'shouty.ini'),
                           '--behavior', '100:drop',
                           backend=echo_server.address, extra_paths=[EXAMPLES])
    with proxy.connect() as sock:
        sock.settimeout(0.5)
        sock.sendall(b'swallowed')
        with pytest.raises(socket.timeout):
            sock.recv(10)


def _readme_ini():
    with open(os.path.join(ROOT, 'README.rst')) as fh:
        text = fh.read()
    block = re.search(r'\n    \[vaurien\]\n(?:    .*\n|\n)+', text).group(0)
    return '\n'.join(line[4:] for line in block.splitlines()) + '\n'


def test_readme_ini_example_starts(vaurien_inproc, echo_server, tmp_path):
    shutil.copy(os.path.join(EXAMPLES, 'myhandlers.py'), tmp_path)
    config = tmp_path / 'config.ini'
    config.write_text(_readme_ini())
    proxy = vaurien_inproc('--config', str(config), '--local', '127.0.0.1:0',
                           '--behavior', '100:shouty',
                           backend=echo_server.address,
                           extra_paths=[str(tmp_path)])
    assert 'behavior 100:shouty' in proxy.log()
    with proxy.connect() as sock:
        assert support.exchange(sock, b'x') == b'x'
        assert support.exchange(sock, b'y') == b'Y'


def test_readme_usage_command_starts(vaurien_inproc, echo_server):
    with open(os.path.join(ROOT, 'README.rst')) as fh:
        text = fh.read()
    command = re.search(r'\n    (vaurien --local .*?)\n\n', text, re.S).group(1)
    args = command.replace('\\\n', ' ').split()[1:]
    # Same command, on a free port and in front of the test backend.
    args[args.index('--local') + 1] = '127.0.0.1:0'
    args[args.index('--distant') + 1] = '%s:%d' % echo_server.address
    proxy = vaurien_inproc(*args)
    assert 'behavior 20:delay,10:error' in proxy.log()


def test_sample_ini_comments_are_not_broken_mid_phrase():
    # Every comment line of the sample closes the quotes it opens, and no
    # flag is split ("--" then "http" on the next line).
    with open(os.path.join(ROOT, 'vaurien.ini.sample')) as fh:
        comments = [line.rstrip('\n') for line in fh if line.startswith('#')]
    assert comments
    for line in comments:
        assert line.count('"') % 2 == 0, line
        assert not line.endswith('-'), line
    from vaurien.docgen import comment_lines
    text = ('Serve it; "--http" alone means yes, "Authorization: Bearer '
            'TOKEN" and "pip install vaurien[statsd]" stay whole. ' * 3)
    for line in comment_lines(text, 40).splitlines():
        assert line.count('"') % 2 == 0, line


def test_install_instructions_install_this_tree():
    # "pip install vaurien" gets the old 1.x from the public index: every
    # install command of the README and the docs installs the source tree
    # (".", '.[test]') or a third-party package, never that.
    texts = [os.path.join(ROOT, 'README.rst')] + [
        os.path.join(ROOT, 'docs', name)
        for name in sorted(os.listdir(os.path.join(ROOT, 'docs')))
        if name.endswith('.rst')]
    commands = []
    for path in texts:
        with open(path, encoding='utf-8') as fh:
            for command in re.findall(r'pip install ([^`\n]+)', fh.read()):
                commands.append((os.path.basename(path), command))
    assert ('README.rst', ". && vaurien --demo") in commands
    assert ('index.rst', '.') in commands
    for where, command in commands:
        target = re.split(r'[\s"\')]', command.strip('"\''))[0]
        assert target.startswith('.') or target == 'statsd', (where, command)
