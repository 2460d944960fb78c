"""The shape of the package: no import cycle, nothing imports the command,
and the ``--workers`` broadcast forwards every control operation.

Imports are read from the source (every module under vaurien/, imports
inside functions included), not by importing it.
"""
import ast
import os

import pytest

import support

PACKAGE = os.path.join(support.ROOT, 'vaurien')


def _module_name(path, root):
    rel = os.path.relpath(path, root)[:-len('.py')]
    parts = rel.split(os.sep)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _modules(package):
    """``{module name: path}`` of every module of *package* (a folder)."""
    found = {}
    root = os.path.dirname(package)
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                found[_module_name(path, root)] = path
    return found


def _resolve(name, modules):
    """The module of the package that importing *name* runs last, or None
    (an outside module)."""
    while name and name not in modules:
        name = name.rpartition('.')[0]
    return name or None


def import_graph(package=PACKAGE):
    """``{module: {imported module of the package: first line}}``.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a
    module, else ``a.b``; a package's ``__init__`` is not counted for its
    submodules (Python runs it, but it cannot import its own submodules
    back into a cycle without that showing as an edge of its own).
    """
    modules = _modules(package)
    graph = {}
    for module, path in modules.items():
        with open(path, encoding='utf-8') as fh:
            tree = ast.parse(fh.read(), path)
        package = module if path.endswith('__init__.py') \
            else module.rpartition('.')[0]
        edges = {}
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    anchor = package.split('.')
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = '.'.join(anchor + ([base] if base else []))
                for alias in node.names:
                    full = '%s.%s' % (base, alias.name)
                    targets.append(full if full in modules else base)
            for target in targets:
                target = _resolve(target, modules)
                if target is not None and target != module:
                    edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def find_cycle(graph):
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    graph = {'a': {'b': 1}, 'b': {'c': 1}, 'c': {'a': 1}, 'd': {'a': 1}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b': 1}, 'b': {}}) is None


def test_the_graph_sees_imports_inside_functions(tmp_path):
    package = tmp_path / 'pkg'
    (package / 'sub').mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'low.py').write_text(
        'import os\n\ndef later():\n    from pkg.sub import high\n')
    (package / 'sub' / '__init__.py').write_text('')
    (package / 'sub' / 'high.py').write_text('from .. import low\n')
    graph = import_graph(str(package))
    assert graph['pkg.low'] == {'pkg.sub.high': 4}
    assert graph['pkg.sub.high'] == {'pkg.low': 1}
    assert find_cycle(graph) == ['pkg.low', 'pkg.sub.high', 'pkg.low']
    real = import_graph()
    assert 'vaurien.config' in real['vaurien.proxy']
    assert 'vaurien.service' in real['vaurien.run']


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        where = ', '.join('%s imports %s (line %d)'
                          % (a, b, graph[a][b])
                          for a, b in zip(cycle, cycle[1:]))
        pytest.fail('import cycle: %s: %s' % (' -> '.join(cycle), where),
                    pytrace=False)


def test_nothing_imports_the_command():
    graph = import_graph()
    importers = sorted(module for module, edges in graph.items()
                       if 'vaurien.run' in edges
                       and module != 'vaurien.__main__')
    assert importers == [], 'vaurien.run is imported by %s' % importers


def test_the_broadcast_forwards_every_operation():
    from vaurien.control import OPERATIONS, Control
    from vaurien.workers import Broadcast
    public = [name for name in dir(Control) if not name.startswith('_')
              and callable(getattr(Control, name))]
    assert set(OPERATIONS) <= set(public) and len(OPERATIONS) >= 9
    for name in public:
        mine = vars(Broadcast).get(name)
        if name in OPERATIONS:
            assert getattr(mine, 'forwarded', False), \
                'Broadcast.%s is not forwarded to the workers' % name
        else:
            # Derived from the operations, so forwarded through them.
            assert mine is None, ('Broadcast.%s is its own: it would '
                                  'reach the parent only' % name)
    assert not Broadcast.__abstractmethods__


def test_an_operation_defined_by_hand_is_refused():
    from vaurien.workers import Broadcast
    with pytest.raises(TypeError, match='set_backend'):
        class Sneaky(Broadcast):
            def set_backend(self, value):
                return 'parent only'


def test_the_architecture_page_names_every_module():
    with open(os.path.join(support.ROOT, 'docs', 'architecture.rst'),
              encoding='utf-8') as fh:
        text = fh.read()
    for module, path in sorted(_modules(PACKAGE).items()):
        rel = os.path.relpath(path, support.ROOT).replace(os.sep, '/')
        folder = os.path.dirname(rel)
        if folder in ('vaurien/handlers', 'vaurien/protocols',
                      'vaurien/toxics'):
            rel = folder + '/'     # one line for each package
        assert '``%s``' % rel in text, '%s is missing from the map' % rel
