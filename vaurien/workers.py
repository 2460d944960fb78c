"""``--workers N``: N processes serving one port, driven by one control API.

The parent checks the whole configuration first (mistakes end there, before
any fork), reserves the listening port, and forks N workers. Each worker is
a whole proxy listening on the same port with SO_REUSEPORT: the kernel
spreads new connections over them. With ``--http`` the parent serves the
control API; every change it accepts is sent to every worker through a
socketpair, one JSON line, and each worker applies it with the same code
the API uses and confirms, so they all agree before the API answers. SIGTERM or SIGINT to the parent stops them all.

Each worker has its own handler instances (a shared counter such as
``error``'s warm-up counts per worker); ``GET /metrics`` adds up the
counters of every worker.
"""
import json
import logging
import os
import signal
import socket
import sys

import gevent

from vaurien.config import ConfigError, format_hostport

__all__ = ['Worker', 'run_workers']

log = logging.getLogger('vaurien')

# Seconds the parent waits for each worker to confirm a control change.
_ACK_TIMEOUT = 5.0


class Worker:
    """One worker process: its index, the number of workers, its commands."""

    def __init__(self, index, count, commands=None):
        self.index = index
        self.count = count
        self.commands = commands    # this end of the parent's socketpair

    def describe(self):
        """The suffix of the start-up log line."""
        return ', worker %d of %d' % (self.index + 1, self.count)

    def follow(self, proxy, registry, options):
        """Apply the parent's control-API changes to this worker's *proxy*."""
        if self.commands is None:
            return
        from vaurien.webserver import Control
        control = Control(proxy, registry, options.behavior,
                          options.handler_options)
        gevent.spawn(self._follow, control, proxy)

    def _follow(self, control, proxy):
        commands = self.commands
        with commands.makefile('rb') as stream:
            for line in stream:
                answer = b'done\n'
                try:
                    command = json.loads(line)
                    call, args = command['call'], command['args']
                    if call == 'snapshot':
                        answer = (json.dumps(control.snapshot().to_json())
                                  + '\n').encode()
                    else:
                        if call == 'change':
                            args = [[tuple(pair) for pair in args[0]],
                                    args[1]]
                        getattr(control, call)(*args)
                except Exception as exc:
                    log.error('worker %d: applying a control change failed: '
                              '%s: %s', self.index + 1, type(exc).__name__,
                              exc)
                try:
                    commands.sendall(answer)
                except OSError:
                    break
        # The parent is gone: so is this worker.
        proxy.stop()


def _broadcasting_control(pipes):
    """A Control class whose accepted changes also go to every worker, and
    whose metrics add up every worker's."""
    from gevent.lock import Semaphore

    from vaurien.webserver import Control
    lock = Semaphore()     # one exchange at a time on the worker sockets

    class Broadcast(Control):
        """The parent's Control: validate and keep the state, then send
        the same call to each worker."""

        def _send(self, call, *args):
            """Send the call to every worker and return their answers, once
            each has applied it (a few seconds at most): the API answers
            once a change is in force everywhere, as with one process."""
            line = (json.dumps({'call': call, 'args': args}) + '\n').encode()
            answers = []
            with lock:
                for sock in list(pipes):
                    try:
                        sock.sendall(line)
                    except OSError:
                        pipes.remove(sock)
                for sock in list(pipes):
                    answer = b''
                    try:
                        with gevent.Timeout(_ACK_TIMEOUT):
                            while not answer.endswith(b'\n'):
                                chunk = sock.recv(65536)
                                if not chunk:
                                    raise OSError('worker gone')
                                answer += chunk
                        answers.append(answer)
                    except (OSError, gevent.Timeout):
                        log.warning('a worker did not answer %r', call)
            return answers

        def snapshot(self):
            from vaurien.stats import Snapshot
            return Snapshot.merged([json.loads(answer) for answer in
                                    self._send('snapshot')])

        def change(self, pairs, options):
            super().change(pairs, options)
            self._send('change', [list(pair) for pair in pairs], options)

        def set_backend(self, value):
            super().set_backend(value)
            self._send('set_backend', value)

        def set_enabled(self, enabled):
            # The parent does not listen: the workers go down and up.
            self.proxy.disabled = not enabled
            self._send('set_enabled', enabled)
            log.info('control API: proxy %s', 'enabled' if enabled
                     else 'disabled')

    return Broadcast


def _reserve(local):
    """Bind (without listening) the port the workers will share."""
    from vaurien.proxy import bind
    return bind(local, 'listen on %s' % format_hostport(local),
                reuse_port=True)


def run_workers(options, seed):
    """Fork ``options.workers`` workers and supervise them; exit status."""
    from vaurien.proxy import Proxy
    from vaurien.run import build, build_protocol, build_tls, serve

    count = options.workers
    # Every mistake is found here, before any fork.
    if isinstance(options.local, str):
        raise ConfigError('--workers needs a TCP --local: processes cannot '
                          'share a Unix socket with SO_REUSEPORT')
    build_protocol(options)
    local_tls, distant_tls = build_tls(options)
    model = Proxy(options.local, options.distant, None,
                  bufsize=options.bufsize, timeout=options.timeout, seed=seed,
                  pick=options.pick, local_tls=local_tls,
                  distant_tls=distant_tls)
    registry, behavior, _, instances = build(options, model)
    reserve = _reserve(options.local)
    address = reserve.getsockname()[:2]
    options.settings['local'] = (options.local[0], address[1])
    model.address = address
    model.behavior, model.registry, model.handlers = behavior, registry, \
        instances

    pipes, pids = [], []
    for index in range(count):
        if options.http:
            parent_end, child_end = socket.socketpair()
        else:
            parent_end = child_end = None
        pid = os.fork()
        if pid == 0:
            reserve.close()
            for sock in pipes + ([parent_end] if parent_end else []):
                sock.close()
            status = 1
            try:
                status = serve(options, seed, Worker(index, count, child_end))
            except ConfigError as exc:
                sys.stderr.write('vaurien: error: %s\n' % exc)
                status = 2
            except BaseException as exc:   # never return into the parent
                log.error('worker %d: %s: %s', index + 1,
                          type(exc).__name__, exc, exc_info=True)
            finally:
                sys.stderr.flush()
                logging.shutdown()
                os._exit(status)
        pids.append(pid)
        if child_end is not None:
            child_end.close()
            pipes.append(parent_end)

    control = None
    if options.http:
        from vaurien.webserver import ControlServer
        Broadcast = _broadcasting_control(pipes)
        control = ControlServer(
            Broadcast(model, registry, options.behavior,
                      options.handler_options),
            options.http_host, options.http_port, options.http_token)
        try:
            control.start()
        except ConfigError:
            _stop(pids)
            raise
        log.info('control API on %s, for %d workers', control.url(), count)

    def stop():
        log.info('stopping %d workers', count)
        _stop(pids)
    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)

    statuses = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        statuses.append(code)
        if code not in (0, -signal.SIGTERM):
            log.warning('a worker exited with status %d: stopping the '
                        'others', code)
            _stop(pids)
    if control is not None:
        control.stop()
    reserve.close()
    failed = [code for code in statuses if code not in (0, -signal.SIGTERM)]
    return failed[0] if failed and failed[0] > 0 else (1 if failed else 0)


def _stop(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
