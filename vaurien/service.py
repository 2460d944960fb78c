"""The one assembly point: settings in, a running service out.

Everything that makes a proxy run goes through here: the ``vaurien``
command (:mod:`vaurien.run`), ``--check``, ``--workers``
(:mod:`vaurien.workers`), ``--demo`` (:mod:`vaurien.demo`), and through the
command, ``start_proxy``, the pytest plugin and the benchmarks, which all
start ``python -m vaurien``.

* :func:`load` resolves what the settings name (handlers, their options,
  the protocol) into a :class:`Plan`; every mistake is a ConfigError here.
* :func:`build_proxy` is the only place a :class:`~vaurien.proxy.Proxy` is
  made, complete: behavior, protocol and event log in its constructor.
* :class:`Service` is one proxy with its observers (event log, statsd) and
  its control (:class:`~vaurien.control.ProxyControl`, served over HTTP by
  :mod:`vaurien.webserver`, or driven by the ``--workers`` parent).
* :class:`GroupService` is the named proxies of the settings (``default``
  and the ``[proxy:NAME]`` sections), their observers and one API.
* :func:`check` builds all of it without listening (``vaurien --check``);
  :func:`start` makes and starts the :class:`GroupService` (its start-up
  lines logged); :func:`serve` runs it until SIGTERM or SIGINT.

*options* is the parsed command line (:class:`vaurien.cli.Options`): its
``settings`` (``options.NAME`` for each setting), ``handler_options``
(``{name: {option: raw value}}``), ``protocol_options`` and ``ini`` (the
INI file read, or None).
"""
import errno
import json
import logging
import os
import signal

import gevent
from gevent.event import Event

from vaurien.config import ConfigError, format_hostport, pick_mode
from vaurien.control import ProxyControl, build_behavior
from vaurien.endpoints import client_tls, server_tls
from vaurien.events import open_event_log
from vaurien.handlers import HandlerError, Registry
from vaurien.handlers.naming import resolve_names
from vaurien.probe import probe_backend
from vaurien.protocols import build_protocol
from vaurien.proxies import ListenError, NamedProxy, ProxyGroup
from vaurien.proxy import Proxy
from vaurien.proxyconf import DEFAULT_NAME, ProxySpec, parse_proxy_section
from vaurien.statsd_push import StatsdPusher, make_client, metric_name
from vaurien.toxics import ToxicError
from vaurien.toxiproxy_api import MAX_BODY as TOXIPROXY_MAX_BODY
from vaurien.toxiproxy_api import CombinedApp, ToxiproxyApp
from vaurien.webserver import App, ControlServer

__all__ = ['Plan', 'load', 'build_proxy', 'build_tls', 'check',
           'check_writable', 'Service', 'GroupService', 'proxy_specs',
           'start', 'serve', 'serve_group', 'start_api', 'announce_backend']

log = logging.getLogger('vaurien')


class Plan:
    """What the settings name, loaded and checked; nothing is started.

    ``options``; ``registry``, the handlers usable by name (built-ins,
    ``[handler:NAME]`` sections, entry points, dotted paths); ``pairs``,
    the behavior ``[(percent, name), ...]`` with every handler under its
    name (:mod:`vaurien.handlers.naming`); ``handler_options``, the raw
    options ``{name: {option: value}}`` by those names; ``checked``,
    ``{name: converted options}`` for every handler given options;
    ``warnings``, what loading found worth a WARNING (:meth:`log_warnings`
    logs them, once per run); ``protocol(proxy)`` makes the protocol
    object (None for tcp).
    """

    def __init__(self, options, registry, checked, pairs, handler_options,
                 warnings=()):
        self.options = options
        self.registry = registry
        self.checked = checked
        self.pairs = pairs
        self.handler_options = handler_options
        self.warnings = list(warnings)

    def log_warnings(self, logged=None):
        """Log :attr:`warnings`, but those already in the set *logged*
        (which gets them). The caller makes it once per run: with
        ``--workers``, the parent's :func:`check` does, not the workers;
        with named proxies, once for all of them."""
        logged = set() if logged is None else logged
        for warning in self.warnings:
            if warning not in logged:
                logged.add(warning)
                log.warning('%s', warning)

    def protocol(self, proxy=None):
        """The protocol object for *proxy* (None for tcp); ConfigError."""
        return _protocol(self.options, proxy)

    def behavior(self, proxy):
        """The behavior of the settings, its handlers made for *proxy*."""
        checked = {name: dict(values) for name, values in self.checked.items()}
        return build_behavior(self.registry, self.pairs, checked, proxy)[0]


def _protocol(options, proxy):
    ini = options.ini
    return build_protocol(options.protocol, options.protocol_options,
                          ini.protocols if ini is not None else {},
                          ini.path if ini is not None else None, proxy)


def load(options):
    """The :class:`Plan` of *options*; ConfigError at the first mistake.

    The protocol and its options are checked first, then every handler
    named anywhere is loaded and its options converted.
    """
    _protocol(options, None)
    registry = Registry()
    ini = options.ini
    if ini is not None:
        registry.add_sections(ini.handlers, ini.path)
    pairs, handler_options = resolve_names(
        registry, options.behavior, options.handler_options, HandlerError,
        ini.handlers if ini is not None else None)
    warnings = []
    if ini is not None:
        warnings = _pass_undeclared(registry, ini, handler_options)
    checked = {}
    for name, values in handler_options.items():
        checked[name] = registry.get(name).check_options(values)
    for _, name in pairs:
        registry.get(name)
    return Plan(options, registry, checked, pairs, handler_options, warnings)


def _pass_undeclared(registry, ini, handler_options):
    """The keys of ``[handler:NAME]`` sections that the handler does not
    declare go to it in its ``settings`` as they are (the seed's
    ``[handler:foobar]`` example has ``foo=bar``), with one WARNING per
    section; they are taken out of *handler_options* (unless the command
    line gave them too: there an unknown option stays an error). Returns
    the warnings."""
    warnings = []
    for name, values in ini.handlers.items():
        if name not in handler_options:
            continue     # a section of a handler known by another name
        entry = registry.get(name)
        declared = set(entry.options) | set(registry.extra_options)
        extra = {key: value for key, value in values.items()
                 if key != 'callable' and key not in declared
                 and handler_options[name].get(key) == value}
        if not extra:
            continue
        for key in extra:
            del handler_options[name][key]
        registry.pass_settings(name, extra)
        warnings.append(
            '[handler:%s] in %s: %s %s not declared by the handler %s (its '
            'options: %s); passed to it in its settings as %s'
            % (name, ini.path, ', '.join(map(repr, sorted(extra))),
               'is' if len(extra) == 1 else 'are', entry.name,
               ', '.join(sorted(declared)),
               'it is' if len(extra) == 1 else 'they are'))
    return warnings


def build_proxy(plan, seed, local=None, distant=None, events=None,
                worker=None, name=None):
    """The :class:`~vaurien.proxy.Proxy` of *plan*, complete, not started.

    *local* and *distant* default to the settings'; *events* is the event
    log or None; *worker* (``--workers``) is the worker this process is,
    with ``index`` and ``count``; *name* its name among several proxies.
    ConfigError (HandlerError) when a handler or the protocol cannot be
    made. Its handlers are usable as toxics.
    """
    options = plan.options
    local_tls, distant_tls = build_tls(options)
    return Proxy(options.local if local is None else local,
                 options.distant if distant is None else distant,
                 plan.behavior, bufsize=options.bufsize,
                 timeout=options.timeout, seed=seed,
                 pick=pick_mode(options.pick, options.protocol),
                 protocol=plan.protocol, reuse_port=worker is not None,
                 worker=worker.index if worker else 0,
                 workers=worker.count if worker else 1, events=events,
                 local_mode=options.local_mode, local_tls=local_tls,
                 distant_tls=distant_tls, max_message=options.max_message,
                 max_connections=options.max_connections,
                 idle_timeout=options.idle_timeout, handlers=plan.registry,
                 name=name, log_faults=options.log_faults)


def build_tls(options):
    """``(local_tls, distant_tls)`` from the ``--local-tls-*`` and
    ``--distant-tls*`` settings (None when off); ConfigError naming the
    file when a certificate, key or CA file is unusable."""
    local = server_tls(options.local_tls_cert, options.local_tls_key,
                       options.local_tls_ca, options.local_tls_timeout)
    distant = client_tls(options.distant_tls, options.distant_tls_ca,
                         options.distant_tls_cert, options.distant_tls_key,
                         options.distant_tls_insecure,
                         options.distant_tls_name)
    return local, distant


def check_writable(path, what):
    """ConfigError, worded as opening it would, if *path* cannot be
    written; nothing is created."""
    if path in ('-', '', None):
        return
    if os.path.isdir(path):
        code = errno.EISDIR
    elif os.path.exists(path):
        code = None if os.access(path, os.W_OK) else errno.EACCES
    else:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            code = errno.ENOENT
        else:
            code = None if os.access(parent, os.W_OK) else errno.EACCES
    if code is not None:
        raise ConfigError('cannot write %s to %s: %s'
                          % (what, path, os.strerror(code).lower()))


def check(options):
    """Load and build everything *options* ask for, without listening or
    writing anything (the log and event log files are only checked to be
    writable); the :class:`Plan`, or ConfigError."""
    plan = load(options)
    plan.log_warnings()
    if options.statsd_enabled:
        make_client(options.statsd_host, options.statsd_port,
                    options.statsd_prefix)
    check_writable(options.log_output, 'the log')
    check_writable(options.event_log, 'the event log')
    build_proxy(plan, 0)
    for spec, spec_options in proxy_specs(options):
        build_proxy(load(spec_options), 0)
    return plan


def start_api(control, options, doing=''):
    """Serve *control* over HTTP as the settings say; the started
    :class:`~vaurien.webserver.ControlServer` (ConfigError if it cannot)."""
    server = ControlServer(control, options.http_host, options.http_port,
                           options.http_token)
    server.start()
    log.info('control API on %s%s', server.url(), doing)
    return server


class Service:
    """One proxy of *plan*, its observers and its control.

    Made complete and not started: the event log is opened and the statsd
    client made (ConfigError if they cannot be), the proxy built. *local*
    and *distant* override the settings (the demo); *http* False leaves the
    control API off whatever the settings say; *worker* (``--workers``):
    the proxy shares its port, and the control follows the parent's
    commands (``worker.follow(control, stop)``) instead of serving HTTP.
    """

    def __init__(self, plan, seed, worker=None, local=None, distant=None,
                 http=True):
        options = plan.options
        self.plan = plan
        self.seed = seed
        self.worker = worker
        self.http = http and options.http and worker is None
        statsd = None
        if options.statsd_enabled:
            statsd = make_client(options.statsd_host, options.statsd_port,
                                 options.statsd_prefix)
        self.events = None
        if options.event_log:
            self.events = open_event_log(options.event_log,
                                         options.event_log_flush)
        try:
            self.proxy = build_proxy(plan, seed, local, distant, self.events,
                                     worker)
        except BaseException:
            if self.events is not None:
                self.events.close()
            raise
        self.pusher = None
        if statsd is not None:
            self.pusher = StatsdPusher(self.proxy, statsd,
                                       options.statsd_sample_rate)
        self.control = ProxyControl(self.proxy, plan.registry, plan.pairs,
                                    plan.handler_options)
        self.api = None

    def start(self):
        """Start the observers, listen, and start the control; ConfigError
        (everything stopped again) when an address cannot be bound."""
        if self.events is not None:
            self.events.start()
        if self.pusher is not None:
            self.pusher.start()
        try:
            self.proxy.start()
            if self.worker is not None:
                self.worker.follow(self.control, self.proxy.stop)
            elif self.http:
                self.api = start_api(self.control, self.plan.options)
        except BaseException:
            self.stop()
            self.close()
            raise
        return self.proxy.address

    def describe(self):
        """The start-up log line (without the worker suffix)."""
        options = self.plan.options
        proxy = self.proxy
        return ('proxying %s -> %s, behavior %s, pick per %s, protocol %s, '
                'seed %d (replay with --seed %d)'
                % (format_hostport(proxy.address),
                   format_hostport(proxy.distant), proxy.behavior.text,
                   proxy.pick, options.protocol, self.seed, self.seed))

    def serve_forever(self):
        """Serve until :meth:`stop`; the observers are stopped after."""
        try:
            self.proxy.serve_forever()
        finally:
            self.close()

    def stop(self):
        """Stop the control API and the proxy (open connections closed)."""
        if self.api is not None:
            self.api.stop()
        self.proxy.stop()

    def shutdown(self, grace, cut_now=None):
        """Stop gracefully: no new connections, open ones get *grace*
        seconds to finish (less if the Event *cut_now* is set), the rest
        are reset; then the control API stops. Logs how many connections
        were drained and cut; blocks the calling greenlet."""
        log.info('stopping: no new connections; %d open, %gs to finish '
                 '(--grace; a second signal cuts them at once)',
                 len(self.proxy.connections), grace)
        drained, cut = self.proxy.shutdown(grace, cut_now)
        log.info('stopped: %d connections drained, %d cut (reset)',
                 drained, cut)
        if self.api is not None:
            self.api.stop()

    def close(self):
        """Stop the observers, once the proxy has stopped: a last statsd
        push, the event log flushed and closed."""
        if self.pusher is not None:
            self.pusher.stop()
        if self.events is not None:
            self.events.close()


#: Seconds the start-up probe of the backend waits for it, at most.
PROBE_TIMEOUT = 2.0


def announce_backend(options, worker=None):
    """Once the service is started: say where the traffic goes when the
    user did not, and warn once (from a greenlet, not holding the start
    up) when the backend cannot be reached: the proxy serves anyway,
    backends come and go."""
    backend = format_hostport(options.distant)
    if 'distant' not in options.given:
        log.info('no --distant given: relaying every client to the default '
                 'backend %s', backend)
    if worker is not None and worker.index != 0:
        return      # one warning for all the workers

    def probe():
        reason = probe_backend(options.distant, min(options.timeout,
                                                    PROBE_TIMEOUT))
        if reason is not None:
            log.warning('backend %s cannot be reached (%s): the proxy '
                        'starts anyway, and its clients are cut until the '
                        'backend is up', backend, reason)
    gevent.spawn(probe)


def proxy_specs(options, default=True):
    """The named proxies *options* ask for: ``[(spec, its options)]``.

    The ``[proxy:NAME]`` sections of the INI file, and the proxy named
    ``default`` of ``--local``/``--distant`` (or of ``[vaurien]``'s
    ``local``/``distant``), which is there too when no section is (unless
    *default* is false). ConfigError on a mistake in a section.
    """
    ini = options.ini
    sections = ini.proxies if ini is not None else {}
    specs = [parse_proxy_section(name, items, ini.path)
             for name, items in sections.items()]
    if default and (not specs or {'local', 'distant'} & options.given):
        if DEFAULT_NAME in sections:
            raise ConfigError('%s: [proxy:%s] and --local/--distant both '
                              'name the proxy %r' % (ini.path, DEFAULT_NAME,
                                                     DEFAULT_NAME))
        specs.insert(0, ProxySpec(DEFAULT_NAME))
    return [(spec, options.for_proxy(spec)) for spec in specs]


class GroupService:
    """The named proxies of the settings, their observers and one control
    API with Vaurien's routes and Toxiproxy's (:mod:`vaurien.proxies`,
    :mod:`vaurien.toxiproxy_api`).

    The proxies are the ``[proxy:NAME]`` sections and ``default`` (see
    :func:`proxy_specs`); more can be made at run time through Toxiproxy's
    routes (a proxy made so has the process's settings: behavior, protocol,
    options). They share the event log (each line names its proxy when
    there are sections) and the statsd daemon (under
    ``PREFIX.NAME`` for a named proxy). With *http* (``--http``, or
    always for ``vaurien-toxiproxy``) the API is served on *api_address*
    (default: the settings'). Made complete, not started; ConfigError.
    """

    def __init__(self, options, seed, http=None, api_address=None,
                 default=True):
        self.options = options
        self.seed = seed
        # vaurien-toxiproxy (default=False) has no default proxy, ever:
        # its /metrics and unknown paths stay Toxiproxy's.
        self.only_is_default = default
        self.http = options.http if http is None else http
        self.api_address = api_address or (options.http_host,
                                           options.http_port)
        self.statsd = None
        if options.statsd_enabled:
            self.statsd = make_client(options.statsd_host,
                                      options.statsd_port,
                                      options.statsd_prefix)
        self.events = None
        if options.event_log:
            self.events = open_event_log(options.event_log,
                                         options.event_log_flush)
        self.plans = {}        # proxy -> the Plan it was built from
        self.controls = {}     # proxy -> its ProxyControl, made when asked
        self.pushers = []
        self.api = None
        self.base = None       # the Plan of proxies made at run time
        self.group = ProxyGroup(self.make)
        try:
            specs = proxy_specs(options, default)
            self.named = not (len(specs) == 1
                              and specs[0][0].name == DEFAULT_NAME)
            self.enabled = {}
            for spec, spec_options in specs:
                self._add(spec, spec_options)
            logged = set()
            for plan in self.plans.values():
                plan.log_warnings(logged)
        except BaseException:
            self.close()
            raise

    def _add(self, spec, spec_options):
        plan = load(spec_options)
        name = spec.name if self.named else None
        proxy = build_proxy(plan, self.seed, events=self.events, name=name)
        self.plans[proxy] = plan
        where = ('[proxy:%s] in %s' % (spec.name, self.options.ini.path)
                 if spec.settings else '--local/--distant')
        for toxic in spec.toxics:
            try:
                proxy.toxics.add(toxic)
            except ToxicError as exc:
                raise ConfigError('%s: toxics: %s' % (where, exc)) from None
        named = NamedProxy(spec.name, proxy,
                           format_hostport(spec_options.local),
                           format_hostport(spec_options.distant),
                           engine_binds=True)
        self.group.add(named, start=False)
        self.enabled[spec.name] = spec.enabled
        if self.statsd is not None:
            client = self.statsd
            if name is not None:
                client = make_client(
                    self.options.statsd_host, self.options.statsd_port,
                    '%s.%s' % (self.options.statsd_prefix,
                               metric_name(spec.name)))
            self.pushers.append(StatsdPusher(
                proxy, client, self.options.statsd_sample_rate))

    def make(self, name, distant):
        """A proxy made at run time (Toxiproxy's POST /proxies): the
        process's settings, relaying to *distant*."""
        if self.base is None:
            self.base = load(self.options)
        proxy = build_proxy(self.base, self.seed, distant=distant,
                            events=self.events, name=name)
        self.plans[proxy] = self.base
        return proxy

    # -- the API ----------------------------------------------------------------

    def control(self, name):
        """The ProxyControl of proxy *name*, or None."""
        if name not in self.group:
            return None
        proxy = self.group.get(name).proxy
        control = self.controls.get(proxy)
        if control is None:
            plan = self.plans[proxy]
            control = self.controls[proxy] = ProxyControl(
                proxy, plan.registry, plan.pairs, plan.handler_options)
        return control

    def default_name(self):
        """The proxy Vaurien's top-level routes act on: ``default``, or
        the only proxy (not for ``vaurien-toxiproxy``); None."""
        if DEFAULT_NAME in self.group:
            return DEFAULT_NAME
        names = [proxy.name for proxy in self.group]
        if len(names) == 1 and self.only_is_default:
            return names[0]
        return None

    def make_app(self, port):
        """``(WSGI app, render_error, max_body)`` of the API, served on
        *port* (for :class:`~vaurien.webserver.ControlServer`): both APIs,
        the server's own refusals in Vaurien's words, bodies up to
        Toxiproxy's bound (each API bounds its own routes)."""
        options = self.options
        host = self.api_address[0]
        toxiproxy = ToxiproxyApp(self.group, options.http_token, host, port)
        apps = {}

        def vaurien_app(name):
            control = self.control(name)
            if control is None:
                return None
            app = apps.get(control)
            if app is None:
                app = apps[control] = App(control, options.http_token,
                                          host, port)
            return app
        def proxies():
            return [(name, self.control(name))
                    for name in sorted(named.name for named in self.group)]
        plain = App(None, options.http_token, host, port, proxies=proxies)
        app = CombinedApp(toxiproxy, vaurien_app, self.default_name,
                          plain.routes, shared=plain)
        return app, plain.error_answer, TOXIPROXY_MAX_BODY

    # -- running --------------------------------------------------------------

    def start(self):
        """Start the observers, listen (the enabled proxies), serve the
        API; ConfigError (everything stopped again) when an address
        cannot be bound."""
        if self.events is not None:
            self.events.start()
        for pusher in self.pushers:
            pusher.start()
        try:
            for named in self.group:
                if self.enabled[named.name]:
                    try:
                        named.start()
                    except ListenError as exc:
                        # the engine's own words (cannot listen on ...)
                        head = 'proxy %s: ' % named.name if self.named else ''
                        raise ConfigError('%s%s' % (head, exc)) from None
            if self.http:
                self.api = ControlServer(None, self.api_address[0],
                                         self.api_address[1],
                                         self.options.http_token,
                                         make_app=self.make_app)
                self.api.start()
        except BaseException:
            self.stop()
            self.close()
            raise

    def populate(self, body):
        """Toxiproxy's populate of *body* (JSON bytes): ``(status, answer)``
        (``vaurien-toxiproxy -config``)."""
        app = ToxiproxyApp(self.group, self.options.http_token,
                           self.api_address[0], self.api_address[1])
        status, _, answer = app.populate(body)
        return status, json.loads(answer)

    def describe(self, named):
        """The start-up log line of one proxy."""
        proxy = named.proxy
        plan = self.plans[proxy]
        options = plan.options
        head = '' if not self.named else 'proxy %s: ' % named.name
        if not named.enabled:
            return '%sdisabled (%s -> %s)' % (head, named.listen,
                                               named.upstream)
        return ('%sproxying %s -> %s, behavior %s, pick per %s, protocol %s, '
                'seed %d (replay with --seed %d)'
                % (head, format_hostport(proxy.address),
                   format_hostport(proxy.distant), proxy.behavior.text,
                   proxy.pick, options.protocol, self.seed, self.seed))

    def serve_forever(self, stopped):
        """Serve until *stopped* (an Event) is set; then stop and close."""
        try:
            stopped.wait()
        finally:
            self.stop()
            self.close()

    def stop(self):
        """Stop the API and every proxy (their connections closed)."""
        if self.api is not None:
            self.api.stop()
            self.api = None
        self.group.close()

    def shutdown(self, grace, cut_now=None):
        """Stop gracefully, every proxy at once: no new connections, open
        ones get *grace* seconds to finish (less if the Event *cut_now* is
        set), the rest are reset; then the API stops. Logs how many
        connections were drained and cut; blocks the calling greenlet."""
        proxies = [named.proxy for named in self.group if named.enabled]
        log.info('stopping: no new connections; %d open, %gs to finish '
                 '(--grace; a second signal cuts them at once)',
                 sum(len(proxy.connections) for proxy in proxies), grace)
        jobs = [gevent.spawn(proxy.shutdown, grace, cut_now)
                for proxy in proxies]
        gevent.joinall(jobs)
        drained = sum(job.value[0] for job in jobs if job.value)
        cut = sum(job.value[1] for job in jobs if job.value)
        log.info('stopped: %d connections drained, %d cut (reset)',
                 drained, cut)
        self.stop()

    def close(self):
        """Stop the observers: a last statsd push, the event log closed."""
        for pusher in self.pushers:
            pusher.stop()
        self.pushers = []
        if self.events is not None:
            self.events.close()
            self.events = None


def start(options, seed):
    """The :class:`GroupService` of *options*, started (listening), its
    start-up lines logged (the control API's first, then one per proxy);
    ConfigError when it cannot be made or started.

    In the current thread's gevent hub: :func:`serve` runs it in the
    command's, the tests' in-process harness in a thread of its own.
    Serve it with ``serve_forever(stopped)``.
    """
    service = GroupService(options, seed)
    service.start()
    if service.api is not None:
        # Before the proxies' lines, which tell a reader that all is up.
        log.info('control API on %s', service.api.url())
    if DEFAULT_NAME in service.group:
        announce_backend(options)
    for named in service.group:
        log.info('%s', service.describe(named))
    return service


def serve_group(service, grace):
    """Serve the started :class:`GroupService` *service* until SIGTERM or
    SIGINT: the first signal stops it gracefully (open connections get
    *grace* seconds, see :meth:`GroupService.shutdown`), the next one cuts
    what is left at once. ``vaurien`` and ``vaurien-toxiproxy`` stop this
    way."""
    stopped = Event()
    cut_now = Event()
    stopping = []

    def drain():
        try:
            service.shutdown(grace, cut_now)
        finally:
            stopped.set()

    def stop():
        if stopping:
            cut_now.set()
            return
        stopping.append(gevent.spawn(drain))
    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    service.serve_forever(stopped)


def serve(options, seed, worker=None):
    """Run the service until SIGTERM or SIGINT; the exit status.

    *worker* is None for a single process (every named proxy, Vaurien's
    API and Toxiproxy's: :class:`GroupService`), or the
    :class:`vaurien.workers.Worker` this process is (``--workers``: one
    proxy, :class:`Service`).
    """
    if worker is None:
        serve_group(start(options, seed), options.grace)
        return 0
    service = Service(load(options), seed, worker)
    service.start()
    announce_backend(options, worker)
    log.info('%s%s', service.describe(), worker.describe() if worker else '')
    cut_now = Event()
    stopping = []

    def stop():
        # The first signal drains for --grace seconds; the next one cuts.
        if stopping:
            cut_now.set()
            return
        stopping.append(gevent.spawn(service.shutdown, options.grace,
                                     cut_now))
    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    service.serve_forever()
    return 0
