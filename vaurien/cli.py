"""The ``vaurien`` command line: argv in, :class:`Options` out.

Precedence of settings: defaults < INI file (``--config``) < command line.
Nothing here starts anything: :mod:`vaurien.service` does that with the
:class:`Options`, and :mod:`vaurien.run` is the command itself.
"""
import argparse
import logging
import sys

from vaurien import __version__
from vaurien.behavior import DIRECTIONS
from vaurien.compat import translate_argv
from vaurien.config import (SETTINGS, ConfigError, defaults, format_behavior,
                            format_hostport, positive_float, read_ini,
                            type_name)
from vaurien.handlers import BUILTINS, DIRECTION_OPTION, Registry
from vaurien.protocols import Registry as ProtocolRegistry
from vaurien.protocols import builtin_names as protocol_names

__all__ = ['Options', 'make_parser', 'parse_args', 'split_handler_options',
           'HANDLER_PREFIX', 'PROTOCOL_PREFIX', 'setup_logging']


HANDLER_PREFIX = '--handlers.'
PROTOCOL_PREFIX = '--protocols.'


def split_handler_options(argv, prefix=HANDLER_PREFIX):
    """Take ``--handlers.NAME.OPTION VALUE`` (or ``=VALUE``) out of *argv*.

    Returns ``(rest, {name: {option: value}})``. NAME may itself contain dots
    (a dotted path); the option is what follows the last dot. With *prefix*
    ``'--protocols.'`` the same for protocol options.
    """
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
               'Built-in protocols: %s. ' % ', '.join(protocol_names()) +
               'Protocol options: --protocols.NAME.OPTION VALUE. '
               '"vaurien report EVENTS.jsonl" summarises an event log '
               '(vaurien report --help). '
               'The flags of Vaurien 1.x (--proxy, --backend, '
               '--behavior-NAME-OPTION, --protocol-NAME-OPTION, '
               '--stay-connected...) are accepted too; docs/compat.rst '
               'says what each does here.')
    parser.add_argument('--version', action='version',
                        version='vaurien %s' % __version__)
    parser.add_argument('--config', metavar='FILE',
                        help='INI file with [vaurien] and [handler:NAME] '
                             'sections; the command line wins over it.')
    parser.add_argument('--demo', action='store_true',
                        help='Start a built-in backend, put the proxy in '
                             'front of it, send a few hundred requests '
                             'through and report what happened.')
    parser.add_argument('--demo-timeout', metavar='SECONDS',
                        type=_demo_seconds,
                        help='With --demo: a request with no whole answer '
                             'within SECONDS counts as hung (default: 2, '
                             "or 4x delay's sleep when that is longer).")
    parser.add_argument('--demo-slow', metavar='SECONDS',
                        type=_demo_seconds,
                        help='With --demo: a right answer that took at '
                             'least SECONDS counts as delayed (default: '
                             "0.9x delay's sleep with delay in the "
                             'behavior, else 3x the median answer time).')
    parser.add_argument('--check', action='store_true',
                        help='Load and check the whole configuration '
                             '(settings, INI file, handlers, protocol, '
                             'options) and exit: status 0 and "vaurien: '
                             'configuration OK", or 2 and the error. '
                             'Nothing listens.')
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
    for name in registry.builtins():
        for option, (desc, kind, default) in sorted(
                registry.get(name).options.items()):
            group.add_argument('%s%s.%s' % (HANDLER_PREFIX, name, option),
                               metavar=type_name(kind).split()[0].upper(),
                               dest='_unused_%s_%s' % (name, option),
                               help='%s: %s (default: %s)'
                               % (name, desc, default))
    group = parser.add_argument_group('options of the built-in protocols')
    protocols = ProtocolRegistry(entry_points=False)
    for name in protocols.builtins():
        for option, (desc, kind, default) in sorted(
                protocols.get(name).options.items()):
            group.add_argument('%s%s.%s' % (PROTOCOL_PREFIX, name, option),
                               metavar=type_name(kind).split()[0].upper(),
                               dest='_unused_p_%s_%s' % (name, option),
                               help='%s: %s (default: %s)'
                               % (name, desc, default))
    return parser


class Options:
    """Everything ``vaurien`` was asked to do, converted and checked."""

    def __init__(self, settings, handler_options, ini, protocol_options=None,
                 given=frozenset(), notes=()):
        self.settings = settings            # {dest: typed value}
        self.given = given          # dests set by the INI file or the CLI
        self.handler_options = handler_options   # {name: {opt: raw}}
        self.ini = ini
        self.protocol_options = protocol_options or {}  # CLI {name: {opt: raw}}
        # [(logging level, message)] to log once logging is set up: the INI
        # file's warnings, the notes on flags of earlier releases
        self.notes = list(notes)
        self.given = frozenset(given)       # dests set by the INI file or argv

    def for_proxy(self, spec):
        """The Options of one ``[proxy:NAME]`` section
        (:class:`vaurien.proxyconf.ProxySpec`): these, with the section's
        settings and handler/protocol options over them."""
        settings = dict(self.settings)
        settings.update(spec.settings)
        handler_options = {name: dict(values)
                           for name, values in self.handler_options.items()}
        for name, values in spec.handler_options.items():
            handler_options.setdefault(name, {}).update(values)
        protocol_options = {name: dict(values) for name, values
                            in self.protocol_options.items()}
        for name, values in spec.protocol_options.items():
            protocol_options.setdefault(name, {}).update(values)
        return Options(settings, handler_options, self.ini, protocol_options,
                       self.given | set(spec.settings))

    def __getattr__(self, name):
        try:
            return self.settings[name]
        except KeyError:
            raise AttributeError(name) from None


def _demo_seconds(value):
    try:
        return positive_float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError('expects %s, got %r'
                                         % (exc, value)) from None


def parse_args(argv):
    """Parse *argv* into ``(Options, flags namespace)``; ConfigError if bad."""
    argv, notes = translate_argv(list(argv))    # 1.x's flags
    argv, cli_handler_options = split_handler_options(argv)
    argv, cli_protocol_options = split_handler_options(argv, PROTOCOL_PREFIX)
    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.demo and (args.demo_timeout is not None
                          or args.demo_slow is not None):
        raise ConfigError('--demo-timeout and --demo-slow go with --demo')
    settings = defaults()
    ini = None
    handler_options = {}
    given = set()
    if args.config:
        ini = read_ini(args.config)
        settings.update(ini.settings)
        given.update(ini.settings)
        for name, values in ini.handlers.items():
            handler_options[name] = {k: v for k, v in values.items()
                                     if k != 'callable'}
    for setting in SETTINGS:
        value = getattr(args, setting.dest)
        if value is not None:
            settings[setting.dest] = setting.convert(value, setting.flag)
            given.add(setting.dest)
    for name, values in cli_handler_options.items():
        handler_options.setdefault(name, {}).update(values)
    if ini is not None:
        notes = [(logging.WARNING, w) for w in ini.warnings] + notes
    return (Options(settings, handler_options, ini, cli_protocol_options,
                    frozenset(given), notes), args)


def setup_logging(level, output):
    """Configure the ``vaurien`` logger (of ``vaurien`` and
    ``vaurien-toxiproxy``); ConfigError if *output* is unusable."""
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
