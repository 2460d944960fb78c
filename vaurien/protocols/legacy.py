"""Vaurien 1.x protocol classes: recognised, and refused with advice.

A 1.x protocol relayed the bytes itself, in ``_handle(source, dest,
to_backend)`` (called by ``__call__(source, dest, to_backend, behavior)``).
This release's protocols only frame messages (``request`` and ``response``
parsers, ``error`` for protocol errors) and the engine relays, so a 1.x
protocol class cannot run here: :func:`refusal` says what to write instead,
at start-up, rather than letting every connection fail.

``from vaurien.protocols import Protocol`` and ``Protocol.register(cls)``
still import and run, so that a module holding 1.x protocols and behaviors
loads and its behaviors work.
"""

__all__ = ['Protocol', 'is_legacy_protocol', 'refusal']


class Protocol:
    """1.x's registry of protocols: :meth:`register` records a class."""

    _registered = {}

    @classmethod
    def register(cls, subclass):
        """Record *subclass* under its ``name``; returns it."""
        cls._registered[getattr(subclass, 'name', subclass.__name__)] = \
            subclass
        return subclass

    @classmethod
    def get_protocols(cls):
        """``{name: class}`` of the registered protocols."""
        return dict(cls._registered)


def _defines(target, attr, base):
    """Does *target* define *attr* itself, not just inherit it from *base*?"""
    own = getattr(target, attr, None)
    return own is not None and own is not getattr(base, attr, None)


def is_legacy_protocol(target, base):
    """Is *target* a 1.x protocol (``_handle``, or a ``__call__`` taking
    the behavior) rather than a framing protocol subclassing *base*?"""
    if not isinstance(target, type):
        return False
    frames = _defines(target, 'request', base) or \
        _defines(target, 'response', base)
    if frames:
        return False
    code = getattr(getattr(target, '__call__', None), '__code__', None)
    takes_behavior = code is not None and 'behavior' in code.co_varnames[
        :code.co_argcount]
    return callable(getattr(target, '_handle', None)) or takes_behavior


def refusal(label, path):
    """The start-up message for the 1.x protocol *path* (one line)."""
    return ('%s: %r is a Vaurien 1.x protocol (it relays the bytes itself in '
            '_handle(source, dest, to_backend)); protocols here only frame '
            'messages and the proxy relays them: subclass '
            'vaurien.protocols.BaseProtocol and write the generators '
            'request(stream, session) and response(stream, session) (and '
            'error() for the errors the client should get), see '
            'docs/protocols.rst; or leave --protocol at tcp and put the '
            'fault in a handler' % (label, path))
