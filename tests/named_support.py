"""``vaurien --config FILE --http`` with ``[proxy:NAME]`` sections, as a
user runs it: every proxy and the API on free ports, read from the log.

:class:`NamedVaurien` runs the command; :class:`InProcessNamedVaurien`,
the same interface, runs its service in a thread of the test process
(``inproc.InProcessVaurien``), for the tests that are not about the
command itself."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

import requests

import support
from inproc import InProcessVaurien

_PROXY = re.compile(r'proxy (\S+): proxying \S+:(\d+) -> ')
_DEFAULT = re.compile(r'\] proxying \S+:(\d+) -> ')
_API = re.compile(r'control API on (http://\S+:\d+)')


def _ports(log):
    """``{name: port}`` of the proxies the log says listen."""
    ports = {name: int(port) for name, port in _PROXY.findall(log)}
    default = _DEFAULT.search(log)
    if default:
        ports['default'] = int(default.group(1))
    return ports


def _api_url(log):
    api = _API.search(log)
    return api.group(1) if api else None


class _NamedAPI:
    """What both kinds of named-proxy runs offer once started: each
    proxy's address (``ports``) and requests to the API (``url``,
    ``session``)."""

    def address(self, name):
        return (support.HOST, self.ports[name])

    def request(self, method, path, body=None, **kwargs):
        data = None if body is None else json.dumps(body)
        return self.session.request(method, self.url + path, data=data,
                                    timeout=10, **kwargs)


class NamedVaurien(_NamedAPI):
    """``python -m vaurien --config INI --http ... ARGS``; ``ports`` maps
    each proxy's name to its port, ``url`` is the API's."""

    def __init__(self, ini_text, *args, names=(), timeout=15.0, cwd=None):
        handle, self.ini = tempfile.mkstemp(prefix='vaurien-', suffix='.ini')
        with os.fdopen(handle, 'w') as fh:
            fh.write(ini_text)
        handle, self.logfile = tempfile.mkstemp(prefix='vaurien-',
                                                suffix='.log')
        os.close(handle)
        self.argv = [sys.executable, '-m', 'vaurien', '--config', self.ini,
                     '--http', '--http-host', support.HOST, '--http-port',
                     '0', '--log-output', self.logfile] + list(args)
        self.proc = subprocess.Popen(
            self.argv, env=support.env_with_root(), cwd=cwd or support.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.names = set(names)
        try:
            support.wait_until(self._ready, timeout=timeout,
                               what='vaurien to start')
        except AssertionError:
            raise AssertionError('vaurien did not start: %s' % self.stop())
        self.session = requests.Session()

    def log(self):
        with open(self.logfile, encoding='utf-8', errors='replace') as fh:
            return fh.read()

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError('vaurien exited: %s' % self.stop())
        log = self.log()
        self.ports = _ports(log)
        self.url = _api_url(log)
        return self.url and self.names <= set(self.ports)

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        out, err = self.proc.communicate(timeout=5)
        text = (out + err).decode('utf-8', 'replace') + self.log()
        for path in (self.ini, self.logfile):
            try:
                os.unlink(path)
            except OSError:
                pass
        return text


class InProcessNamedVaurien(_NamedAPI):
    """:class:`NamedVaurien`'s interface (``ports``, ``url``, ``log()``,
    ``address(name)``, ``request()``, ``stop()``), the service run in a
    thread of this process; user code comes through *extra_paths* (see
    ``inproc.py``), not a working directory."""

    def __init__(self, ini_text, *args, names=(), timeout=15.0,
                 extra_paths=()):
        handle, self.ini = tempfile.mkstemp(prefix='vaurien-', suffix='.ini')
        with os.fdopen(handle, 'w') as fh:
            fh.write(ini_text)
        try:
            self.vaurien = InProcessVaurien(
                '--config', self.ini, '--http', '--http-host', support.HOST,
                '--http-port', '0', *args, free_local=False,
                extra_paths=extra_paths, timeout=timeout)
        except BaseException:
            os.unlink(self.ini)
            raise
        # Every proxy listens once the service has started.
        log = self.vaurien.log()
        self.ports = _ports(log)
        self.url = _api_url(log)
        missing = set(names) - set(self.ports)
        if missing or self.url is None:
            raise AssertionError('vaurien did not start %s: %s'
                                 % (sorted(missing) or 'its API', self.stop()))
        self.session = requests.Session()

    def log(self):
        return self.vaurien.log()

    def stop(self, timeout=10.0):
        try:
            return self.vaurien.stop(timeout)
        finally:
            try:
                os.unlink(self.ini)
            except OSError:
                pass
