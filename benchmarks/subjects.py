"""The subjects measured side by side: a direct connection and the proxies.

Each subject is started fresh for each workload, on a fresh port, in front
of that workload's backend, and stopped right after: no state (or TIME_WAIT
socket) carries over from one measurement to the next.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

from benchmarks.processes import HOST, BenchError, free_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))

__all__ = ['SUBJECTS', 'SUBJECT_NAMES', 'Subject', 'Running', 'Vaurien',
           'TLS_SUBJECTS', 'Certificates', 'certificates', 'ToxiproxyServer',
           'BENCH_TOXICS', 'toxiproxy_api', 'toxiproxy_binary',
           'toxiproxy_version']


def python_env(root=ROOT):
    """os.environ with this checkout (or *root*) first on PYTHONPATH."""
    env = dict(os.environ)
    paths = [root] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else [])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.pop('PYTHONWARNINGS', None)
    return env


class Running:
    """A started subject: where clients connect (``port``) and the pid the
    suite measures (``pid``, None for the direct connection); ``api``, the
    port of its control API when the suite uses it (None otherwise)."""

    def __init__(self, subject, port, started=None, api=None):
        self.subject = subject
        self.port = port
        self.started = started
        self.api = api
        self.pid = started.pid if started is not None else None

    def check_alive(self):
        """BenchError if the subject's process has exited."""
        if self.started is not None:
            self.started.check_alive()


class Subject:
    """A way from the load generator to the backend.

    ``name`` is what ``--subjects`` and the table use; ``binary`` the
    program it needs (None: always available); ``forks`` is true for a
    proxy that forks a process per connection (its memory is then measured
    over all its processes, with PSS).
    """
    name = None
    binary = None
    forks = False
    description = ''
    optional = False    # skipped silently (not listed) when missing

    def available(self):
        """None when the subject can run here, else the reason it cannot."""
        if self.binary and not shutil.which(self.binary):
            return '%s not installed' % self.binary
        return None

    def start(self, procs, backend_port):
        """Start in front of 127.0.0.1:*backend_port*; a :class:`Running`."""
        last = None
        # A free port can be taken by someone else before the proxy binds
        # it: try a few.
        for _ in range(3):
            port = free_port()
            try:
                return self._start(procs, port, backend_port)
            except BenchError as exc:
                last = exc
        raise last

    def _start(self, procs, port, backend_port):
        raise NotImplementedError

    def _launch(self, procs, port, argv, **kwargs):
        """Start *argv* as this subject and wait until *port* accepts; a
        :class:`Running`. A subject that does not come up is stopped."""
        started = procs.start(self.name, argv, **kwargs)
        try:
            started.wait_port(port)
        except BenchError:
            procs.stop(started)
            raise
        return Running(self, port, started)

    def version(self):
        """A one-line version string for the report, or None."""
        return None


class Direct(Subject):
    """No proxy: the load generator talks to the backend itself."""
    name = 'direct'
    description = 'no proxy: the physical limit'

    def start(self, procs, backend_port):
        return Running(self, backend_port)


# Extra arguments for every Vaurien subject (``--vaurien-args``).
VAURIEN_ARGS = []


class Vaurien(Subject):
    """``python -m vaurien`` from this checkout, log level warning."""
    name = 'vaurien'
    description = 'python -m vaurien --behavior 100:dummy'

    def __init__(self, behavior='100:dummy', extra=(), name=None,
                 root=ROOT):
        self.behavior = behavior
        self.extra = list(extra)
        # Another checkout (``--baseline``): the same proxy before a change,
        # measured in the same run.
        self.root = root
        if name:
            self.name = name
        self.description = 'python -m vaurien --behavior %s%s' % (
            behavior, ''.join(' ' + arg for arg in self.extra))

    def _start(self, procs, port, backend_port):
        argv = [sys.executable, '-m', 'vaurien',
                '--local', '%s:%d' % (HOST, port),
                '--distant', '%s:%d' % (HOST, backend_port),
                '--behavior', self.behavior, '--seed', '1',
                '--log-level', 'warning'] + self._extra(procs) + VAURIEN_ARGS
        return self._launch(procs, port, argv, env=python_env(self.root),
                            cwd=self.root)

    def _extra(self, procs):
        """The arguments this subject adds."""
        return self.extra

    def version(self):
        if self.root != ROOT:
            return 'vaurien from %s' % self.root
        sys.path.insert(0, ROOT)
        try:
            import gevent
            import vaurien
            return 'vaurien %s, gevent %s, Python %s' % (
                vaurien.__version__, gevent.__version__,
                sys.version.split()[0])
        except Exception:
            return None
        finally:
            sys.path.remove(ROOT)


class BareRelay(Subject):
    """``benchmarks/bare_relay.py``: what a gevent relay costs at the least."""
    name = 'bare-relay'
    description = 'benchmarks/bare_relay.py: gevent, 2 greenlets, recv_into'

    def _start(self, procs, port, backend_port):
        argv = [sys.executable, os.path.join(HERE, 'bare_relay.py'),
                str(port), HOST, str(backend_port)]
        return self._launch(procs, port, argv, env=python_env(), cwd=ROOT)

    def version(self):
        import gevent
        return 'gevent %s, Python %s' % (gevent.__version__,
                                         sys.version.split()[0])


class Socat(Subject):
    """socat with ``fork``: one process per connection, default options."""
    name = 'socat'
    binary = 'socat'
    forks = True
    description = 'socat TCP-LISTEN,fork (a process per connection)'

    def _start(self, procs, port, backend_port):
        argv = ['socat', '-lf', '/dev/null',
                'TCP-LISTEN:%d,bind=%s,reuseaddr,fork,backlog=4096'
                % (port, HOST),
                'TCP:%s:%d' % (HOST, backend_port)]
        return self._launch(procs, port, argv)

    def version(self):
        return _first_line(['socat', '-V'], contains='socat version')


HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend bench
    bind {host}:{port}
    default_backend backend
backend backend
    server backend {host}:{backend_port}
"""


class HAProxy(Subject):
    """HAProxy in ``mode tcp``, one thread, no master process."""
    name = 'haproxy'
    binary = 'haproxy'
    description = 'HAProxy mode tcp, nbthread 1'

    def _start(self, procs, port, backend_port):
        path = os.path.join(procs.workdir, 'haproxy-%d.cfg' % port)
        with open(path, 'w') as fh:
            fh.write(HAPROXY_CONFIG.format(host=HOST, port=port,
                                           backend_port=backend_port,
                                           maxconn=_maxconn()))
        return self._launch(procs, port, ['haproxy', '-q', '-db', '-f', path])

    def version(self):
        return _first_line(['haproxy', '-v'], contains='version')


def _maxconn():
    """HAProxy's maxconn: as many connections as the descriptor limit the
    suite set allows (HAProxy refuses to start when it cannot have two
    descriptors per connection)."""
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(256, (soft - 100) // 2)


#: The toxiproxy-server the suite runs: ``--toxiproxy-server PATH``, else
#: ``$TOXIPROXY_SERVER``, else ``toxiproxy-server`` on PATH.
TOXIPROXY_SERVER = [os.environ.get('TOXIPROXY_SERVER') or 'toxiproxy-server']


def toxiproxy_binary():
    """The toxiproxy-server program the suite runs (a name or a path)."""
    return TOXIPROXY_SERVER[0]


#: The stacked toxics of the Toxiproxy mode, on the downstream stream, in
#: this order: a latency of 0 then a bandwidth far above the traffic. Both
#: act on every chunk and neither delays it: what is measured is the cost
#: of the machinery (Toxiproxy's pipeline of goroutines, Vaurien's chain).
BENCH_TOXICS = [
    {'type': 'latency', 'stream': 'downstream', 'toxicity': 1.0,
     'attributes': {'latency': 0, 'jitter': 0}},
    {'type': 'bandwidth', 'stream': 'downstream', 'toxicity': 1.0,
     'attributes': {'rate': 1000000}},
]


def toxiproxy_api(api, method, path, body=None, timeout=10.0):
    """One request to the Toxiproxy API on 127.0.0.1:*api*; the decoded
    JSON answer (the text when it is not JSON). BenchError on failure."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        'http://%s:%d%s' % (HOST, api, path), data=data, method=method,
        headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as exc:
        said = exc.read().decode('utf-8', 'replace').strip()
        raise BenchError('toxiproxy API %s %s: %s %s' % (
            method, path, exc.code, said[:200])) from None
    except OSError as exc:
        raise BenchError('toxiproxy API %s %s: %s' % (method, path,
                                                       exc)) from None
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


class ToxiproxyServer(Subject):
    """A server of Toxiproxy's API holding *proxies* proxies, started with
    toxiproxy-server's flags and a ``-config`` file: ``bench`` in front of
    the backend (where clients connect), and *proxies* - 1 idle ones
    (listening on a port of their own, to the same backend, never used).
    *toxics* are then added to ``bench`` through the API, in order.

    *kind* ``'toxiproxy'`` runs toxiproxy-server (see
    :func:`toxiproxy_binary`; optional: skipped silently when missing),
    ``'vaurien'`` runs ``python -m vaurien.toxiproxy_server``
    (``vaurien-toxiproxy``) from this checkout, log level warning.
    """

    def __init__(self, name, kind, toxics=(), proxies=1, description=''):
        self.name = name
        self.kind = kind
        self.toxics = [dict(t) for t in toxics]
        self.proxies = proxies
        self.optional = kind == 'toxiproxy'
        self.description = description

    @property
    def binary(self):
        return toxiproxy_binary() if self.kind == 'toxiproxy' else None

    def holding(self, proxies):
        """The same subject holding *proxies* proxies."""
        return ToxiproxyServer(self.name, self.kind, self.toxics, proxies,
                               self.description)

    def _argv(self, api, config):
        if self.kind == 'toxiproxy':
            argv, env, cwd = [toxiproxy_binary()], None, None
        else:
            argv = [sys.executable, '-m', 'vaurien.toxiproxy_server',
                    '--log-level', 'warning', '-seed', '1']
            env, cwd = python_env(), ROOT
        return argv + ['-host', HOST, '-port', str(api), '-config',
                       config], env, cwd

    def _start(self, procs, port, backend_port):
        api = free_port()
        upstream = '%s:%d' % (HOST, backend_port)
        config = os.path.join(procs.workdir, '%s-%d.json'
                              % (self.kind, port))
        proxies = [{'name': 'bench', 'listen': '%s:%d' % (HOST, port),
                    'upstream': upstream, 'enabled': True}]
        proxies += [{'name': 'idle%03d' % i, 'listen': '%s:0' % HOST,
                     'upstream': upstream, 'enabled': True}
                    for i in range(1, self.proxies)]
        with open(config, 'w') as fh:
            json.dump(proxies, fh)
        argv, env, cwd = self._argv(api, config)
        started = procs.start(self.name, argv, env=env, cwd=cwd)
        try:
            started.wait_port(api)
            wait_until(lambda: len(toxiproxy_api(api, 'GET', '/proxies'))
                       == self.proxies, 20, 'the %d proxies' % self.proxies)
            for toxic in self.toxics:
                toxiproxy_api(api, 'POST', '/proxies/bench/toxics', toxic)
            started.wait_port(port)
        except BenchError:
            procs.stop(started)
            raise
        return Running(self, port, started, api)

    def version(self):
        if self.kind == 'toxiproxy':
            return toxiproxy_version(toxiproxy_binary())
        return Vaurien().version()


class Toxiproxy(ToxiproxyServer):
    """Toxiproxy (Go), without toxics; only when toxiproxy-server is
    installed (see :func:`toxiproxy_binary`)."""

    def __init__(self):
        super().__init__('toxiproxy', 'toxiproxy',
                         description='toxiproxy-server, no toxics')


def toxiproxy_version(binary, timeout=10.0):
    """toxiproxy-server's version line: ``-version`` (2.2 and later), else
    its API's ``GET /version`` (2.1.4 has no ``-version`` flag), from a
    server started for the question on a free port. None when neither
    answers."""
    import subprocess
    line = _first_line([binary, '-version'], contains='version')
    if line and 'not defined' not in line:
        return line
    api = free_port()
    try:
        proc = subprocess.Popen([binary, '-host', HOST, '-port', str(api)],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        answer = wait_until(lambda: _try_version(api), timeout,
                            'toxiproxy-server to answer')
    except BenchError:
        return None
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if isinstance(answer, dict):
        answer = answer.get('version')
    return 'toxiproxy-server, GET /version: %s' % answer


def _try_version(api):
    try:
        return toxiproxy_api(api, 'GET', '/version', timeout=2.0) or None
    except BenchError:
        return None


def _first_line(argv, contains=''):
    import subprocess
    try:
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if contains.lower() in line.lower() and line.strip():
            return line.strip()
    return None


def baseline(root):
    """The Vaurien subject running the checkout at *root* (``--baseline``)."""
    return Vaurien(name='vaurien-base', root=os.path.abspath(root))


SUBJECTS = [Direct(), Vaurien(), BareRelay(), Socat(), HAProxy(), Toxiproxy()]
SUBJECT_NAMES = [s.name for s in SUBJECTS]


# -- TLS on both sides ----------------------------------------------------------

class Certificates:
    """A CA and a certificate it signs for 127.0.0.1 and localhost, made
    with the ``openssl`` command in *workdir*: ``ca``, ``cert``, ``key``
    and ``combined`` (certificate then key, for HAProxy) are paths."""

    def __init__(self, workdir):
        base = os.path.join(workdir, 'tls')
        self.ca = os.path.join(base, 'ca.pem')
        self.cert = os.path.join(base, 'cert.pem')
        self.key = os.path.join(base, 'key.pem')
        self.combined = os.path.join(base, 'combined.pem')
        if os.path.exists(self.combined):
            return
        os.makedirs(base, exist_ok=True)
        ca_key = os.path.join(base, 'ca-key.pem')
        csr = os.path.join(base, 'cert.csr')
        ext = os.path.join(base, 'cert.ext')
        with open(ext, 'w') as fh:
            fh.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
        ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
              '-nodes']
        for argv in (
                ['req', '-x509'] + ec + ['-keyout', ca_key, '-out', self.ca,
                                         '-days', '2', '-subj',
                                         '/CN=benchmark CA'],
                ['req', '-new'] + ec + ['-keyout', self.key, '-out', csr,
                                        '-subj', '/CN=localhost'],
                ['x509', '-req', '-in', csr, '-CA', self.ca, '-CAkey', ca_key,
                 '-CAcreateserial', '-out', self.cert, '-days', '2',
                 '-extfile', ext]):
            _openssl(argv)
        with open(self.combined, 'w') as out:
            for path in (self.cert, self.key):
                with open(path) as fh:
                    out.write(fh.read())


def _openssl(argv):
    import subprocess
    try:
        done = subprocess.run(['openssl'] + argv, capture_output=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError('openssl: %s' % exc) from None
    if done.returncode != 0:
        raise BenchError('openssl %s: %s' % (argv[0], done.stderr.decode(
            'utf-8', 'replace').strip()[-300:]))


def certificates(procs):
    """The suite's :class:`Certificates` (made once per run)."""
    return Certificates(procs.workdir)


class TLSVaurien(Vaurien):
    """Vaurien terminating TLS and speaking TLS to the backend (verified)."""
    name = 'vaurien'

    def __init__(self):
        super().__init__()
        self.description = ('python -m vaurien --local-tls-cert/--local-tls-'
                            'key --distant-tls --distant-tls-ca')

    def _extra(self, procs):
        certs = certificates(procs)
        return ['--local-tls-cert', certs.cert, '--local-tls-key', certs.key,
                '--distant-tls', '--distant-tls-ca', certs.ca]


class TLSSocat(Socat):
    """socat ``OPENSSL-LISTEN`` to ``OPENSSL`` (verified), a process per
    connection."""
    description = 'socat OPENSSL-LISTEN,fork to OPENSSL,cafile'

    def _start(self, procs, port, backend_port):
        certs = certificates(procs)
        argv = ['socat', '-lf', '/dev/null',
                'OPENSSL-LISTEN:%d,bind=%s,reuseaddr,fork,backlog=4096,'
                'cert=%s,key=%s,verify=0' % (port, HOST, certs.cert,
                                             certs.key),
                'OPENSSL:%s:%d,cafile=%s' % (HOST, backend_port, certs.ca)]
        return self._launch(procs, port, argv)


HAPROXY_TLS_CONFIG = """\
global
    nbthread 1
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend bench
    bind {host}:{port} ssl crt {combined}
    default_backend backend
backend backend
    server backend {host}:{backend_port} ssl verify required ca-file {ca}
"""


class TLSHAProxy(HAProxy):
    """HAProxy ``mode tcp`` with ``ssl`` on the bind and on the server."""
    description = 'HAProxy mode tcp, bind ssl crt, server ssl verify, ' \
        'nbthread 1'

    def _start(self, procs, port, backend_port):
        certs = certificates(procs)
        path = os.path.join(procs.workdir, 'haproxy-tls-%d.cfg' % port)
        with open(path, 'w') as fh:
            fh.write(HAPROXY_TLS_CONFIG.format(
                host=HOST, port=port, backend_port=backend_port,
                maxconn=_maxconn(), combined=certs.combined, ca=certs.ca))
        return self._launch(procs, port, ['haproxy', '-q', '-db', '-f', path])


class TLSDirect(Direct):
    """No proxy: the client speaks TLS to the backend itself."""
    description = 'no proxy: TLS straight to the backend'


#: The subjects of the TLS workloads (TLS on both sides), by the names of
#: the plaintext ones.
TLS_SUBJECTS = [TLSDirect(), TLSVaurien(), TLSSocat(), TLSHAProxy()]


# -- nginx, the HTTP backend --------------------------------------------------

NGINX_CONFIG = """\
{user}worker_processes 1;
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{
    worker_connections 65536;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    default_type text/plain;
    server {{
        listen {host}:{port} backlog=4096{ssl};
        root {tmp}/www;
    }}
}}
"""

SMALL_FILE = 'small.txt'
SMALL_BODY = b'Vaurien benchmark: a small file served by nginx.\n' * 2


class Nginx:
    """nginx serving ``/small.txt`` on 127.0.0.1, from a config it writes
    in a temporary directory (pid file, logs and temp paths there too)."""

    binary = 'nginx'

    def __init__(self, certs=None):
        self.certs = certs      # a Certificates: serve HTTPS instead
        self.started = None
        self.port = None

    def start(self, procs):
        """Start nginx on a free port; itself, with ``port`` set."""
        binary = shutil.which('nginx') or (
            '/usr/sbin/nginx' if os.path.exists('/usr/sbin/nginx') else None)
        if binary is None:
            raise BenchError('nginx not installed')
        tmp = tempfile.mkdtemp(prefix='nginx-', dir=procs.workdir)
        os.makedirs(os.path.join(tmp, 'www'))
        with open(os.path.join(tmp, 'www', SMALL_FILE), 'wb') as fh:
            fh.write(SMALL_BODY)
        last = None
        for _ in range(3):
            port = free_port()
            conf = os.path.join(tmp, 'nginx.conf')
            with open(conf, 'w') as fh:
                ssl = ''
                if self.certs is not None:
                    ssl = (' ssl;\n        ssl_certificate %s;\n        '
                           'ssl_certificate_key %s'
                           % (self.certs.cert, self.certs.key))
                fh.write(NGINX_CONFIG.format(
                    user='user root;\n' if os.geteuid() == 0 else '',
                    tmp=tmp, host=HOST, port=port, ssl=ssl))
            started = procs.start('nginx', [binary, '-p', tmp, '-c', conf,
                                            '-e', os.path.join(
                                                tmp, 'nginx-error.log')])
            try:
                started.wait_port(port)
            except BenchError as exc:
                procs.stop(started)
                last = exc
                continue
            self.started, self.port = started, port
            return self
        raise last

    @property
    def url(self):
        """The URL of the small file, straight from nginx."""
        return 'http://%s:%d/%s' % (HOST, self.port, SMALL_FILE)

    @staticmethod
    def version():
        """nginx's version line, or None."""
        return _first_line(['nginx', '-v'], contains='nginx version')


# -- redis-server and memcached, for the protocol workloads ------------------

#: kind -> (program, argv template): one thread each, no persistence.
DAEMONS = {
    'redis': ('redis-server', ['redis-server', '--port', '{port}', '--bind',
                               HOST, '--save', '', '--appendonly', 'no',
                               '--protected-mode', 'no']),
    'memcache': ('memcached', ['memcached', '-l', HOST, '-p', '{port}',
                               '-U', '0', '-t', '1', '-m', '64']),
}


def start_daemon(procs, kind):
    """Start the backend *kind* of :data:`DAEMONS` on a free port; the
    port."""
    binary, argv = DAEMONS[kind]
    if not shutil.which(binary):
        raise BenchError('%s not installed' % binary)
    if binary == 'memcached' and os.geteuid() == 0:
        argv = argv + ['-u', 'root']
    last = None
    for _ in range(3):
        port = free_port()
        started = procs.start(kind, [a.format(port=port) for a in argv])
        try:
            started.wait_port(port)
        except BenchError as exc:
            procs.stop(started)
            last = exc
            continue
        return port
    raise last


# -- the suite's own echo + bulk backends -------------------------------------

class Backends:
    """``python -m benchmarks.servers``: the echo and bulk servers (and the
    TLS bulk server, ``bulk_tls``, when given :class:`Certificates`)."""

    def __init__(self, certs=None):
        self.certs = certs
        self.started = None
        self.echo = self.bulk = self.bulk_tls = None

    def start(self, procs):
        """Start the servers; itself, with ``echo`` and ``bulk`` ports."""
        import subprocess
        argv = [sys.executable, '-m', 'benchmarks.servers']
        if self.certs is not None:
            argv += ['--tls', self.certs.cert, self.certs.key]
        self.started = procs.start('servers', argv,
                                   env=python_env(), cwd=ROOT,
                                   stdout=subprocess.PIPE)
        proc = self.started.proc
        # The first line of output says where the servers listen; bounded
        # by polling the pipe.
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        line = b''
        while not line.endswith(b'\n'):
            if time.monotonic() > deadline:
                raise BenchError('the backend servers did not start')
            if not sel.select(0.1):
                self.started.check_alive()
                continue
            more = os.read(proc.stdout.fileno(), 4096)
            if not more:
                self.started.check_alive()
                raise BenchError('the backend servers closed their output')
            line += more
        sel.close()
        ports = json.loads(line.decode())
        self.echo, self.bulk = ports['echo'], ports['bulk']
        self.bulk_tls = ports.get('bulk_tls')
        wait_until(lambda: _open(self.echo) and _open(self.bulk), 10,
                   'the backend servers')
        return self


def _open(port):
    from benchmarks.processes import port_open
    return port_open(port)
