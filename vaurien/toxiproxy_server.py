"""``vaurien-toxiproxy``: Vaurien started as toxiproxy-server is.

Takes toxiproxy-server's flags (one or two dashes, ``-flag value`` or
``-flag=value``)::

    vaurien-toxiproxy [-host localhost] [-port 8474] [-config FILE]
                      [-seed N] [-version]

``-config`` is Toxiproxy's JSON array of proxies (``name``, ``listen``,
``upstream``, ``enabled``), where a proxy may also carry ``toxics``;
``-seed`` is effective: the same seed gives every connection the same
toxicity rolls and random draws. Vaurien's own flags: ``--http-token``,
``--log-level`` (else ``$LOG_LEVEL``, as toxiproxy-server reads it),
``--grace``. SIGTERM or SIGINT stops it as it stops ``vaurien``: every
proxy stops accepting at once, open connections get ``--grace`` seconds
(5 by default; a second signal skips the wait) to finish, those still
open are reset, and the log says how many were drained and cut.
"""
from vaurien._patch import patch_all

patch_all()

import argparse  # noqa: E402  (after the patching, on purpose)
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402

from vaurien import __version__  # noqa: E402
from vaurien.cli import Options, setup_logging  # noqa: E402
from vaurien.config import ConfigError, defaults  # noqa: E402
from vaurien.service import GroupService, serve_group  # noqa: E402
from vaurien.toxiproxy_api import VERSION  # noqa: E402

PROG = 'vaurien-toxiproxy'
_LEVELS = ('debug', 'info', 'warning', 'error', 'critical')


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def make_parser():
    parser = _Parser(prog=PROG, description="Vaurien serving Toxiproxy's "
                     "API, started with toxiproxy-server's flags.",
                     allow_abbrev=False)
    add = parser.add_argument
    add('-host', '--host', default='localhost',
        help="Host for the API to listen on (default: localhost)")
    add('-port', '--port', default='8474',
        help="Port for the API to listen on (default: 8474; 0: any free "
             "port, logged)")
    add('-config', '--config', default='',
        help="JSON file of proxies to create at start (Toxiproxy's format; "
             "a proxy may carry \"toxics\")")
    add('-seed', '--seed', default=None,
        help="Seed of the toxicity rolls and random draws (default: "
             "random, logged)")
    add('-version', '--version', action='store_true',
        help="Print the version and exit")
    add('-proxy-metrics', '--proxy-metrics', action='store_true',
        help="Accepted for compatibility: /metrics is always served")
    add('-runtime-metrics', '--runtime-metrics', action='store_true',
        help="Accepted for compatibility: /metrics is always served")
    add('--http-token', default=None,
        help="Require 'Authorization: Bearer TOKEN' on every API request")
    add('--grace', default=None,
        help="On SIGTERM or SIGINT, seconds open connections get to finish "
             "before they are reset (default: 5; a second signal cuts them "
             "at once)")
    add('--log-level', default=None,
        choices=_LEVELS,
        help="Log level (default: $LOG_LEVEL, as toxiproxy-server reads "
             "it, else info); the log goes to stderr")
    return parser


def _int(text, what, low=0, high=None):
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        raise _UsageError('%s expects an integer, got %r' % (what, text)) \
            from None
    if value < low or (high is not None and value > high):
        raise _UsageError('%s expects an integer between %d and %s, got %d'
                          % (what, low, high, value))
    return value


def run(argv):
    """Parse, start and serve until stopped; the exit status."""
    args = make_parser().parse_args(argv)
    if args.version:
        sys.stdout.write('toxiproxy-server version %s (vaurien %s)\n'
                         % (VERSION, __version__))
        return 0
    port = _int(args.port, '-port', 0, 65535)
    settings = defaults()
    if args.grace is not None:
        try:
            grace = float(args.grace)
        except ValueError:
            grace = -1.0
        if not grace >= 0 or grace == float('inf'):
            raise _UsageError('--grace expects a number of seconds (0 or '
                              'more), got %r' % args.grace)
        settings['grace'] = grace
    seed = args.seed
    seed = (random.SystemRandom().randrange(2 ** 32) if seed is None
            else _int(seed, '-seed'))
    level = args.log_level or os.environ.get('LOG_LEVEL', '').lower()
    if level == 'warn':
        level = 'warning'
    if level not in _LEVELS:
        if level:
            sys.stderr.write('%s: LOG_LEVEL=%r is not a level: info is used\n'
                             % (PROG, os.environ.get('LOG_LEVEL')))
        level = 'info'
    log = setup_logging(level, '-')
    settings.update(http=True, http_host=args.host, http_port=port,
                    http_token=args.http_token, seed=seed)
    options = Options(settings, {}, None)
    service = GroupService(options, seed, default=False)
    service.start()
    if args.config:
        try:
            with open(args.config, 'rb') as fh:
                body = fh.read()
        except OSError as exc:
            service.stop()
            service.close()
            raise ConfigError('cannot read %s: %s' % (
                args.config, (exc.strerror or str(exc)).lower())) from None
        status, answer = service.populate(body)
        if status != 201:
            service.stop()
            service.close()
            raise ConfigError('%s: %s' % (args.config, answer['error']))
        log.info('populated %d proxies from %s', len(answer['proxies']),
                 args.config)
    log.info("Toxiproxy API (version %s) on %s, seed %d (replay with -seed "
             "%d)", VERSION, service.api.url(), seed, seed)
    serve_group(service, settings['grace'])
    return 0


def main(argv=None):
    """Entry point of ``vaurien-toxiproxy``; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        return run(argv)
    except (ConfigError, _UsageError) as exc:
        sys.stderr.write('%s: error: %s\n' % (PROG, exc))
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
