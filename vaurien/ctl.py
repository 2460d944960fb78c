"""``vaurienctl``: drive a running proxy's control API from a shell.

::

    vaurienctl list-handlers
    vaurienctl get-handler [--name-only]
    vaurienctl set-handler delay --option sleep=2      # or --sleep 2
    vaurienctl set-handler 20:delay,10:error -o delay.sleep=0.2 \
                                             -o error.warmup=3
    vaurienctl list-behaviors                          # Vaurien 1.x's
    vaurienctl set-behavior delay --sleep 2
    vaurienctl get-behavior
    vaurienctl stats            # a live table, like top (--once: one print)
    vaurienctl report events.log --html report.html
    vaurienctl --host http://10.0.0.5:8080 --token s3cret set-handler dummy

``*-handlers``/``*-handler`` print what the seed era's ``vaurienctl``
printed, ``*-behaviors``/``*-behavior`` what 1.x's (vaurienclient) printed.

Exit status: 0 on success, 1 when the server is unreachable or refuses (one
line ``vaurienctl: error: ...`` on stderr; the original printed its
"The request failed" line and exited 0), 2 for a usage mistake.
"""
import argparse
import os
import sys

from vaurien.client import MIX, Client, Refused, Unreachable
from vaurien.config import ConfigError
from vaurien.report import add_arguments as add_report_arguments
from vaurien.report import report_from_args

__all__ = ['main']

TOKEN_ENV = 'VAURIEN_HTTP_TOKEN'


class _Usage(Exception):
    """A mistake on the command line (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Usage(message)


def make_parser():
    """The argparse parser of ``vaurienctl``."""
    parser = _Parser(
        prog='vaurienctl',
        description='Drive a running vaurien (started with --http) through '
                    'its control API.')
    parser.add_argument('--host', default='http://localhost:8080',
                        metavar='URL',
                        help='URL of the control API (default: %(default)s)')
    parser.add_argument('--token', default=None,
                        help='Token of the control API (--http-token of the '
                             'proxy); default: the environment variable %s'
                             % TOKEN_ENV)
    parser.add_argument('--proxy', default=None, metavar='NAME',
                        help='The proxy to drive, when the process has '
                             'several ([proxy:NAME] sections); default: '
                             '"default", or the only one')
    parser.add_argument('--timeout', type=float, default=10.0,
                        metavar='SECONDS',
                        help='Seconds to wait for an answer (default: 10)')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    commands.add_parser('list-handlers', help='Print every handler name, '
                        'comma-separated.')
    getter = commands.add_parser(
        'get-handler', help='Print the current handler (a mix: its behavior '
                            'string).')
    getter.add_argument('--name-only', action='store_true',
                        help='Print the name alone, as the seed era\'s '
                             'vaurienctl did (the options set are printed '
                             'after it otherwise).')
    getter.add_argument('--options', action='store_true',
                        help='Print the options set too (the default; '
                             'kept for scripts).')
    setter = commands.add_parser(
        'set-handler', allow_abbrev=False,
        help='Use a handler (or a mix like 20:delay,10:error) for all the '
             'traffic; options as --option KEY=VALUE or --KEY VALUE.')
    setter.add_argument('name', metavar='NAME')
    setter.add_argument('--option', '-o', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='An option (repeatable): OPTION=VALUE for one '
                             'handler (sleep=2; --sleep 2 works too), '
                             'NAME.OPTION=VALUE for a handler of a mix '
                             '(delay.sleep=0.2).')
    commands.add_parser('list-behaviors', help='Print the behaviors, '
                        'comma-separated (Vaurien 1.x\'s command).')
    commands.add_parser('get-behavior', help='Print the current behavior '
                        '(Vaurien 1.x\'s command).')
    setter = commands.add_parser(
        'set-behavior', allow_abbrev=False,
        help='Use a behavior for all the traffic, with its options as '
             '--KEY VALUE (Vaurien 1.x\'s command).')
    setter.add_argument('name', metavar='NAME')
    setter.add_argument('--option', '-o', action='append', default=[],
                        metavar='KEY=VALUE', help=argparse.SUPPRESS)
    stats = commands.add_parser(
        'stats', help='A live table of connections, throughput, picks '
                      'per handler and what the faults did (from GET '
                      '/metrics), refreshed like top.')
    stats.add_argument('--once', action='store_true',
                       help='Print the table once (totals only) and exit.')
    stats.add_argument('--interval', type=float, default=1.0,
                       metavar='SECONDS',
                       help='Seconds between two refreshes (default: 1)')
    add_report_arguments(commands.add_parser(
        'report', help='Summarise an event log (--event-log of the proxy) '
                       'for a person, like "vaurien report"; no proxy '
                       'needed.'))
    return parser


def _options(pairs, extra=()):
    """``{key: value}`` from ``--option KEY=VALUE`` and ``--KEY [VALUE]``.

    A ``--KEY`` with no value after it is ``true``, as 1.x's flags were.
    """
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key.strip():
            raise _Usage('--option expects KEY=VALUE, got %r' % pair)
        options[key.strip()] = value
    i = 0
    while i < len(extra):
        arg = extra[i]
        key, sep, value = arg.partition('=')
        if not key.startswith('--') or len(key) < 3:
            raise _Usage('unrecognized argument %r (options: --KEY VALUE or '
                          '--option KEY=VALUE)' % arg)
        if not sep:
            if i + 1 < len(extra) and not extra[i + 1].startswith('--'):
                value = extra[i + 1]
                i += 1
            else:
                value = 'true'
        options[key[2:].replace('-', '_')] = value
        i += 1
    return options


def _mix_options(pairs):
    """``{handler: {option: value}}`` from ``NAME.OPTION=VALUE`` pairs
    (NAME may be a dotted path: the option follows the last dot)."""
    options = {}
    for key, value in _options(pairs).items():
        name, dot, option = key.rpartition('.')
        if not dot or not name or not option:
            raise _Usage('--option of a mix expects NAME.OPTION=VALUE (like '
                         'delay.sleep=0.2), got %r' % ('%s=%s' % (key, value)))
        options.setdefault(name, {})[option] = value
    return options


def set_handler(client, name, pairs, extra=()):
    """``set-handler NAME -o ...``: one handler (``OPTION=VALUE``, or
    ``NAME.OPTION=VALUE`` with its own name, or ``--OPTION VALUE``), or a
    mix (``NAME.OPTION=VALUE``)."""
    if MIX.match(name):
        if extra:
            raise _Usage('options of a mix are -o NAME.OPTION=VALUE, got %s'
                         % ' '.join(extra))
        client.set_behavior(name, **_mix_options(pairs))
        return
    options = {}
    for key, value in _options(pairs, extra).items():
        if key.startswith(name + '.'):
            key = key[len(name) + 1:]
        options[key] = value
    client.set_handler(name, **options)


def _set(client, args, extra, kind):
    """set-handler / set-behavior, with the original's output; the exit
    status."""
    try:
        if kind == 'handler':
            set_handler(client, args.name, args.option, extra)
        else:
            client.set_behavior(args.name, **_options(args.option, extra))
    except Refused as exc:
        if any(e.get('name') == 'name' for e in exc.errors):
            # What the original printed when the name was refused; the
            # reason follows on stderr, and the exit status says it failed.
            names = (client.list_handlers() if kind == 'handler'
                     else client.list_behaviors())
            print('The request failed. Please use one of %s'
                  % ', '.join(names))
            sys.stdout.flush()
        raise
    print('%s changed to "%s"' % (kind.capitalize(), args.name))
    return 0


def option_lines(state):
    """The options of :meth:`Client.get_behavior_state`, one
    ``NAME.OPTION=VALUE`` a line (what ``set-handler -o`` takes back)."""
    lines = []
    for name, values in sorted((state.get('options') or {}).items()):
        for option, value in sorted(values.items()):
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            lines.append('%s.%s=%s' % (name, option, value))
    return lines


def run(argv):
    """Run one command; returns the exit status (raises _Usage)."""
    args, extra = make_parser().parse_known_args(argv)
    if extra and args.command not in ('set-handler', 'set-behavior'):
        raise _Usage('unrecognized arguments: %s' % ' '.join(extra))
    if args.command == 'report':
        try:
            return report_from_args(args)
        except ConfigError as exc:
            raise _Usage(str(exc)) from None
    if '://' not in args.host:
        args.host = 'http://' + args.host
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    try:
        client = Client(args.host, token=token, timeout=args.timeout,
                        proxy=args.proxy)
    except ValueError as exc:
        raise _Usage('--host: %s' % exc) from None
    if args.command == 'list-handlers':
        print(', '.join(client.list_handlers()))
    elif args.command == 'get-handler':
        print(client.get_handler())
        if not args.name_only:
            for line in option_lines(client.get_behavior_state()):
                print(line)
    elif args.command == 'list-behaviors':
        print(', '.join(client.list_behaviors()))
    elif args.command == 'get-behavior':
        print(client.get_behavior())
    elif args.command == 'stats':
        from vaurien.top import watch
        if not args.interval > 0:
            raise _Usage('--interval expects a number of seconds above 0')
        return watch(lambda: client.request('GET', '/metrics'),
                     once=args.once, interval=args.interval,
                     source=client.url if not args.proxy else
                     '%s, proxy %s' % (client.url, args.proxy))
    elif args.command == 'set-handler':
        return _set(client, args, extra, 'handler')
    else:
        return _set(client, args, extra, 'behavior')
    return 0


def main(argv=None):
    """Entry point of ``vaurienctl``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except _Usage as exc:
        sys.stderr.write('vaurienctl: error: %s\n' % exc)
        return 2
    except Unreachable as exc:
        sys.stderr.write('vaurienctl: error: %s (is vaurien running with '
                         '--http?)\n' % exc)
        return 1
    except ValueError as exc:
        sys.stderr.write('vaurienctl: error: %s\n' % exc)
        return 1


if __name__ == '__main__':
    sys.exit(main())
