"""The benchmark suite's command line: ``python -m benchmarks [options]``.

Runs every selected workload against every selected subject, one after the
other, prints the tables and writes the JSON report. Every process it
starts is stopped before it returns, whatever happens.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback

if __name__ == '__main__' and not __package__:
    # Run as ``python benchmarks/run.py``: make the package importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

from benchmarks import report as _report
from benchmarks import subjects as _subjects
from benchmarks.subjects import DAEMONS, start_daemon
from benchmarks.processes import BenchError, Processes
from benchmarks.subjects import (SUBJECTS, SUBJECT_NAMES, Backends, Nginx,
                                 ROOT, certificates)
from benchmarks.workloads import WORKLOADS, WORKLOAD_NAMES, missing_tool
from vaurien.proxy import descriptor_reserve

__all__ = ['main', 'parse_args', 'Context']

DEFAULT_JSON = os.path.join(ROOT, 'benchmarks', 'results', 'latest.json')
# Descriptors the suite, the proxy and the backend each need for the idle
# workload: every idle connection is one socket here, two in the proxy.
NOFILE_MARGIN = 1000
# Descriptors kept for everything but the idle connections in a proxy.
NOFILE_RESERVE = 200


def _names(choices, what):
    def parse(value):
        names = [n.strip() for n in value.split(',') if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                'unknown %s %s (choose from %s)'
                % (what, ', '.join(unknown) or repr(value),
                   ', '.join(choices)))
        return names
    return parse


def parse_args(argv=None):
    """The suite's options (see ``python -m benchmarks --help``)."""
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks',
        description='Measure Vaurien side by side with a direct connection, '
                    'a bare gevent relay, socat and HAProxy.')
    parser.add_argument('--quick', action='store_true',
                        help='short runs, small sizes: under a minute in '
                             'all (for the tests; the figures are rough)')
    parser.add_argument('--duration', type=float, default=None,
                        help='seconds per wrk and latency run (default 10, '
                             '1 with --quick)')
    parser.add_argument('--bulk-mib', type=int, default=None,
                        help='MiB streamed each way by the bulk workload '
                             '(default 1024, 64 with --quick)')
    parser.add_argument('--idle-connections', type=int, default=None,
                        help='connections held by the idle workload '
                             '(default 10000, 500 with --quick)')
    parser.add_argument('--connections', type=int, default=50,
                        help='wrk connections (default 50)')
    parser.add_argument('--wrk-threads', type=int, default=1,
                        help='wrk threads (default 1: the machine is small)')
    parser.add_argument('--repeat', type=int, default=1, metavar='N',
                        help='measure every subject N times, in N rounds, '
                             'and report the medians (default 1)')
    parser.add_argument('--subjects', type=_names(SUBJECT_NAMES, 'subject'),
                        default=None, metavar='A,B',
                        help='subjects to run, from: %s'
                             % ', '.join(SUBJECT_NAMES))
    parser.add_argument('--workloads', type=_names(WORKLOAD_NAMES,
                                                   'workload'),
                        default=None, metavar='A,B',
                        help='workloads to run, from: %s'
                             % ', '.join(WORKLOAD_NAMES))
    parser.add_argument('--vaurien-args', default='', metavar='ARGS',
                        help='extra arguments for every Vaurien subject, '
                             'as one string (like "--bufsize 16384")')
    parser.add_argument('--toxiproxy-server', default=None, metavar='PATH',
                        help='the toxiproxy-server program of the '
                             'toxiproxy subject and of the toxics and '
                             'proxies workloads (default: '
                             '$TOXIPROXY_SERVER, else toxiproxy-server on '
                             'PATH; without one they run Vaurien only)')
    parser.add_argument('--baseline', default=None, metavar='DIR',
                        help='also measure the Vaurien of the checkout in '
                             'DIR (subject vaurien-base, right after '
                             'vaurien): a change before and after, in one '
                             'run')
    parser.add_argument('--json', default=DEFAULT_JSON, metavar='PATH',
                        help='where to write the JSON report (default '
                             'benchmarks/results/latest.json)')
    args = parser.parse_args(argv)
    try:
        args.vaurien_args = shlex.split(args.vaurien_args)
    except ValueError as exc:
        parser.error('--vaurien-args: %s' % exc)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 10.0
    if args.bulk_mib is None:
        args.bulk_mib = 64 if args.quick else 1024
    if args.idle_connections is None:
        args.idle_connections = 500 if args.quick else 10000
    for name in ('duration', 'bulk_mib', 'idle_connections', 'connections',
                 'wrk_threads', 'repeat'):
        if getattr(args, name) <= 0:
            parser.error('--%s must be above 0' % name.replace('_', '-'))
    return args


class Context:
    """What the workloads need: the options, the backends, the processes."""

    def __init__(self, args, procs, subjects, nofile):
        self.args = args
        self.procs = procs
        self.subjects = subjects
        self.duration = args.duration
        self.bulk_bytes = args.bulk_mib << 20
        # A proxy holds two descriptors per connection: stay within the
        # limit its processes inherit (a container may forbid raising it),
        # after the reserve Vaurien keeps by default (--max-connections).
        self.idle_count = min(args.idle_connections, (
            nofile - max(NOFILE_RESERVE, descriptor_reserve(nofile))) // 2)
        self.connections = args.connections
        self.wrk_threads = args.wrk_threads
        self.repeat = args.repeat
        self.nginx = None
        self.servers = None
        self.nginx_tls = None
        self.tls_servers = None
        self.daemons = {}

    def backend_port(self, kind):
        """The port of the backend *kind* ('nginx', 'echo', 'bulk',
        'nginx-tls', 'bulk-tls', 'redis', 'memcache'), started on first
        use."""
        if kind == 'nginx':
            if self.nginx is None:
                self.nginx = Nginx().start(self.procs)
            return self.nginx.port
        if kind in DAEMONS:
            if kind not in self.daemons:
                self.daemons[kind] = start_daemon(self.procs, kind)
            return self.daemons[kind]
        if kind == 'nginx-tls':
            if self.nginx_tls is None:
                self.nginx_tls = Nginx(certificates(self.procs)).start(
                    self.procs)
            return self.nginx_tls.port
        if kind == 'bulk-tls':
            if self.tls_servers is None:
                self.tls_servers = Backends(certificates(self.procs)).start(
                    self.procs)
            return self.tls_servers.bulk_tls
        if self.servers is None:
            self.servers = Backends().start(self.procs)
        return getattr(self.servers, kind)


def nofile_for(idle):
    """The descriptor limit the idle workload needs for *idle*
    connections: two descriptors a connection in the proxy, the margin,
    and Vaurien's own reserve on top (its ``--max-connections`` default
    keeps a tenth of the limit for its API, its log and the rest:
    ``vaurien.proxy.descriptor_reserve``)."""
    return (2 * idle + NOFILE_MARGIN) * 10 // 9 + 64


def raise_nofile(wanted):
    """Raise RLIMIT_NOFILE to *wanted* (hard limit too, when allowed); the
    limit now in force. Processes the suite starts inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    for limits in ((wanted, max(hard, wanted)), (min(wanted, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return limits[0]
        except (ValueError, OSError):
            continue
    return soft


_TW_REUSE = '/proc/sys/net/ipv4/tcp_tw_reuse'


def allow_tw_reuse():
    """Let new connections reuse TIME_WAIT ports (if allowed); the value to
    restore, or None. 2 (the default) already covers loopback."""
    try:
        with open(_TW_REUSE) as fh:
            old = fh.read().strip()
        if old != '0':
            return None
        with open(_TW_REUSE, 'w') as fh:
            fh.write('1')
        return old
    except OSError:
        return None


def restore_tw_reuse(old):
    """Put back what :func:`allow_tw_reuse` changed (nothing if None)."""
    if old is None:
        return
    try:
        with open(_TW_REUSE, 'w') as fh:
            fh.write(old)
    except OSError:
        pass


def _loadavg():
    try:
        with open('/proc/loadavg') as fh:
            return ' '.join(fh.read().split()[:3])
    except OSError:
        return None


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as fh:
            for line in fh:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s, %d CPUs (%s), Linux %s' % (
        platform.node(), os.cpu_count() or 0, cpu, platform.release())


def run_workload(ctx, workload):
    """Run *workload* on every subject; its section of the report.

    With ``--repeat N`` the subjects are measured in N rounds (each round
    runs every subject once, so a slow spell of the machine hits them all
    alike) and each figure is the median of the subject's runs.
    """
    subjects = workload.subjects(ctx)
    section = {'title': workload.describe(ctx),
               'figures': [f.as_dict() for f in workload.figures],
               'rows': {}, 'order': [s.name for s in subjects]}
    rows = section['rows']
    tool = missing_tool(workload)
    runs = {}
    for subject in subjects:
        row = rows[subject.name] = {'status': 'ok', 'reason': None,
                                    'note': None, 'figures': {},
                                    'detail': {}}
        if subject.name == 'direct' and not workload.direct_applies:
            row.update(status='n/a', reason='no proxy process to measure')
            continue
        reason = subject.available()
        if reason is None and tool:
            reason = '%s not installed' % tool
        if reason is not None:
            row.update(status='skipped', reason=reason)
            continue
        runs[subject.name] = []
    for round_ in range(ctx.repeat):
        for subject in subjects:
            row = rows[subject.name]
            if row['status'] != 'ok':
                continue
            _progress('%s / %s%s ...' % (
                workload.name, subject.name,
                ' (round %d of %d)' % (round_ + 1, ctx.repeat)
                if ctx.repeat > 1 else ''))
            try:
                runs[subject.name].append(measure(ctx, workload, subject))
            except BenchError as exc:
                row.update(status='failed', reason=str(exc))
                _progress('  failed: %s' % exc)
    keys = [f.key for f in workload.figures]
    for name, values in runs.items():
        row = rows[name]
        if row['status'] != 'ok' or not values:
            continue
        row['note'] = values[-1].pop('note', None)
        row['figures'] = {k: _median([v.get(k) for v in values])
                          for k in keys}
        row['detail'] = {k: v for k, v in values[-1].items()
                         if k not in keys and k != 'note'}
        row['detail']['runs'] = len(values)
        if len(values) > 1:
            row['detail']['all_runs'] = [{k: v.get(k) for k in keys}
                                         for v in values]
    finish = getattr(workload, 'finish', None)
    if finish is not None:
        finish(rows)
    return section


def measure(ctx, workload, subject):
    """Start *subject*, run *workload* through it once, stop it; the
    values measured. BenchError when something failed."""
    running = None
    try:
        backend = ctx.backend_port(workload.backend)
        running = subject.start(ctx.procs, backend)
        values = workload.run(ctx, running)
        running.check_alive()
        return values
    except BenchError as exc:
        reason = str(exc)
        if running is not None and running.started is not None:
            # What the proxy said about it, if anything.
            said = running.started.log(300).strip()
            if said:
                reason += ' [%s: %s]' % (subject.name, said.splitlines()[-1])
        raise BenchError(reason) from None
    except Exception as exc:
        _progress(traceback.format_exc())
        raise BenchError('%s: %s' % (type(exc).__name__, exc)) from None
    finally:
        if running is not None and running.started is not None:
            ctx.procs.stop(running.started)


def _median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


def _progress(text):
    sys.stderr.write(text + '\n')
    sys.stderr.flush()


def _sigterm(signum, frame):
    # Turn SIGTERM into SystemExit so that the finally clauses stop every
    # process the suite started.
    raise SystemExit(128 + signum)


def main(argv=None):
    """Run the suite; 0 when every selected subject that could run did."""
    args = parse_args(argv)
    if args.toxiproxy_server:
        _subjects.TOXIPROXY_SERVER[:] = [args.toxiproxy_server]
    wanted_subjects = args.subjects or SUBJECT_NAMES
    subjects = [s for s in SUBJECTS if s.name in wanted_subjects
                and not (s.optional and s.available() is not None)]
    if args.baseline:
        if not os.path.isdir(os.path.join(args.baseline, 'vaurien')):
            sys.stderr.write('python -m benchmarks: error: --baseline: no '
                             'vaurien package in %s\n' % args.baseline)
            return 2
        where = next((i + 1 for i, s in enumerate(subjects)
                      if s.name == 'vaurien'), len(subjects))
        subjects.insert(where, _subjects.baseline(args.baseline))
    workloads = [w for w in WORKLOADS
                 if w.name in (args.workloads or WORKLOAD_NAMES)]
    _subjects.VAURIEN_ARGS[:] = args.vaurien_args
    previous = signal.signal(signal.SIGTERM, _sigterm)
    workdir = tempfile.mkdtemp(prefix='vaurien-bench-')
    procs = Processes(workdir)
    tw_reuse = allow_tw_reuse()
    started = time.monotonic()
    report = {'meta': {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        'machine': _machine(),
        'loadavg_start': _loadavg(),
        'options': {k: v for k, v in vars(args).items() if k != 'json'},
        'nofile': raise_nofile(nofile_for(args.idle_connections)),
        'versions': {},
    }, 'order': [], 'results': {}}
    try:
        for subject in subjects:
            if subject.available() is None and subject.name != 'direct':
                report['meta']['versions'][subject.name] = subject.version()
        if any(w.backend == 'nginx' for w in workloads):
            report['meta']['versions']['nginx (backend)'] = Nginx.version()
        nofile = report['meta']['nofile']
        ctx = Context(args, procs, subjects, nofile)
        if ctx.idle_count < args.idle_connections and \
                any(w.name == 'idle' for w in workloads):
            _progress('idle: %d connections instead of %d (descriptor '
                      'limit %d, cannot raise it)'
                      % (ctx.idle_count, args.idle_connections, nofile))
        for workload in workloads:
            section = run_workload(ctx, workload)
            if section['order']:
                report['order'].append(workload.name)
                report['results'][workload.name] = section
    finally:
        procs.stop_all()
        restore_tw_reuse(tw_reuse)
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)
    report['meta']['pids'] = procs.pids
    report['meta']['loadavg_end'] = _loadavg()
    report['meta']['seconds'] = round(time.monotonic() - started, 1)
    report['targets'] = _report.targets(report['results'])
    text = _report.render(report)
    sys.stdout.write(text + '\n')
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)),
                    exist_ok=True)
        with open(args.json, 'w') as fh:
            json.dump(report, fh, indent=2, sort_keys=True)
        _progress('JSON report: %s' % args.json)
    failed = [(w, s) for w, section in report['results'].items()
              for s, row in section['rows'].items()
              if row['status'] == 'failed']
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
