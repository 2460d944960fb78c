"""The operations on a running service, with no HTTP in them.

:class:`Control` is the one interface every front end drives: the HTTP API
(:mod:`vaurien.webserver`) maps its routes onto it, and the ``--workers``
parent (:mod:`vaurien.workers`) implements it by sending every operation
to every worker. :class:`ProxyControl` implements it over one
:class:`~vaurien.proxy.Proxy`.

The operations:

==================  ========================================================
``names()``         every handler name usable in a change
``handler_text()``  the single handler's name, or the behavior string
``options()``       ``{name: {option: value}}`` set for the current behavior
``change(p, o)``    validate behavior pairs *p* and options *o*, then swap
``backend()``       ``"host:port"`` where new connections go
``set_backend(v)``  relay new connections to *v* (``"host:port"``, ``unix:PATH``)
``set_enabled(b)``  take the service down (False) or up again (True)
``describe()``      ``{"enabled", "address", "backend", "behavior"}``
``snapshot()``      the counters, a :class:`vaurien.stats.Snapshot`
==================  ========================================================

and one derived from them, :meth:`Control.proxy_state`. Every operation
takes and returns JSON-able values (a snapshot has ``to_json``), so that it
can cross a process boundary; :data:`MERGES` says how the answers of several
processes make one.

A change is validated completely (names, options, the handlers' own
construction) before it is swapped in: a refused change leaves everything
as it was. Refusals raise :class:`ControlError`, named after the entries of
the HTTP API's error table (:data:`vaurien.webserver.ERRORS`).
"""
import abc
import json
import logging
import os

from gevent.lock import Semaphore

from vaurien.behavior import PASS, Behavior
from vaurien.compat import V1_BEHAVIORS
from vaurien.config import ConfigError, format_hostport, parse_endpoint
from vaurien.handlers import HandlerError, get_handlers
from vaurien.handlers.dummy import Dummy
from vaurien.stats import Snapshot, snapshot

__all__ = ['Control', 'ControlError', 'ProxyControl', 'OPERATIONS',
           'MERGES', 'build_behavior', 'jsonable', 'one_line']

log = logging.getLogger('vaurien')


class ControlError(Exception):
    """A refused operation: *error* names the kind (a key of the API's error
    table), *description* says what was wrong, *field* (optional) which
    value it was."""

    def __init__(self, error, description, field=None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.field = field

    def to_json(self):
        """``{"error", "description", "field"}``, to cross a process."""
        return {'error': self.error, 'description': self.description,
                'field': self.field}

    @classmethod
    def from_json(cls, data):
        """The error :meth:`to_json` described."""
        return cls(data['error'], data['description'], data.get('field'))


def build_behavior(registry, pairs, checked, proxy):
    """A :class:`~vaurien.behavior.Behavior` from ``[(percent, name), ...]``.

    *checked* maps handler names to their already converted options; a name
    missing from it gets its defaults (and is added to it). Returns
    ``(behavior, {name: instance})``; ``dummy`` is relayed by the engine
    itself (:data:`~vaurien.behavior.PASS`). Raises HandlerError when a name
    is unknown or a handler cannot be created; nothing is changed then.
    """
    instances = {}
    entries = []
    for percent, name in pairs:
        entry = registry.get(name)
        if name not in checked:
            checked[name] = entry.check_options({})
        if name not in instances:
            if entry.load() is Dummy:
                instances[name] = PASS
            else:
                instances[name] = entry.build(checked[name], proxy)
        direction = checked[name].get('direction', 'both')
        entries.append((percent, name, instances[name], direction))
    return Behavior(entries), instances


def jsonable(value, fallback):
    """*value* if JSON can hold it, else *fallback*."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return fallback
    return value


def one_line(exc):
    """The first line of *exc*'s message (its type name if empty)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class Control(abc.ABC):
    """The operations on a running service (see the module's table).

    Every abstract method is an operation that each process serving the
    proxy must run (the ``--workers`` broadcast forwards each of them);
    the concrete ones are derived from them.
    """

    @abc.abstractmethod
    def names(self):
        """Every handler name usable in a change."""

    @abc.abstractmethod
    def handler_text(self):
        """The single handler's name, or the behavior string of a mix."""

    @abc.abstractmethod
    def options(self):
        """``{name: {option: value}}``: the options set for every handler
        of the current behavior (defaults left out); with
        :meth:`handler_text`, a change that restores the current state."""

    @abc.abstractmethod
    def change(self, pairs, options):
        """Validate ``[(percent, name), ...]`` and ``{name: {option: raw}}``,
        then swap them in; ControlError (nothing changed) if refused."""

    @abc.abstractmethod
    def backend(self):
        """``"host:port"``: where new connections are relayed."""

    @abc.abstractmethod
    def set_backend(self, value):
        """Relay new connections to *value* (``"host:port"``,
        ``"[v6]:port"`` or ``"unix:/path"``)."""

    @abc.abstractmethod
    def set_enabled(self, enabled):
        """Take the service down (False) or bring it back up (True)."""

    @abc.abstractmethod
    def describe(self):
        """``{"enabled", "address", "backend", "behavior"}``."""

    @abc.abstractmethod
    def snapshot(self):
        """The counters (:class:`vaurien.stats.Snapshot`)."""

    def behavior_names(self):
        """What ``GET /behaviors`` lists, for Vaurien 1.x's clients: the
        behaviors of 1.9 and the handlers added by the user (sections,
        dotted paths, installed packages); :meth:`names` has them all."""
        builtins = set(get_handlers())
        return [name for name in self.names()
                if name in V1_BEHAVIORS or name not in builtins]

    def proxy_state(self):
        """What ``GET /proxy`` answers: :meth:`describe`, the options of
        the behavior (with ``behavior``, a ``PUT /behavior`` body that
        restores the current state), the open connections and the pid of
        this process."""
        state = dict(self.describe())
        state['options'] = self.options()
        state['connections'] = self.snapshot().open
        state['pid'] = os.getpid()
        return state


#: The operations every implementation of :class:`Control` provides (the
#: abstract methods), in the order of the module's table.
OPERATIONS = tuple(name for name in vars(Control)
                   if name in Control.__abstractmethods__)

#: How the answers of several processes (their ``to_json`` data) make one
#: answer, for the operations where they differ; any other operation gets
#: the same answer from every process and the first is used.
MERGES = {'snapshot': Snapshot.merged}


class ProxyControl(Control):
    """:class:`Control` over one :class:`~vaurien.proxy.Proxy`.

    *registry* resolves names; *pairs* is the behavior at start-up and
    *handler_options* the raw option values given at start-up (command line
    and INI file), ``{name: {option: value}}``: a change starts from them
    for each handler and overrides what it names.
    """

    def __init__(self, proxy, registry, pairs, handler_options):
        self.proxy = proxy
        self.registry = registry
        self.base = {name: dict(values)
                     for name, values in handler_options.items()}
        self.pairs = list(pairs)
        self.values = {name: dict(self.base.get(name, {}))
                       for _, name in self.pairs}
        self.checked = {name: registry.get(name).check_options(values)
                        for name, values in self.values.items()}
        self._lock = Semaphore()

    # -- reading --------------------------------------------------------------

    def names(self):
        return self.registry.names()

    def _shown(self):
        # (text, names): one handler with all the traffic reads as its name
        # (shares of 0 left out), anything else as the whole mix.
        active = [(p, n) for p, n in self.pairs if p > 0]
        if not active:
            return 'dummy', ['dummy']
        if len(active) == 1 and active[0][0] == 100:
            return active[0][1], [active[0][1]]
        return (','.join('%d:%s' % pair for pair in self.pairs),
                [name for _, name in self.pairs])

    def handler_text(self):
        return self._shown()[0]

    def options(self):
        result = {}
        for name in self._shown()[1]:
            checked = self.checked.get(name, {})
            raw = self.values.get(name, {})
            result[name] = {key: jsonable(value, raw.get(key))
                            for key, value in checked.items()}
        return result

    def backend(self):
        return format_hostport(self.proxy.distant)

    def describe(self):
        proxy = self.proxy
        return {'enabled': not proxy.disabled,
                'address': format_hostport(proxy.address),
                'backend': format_hostport(proxy.distant),
                'behavior': self.handler_text()}

    def snapshot(self):
        return snapshot(self.proxy)

    # -- changing -------------------------------------------------------------

    def change(self, pairs, options):
        # Pairs may come as lists (JSON from another process).
        pairs = [tuple(pair) for pair in pairs]
        with self._lock:
            self._change(pairs, options)

    def _change(self, pairs, options):
        registry = self.registry
        names = []
        for _, name in pairs:
            # Only names the registry already knows: a dotted path through
            # the network would import arbitrary modules.
            if name not in registry:
                raise ControlError('unknown_handler', 'unknown handler %r '
                                   '(known: %s)'
                                   % (name, ', '.join(registry.names())))
            if name not in names:
                names.append(name)
        for name in options:
            if name not in names:
                raise ControlError('bad_option', 'options given for %r, '
                                   'which is not in the behavior' % name,
                                   field=name)
        values, checked = {}, {}
        for name in names:
            try:
                entry = registry.get(name)
            except HandlerError as exc:
                raise ControlError('handler_failed', str(exc)) from None
            given = options.get(name, {})
            declared = entry.options
            for key in sorted(given):
                if key != 'direction' and key not in declared:
                    raise ControlError(
                        'unknown_option', '%s: unknown option %r (valid '
                        'options: %s)' % (name, key, ', '.join(
                            sorted(declared) + ['direction'])), field=key)
                try:
                    entry.check_options({key: given[key]})
                except Exception as exc:
                    raise ControlError('bad_option', one_line(exc),
                                       field=key) from None
            merged = dict(self.base.get(name, {}))
            merged.update(given)
            try:
                checked[name] = entry.check_options(merged)
            except Exception as exc:
                raise ControlError('bad_option', one_line(exc)) from None
            values[name] = merged
        try:
            behavior, _ = build_behavior(registry, pairs, checked, self.proxy)
        except HandlerError as exc:
            raise ControlError('handler_failed', str(exc)) from None
        except Exception as exc:
            raise ControlError('handler_failed', one_line(exc)) from None
        # Everything is valid: swap.
        self.proxy.set_behavior(behavior)
        self.pairs, self.values, self.checked = list(pairs), values, checked
        log.info('control API: behavior is now %s', behavior.text)

    def set_backend(self, value):
        try:
            distant = parse_endpoint(value)
        except ValueError as exc:
            raise ControlError('bad_backend', '"backend" expects %s, got %s'
                               % (exc, json.dumps(value))) from None
        self.proxy.set_backend(distant)
        log.info('control API: backend is now %s', format_hostport(distant))

    def set_enabled(self, enabled):
        if enabled:
            try:
                self.proxy.enable()
            except ConfigError as exc:
                raise ControlError('listen_failed', str(exc)) from None
            log.info('control API: proxy enabled')
        else:
            self.proxy.disable()
            log.info('control API: proxy disabled')
