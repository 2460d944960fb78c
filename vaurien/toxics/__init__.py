"""Toxics: faults stacked on a proxy, with Toxiproxy's semantics.

Each proxy has one :class:`ToxicSet`: an ordered chain of :class:`Toxic`
per stream (``upstream`` = client to backend, ``downstream`` = backend to
client). Every active toxic of a stream acts on its data, in the order the
toxics were added: ``latency`` then ``bandwidth`` both act. A toxic's
``toxicity`` (0 to 1) is the share of connections it acts on: each
connection rolls once per toxic, from a generator derived from ``--seed``,
the connection's number, the stream and the toxic's name, so the same seed
gives the same rolls.

The types (one module each, Toxiproxy's attribute names and units):
``latency``, ``bandwidth``, ``slow_close``, ``timeout``, ``reset_peer``,
``slicer``, ``limit_data``, ``noop``, found by :class:`Registry` like the
handlers and protocols (an installed package adds types through the
``vaurien.toxics`` entry-point group); and every Vaurien handler of the
proxy's registry (``error``, ``hang``, ``corrupt``, a user's handler...) by
its name, with its own options (in its own units) as attributes.

A change (add, update, remove, reset) is validated completely, then swapped
in at once without waiting for anything: the pumps of the connections are
woken and pick it up at their next step (:mod:`vaurien.toxics.link`).
"""
import itertools
import sys

from vaurien import registry as _registry
from vaurien.config import parse_float
from vaurien.registry import RegistryError
from vaurien.toxics.base import Chunk, ToxicType
from vaurien.toxics.handler import handler_type

__all__ = ['ToxicSet', 'Toxic', 'ToxicError', 'ToxicType', 'Chunk',
           'STREAMS', 'toxic_type', 'type_names', 'builtin_types',
           'Registry', 'ENTRY_POINT_GROUP']

STREAMS = ('downstream', 'upstream')      # indexed by to_backend

ENTRY_POINT_GROUP = 'vaurien.toxics'

_keys = itertools.count(1)


class ToxicTypeError(RegistryError):
    """A toxic type cannot be found or loaded (one line)."""


class Registry(_registry.Registry):
    """The registry of toxic types: the built-ins (every module of this
    package defining a :class:`ToxicType` with its own ``name``) and,
    unless *entry_points* is false, the installed packages' types (the
    ``vaurien.toxics`` entry-point group); a
    :class:`vaurien.registry.Registry` of kind ``toxic``."""

    def __init__(self, entry_points=True):
        super().__init__(
            'toxic', ENTRY_POINT_GROUP, sys.modules[__name__], ToxicType,
            error=ToxicTypeError, label='toxic %s', base_required=True,
            entry_points=entry_points)


_TYPES = []


def _types():
    # One registry for the process: the entry points are read once.
    if not _TYPES:
        _TYPES.append(Registry())
    return _TYPES[0]


def builtin_types():
    """``{name: class}`` of the built-in toxic types, sorted by name."""
    return dict(_registry.discover_builtins(sys.modules[__name__],
                                            ToxicType))


class ToxicError(ValueError):
    """A refused toxic change. ``code`` names it for the API's error table:
    ``bad_body``, ``invalid_stream``, ``invalid_type``, ``exists``,
    ``not_found``; the message is one line."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def toxic_type(name, handlers=None):
    """The ToxicType class named *name*, or None.

    The toxic types come first (built-ins and entry points); then, with a
    handler registry (:class:`vaurien.handlers.Registry`), any handler it
    knows by name. Never a dotted path: a name from the network must not
    import code.
    """
    if not isinstance(name, str):
        return None
    types = _types()
    if name in types:
        return types.get(name).load()
    if handlers is not None and name in handlers:
        return handler_type(handlers.get(name))
    return None


def type_names(handlers=None):
    """Every usable type name."""
    names = set(_types().names())
    if handlers is not None:
        names.update(handlers.names())
    return sorted(names)


class Toxic:
    """One toxic of a proxy. ``kind`` (its ToxicType instance, holding the
    attributes) and ``toxicity`` are swapped as a whole by an update;
    ``key`` orders the chain and identifies the toxic across updates."""

    __slots__ = ('key', 'name', 'type', 'stream', 'to_backend', 'toxicity',
                 'kind')

    def __init__(self, name, type_name, stream, toxicity, kind):
        self.key = next(_keys)
        self.name = name
        self.type = type_name
        self.stream = stream
        self.to_backend = stream.lower() == 'upstream'
        self.toxicity = toxicity
        self.kind = kind

    def shown(self):
        """The toxic as Toxiproxy's API shows it."""
        toxicity = self.toxicity
        if float(toxicity).is_integer():
            toxicity = int(toxicity)
        return {'attributes': self.kind.shown(), 'name': self.name,
                'type': self.type, 'stream': self.stream,
                'toxicity': toxicity}

    def __repr__(self):
        return '<Toxic %s %s %s %s>' % (self.name, self.type, self.stream,
                                        self.kind.values)


def _toxicity(value):
    try:
        return parse_float(value)
    except ValueError as exc:
        raise ToxicError('bad_body', 'toxicity expects %s, got %r'
                         % (exc, value)) from None


def _attributes(data):
    attributes = data.get('attributes')
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ToxicError('bad_body', 'attributes must be an object')
    return attributes


class ToxicSet:
    """The toxics of one proxy: an ordered chain per stream.

    *proxy* is given to handler toxics (their ``proxy``); *handlers* is the
    handler registry (handler toxics), or None; *on_change* is called
    after each change (the owner switches connections that did not go
    through toxics yet).
    """

    def __init__(self, proxy=None, handlers=None, on_change=None):
        self.proxy = proxy
        self.handlers = handlers
        self.on_change = on_change
        self.chains = ((), ())          # indexed by to_backend
        # True while a stream has toxics: bool(self), as a plain attribute
        # (the engine reads it for every new connection).
        self.active = False
        self.version = 0
        self.links = set()              # the live links (vaurien.toxics.link)

    # -- reading ------------------------------------------------------------

    def __len__(self):
        return len(self.chains[0]) + len(self.chains[1])

    def __bool__(self):
        return bool(self.chains[0] or self.chains[1])

    def chain(self, to_backend):
        """The toxics of one stream, in order (a tuple)."""
        return self.chains[to_backend]

    def list(self):
        """Every toxic, upstream first (Toxiproxy's order)."""
        return list(self.chains[1]) + list(self.chains[0])

    def get(self, name):
        """The toxic named *name*, or None."""
        for toxic in self.list():
            if toxic.name == name:
                return toxic
        return None

    # -- changing -----------------------------------------------------------

    def build(self, data):
        """A new Toxic from a Toxiproxy toxic object (a dict), checked
        completely but not added; ToxicError when refused."""
        if not isinstance(data, dict):
            raise ToxicError('bad_body', 'expected a JSON object')
        stream = data.get('stream', 'downstream')
        if stream is None:
            stream = 'downstream'
        if not isinstance(stream, str) or stream.lower() not in STREAMS:
            raise ToxicError('invalid_stream', 'stream %r is neither upstream '
                             'nor downstream' % (stream,))
        type_name = data.get('type', '')
        name = data.get('name') or ''
        if not isinstance(name, str):
            raise ToxicError('bad_body', 'name must be a string')
        if not name:
            name = '%s_%s' % (type_name if isinstance(type_name, str)
                              else '', stream)
        cls = toxic_type(type_name, self.handlers)
        if cls is None:
            raise ToxicError('invalid_type', 'invalid toxic type %r (known: '
                             '%s)' % (type_name, ', '.join(
                                 type_names(self.handlers))))
        toxicity = data.get('toxicity', 1.0)
        toxicity = 1.0 if toxicity is None else _toxicity(toxicity)
        kind = self._kind(cls, _attributes(data))
        return Toxic(name, type_name, stream, toxicity, kind)

    def _kind(self, cls, given, current=None):
        try:
            values = cls.check(given, current)
            return cls(values, self.proxy)
        except ValueError as exc:
            raise ToxicError('bad_body', str(exc)) from None

    def add(self, data):
        """Add a toxic at the end of its stream's chain; the Toxic."""
        toxic = self.build(data)
        if self.get(toxic.name) is not None:
            toxic.kind.close()
            raise ToxicError('exists', 'a toxic named %r exists already'
                             % toxic.name)
        chains = list(self.chains)
        chains[toxic.to_backend] = chains[toxic.to_backend] + (toxic,)
        self._swap(tuple(chains))
        return toxic

    def update(self, name, data):
        """Change the attributes and/or toxicity of toxic *name* (the
        others are kept); the Toxic."""
        toxic = self.get(name)
        if toxic is None:
            raise ToxicError('not_found', 'no toxic named %r' % name)
        if not isinstance(data, dict):
            raise ToxicError('bad_body', 'expected a JSON object')
        toxicity = toxic.toxicity
        if data.get('toxicity') is not None:
            toxicity = _toxicity(data['toxicity'])
        old = toxic.kind
        kind = self._kind(type(old), _attributes(data), old.values)
        toxic.kind, toxic.toxicity = kind, toxicity
        old.close()
        self._swap(self.chains)
        return toxic

    def remove(self, name):
        """Remove toxic *name*; ToxicError ``not_found`` if there is none."""
        toxic = self.get(name)
        if toxic is None:
            raise ToxicError('not_found', 'no toxic named %r' % name)
        chains = list(self.chains)
        chains[toxic.to_backend] = tuple(
            t for t in chains[toxic.to_backend] if t is not toxic)
        self._swap(tuple(chains))
        toxic.kind.close()

    def reset(self):
        """Remove every toxic."""
        old = self.list()
        if old:
            self._swap(((), ()))
        for toxic in old:
            toxic.kind.close()

    def _swap(self, chains):
        self.chains = chains
        self.active = bool(chains[0] or chains[1])
        self.version += 1
        for link in list(self.links):
            link.wake()
        if self.on_change is not None:
            self.on_change()
