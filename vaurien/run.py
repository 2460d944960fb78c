"""The ``vaurien`` command: settings in, a running proxy out.

Precedence of settings: defaults < INI file (``--config``) < command line.
Every user mistake ends as one line, ``vaurien: error: ...``, and exit
status 2.
"""
import sys

__all__ = ['main', 'build', 'build_behavior', 'Options']


def _patch():
    # First of all, so that user handlers calling time.sleep or a stdlib
    # client do not freeze the proxy.
    from gevent import monkey
    if not monkey.is_module_patched('socket'):
        monkey.patch_all()


HANDLER_PREFIX = '--handlers.'
PROTOCOL_PREFIX = '--protocols.'


def split_handler_options(argv, prefix=HANDLER_PREFIX):
    """Take ``--handlers.NAME.OPTION VALUE`` (or ``=VALUE``) out of *argv*.

    Returns ``(rest, {name: {option: value}})``. NAME may itself contain dots
    (a dotted path); the option is what follows the last dot. With *prefix*
    ``'--protocols.'`` the same for protocol options.
    """
    from vaurien.config import ConfigError
    rest, options = [], {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == '--':
            rest.extend(argv[i:])
            break
        if not arg.startswith(prefix):
            rest.append(arg)
            i += 1
            continue
        key, eq, value = arg[len(prefix):].partition('=')
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith('--'):
                raise ConfigError('%s expects a value' % arg)
            value = argv[i + 1]
            i += 1
        i += 1
        name, _, option = key.rpartition('.')
        if not name or not option:
            raise ConfigError('%s: expected %sNAME.OPTION VALUE'
                              % (arg.partition('=')[0], prefix))
        options.setdefault(name, {})[option] = value
    return rest, options


def _shown(value):
    from vaurien.config import format_behavior, format_hostport
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        return format_hostport(value)
    if isinstance(value, list):
        return format_behavior(value)
    if value is None:
        return 'none'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return str(value)


def make_parser():
    """The argparse parser, derived from the settings table and handlers."""
    import argparse

    from vaurien import __version__
    from vaurien.config import SETTINGS, ConfigError, type_name
    from vaurien.behavior import DIRECTIONS
    from vaurien.handlers import BUILTINS, DIRECTION_OPTION, Registry

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise ConfigError(message)

    parser = Parser(
        prog='vaurien',
        description='Vaurien, the chaos TCP proxy: relays clients to a '
                    'backend and, for a chosen share of the traffic, '
                    'misbehaves on purpose.',
        epilog='Built-in handlers: %s. ' % ', '.join(sorted(BUILTINS)) +
               'Handler options: --handlers.NAME.OPTION VALUE (or '
               '--handlers.NAME.OPTION=VALUE), for any handler NAME. '
               'Every handler also takes --handlers.NAME.direction '
               '(%s): %s (default: %s). '
               % ('|'.join(DIRECTIONS), DIRECTION_OPTION[0][0].lower()
                  + DIRECTION_OPTION[0][1:], DIRECTION_OPTION[2]) +
               'Protocol options: --protocols.NAME.OPTION VALUE.')
    parser.add_argument('--version', action='version',
                        version='vaurien %s' % __version__)
    parser.add_argument('--config', metavar='FILE',
                        help='INI file with [vaurien] and [handler:NAME] '
                             'sections; the command line wins over it.')
    parser.add_argument('--demo', action='store_true',
                        help='Start a built-in backend, put the proxy in '
                             'front of it, send a few hundred requests '
                             'through and report what happened.')
    groups = {}
    for setting in SETTINGS:
        group = groups.get(setting.section)
        if group is None:
            title = ('proxy settings' if setting.section == 'vaurien'
                     else '[%s] settings' % setting.section)
            group = groups[setting.section] = parser.add_argument_group(title)
        flags = [setting.flag] + ['--' + a.replace('_', '-')
                                  for a in setting.aliases]
        extra = {}
        if setting.const is not None:
            extra = {'nargs': '?', 'const': setting.const}
        group.add_argument(*flags, dest=setting.dest, metavar=setting.metavar,
                           default=None,
                           help='%s (default: %s)'
                           % (setting.help, _shown(setting.default)),
                           **extra)
    group = parser.add_argument_group('options of the built-in handlers')
    registry = Registry(entry_points=False)
    for name in BUILTINS:
        for option, (desc, kind, default) in sorted(
                registry.get(name).options.items()):
            group.add_argument('%s%s.%s' % (HANDLER_PREFIX, name, option),
                               metavar=type_name(kind).split()[0].upper(),
                               dest='_unused_%s_%s' % (name, option),
                               help='%s: %s (default: %s)'
                               % (name, desc, default))
    group = parser.add_argument_group('options of the built-in protocols')
    from vaurien.protocols import BUILTINS as PROTOCOLS, get_protocol_class
    for name in PROTOCOLS:
        cls = get_protocol_class(name)
        if cls is None:
            continue
        for option, (desc, kind, default) in sorted(cls.options.items()):
            group.add_argument('%s%s.%s' % (PROTOCOL_PREFIX, name, option),
                               metavar=type_name(kind).split()[0].upper(),
                               dest='_unused_p_%s_%s' % (name, option),
                               help='%s: %s (default: %s)'
                               % (name, desc, default))
    return parser


class Options:
    """Everything ``vaurien`` was asked to do, converted and checked."""

    def __init__(self, settings, handler_options, ini, protocol_options=None,
                 notes=()):
        self.settings = settings            # {dest: typed value}
        self.handler_options = handler_options   # {name: {opt: raw}}
        self.ini = ini
        self.protocol_options = protocol_options or {}  # CLI {name: {opt: raw}}
        # [(logging level, message)] to log once logging is set up
        self.notes = list(notes)

    def __getattr__(self, name):
        try:
            return self.settings[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_args(argv):
    """Parse *argv* into ``(Options, flags namespace)``; ConfigError if bad."""
    import logging

    from vaurien.compat import translate_argv
    from vaurien.config import SETTINGS, defaults, read_ini

    argv, notes = translate_argv(list(argv))
    argv, cli_handler_options = split_handler_options(argv)
    argv, cli_protocol_options = split_handler_options(argv, PROTOCOL_PREFIX)
    parser = make_parser()
    args = parser.parse_args(argv)
    settings = defaults()
    ini = None
    handler_options = {}
    if args.config:
        ini = read_ini(args.config)
        settings.update(ini.settings)
        for name, values in ini.handlers.items():
            handler_options[name] = {k: v for k, v in values.items()
                                     if k != 'callable'}
    for setting in SETTINGS:
        value = getattr(args, setting.dest)
        if value is not None:
            settings[setting.dest] = setting.convert(value, setting.flag)
    for name, values in cli_handler_options.items():
        handler_options.setdefault(name, {}).update(values)
    if ini is not None:
        notes = [(logging.WARNING, w) for w in ini.warnings] + notes
    return (Options(settings, handler_options, ini, cli_protocol_options,
                    notes), args)


def build_protocol(options, proxy=None):
    """The protocol object for *options* (None for tcp); ConfigError if bad."""
    from vaurien.protocols import build_protocol as build
    ini = options.ini
    return build(options.protocol, options.protocol_options,
                 ini.protocols if ini is not None else {},
                 ini.path if ini is not None else None, proxy)


def build(options, proxy=None):
    """Resolve handlers and the behavior from *options*.

    Returns ``(registry, behavior)``; every handler named anywhere is
    loaded and its options converted, so that mistakes surface here.
    """
    from vaurien.handlers import HandlerError, Registry

    registry = Registry()
    ini = options.ini
    if ini is not None:
        for name, values in ini.handlers.items():
            if 'callable' in values:
                registry.add_path(name, values['callable'],
                                  '[handler:%s] in %s' % (name, ini.path))
            elif name not in registry and '.' not in name:
                raise HandlerError(
                    '%s: [handler:%s] has no "callable" and %r is not a '
                    'known handler (known: %s)'
                    % (ini.path, name, name, ', '.join(registry.names())))
    checked = {}
    for name, values in options.handler_options.items():
        entry = registry.get(name)
        checked[name] = entry.check_options(values)
    behavior, instances = build_behavior(registry, options.behavior, checked,
                                         proxy)
    return registry, behavior, checked, instances


def build_behavior(registry, pairs, checked, proxy):
    """A :class:`~vaurien.behavior.Behavior` from ``[(percent, name), ...]``.

    *checked* maps handler names to their already converted options; a name
    missing from it gets its defaults (and is added to it). Returns
    ``(behavior, {name: instance})``; ``dummy`` is relayed by the engine
    itself (:data:`~vaurien.behavior.PASS`). Raises HandlerError when a name
    is unknown or a handler cannot be created; nothing is changed then.
    """
    from vaurien.behavior import PASS, Behavior
    from vaurien.handlers.dummy import Dummy

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


def setup_logging(level, output):
    """Configure the ``vaurien`` logger; ConfigError if *output* is unusable."""
    import logging

    from vaurien.config import ConfigError
    logger = logging.getLogger('vaurien')
    for old in list(logger.handlers):
        logger.removeHandler(old)
    if output in ('-', '', None):
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            handler = logging.FileHandler(output, encoding='utf-8')
        except OSError as exc:
            raise ConfigError('cannot write the log to %s: %s'
                              % (output, (exc.strerror or str(exc)).lower())) \
                from None
    handler.setFormatter(logging.Formatter(
        '%(asctime)s [%(process)d] [%(levelname)s] %(message)s'))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def run(argv):
    """Parse, build and serve; returns the exit status."""
    import random

    options, args = parse_args(argv)
    log = setup_logging(options.log_level, options.log_output)
    for level, note in options.notes:
        log.log(level, note)
    seed = options.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2 ** 32)

    if args.demo:
        from vaurien.demo import run_demo
        return run_demo(options, seed)
    if options.workers > 1:
        from vaurien.workers import run_workers
        return run_workers(options, seed)
    return serve(options, seed)


def serve(options, seed, worker=None):
    """Run one proxy process until it is stopped; returns the exit status.

    *worker* is None for a single process, or the
    :class:`vaurien.workers.Worker` this process is (``--workers``): it
    then listens with SO_REUSEPORT and takes control-API changes from its
    parent instead of serving the API itself.
    """
    import logging
    import signal

    import gevent

    from vaurien.config import format_hostport
    from vaurien.proxy import Proxy

    log = logging.getLogger('vaurien')
    protocol = build_protocol(options)
    proxy = Proxy(options.local, options.distant, None,
                  bufsize=options.bufsize, timeout=options.timeout, seed=seed,
                  pick=options.pick, protocol=protocol,
                  reuse_port=worker is not None,
                  worker=worker.index if worker else 0,
                  workers=worker.count if worker else 1)
    if protocol is not None:
        protocol.proxy = proxy
    registry, behavior, checked, instances = build(options, proxy)
    proxy.behavior = behavior
    proxy.registry = registry
    proxy.handlers = instances
    observers = start_observers(options, proxy)
    try:
        proxy.start()
    except BaseException:
        observers()
        raise
    control = None
    if worker is not None:
        worker.follow(proxy, registry, options)
    elif options.http:
        from vaurien.webserver import Control, ControlServer
        control = ControlServer(
            Control(proxy, registry, options.behavior,
                    options.handler_options),
            options.http_host, options.http_port, options.http_token)
        control.start()
        log.info('control API on %s', control.url())
    log.info('proxying %s -> %s, behavior %s, pick per %s, protocol %s, '
             'seed %d (replay with --seed %d)%s',
             format_hostport(proxy.address), format_hostport(options.distant),
             behavior.text, options.pick, options.protocol, seed, seed,
             worker.describe() if worker else '')

    def stop():
        log.info('stopping')
        if control is not None:
            control.stop()
        proxy.stop()
    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    try:
        proxy.serve_forever()
    finally:
        observers()
    return 0


def start_observers(options, proxy):
    """Open the event log and start the statsd pusher, as asked.

    Raises ConfigError (before anything is started) when the event log
    cannot be written or statsd cannot be used. Returns a function that
    stops them (a last statsd push, the event log flushed and closed).
    """
    events = pusher = None
    if options.statsd_enabled:
        from vaurien.statsd_push import StatsdPusher, make_client
        client = make_client(options.statsd_host, options.statsd_port,
                             options.statsd_prefix)
        pusher = StatsdPusher(proxy, client, options.statsd_sample_rate)
    if options.event_log:
        from vaurien.events import open_event_log
        events = open_event_log(options.event_log, options.event_log_flush)
        events.proxy = proxy
        proxy.events = events
        events.start()
    if pusher is not None:
        pusher.start()

    def stop():
        if pusher is not None:
            pusher.stop()
        if events is not None:
            proxy.events = None
            events.close()
    return stop


def main(argv=None):
    """Entry point of the ``vaurien`` command; returns the exit status."""
    _patch()
    from vaurien.config import ConfigError
    if argv is None:
        argv = sys.argv[1:]
    try:
        return run(argv)
    except ConfigError as exc:
        sys.stderr.write('vaurien: error: %s\n' % exc)
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
