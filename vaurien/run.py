"""The ``vaurien`` command: argv in, exit status out.

It patches the standard library with gevent first of all (so that user
handlers calling ``time.sleep`` or a stdlib client do not freeze the
proxy), parses the command line (:mod:`vaurien.cli`), sets up logging and
hands over to :mod:`vaurien.service` (or to ``--check``, ``--demo`` and
``--workers``, which use it). Every user mistake ends as one line,
``vaurien: error: ...``, and exit status 2. No module imports this one:
it is the top of the stack.
"""
from vaurien._patch import patch_all

patch_all()

import random  # noqa: E402
import sys  # noqa: E402

from vaurien.cli import parse_args, setup_logging  # noqa: E402
from vaurien.config import ConfigError  # noqa: E402
from vaurien.demo import run_demo  # noqa: E402
from vaurien.report import main as report_main  # noqa: E402
from vaurien.service import check, serve  # noqa: E402
from vaurien.workers import run_workers  # noqa: E402

__all__ = ['main', 'run', 'setup_logging']


def run(argv):
    """Parse, build and serve (or check, or demo); the exit status."""
    options, args = parse_args(argv)
    # --check writes no file: its log (the INI file's warnings) goes to
    # standard error, and check() sees whether --log-output is writable.
    log = setup_logging(options.log_level,
                        '-' if args.check else options.log_output)
    for level, note in options.notes:
        log.log(level, note)
    if args.check:
        check(options)
        sys.stdout.write('vaurien: configuration OK\n')
        sys.stdout.flush()
        return 0
    seed = options.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2 ** 32)
    if args.demo:
        return run_demo(options, seed, timeout=args.demo_timeout,
                        slow=args.demo_slow)
    if options.workers > 1:
        return run_workers(options, seed)
    return serve(options, seed)


def main(argv=None):
    """Entry point of the ``vaurien`` command; returns the exit status.

    ``vaurien report EVENTS.jsonl ...`` reads an event log instead
    (:mod:`vaurien.report`): no proxy is started.
    """
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ['report']:
        return report_main(argv[1:])
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
