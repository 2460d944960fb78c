"""Handlers: the base class and the registry of every handler usable by name.

Handlers come from four sources, all in one registry:

* the built-ins of this package (one module each);
* ``[handler:NAME]`` sections of the INI file with ``callable = dotted.path``;
* dotted paths named directly in ``--behavior`` (``pkg.mod.Class`` or
  ``pkg.mod:Class``), to a handler class or a plain callable;
* the ``vaurien.handlers`` entry-point group, so that an installed package
  can add handlers.

Two handlers with one name is an error that names both.
"""
import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata

from vaurien.behavior import DIRECTIONS
from vaurien.config import ConfigError, parse_choice
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.legacy import adapt

__all__ = ['BaseHandler', 'Registry', 'Entry', 'BUILTINS', 'load_dotted',
           'get_handlers']

# name -> "module:Class"; imported when first used.
BUILTINS = {
    'dummy': 'vaurien.handlers.dummy:Dummy',
    'delay': 'vaurien.handlers.delay:Delay',
    'error': 'vaurien.handlers.error:Error',
    'hang': 'vaurien.handlers.hang:Hang',
    'blackout': 'vaurien.handlers.blackout:Blackout',
    'bandwidth': 'vaurien.handlers.bandwidth:Bandwidth',
    'slicer': 'vaurien.handlers.slicer:Slicer',
    'limit_data': 'vaurien.handlers.limit_data:LimitData',
    'slow_close': 'vaurien.handlers.slow_close:SlowClose',
    'timeout': 'vaurien.handlers.timeout:Timeout',
    'reset_peer': 'vaurien.handlers.reset_peer:ResetPeer',
    'abort': 'vaurien.handlers.abort:Abort',
    'transient': 'vaurien.handlers.transient:Transient',
    'corrupt': 'vaurien.handlers.corrupt:Corrupt',
}

ENTRY_POINT_GROUP = 'vaurien.handlers'

# The option every handler has without declaring it (applied by the engine).
DIRECTION_OPTION = ("Which events the handler acts on: both, upstream "
                    "(client to backend) or downstream (backend to client); "
                    "events of the other direction pass untouched",
                    parse_choice(*DIRECTIONS), 'both')
_parse_direction = DIRECTION_OPTION[1]


class HandlerError(ConfigError, ValueError):
    """A handler cannot be found, loaded or configured (one line)."""


def load_dotted(path):
    """Import ``pkg.mod.Attr`` or ``pkg.mod:Attr`` and return the attribute.

    The current directory is searched too, so a handler in ``./myhandlers.py``
    is found as ``myhandlers.Class``. Raises HandlerError saying which module
    or attribute is missing, and why.
    """
    if ':' in path:
        module_name, _, attr_path = path.partition(':')
    else:
        module_name, _, attr_path = path.rpartition('.')
    if not module_name or not attr_path:
        raise HandlerError('%r is not a dotted path like pkg.module.Class'
                           % path)
    if os.getcwd() not in sys.path and '' not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise HandlerError('cannot load %r: no module named %r'
                           % (path, missing)) from None
    except Exception as exc:   # the user's module raised while importing
        raise HandlerError('cannot load %r: importing %r failed: %s: %s'
                           % (path, module_name, type(exc).__name__, exc)) \
            from None
    done = module_name
    for attr in attr_path.split('.'):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise HandlerError('cannot load %r: %r has no attribute %r'
                               % (path, done, attr)) from None
        done = '%s.%s' % (done, attr)
    if not callable(obj):
        raise HandlerError('cannot use %r as a handler: it is a %s, not a '
                           'class or a callable' % (path, type(obj).__name__))
    return obj


@dataclass
class Entry:
    """One handler known by name: where it comes from and what it is."""
    name: str
    source: str                  # for messages: "built-in", "[handler:x] in f.ini"
    target: object = None        # the class or callable, once loaded
    path: str = None             # dotted path, loaded on first use
    defaults: dict = field(default_factory=dict)   # raw option values from INI

    def load(self):
        if self.target is None:
            # a Vaurien 1.x behavior class runs as a handler
            self.target = adapt(load_dotted(self.path))
        return self.target

    @property
    def is_class(self):
        return isinstance(self.load(), type)

    @property
    def options(self):
        """The declared options ``{name: (description, type, default)}``."""
        target = self.load()
        if isinstance(target, type):
            declared = getattr(target, 'options', None)
            if isinstance(declared, dict):
                return declared
        return {}

    @property
    def doc(self):
        target = self.load()
        return (getattr(target, '__doc__', None) or '').strip()

    def check_options(self, values):
        """Convert raw option values for this handler (HandlerError if bad).

        ``direction``, which every handler has without declaring it, is
        checked here and kept in the result.
        """
        values = dict(values)
        direction = values.pop('direction', None)
        result = self._check_declared(values)
        if direction is not None:
            try:
                result['direction'] = _parse_direction(direction)
            except ValueError as exc:
                raise HandlerError('%s: option %r expects %s, got %r'
                                   % (self.name, 'direction', exc, direction)) \
                    from None
        return result

    def _check_declared(self, values):
        target = self.load()
        if not isinstance(target, type):
            if values:
                raise HandlerError(
                    '%s: a plain callable takes no options, got %s'
                    % (self.name, ', '.join(sorted(values))))
            return {}
        declared = self.options
        unknown = sorted(set(values) - set(declared))
        if unknown:
            # listed here rather than by the class, which does not know
            # that every handler also takes "direction"
            raise HandlerError('%s: unknown option %r (valid options: %s)'
                               % (self.name, unknown[0], ', '.join(
                                   sorted(set(declared) | {'direction'}))))
        checker = getattr(target, 'check_options', None)
        try:
            if checker is not None:
                return checker(values, self.name)
            return BaseHandler.check_options.__func__(target, values,
                                                      self.name)
        except ValueError as exc:
            raise HandlerError(str(exc)) from None

    def build(self, options, proxy):
        """An instance (or the plain callable) with already checked options.

        ``direction`` is not passed on: the engine applies it.
        """
        options = {k: v for k, v in options.items() if k != 'direction'}
        target = self.load()
        if not isinstance(target, type):
            return target
        try:
            return target(settings=options, proxy=proxy)
        except Exception as exc:
            raise HandlerError('%s: could not be created: %s: %s'
                               % (self.name, type(exc).__name__, exc)) \
                from None


class Registry:
    """Every handler usable by name, from every source.

    ``Registry()`` holds the built-ins and the installed entry points;
    :meth:`add_path` adds ``[handler:NAME]`` sections; :meth:`get` also
    accepts a dotted path and registers it under that path.
    """

    def __init__(self, entry_points=True):
        self._entries = {}
        for name, path in BUILTINS.items():
            self._entries[name] = Entry(name, 'built-in %s' % path, path=path)
        if entry_points:
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                self.add_path(ep.name, ep.value,
                              'entry point %s = %s (%s)'
                              % (ep.name, ep.value,
                                 ep.dist.name if ep.dist else '?'))

    def add_path(self, name, path, source, defaults=None):
        """Register *name* as the handler at dotted *path*."""
        if name in self._entries:
            raise HandlerError('two handlers named %r: %s and %s'
                               % (name, self._entries[name].source, source))
        self._entries[name] = Entry(name, source, path=path,
                                    defaults=dict(defaults or {}))
        return self._entries[name]

    def add(self, name, target, source):
        """Register an already imported class or callable."""
        if name in self._entries:
            raise HandlerError('two handlers named %r: %s and %s'
                               % (name, self._entries[name].source, source))
        self._entries[name] = Entry(name, source, target=target)
        return self._entries[name]

    def __contains__(self, name):
        return name in self._entries

    def names(self):
        return sorted(self._entries)

    def get(self, name):
        """The Entry for *name*: a registered name or a dotted path."""
        entry = self._entries.get(name)
        if entry is not None:
            entry.load()
            return entry
        if '.' in name or ':' in name:
            entry = Entry(name, 'dotted path %s' % name, path=name)
            entry.load()
            self._entries[name] = entry
            return entry
        raise HandlerError('unknown handler %r (known: %s; or a dotted path '
                           'like pkg.module.Class)'
                           % (name, ', '.join(self.names())))


def get_handlers():
    """``{name: class}`` of the built-in handlers."""
    registry = Registry(entry_points=False)
    return {name: registry.get(name).load() for name in BUILTINS}
