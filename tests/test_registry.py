"""vaurien/registry.py: one registry for handlers and protocols.

The same lookup (name, dotted path, INI section, entry point), the same
rules and the same messages for both kinds; built-ins found in their own
package, so that adding one is adding a file.
"""
import ast
import os
import shutil
import subprocess
import sys

import pytest

import support
from vaurien.handlers import BaseHandler, HandlerError
from vaurien.handlers import Registry as HandlerRegistry
from vaurien.protocols import ProtocolError
from vaurien.protocols import Registry as ProtocolRegistry

pytestmark = pytest.mark.timeout(60)

ROOT = support.ROOT
EXAMPLES = os.path.join(ROOT, 'examples')


def declared_names(folder):
    """``{name: module}`` of the classes setting a string ``name`` in their
    body, in the modules of *folder* (read as text, not imported)."""
    found = {}
    for filename in sorted(os.listdir(folder)):
        if not filename.endswith('.py') or filename.startswith('_'):
            continue
        with open(os.path.join(folder, filename), encoding='utf-8') as fh:
            tree = ast.parse(fh.read())
        for node in tree.body:
            if not isinstance(node, ast.ClassDef) or not node.bases:
                continue
            for item in node.body:
                if (isinstance(item, ast.Assign)
                        and [getattr(t, 'id', None) for t in item.targets]
                        == ['name'] and isinstance(item.value, ast.Constant)):
                    found[item.value.value] = filename[:-3]
    found.pop('base', None)      # the base classes themselves
    return found


def test_every_handler_module_is_a_builtin_and_documented():
    declared = declared_names(os.path.join(ROOT, 'vaurien', 'handlers'))
    registry = HandlerRegistry(entry_points=False)
    assert sorted(registry.builtins()) == sorted(declared)
    with open(os.path.join(ROOT, 'docs', 'handlers.rst')) as fh:
        page = fh.read()
    for name in declared:
        assert '\n%s\n%s\n' % (name, '-' * len(name)) in page
        # The class's own facts: options and effect live on it.
        cls = registry.get(name).load()
        assert cls.__module__ == 'vaurien.handlers.%s' % declared[name]
        assert cls.effect is not BaseHandler.effect, \
            '%s does not say what its events do' % name
    help_text = support.run_cli('--help').stdout
    assert 'Built-in handlers: %s.' % ', '.join(sorted(declared)) in \
        ' '.join(help_text.split())


def test_every_protocol_module_is_a_builtin_and_documented():
    declared = declared_names(os.path.join(ROOT, 'vaurien', 'protocols'))
    registry = ProtocolRegistry(entry_points=False)
    assert sorted(registry.builtins()) == sorted(declared)
    assert sorted(registry.names()) == sorted(set(declared) | {'tcp'})
    with open(os.path.join(ROOT, 'docs', 'protocols-table.inc')) as fh:
        table = fh.read()
    for name in list(declared) + ['tcp']:
        assert '\n``%s`` ' % name in table
    help_text = ' '.join(support.run_cli('--help').stdout.split())
    assert 'Built-in protocols: tcp, %s.' % ', '.join(sorted(declared)) \
        in help_text


HANDLER = '''
from vaurien.handlers import BaseHandler


class Twice(BaseHandler):
    """Sends what the backend answers twice."""
    name = 'twice'
    options = {'times': ("How many copies", int, 2)}
    outcome = 'errored'

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if data and not to_backend:
            data = data * self.option('times')
        if data:
            self.forward(client_sock, backend_sock, to_backend, data)
        return bool(data)
'''


@pytest.mark.timeout(120)
def test_adding_a_builtin_is_one_file(tmp_path, vaurien, echo_server):
    """A copy of the tree plus one handler module and one protocol module:
    after the doc generator, the new built-ins are everywhere."""
    ignore = shutil.ignore_patterns('__pycache__')
    shutil.copytree(os.path.join(ROOT, 'vaurien'), tmp_path / 'vaurien',
                    ignore=ignore)
    shutil.copytree(os.path.join(ROOT, 'docs'), tmp_path / 'docs',
                    ignore=ignore)
    shutil.copy(os.path.join(ROOT, 'vaurien.ini.sample'), tmp_path)
    (tmp_path / 'vaurien' / 'handlers' / 'twice.py').write_text(HANDLER)
    shutil.copy(os.path.join(EXAMPLES, 'line_protocol.py'),
                tmp_path / 'vaurien' / 'protocols' / 'lines.py')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop('PYTHONWARNINGS', None)

    def run(*args):
        return subprocess.run([sys.executable] + list(args), cwd=tmp_path,
                              env=env, capture_output=True, text=True,
                              timeout=60)

    check = run('-m', 'vaurien.docgen', '--check')
    assert check.returncode == 1 and 'handlers.rst' in check.stdout \
        and 'protocols-table.inc' in check.stdout, check.stdout
    assert run('-m', 'vaurien.docgen').returncode == 0
    assert run('-m', 'vaurien.docgen', '--check').returncode == 0
    page = (tmp_path / 'docs' / 'handlers.rst').read_text()
    assert '\ntwice\n-----\n' in page and 'Sends what the backend' in page
    assert '[handler:twice]\n' in (tmp_path / 'vaurien.ini.sample').read_text()
    table = (tmp_path / 'docs' / 'protocols-table.inc').read_text()
    assert '``lines``' in table and 'Each request and each reply' in table
    help_text = ' '.join(run('-m', 'vaurien', '--help').stdout.split())
    assert '--handlers.twice.times' in help_text
    assert '--protocols.lines.error_text' in help_text
    assert 'twice' in help_text.split('Built-in handlers:')[1].split('.')[0]
    # And both run, by name, with their options.
    proxy = vaurien('--behavior', '100:twice', '--handlers.twice.times', '3',
                    '--protocol', 'lines', backend=echo_server.address,
                    env={'PYTHONPATH': str(tmp_path)}, cwd=str(tmp_path))
    with proxy.connect() as sock:
        sock.sendall(b'one\n')
        assert support.recv_exact(sock, 12) == b'one\n' * 3


# -- the same rules and messages for every kind ------------------------------------


@pytest.mark.parametrize('make, kind, builtin, error', [
    (lambda: HandlerRegistry(entry_points=False), 'handler', 'delay',
     HandlerError),
    (lambda: ProtocolRegistry(entry_points=False), 'protocol', 'http',
     ProtocolError),
])
def test_one_set_of_rules_and_messages(make, kind, builtin, error):
    registry = make()
    with pytest.raises(error) as info:
        registry.get('nosuch')
    assert str(info.value) == (
        'unknown %s %r (known: %s; or a dotted path like pkg.module.Class)'
        % (kind, 'nosuch', ', '.join(registry.names())))
    with pytest.raises(error) as info:
        registry.add_path(builtin, 'line_protocol.Lines', '[%s:%s] in x.ini'
                          % (kind, builtin))
    cls = registry.get(builtin).load()
    assert str(info.value) == (
        'two %ss named %r: built-in %s:%s and [%s:%s] in x.ini'
        % (kind, builtin, cls.__module__, cls.__qualname__, kind, builtin))
    with pytest.raises(error) as info:
        registry.add_sections({'nosuch': {'x': '1'}}, 'x.ini')
    assert str(info.value).startswith(
        'x.ini: [%s:nosuch] has no "callable" and \'nosuch\' is not a known '
        '%s (known: ' % (kind, kind))
    with pytest.raises(error) as info:
        registry.get('nosuchmod.Thing')
    assert str(info.value) == ("cannot load 'nosuchmod.Thing': no module "
                               "named 'nosuchmod'")
    with pytest.raises(error) as info:
        registry.get(builtin).check_options({'nope': '1'})
    assert "unknown option 'nope' (valid options: " in str(info.value)


def test_a_protocol_entry_point_named_like_a_builtin_is_an_error(tmp_path):
    """Protocols refuse it as handlers do, naming both (it used to be
    silently shadowed by the built-in)."""
    dist = tmp_path / 'clash-1.0.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: clash\n'
                                   'Version: 1.0\n')
    (dist / 'entry_points.txt').write_text(
        '[vaurien.protocols]\nhttp = line_protocol:Lines\n')
    done = support.run_cli('--local', '127.0.0.1:0', '--distant',
                           '127.0.0.1:9', '--protocol', 'redis',
                           extra_paths=[str(tmp_path), EXAMPLES])
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line == ("vaurien: error: two protocols named 'http': built-in "
                    "vaurien.protocols.http:HTTP and entry point http = "
                    "line_protocol:Lines (clash)")
