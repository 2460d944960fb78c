"""The toxic interface: :class:`ToxicType`, one class per type.

A toxic type declares its ``attributes`` (name -> ``(description, type,
default)``, in Toxiproxy's units) and acts on one direction of one
connection through three methods, all called in the direction's pump
greenlet (:class:`vaurien.toxics.link.Link`):

``apply(link, toxic, chunk, emit)``
    one chunk of data reached this toxic: call ``emit(piece)`` for what goes
    on down the chain (zero, one or several pieces), waiting with
    ``link.wait_until(deadline, toxic)`` if it must;
``eof(link, toxic, emit_eof)``
    the source ended: call ``emit_eof()`` to pass the end of stream on;
``idle(link, toxic)``
    the deadline of :meth:`deadline` passed while no data came.

Two optional shortcuts let a chunk skip the pump when the toxic would let
it through unchanged and without waiting (the link checks them where the
data was read, and takes the full path when they say no):

``passes()``
    True when, with its attributes, the toxic lets every chunk through at
    once, unchanged and without keeping anything (``latency`` 0 without
    ``jitter``, ``bandwidth`` 0, ``noop``): the shortcut skips it;
``fast(link, toxic, state, size, stamp)``
    a chunk of *size* bytes read at *stamp* would reach this toxic: True
    when :meth:`apply` would pass it on unchanged at once, having done to
    *state* (``link.state(toxic)``) what :meth:`apply` does; False, leaving
    *state* alone, for the full path. ``None`` (the default): the toxic
    always takes the full path.

One instance holds the checked attribute values of one toxic; state that
belongs to one connection lives in ``link.state(toxic)``, which survives
updates of the toxic's attributes.
"""
import time

from vaurien.config import convert

__all__ = ['ToxicType', 'Chunk', 'LinkStopped']


class LinkStopped(Exception):
    """The connection of a link was closed: its pump ends (raised through
    the toxics by the link's waits and closes)."""


class Chunk:
    """Bytes on their way down a chain, with the time they were read
    (``time.monotonic()``), which ``latency`` counts from."""

    __slots__ = ('data', 'stamp', 'handler', 'after')

    def __init__(self, data, stamp):
        self.data = data
        self.stamp = stamp
        # the behavior's (name, handler) picked for the chunk, or None
        self.handler = None
        # the key of the last toxic the chunk went through (0: none yet)
        self.after = 0


class ToxicType:
    """Base class of the toxic types (see the module docstring)."""

    #: the type's name, as in ``{"type": "latency"}``
    name = ''
    #: ``{attribute: (description, type, default)}``
    attributes = {}

    def __init__(self, values, proxy=None):
        self.values = {key: spec[2] for key, spec in self.attributes.items()}
        self.values.update(values)

    @classmethod
    def check(cls, given, current=None):
        """Checked attribute values: *current* (or the defaults) updated
        with *given*; ValueError naming the attribute when one is wrong.

        Unknown attributes are ignored, as Toxiproxy ignores them.
        """
        values = {key: spec[2] for key, spec in cls.attributes.items()}
        if current:
            values.update(current)
        for key, raw in given.items():
            spec = cls.attributes.get(key)
            if spec is None:
                continue
            try:
                values[key] = convert(spec[1], raw)
            except ValueError as exc:
                raise ValueError('attribute %r of a %s toxic expects %s, got '
                                 '%r' % (key, cls.name, exc, raw)) from None
        return values

    def shown(self):
        """The attributes as the API shows them."""
        return dict(self.values)

    # -- the runtime (see the module docstring) -----------------------------

    def apply(self, link, toxic, chunk, emit):
        emit(chunk)

    def eof(self, link, toxic, emit_eof):
        emit_eof()

    def instant(self, link, toxic, chunk):
        """True when :meth:`apply` would pass *chunk* on (or drop it)
        without waiting: then it may run right where the data was read."""
        return False

    def passes(self):
        """True when every chunk goes through this toxic at once, unchanged
        and leaving no state (see the module docstring)."""
        return False

    #: ``fast(link, toxic, state, size, stamp)`` (see the module
    #: docstring), or None: the toxic always takes the full path.
    fast = None

    def deadline(self, link, toxic):
        """When :meth:`idle` is due (monotonic seconds), or None."""
        return None

    def idle(self, link, toxic):
        pass

    def removed(self, link, toxic):
        """The toxic was removed while active on this connection."""

    def started(self, link, toxic):
        """The toxic became active on this connection."""

    def close(self):
        """The toxic is gone (removed, replaced or its proxy removed)."""


def ms(value):
    """Milliseconds -> seconds."""
    return value / 1000.0


def now():
    return time.monotonic()
