"""Vaurien 1.x behaviors, run as handlers.

A behavior of Vaurien 1.x is a class with ``name``, ``options`` and two
hooks, called around the relaying of each piece of data::

    from vaurien.behaviors import BaseBehavior, Behavior

    class Slow(BaseBehavior):
        name = 'slow'
        options = {'sleep': ("Delay in seconds", float, 1)}

        def on_before_handle(self, protocol, source, dest, to_backend):
            gevent.sleep(self.option('sleep'))
            return True

        def on_after_handle(self, protocol, source, dest, to_backend):
            return True

    Behavior.register(Slow)

Named in ``--behavior`` by its dotted path, or by a ``[behavior:NAME]`` (or
``[handler:NAME]``) section with ``callable = pkg.module.Slow``, it loads
and works: :func:`~vaurien.handlers.legacy.adapt` turns the class into a
handler class (:class:`~vaurien.handlers.legacy.BehaviorHandler`), so it
takes its options like any handler (``--handlers.NAME.OPTION``,
``--behavior-NAME-OPTION``, the section's keys, the control API) and shows
in the logs, the event log and the metrics under its ``name``.

What a call does, as 1.x's protocols did it: ``on_before_handle(protocol,
source, dest, to_backend)``; when it returns something true, the data
waiting on *source* is read (one read, or one whole message with
``--protocol``) and sent to *dest*; then ``on_after_handle`` (also when the
relaying failed). When ``on_before_handle`` returns something false, the
behavior has dealt with the data itself and nothing is relayed. *source* is
the side with data waiting (the client when *to_backend*), *dest* the other.
*protocol* gives ``name`` (``'tcp'`` without ``--protocol``),
``option(name)``, ``_get_data(sock[, size])`` and ``proxy``.

``Behavior.register(cls)`` is accepted as 1.x had it (and returns *cls*, so
it also works as a decorator); :meth:`Behavior.get_behaviors` lists what
was registered. The class itself is what ``--behavior`` or the section
names, as in 1.x, where a section's ``callable`` imported it.
"""
from vaurien.config import convert
from vaurien.handlers.legacy import (BehaviorHandler, ProtocolView, adapt,
                                     is_behavior)

__all__ = ['BaseBehavior', 'Dummy', 'Behavior', 'BehaviorHandler',
           'ProtocolView', 'adapt', 'is_behavior', 'get_behaviors',
           'get_behavior']


class BaseBehavior:
    """The base of 1.x behaviors (1.x's ``vaurien.behaviors.dummy.Dummy``):
    settings, ``option()``, and hooks that let the data through."""

    name = 'dummy'
    options = {}

    def __init__(self):
        self.settings = {}

    def update_settings(self, settings):
        """Merge *settings* (``{option: value}``) into the settings."""
        self.settings.update(settings)

    def option(self, name):
        """The value of option *name*: its setting, else its default."""
        kind, default = self.options[name][1:3]
        return convert(kind, self.settings.get(name, default))

    def on_before_handle(self, protocol, source, dest, to_backend):
        """Called before the data is relayed; False: do not relay it."""
        return True

    def on_after_handle(self, protocol, source, dest, to_backend):
        """Called after the data was relayed."""
        return True


class Dummy(BaseBehavior):
    """Transparent behavior: nothing is done (1.x's ``dummy``)."""


class Behavior:
    """1.x's registry of behaviors: :meth:`register` records a class."""

    _registered = {}

    @classmethod
    def register(cls, subclass):
        """Record *subclass* under its ``name``; returns it."""
        cls._registered[subclass.name] = subclass
        return subclass

    @classmethod
    def get_behaviors(cls):
        """``{name: class}`` of the registered behaviors."""
        return dict(cls._registered)

    @classmethod
    def get_behavior(cls, name):
        """The registered class named *name* (KeyError if none)."""
        return cls._registered[name]


get_behaviors = Behavior.get_behaviors
get_behavior = Behavior.get_behavior
