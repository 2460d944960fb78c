"""The benchmark suite runs and reports; its speed figures are never
asserted (the machine is shared: they would only measure the neighbours)."""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

import support

from benchmarks import procstat, report
from benchmarks.run import parse_args
from benchmarks.subjects import SUBJECTS
from benchmarks.workloads import WORKLOADS, parse_wrk, percentile

PROXIES = ['vaurien', 'bare-relay', 'socat', 'haproxy']
WORKLOADS_RUN = ['bulk', 'latency', 'idle', 'setup', 'keepalive', 'faults',
                 'redis', 'memcache', 'http', 'tls-bulk', 'tls-keepalive',
                 'toxics', 'proxies', 'churn']
# The Toxiproxy mode: Vaurien's rows (toxiproxy-server's follow when it is
# installed).
TOXIPROXY_WORKLOADS = {'toxics': ['vaurien 100:dummy', 'vaurien toxics'],
                       'proxies': ['vaurien-toxiproxy']}
# TLS on both sides: the proxies that can (no bare relay).
TLS_SUBJECTS = ['direct', 'vaurien', 'socat', 'haproxy']
# tcp mode and protocol mode, side by side.
MODE_WORKLOADS = {'redis': 'redis', 'memcache': 'memcache', 'http': 'http'}


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as fh:
            state = fh.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def _suite(*args, timeout=200):
    """Run the suite to completion; on timeout, SIGTERM first so that it
    stops what it started."""
    proc = subprocess.Popen(
        [sys.executable, '-m', 'benchmarks'] + list(args),
        cwd=support.ROOT, env=support.env_with_root(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# Two quick runs between them have every subject and every workload report
# (not their cross product: a subject that reports on these workloads, TLS
# included, is started the way every workload starts it).
QUICK_RUNS = {
    # Every workload (Vaurien's own variants in some), for Vaurien.
    'every-workload': (['direct', 'vaurien'], WORKLOADS_RUN),
    # Every other subject.
    'every-subject': (['direct', 'bare-relay', 'socat', 'haproxy'],
                      ['bulk', 'latency', 'idle', 'setup', 'keepalive',
                       'tls-bulk']),
}


@pytest.mark.timeout(360)
@pytest.mark.parametrize('run', sorted(QUICK_RUNS))
def test_quick_run_reports_every_subject_and_workload(tmp_path, run):
    chosen, workloads = QUICK_RUNS[run]
    path = tmp_path / 'report.json'
    # Smaller than --quick alone: the figures are not asserted, only that
    # every subject and workload reports them.
    result = _suite('--quick', '--duration', '0.3', '--bulk-mib', '8',
                    '--idle-connections', '100', '--json', str(path),
                    '--subjects', ','.join(chosen),
                    '--workloads', ','.join(workloads), timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(path.read_text())
    assert data['order'] == workloads
    results = data['results']
    for name in workloads:
        section = results[name]
        rows = section['rows']
        keys = [f['key'] for f in section['figures']]
        if name == 'faults':
            subjects = section['order']
            assert subjects == ['vaurien 100:dummy', 'vaurien 50:delay',
                                'vaurien 50:delay,20:error',
                                'vaurien 20:error (corrupting)']
            assert set(rows) == set(subjects)
        elif name.startswith('tls-'):
            subjects = [each for each in TLS_SUBJECTS if each in chosen]
            assert section['order'] == subjects
        elif name in MODE_WORKLOADS:
            subjects = ['vaurien tcp',
                        'vaurien --protocol %s' % MODE_WORKLOADS[name]]
            assert section['order'] == subjects
        elif name in TOXIPROXY_WORKLOADS:
            subjects = TOXIPROXY_WORKLOADS[name]
            assert section['order'][:len(subjects)] == subjects
        else:
            subjects = [each for each in ['direct'] + PROXIES
                        if each in chosen]
            assert set(subjects) <= set(rows)
        for subject in subjects:
            row = rows[subject]
            if row['status'] == 'skipped':
                # Only a missing program is a reason to skip.
                assert subject in ('socat', 'haproxy'), row
                assert shutil.which(subject) is None, row
                continue
            if subject == 'direct' and name == 'idle':
                assert row['status'] == 'n/a'
                continue
            assert row['status'] == 'ok', (name, subject, row)
            for key in keys:
                value = row['figures'][key]
                if subject == 'direct' and key in ('cpu_s_per_gb',
                                                   'cpu_us_per_req',
                                                   'cpu_us_per_conn',
                                                   'cpu_us_per_rtt',
                                                   'p50_added_us',
                                                   'p99_added_us'):
                    assert value is None
                else:
                    assert isinstance(value, (int, float)), (name, subject,
                                                             key, value)
    # The table names every subject and workload, and the targets.
    for name in chosen:
        assert '| %s ' % name in result.stdout
    for workload in workloads:
        assert '## %s:' % workload in result.stdout
    assert '## targets' in result.stdout
    assert len(data['targets']) == len(report.TARGETS)
    # Nothing the suite started outlives it.
    assert data['meta']['pids']
    for pid in data['meta']['pids']:
        assert not _alive(pid), pid


# A stand-in for toxiproxy-server 2.1.4: vaurien-toxiproxy, refusing
# -version as 2.1.4 does (its version is only asked through the API).
FAKE_TOXIPROXY = """#!/bin/sh
for arg in "$@"; do
    if [ "$arg" = "-version" ]; then
        echo "flag provided but not defined: -version" >&2
        exit 2
    fi
done
exec %s -m vaurien.toxiproxy_server --log-level warning "$@"
"""


@pytest.mark.timeout(120)
def test_toxiproxy_mode(tmp_path):
    """The toxics and proxies workloads, with a stand-in toxiproxy-server
    (--toxiproxy-server): every row measured, the toxics in place after
    the load, the targets of issue 13 computed, the version asked through
    GET /version."""
    fake = tmp_path / 'toxiproxy-server'
    fake.write_text(FAKE_TOXIPROXY % shlex.quote(sys.executable))
    fake.chmod(0o755)
    path = tmp_path / 'r.json'
    result = _suite('--quick', '--subjects', 'vaurien,toxiproxy',
                    '--workloads', 'toxics,proxies', '--duration', '0.3',
                    '--toxiproxy-server', str(fake), '--json', str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(path.read_text())
    assert data['order'] == ['toxics', 'proxies']
    toxics = data['results']['toxics']
    assert toxics['order'] == ['vaurien 100:dummy', 'vaurien toxics',
                               'toxiproxy toxics']
    for name in toxics['order']:
        row = toxics['rows'][name]
        assert row['status'] == 'ok', (name, row)
        assert row['figures']['cpu_us_per_req'] > 0
        assert row['detail']['requests'] > 0
    for name in ('vaurien toxics', 'toxiproxy toxics'):
        assert toxics['rows'][name]['detail']['toxics'] == [
            'latency_downstream', 'bandwidth_downstream']
    proxies = data['results']['proxies']
    assert proxies['order'] == ['vaurien-toxiproxy', 'toxiproxy-server']
    for name in proxies['order']:
        row = proxies['rows'][name]
        assert row['status'] == 'ok', (name, row)
        assert row['detail']['rss_100'] > row['detail']['rss_1'] > 0
        assert row['figures']['mib_added'] == pytest.approx(
            (row['detail']['rss_100'] - row['detail']['rss_1']) / 2 ** 20)
    measured = {t['label']: t['value'] for t in data['targets']}
    assert measured['toxics: vaurien CPU/request vs toxiproxy, same '
                    'toxics'] is not None
    assert measured['proxies: vaurien MiB for 100 idle proxies '
                    '(minus 1)'] is not None
    assert data['meta']['versions']['toxiproxy'] == \
        'toxiproxy-server, GET /version: 2.12.0'


@pytest.mark.timeout(120)
def test_filters_repeat_and_json_path(tmp_path):
    path = tmp_path / 'sub' / 'r.json'
    result = _suite('--quick', '--subjects', 'direct,bare-relay',
                    '--workloads', 'latency', '--duration', '0.3',
                    '--repeat', '2', '--json', str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(path.read_text())
    assert data['order'] == ['latency']
    section = data['results']['latency']
    assert section['order'] == ['direct', 'bare-relay']
    rows = section['rows']
    assert set(rows) == {'direct', 'bare-relay'}
    assert rows['bare-relay']['figures']['p50_added_us'] is not None
    assert rows['bare-relay']['detail']['runs'] == 2
    assert len(rows['bare-relay']['detail']['all_runs']) == 2


@pytest.mark.timeout(120)
def test_baseline_measures_another_checkout_side_by_side(tmp_path):
    """--baseline DIR: the Vaurien of DIR as subject vaurien-base, right
    after vaurien, started from DIR (here a copy of the package that
    says where it runs from)."""
    import shutil
    base = tmp_path / 'base'
    shutil.copytree(os.path.join(support.ROOT, 'vaurien'), base / 'vaurien')
    path = tmp_path / 'r.json'
    result = _suite('--quick', '--subjects', 'vaurien',
                    '--baseline', str(base), '--workloads', 'setup',
                    '--duration', '0.3', '--json', str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(path.read_text())
    section = data['results']['setup']
    assert section['order'] == ['vaurien', 'vaurien-base']
    for name in section['order']:
        assert section['rows'][name]['status'] == 'ok'
        assert section['rows'][name]['figures']['conn_s'] > 0
    assert data['meta']['versions']['vaurien-base'] == \
        'vaurien from %s' % base
    wrong = _suite('--baseline', str(tmp_path / 'nothing'))
    assert wrong.returncode == 2
    assert 'no vaurien package' in wrong.stderr


@pytest.mark.timeout(120)
def test_sigterm_stops_every_process(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'benchmarks', '--subjects', 'vaurien',
         '--workloads', 'latency', '--duration', '60', '--json',
         str(tmp_path / 'r.json')],
        cwd=support.ROOT, env=support.env_with_root(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if ', pid ' in line:
                pids.append(int(line.rsplit(' ', 1)[1]))
        assert len(pids) == 2, pids      # the backends, then vaurien
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    support.wait_until(lambda: not any(_alive(p) for p in pids), timeout=10,
                       what='the suite processes to end')


@pytest.mark.parametrize('argv', [['--subjects', 'nope'],
                                  ['--workloads', 'bulk,nope'],
                                  ['--duration', '0']])
def test_bad_options_are_one_line_errors(argv):
    result = _suite(*argv, timeout=30)
    assert result.returncode == 2
    assert 'error:' in result.stderr
    assert 'Traceback' not in result.stderr


def test_parse_args_quick_defaults():
    args = parse_args(['--quick'])
    assert (args.duration, args.bulk_mib, args.idle_connections) == \
        (1.0, 64, 500)
    args = parse_args([])
    assert (args.duration, args.bulk_mib, args.idle_connections) == \
        (10.0, 1024, 10000)


WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:4242/small.txt
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   740.12us  200.01us   3.00ms   90.00%
    Req/Sec    60.00k     1.00k   62.00k    80.00%
  Latency Distribution
     50%  700.00us
     75%  800.00us
     90%    1.00ms
     99%    2.50ms
  60123 requests in 1.00s, 20.00MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  60123.45
Transfer/sec:     20.00MB
"""


def test_parse_wrk():
    result = parse_wrk(WRK_OUTPUT)
    assert result['requests'] == 60123
    assert result['rps'] == 60123.45
    assert result['p50_s'] == pytest.approx(700e-6)
    assert result['p99_s'] == pytest.approx(2.5e-3)
    assert result['errors'] == {'connect': 0, 'read': 12, 'write': 0,
                                'timeout': 3}
    assert result['non_2xx'] == 7


def test_percentile_and_fmt():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.5) is None
    assert report.fmt(None) == '-'
    assert report.fmt(12345.6) == '12346'
    assert report.fmt(0.00012) == '0.00012'


def test_procstat_reads_this_process():
    pid = os.getpid()
    before = procstat.cpu_seconds(pid)
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert procstat.cpu_seconds(pid) > before
    assert procstat.rss_bytes(pid) > 0
    assert procstat.tree_memory(pid, pss=True) > 0


def test_names_are_unique():
    assert len({s.name for s in SUBJECTS}) == len(SUBJECTS)
    assert len({w.name for w in WORKLOADS}) == len(WORKLOADS)


def _doc_commands(page):
    with open(os.path.join(support.ROOT, 'docs', page),
              encoding='utf-8') as fh:
        return [line.strip() for line in fh
                if line.startswith('    python -m benchmarks')]


def test_docs_commands_parse():
    """Every command in docs/benchmarks.rst is valid; the ``--quick`` one is
    the run the first test executes; the Toxiproxy mode's (also in
    docs/toxiproxy.rst) the one test_toxiproxy_mode runs, longer."""
    commands = _doc_commands('benchmarks.rst')
    assert '    python -m benchmarks --quick'.strip() in commands
    assert len(commands) == 4
    toxiproxy = _doc_commands('toxiproxy.rst')
    assert len(toxiproxy) == 1 and toxiproxy[0] in commands
    for command in commands:
        args = parse_args(command.split()[3:])
        if args.toxiproxy_server:
            assert (args.subjects, args.workloads) == (
                ['vaurien', 'toxiproxy'], ['toxics', 'proxies'])


@pytest.mark.timeout(120)
def test_a_subject_that_cannot_start_is_reported_failed(tmp_path):
    path = tmp_path / 'r.json'
    result = _suite('--quick', '--subjects', 'direct,vaurien',
                    '--workloads', 'latency', '--duration', '0.3',
                    '--vaurien-args', '--bufsize 0', '--json', str(path))
    assert result.returncode == 1, result.stderr
    rows = json.loads(path.read_text())['results']['latency']['rows']
    assert rows['direct']['status'] == 'ok'
    assert rows['vaurien']['status'] == 'failed'
    assert 'bufsize' in rows['vaurien']['reason']
    assert 'vaurien: failed (' in result.stdout
