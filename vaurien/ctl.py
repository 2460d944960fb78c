"""``vaurienctl``: drive a running proxy's control API from a shell.

::

    vaurienctl list-handlers
    vaurienctl get-handler
    vaurienctl set-handler delay --option sleep=2      # or --sleep 2
    vaurienctl list-behaviors                          # Vaurien 1.x's
    vaurienctl set-behavior delay --sleep 2
    vaurienctl get-behavior
    vaurienctl stats            # a live table, like top (--once: one print)
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

from vaurien.client import Client, Refused, Unreachable

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
    parser.add_argument('--timeout', type=float, default=10.0,
                        metavar='SECONDS',
                        help='Seconds to wait for an answer (default: 10)')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    commands.add_parser('list-handlers', help='Print every handler name, '
                        'comma-separated.')
    commands.add_parser('get-handler', help='Print the current handler (a '
                        'mix: its behavior string).')
    setter = commands.add_parser(
        'set-handler', allow_abbrev=False,
        help='Use a handler (or a mix like 20:delay,10:error) for all the '
             'traffic; options as --option KEY=VALUE or --KEY VALUE.')
    setter.add_argument('name', metavar='NAME')
    setter.add_argument('--option', '-o', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='An option of the handler (repeatable), like '
                             'sleep=2; --sleep 2 works too.')
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
        'stats', help='A live table of connections, throughput and picks '
                      'per handler (from GET /metrics), refreshed like top.')
    stats.add_argument('--once', action='store_true',
                       help='Print the table once (totals only) and exit.')
    stats.add_argument('--interval', type=float, default=1.0,
                       metavar='SECONDS',
                       help='Seconds between two refreshes (default: 1)')
    return parser


def _options(pairs, extra):
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


def _set(client, args, extra, kind):
    """set-handler / set-behavior: the original's output; exit status."""
    options = _options(args.option, extra)
    try:
        if kind == 'handler':
            client.set_handler(args.name, **options)
        else:
            client.set_behavior(args.name, **options)
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


def run(argv):
    """Run one command; returns the exit status (raises _Usage)."""
    args, extra = make_parser().parse_known_args(argv)
    if extra and args.command not in ('set-handler', 'set-behavior'):
        raise _Usage('unrecognized arguments: %s' % ' '.join(extra))
    if '://' not in args.host:
        args.host = 'http://' + args.host
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    try:
        client = Client(args.host, token=token, timeout=args.timeout)
    except ValueError as exc:
        raise _Usage('--host: %s' % exc) from None
    if args.command == 'list-handlers':
        print(', '.join(client.list_handlers()))
    elif args.command == 'get-handler':
        print(client.get_handler())
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
                     source=client.url)
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
