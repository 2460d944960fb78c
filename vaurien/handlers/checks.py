"""Mistakes in a handler class, found when it is loaded (at start-up).

The seed's contract: a handler class has ``__call__(self, client_sock,
backend_sock, to_backend)``, and ``options`` maps each option to a 3-tuple
``(description, type, default)`` whose default is of the declared type.
A class that breaks it would otherwise fail at the first connection (or,
without ``__call__``, silently pass the traffic on); :func:`class_problem`
says what is wrong before anything listens.
"""
from vaurien.config import convert, type_name
from vaurien.handlers.base import BaseHandler

__all__ = ['class_problem', 'declared_name']


def _has_own_call(cls, base):
    """Does a class of *cls*'s MRO, other than *base* and ``object``,
    define ``__call__``?"""
    return any('__call__' in vars(klass) for klass in cls.__mro__
               if klass is not base and klass is not object)


def class_problem(target, path, exempt=()):
    """What is wrong with the handler class *target* (loaded from *path*),
    in one sentence; None when nothing is, or when *target* is not a class
    (a plain callable). Classes in *exempt* (the built-in ``dummy``, which
    the engine relays itself) may use :class:`BaseHandler`'s ``__call__``.
    """
    if not isinstance(target, type):
        return None
    if target not in exempt and not _has_own_call(target, BaseHandler):
        return ('%r has no __call__(self, client_sock, backend_sock, '
                'to_backend): a handler class must define it' % path)
    options = getattr(target, 'options', {})
    if not isinstance(options, dict):
        return ('%r: options must be a mapping {name: (description, type, '
                'default)}, got a %s' % (path, type(options).__name__))
    for option, spec in sorted(options.items()):
        if not (isinstance(spec, tuple) and len(spec) == 3):
            return ('%r: option %r must be a 3-tuple (description, type, '
                    'default), got %r' % (path, option, spec))
        description, kind, default = spec
        if not callable(kind):
            return ('%r: option %r: the type %r is not a type or a converter'
                    % (path, option, kind))
        try:
            converted = convert(kind, default)
        except Exception:
            converted = _BAD
        if converted is _BAD or converted != default:
            return ('%r: option %r: the default %r is not a valid %s'
                    % (path, option, default, type_name(kind)))
    return None


_BAD = object()


def declared_name(target):
    """The ``name`` the class *target* declares (not one inherited from
    :class:`BaseHandler`), or None."""
    if not isinstance(target, type):
        return None
    name = getattr(target, 'name', None)
    if not isinstance(name, str) or not name or name == BaseHandler.name:
        return None
    return name
