"""Handlers: the base class and the registry of every handler usable by name.

Handlers come from four sources, all in one registry (see
:mod:`vaurien.registry`, shared with the protocols):

* the built-ins of this package: every module here that defines a
  :class:`BaseHandler` subclass with its own ``name`` (one module each);
* ``[handler:NAME]`` sections of the INI file with ``callable = dotted.path``;
* dotted paths named directly in ``--behavior`` (``pkg.mod.Class`` or
  ``pkg.mod:Class``), to a handler class or a plain callable;
* the ``vaurien.handlers`` entry-point group, so that an installed package
  can add handlers.

Two handlers with one name is an error that names both.
"""
import sys

from vaurien import registry as _registry
from vaurien.behavior import DIRECTIONS
from vaurien.config import parse_choice
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.checks import class_problem
from vaurien.handlers.legacy import adapt
from vaurien.registry import Entry, RegistryError

__all__ = ['BaseHandler', 'Registry', 'Entry', 'BUILTINS', 'load_dotted',
           'get_handlers', 'HandlerError', 'DIRECTION_OPTION',
           'ENTRY_POINT_GROUP']

ENTRY_POINT_GROUP = 'vaurien.handlers'

# The option every handler has without declaring it (applied by the engine).
DIRECTION_OPTION = ("Which events the handler acts on: both, upstream "
                    "(client to backend) or downstream (backend to client); "
                    "events of the other direction pass untouched",
                    parse_choice(*DIRECTIONS), 'both')


class HandlerError(RegistryError):
    """A handler cannot be found, loaded or configured (one line)."""


def load_dotted(path):
    """Import ``pkg.mod.Attr`` or ``pkg.mod:Attr``: a handler class or
    callable (HandlerError saying what is missing)."""
    return _registry.load_dotted(path, 'handler', HandlerError)


class Registry(_registry.Registry):
    """The registry of handlers: the built-ins and, unless *entry_points*
    is false, the installed packages' handlers (a
    :class:`vaurien.registry.Registry` of kind ``handler``)."""

    def __init__(self, entry_points=True):
        super().__init__(
            'handler', ENTRY_POINT_GROUP, sys.modules[__name__], BaseHandler,
            error=HandlerError, extra_options={'direction': DIRECTION_OPTION},
            entry_points=entry_points, on_load=_on_load)


def _on_load(target, path):
    """A handler loaded from *path*: a Vaurien 1.x behavior class runs as a
    handler; a class that breaks the handler contract stops the start."""
    target = adapt(target)
    problem = class_problem(target, path)
    if problem is not None:
        raise HandlerError(problem)
    return target


def get_handlers():
    """``{name: class}`` of the built-in handlers, sorted by name."""
    return dict(_registry.discover_builtins(sys.modules[__name__],
                                            BaseHandler))


def __getattr__(name):
    # BUILTINS is computed when first asked for: it imports every handler.
    if name == 'BUILTINS':
        return {name: '%s:%s' % (cls.__module__, cls.__qualname__)
                for name, cls in get_handlers().items()}
    # The 2012 releases defined their handlers here: Delay, Error...
    for cls in get_handlers().values():
        if cls.__name__ == name:
            return cls
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
