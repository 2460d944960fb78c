"""Endpoints: where the proxy listens and what it connects to.

An address is what :func:`vaurien.config.parse_endpoint` makes of the
user's text: a ``(host, port)`` tuple for TCP (IPv4 or IPv6, names resolved
here), or a string, the path of a Unix socket (as with Python's sockets).

This module binds listeners (:func:`bind`; a Unix socket's stale file is
replaced, and :func:`unbind` removes the file at stop), resolves the backend
(:func:`lookup`), and speaks TLS on either side:

* :func:`server_tls` and :func:`client_tls` build the TLS settings of the
  client side (termination) and of the backend side (origination) from
  certificate, key and CA files, checked at start-up: a mistake is one
  :class:`~vaurien.config.ConfigError` line naming the file;
* :class:`TLSSocket` is the gevent socket the engine uses for a TLS side.
  Its :class:`TLSChannel` runs OpenSSL over memory buffers (``ssl.MemoryBIO``)
  and the raw non-blocking socket, so that the engine's loop callbacks can
  read and write without blocking, and handlers get the usual cooperative
  ``recv``/``sendall``.

Every buffer here is bounded: the channel reads at most one buffer of
ciphertext ahead, and refuses new plaintext (``BlockingIOError``, which the
engine treats like a full socket) while ciphertext of the previous write is
still waiting for the socket.
"""
import errno
import logging
import os
import socket as _socket
import ssl
import stat

import gevent

from vaurien import _gevent
from vaurien.config import ConfigError

__all__ = ['bind', 'unbind', 'bound_file', 'lookup', 'resolve', 'listen_address',
           'server_tls', 'client_tls', 'ServerTLS', 'ClientTLS', 'TLSSocket',
           'TLSChannel', 'HandshakeTimeout', 'tls_reason', 'ALERTS',
           'alert_record']

log = logging.getLogger('vaurien')


# -- listening -------------------------------------------------------------------

def bind(address, doing, backlog=None, reuse_port=False, mode=None):
    """A non-blocking socket bound to *address*: ``(host, port)`` or the
    path of a Unix socket.

    It listens with *backlog* unless that is None; *reuse_port* sets
    SO_REUSEPORT (``--workers``); *mode* sets a Unix socket file's
    permissions. Raises ConfigError("cannot DOING: reason") when the
    address cannot be resolved or bound.
    """
    if isinstance(address, str):
        return _bind_unix(address, doing, backlog, mode)
    if mode is not None:
        raise ConfigError('--local-mode is for a Unix socket (--local '
                          'unix:PATH)')
    host, port = address
    try:
        family, sockaddr = resolve(host, port, passive=True)[0]
    except _socket.gaierror as exc:
        raise ConfigError('cannot %s: %s' % (doing, exc.strerror or exc)) \
            from None
    sock = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError('cannot %s: %s' % (doing, _reason(exc))) from None
    sock.setblocking(False)
    return sock


def _reason(exc):
    if exc.errno == errno.EADDRINUSE:
        return 'address already in use'
    return (exc.strerror or str(exc)).lower()


def _bind_unix(path, doing, backlog, mode):
    """Bind a Unix socket at *path*, replacing a stale socket file (one
    nobody listens on any more, left by a process that died)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError('cannot %s: %s' % (doing, _reason(exc))) from None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise ConfigError('cannot %s: %s exists and is not a socket'
                              % (doing, path))
        probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            # Stale: left by a dead process.
            log.info('removing the stale socket file %s', path)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ConfigError('cannot %s: cannot remove the stale socket '
                                  'file: %s' % (doing, _reason(exc))) from None
        except OSError as exc:
            raise ConfigError('cannot %s: %s' % (doing, _reason(exc))) \
                from None
        else:
            raise ConfigError('cannot %s: address already in use (a process '
                              'listens on it)' % doing)
        finally:
            probe.close()
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    # The file gets its permissions at bind: with a umask that gives it
    # *mode* at once, no client can connect in between.
    umask = os.umask(0o777 & ~mode) if mode is not None else None
    try:
        sock.bind(path)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError('cannot %s: %s' % (doing, _reason(exc))) from None
    finally:
        if umask is not None:
            os.umask(umask)
    if mode is not None:
        os.chmod(path, mode)
    sock.setblocking(False)
    return sock


def bound_file(address):
    """The identity of the socket file just bound at *address* (for
    :func:`unbind`), or None for TCP."""
    if not isinstance(address, str):
        return None
    try:
        info = os.stat(address)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def unbind(address, identity):
    """Remove the socket file of a Unix *address*, if it is still the one
    :func:`bound_file` saw (a later run may have replaced it)."""
    if identity is None:
        return
    try:
        info = os.stat(address)
        if (info.st_dev, info.st_ino) == identity:
            os.unlink(address)
    except OSError:
        pass


def listen_address(listener, address):
    """What the proxy listens on: ``(host, port)`` read back from the
    socket (port 0 becomes the real one), or the Unix socket's path."""
    if isinstance(address, str):
        return address
    return listener.getsockname()[:2]


# -- the backend --------------------------------------------------------------------

def resolve(host, port, passive=False):
    """``[(family, sockaddr), ...]`` for *host*, IPv4 first."""
    flags = _socket.AI_PASSIVE if passive else 0
    infos = gevent.socket.getaddrinfo(host or None, port, 0,
                                      _socket.SOCK_STREAM, 0, flags)
    infos.sort(key=lambda info: info[0] != _socket.AF_INET)
    return [(info[0], info[4]) for info in infos]


def lookup(distant):
    """The ``[(family, sockaddr), ...]`` to try, in order, for *distant*
    (a Unix socket path needs no resolution)."""
    if isinstance(distant, str):
        return [(_socket.AF_UNIX, distant)]
    return resolve(*distant)


# -- TLS settings ------------------------------------------------------------------

# The TLS alerts tls_error can send, by the name of the alert in RFC 8446.
ALERTS = ('handshake_failure', 'internal_error', 'protocol_version',
          'insufficient_security', 'access_denied', 'unrecognized_name',
          'bad_certificate', 'decode_error')


def _read_pem(path, option, marker, what):
    try:
        with open(path, 'rb') as fh:
            data = fh.read(1 << 20)
    except FileNotFoundError:
        raise ConfigError('%s %s: no such file' % (option, path)) from None
    except IsADirectoryError:
        raise ConfigError('%s %s: is a directory' % (option, path)) from None
    except PermissionError:
        raise ConfigError('%s %s: permission denied' % (option, path)) \
            from None
    except OSError as exc:
        raise ConfigError('%s %s: %s' % (option, path,
                                         (exc.strerror or exc).lower())) \
            from None
    if marker not in data:
        raise ConfigError('%s %s: not a PEM file with %s (no "-----BEGIN" '
                          'line for it)' % (option, path, what))
    return data


def _load_pair(context, cert, key, cert_option, key_option):
    if cert is None or key is None:
        missing, given = ((key_option, cert_option) if key is None
                          else (cert_option, key_option))
        raise ConfigError('%s needs %s too' % (given, missing))
    _read_pem(cert, cert_option, b'-----BEGIN CERTIFICATE-----',
              'a certificate')
    data = _read_pem(key, key_option, b'PRIVATE KEY-----', 'a private key')
    if b'ENCRYPTED' in data:
        raise ConfigError('%s %s: the key is encrypted; give it unencrypted'
                          % (key_option, key))
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as exc:
        if 'KEY_VALUES_MISMATCH' in str(exc):
            raise ConfigError('%s %s does not match the certificate of %s %s'
                              % (key_option, key, cert_option, cert)) from None
        raise ConfigError('%s %s with %s %s: %s' % (
            cert_option, cert, key_option, key,
            (exc.reason or str(exc)).lower().replace('_', ' '))) from None


def _no_password():
    # Never prompt on the terminal for a key's password.
    return b''


def _load_ca(context, ca, option):
    _read_pem(ca, option, b'-----BEGIN CERTIFICATE-----', 'CA certificates')
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigError('%s %s: %s' % (option, ca, (
            exc.reason or str(exc)).lower().replace('_', ' '))) from None


class ServerTLS:
    """TLS toward the clients (termination): the server *context* and the
    *timeout* of a client's handshake, in seconds."""

    def __init__(self, context, timeout):
        self.context = context
        self.timeout = timeout

    def socket_maker(self, bufsize):
        """``make(family, type, fileno)``: a :class:`TLSSocket` for an
        accepted client."""
        context = self.context

        def make(family, type, fileno):
            return TLSSocket(family, type, 0, fileno, context=context,
                             server_side=True, bufsize=bufsize)
        return make


class ClientTLS:
    """TLS toward the backend (origination).

    *context* verifies the backend's name too; *unnamed* (for a backend
    without a name: a Unix socket, no ``--distant-tls-name``) verifies the
    certificate chain only. *name* overrides the distant host as SNI.
    """

    def __init__(self, context, unnamed, name=None):
        self.context = context
        self.unnamed = unnamed
        self.name = name

    def socket(self, family, distant, bufsize):
        """A :class:`TLSSocket` to connect to *distant* with."""
        name = self.name
        if name is None and not isinstance(distant, str):
            name = distant[0] or 'localhost'
        context = self.context if name is not None else self.unnamed
        return TLSSocket(family, _socket.SOCK_STREAM, context=context,
                         server_side=False, server_hostname=name,
                         bufsize=bufsize)


def server_tls(cert, key, ca=None, timeout=10.0):
    """The :class:`ServerTLS` of ``--local-tls-*``, or None without a
    certificate; ConfigError naming the file when one is unusable."""
    if cert is None and key is None:
        if ca is not None:
            raise ConfigError('--local-tls-ca needs --local-tls-cert and '
                              '--local-tls-key')
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(context, cert, key, '--local-tls-cert', '--local-tls-key')
    if ca is not None:
        _load_ca(context, ca, '--local-tls-ca')
        context.verify_mode = ssl.CERT_REQUIRED
    return ServerTLS(context, timeout)


def client_tls(enabled, ca=None, cert=None, key=None, insecure=False,
               name=None):
    """The :class:`ClientTLS` of ``--distant-tls*``, or None when off;
    ConfigError naming the file when one is unusable."""
    if not enabled:
        given = [flag for flag, value in (
            ('--distant-tls-ca', ca), ('--distant-tls-cert', cert),
            ('--distant-tls-key', key), ('--distant-tls-name', name))
            if value is not None]
        if insecure:
            given.append('--distant-tls-insecure')
        if given:
            raise ConfigError('%s needs --distant-tls' % given[0])
        return None
    contexts = []
    for check_name in (True, False):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.check_hostname = check_name
            if ca is not None:
                _load_ca(context, ca, '--distant-tls-ca')
            else:
                context.load_default_certs()
        if cert is not None or key is not None:
            _load_pair(context, cert, key, '--distant-tls-cert',
                       '--distant-tls-key')
        contexts.append(context)
    if insecure:
        log.warning('--distant-tls-insecure: the backend\'s certificate is '
                    'NOT verified; anyone on the path can impersonate it')
    return ClientTLS(contexts[0], contexts[1], name)


def alert_record(alert):
    """The TLS record of the fatal *alert* (a name of :data:`ALERTS`), as
    a server sends it before the handshake has keys: in the clear."""
    number = int(ssl.AlertDescription['ALERT_DESCRIPTION_' + alert.upper()])
    # Content type 21 (alert), record version 3.3, length 2, level 2
    # (fatal), the description.
    return bytes((21, 3, 3, 0, 2, 2, number))


def tls_reason(exc):
    """A short lower-case reason for a failed TLS handshake."""
    if isinstance(exc, HandshakeTimeout):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return 'TLS: %s' % (exc.verify_message or exc.reason)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or str(exc)
        return 'TLS: %s' % reason.lower().replace('_', ' ')
    return (getattr(exc, 'strerror', None) or str(exc) or
            type(exc).__name__).lower()


class HandshakeTimeout(_socket.timeout):
    """The TLS handshake did not end in time."""


# -- the TLS channel --------------------------------------------------------------

class TLSChannel:
    """OpenSSL over memory buffers and a raw non-blocking socket.

    Nothing here waits: a call that cannot go on raises BlockingIOError
    (wait until the socket is readable, or writable for :meth:`write`).
    Ciphertext that the socket did not take at once is sent by a write
    watcher of the channel's own, so a write never needs to be followed by
    another one to be delivered.
    """

    __slots__ = ('obj', 'incoming', 'outgoing', 'raw', 'bufsize', 'loop',
                 'backlog', 'ahead', 'eof', 'ended', 'error', 'flusher',
                 'shut')

    def __init__(self, raw, context, server_side, server_hostname=None,
                 bufsize=65536, loop=None):
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side,
                                    server_hostname)
        self.raw = raw
        self.bufsize = bufsize
        self.loop = loop
        self.backlog = None     # a memoryview of ciphertext not yet sent
        self.ahead = None       # plaintext read ahead (b'': end of stream)
        self.eof = False        # the socket's end of stream was read
        self.error = None       # an error met while reading ahead
        self.flusher = None
        self.shut = False       # shut down for writing: SHUT_WR once flushed
        self.ended = False      # the plaintext stream has ended

    # -- input ---------------------------------------------------------------

    def _fill(self):
        """Read one buffer of ciphertext (BlockingIOError when none)."""
        data = self.raw.recv(self.bufsize)
        if data:
            self.incoming.write(data)
        else:
            self.eof = True
            self.incoming.write_eof()

    def read(self, size, buffer=None):
        """Up to *size* bytes of plaintext (into *buffer*: their count);
        ``b''`` (0) at the end of the stream, a clean one or not. Into a
        buffer, it takes every record already there, and reads the socket
        once at most."""
        ahead = self.ahead
        if ahead is not None:
            if not ahead:
                return b'' if buffer is None else 0
            part = ahead[:size]
            self.ahead = ahead[size:] or None
            if buffer is None:
                return part
            buffer[:len(part)] = part
            return len(part)
        error = self.error
        if error is not None:
            self.error = None
            raise error
        if self.ended:
            return b'' if buffer is None else 0
        obj = self.obj
        if buffer is None:
            data = self._read_one(obj.read, size)
            return data if data else b''
        view = None
        count = 0
        filled = False
        incoming = self.incoming
        if not incoming.pending and not self.eof and not obj.pending():
            # Nothing in the channel: read the socket first (no exception
            # from OpenSSL to get there).
            self._fill()            # BlockingIOError: nothing to read
            filled = True
        while count < size:
            if count:
                if not incoming.pending and not obj.pending():
                    break           # all there was
                if view is None:
                    view = memoryview(buffer)
            try:
                got = obj.read(size - count,
                               view[count:] if count else buffer)
                if not got:             # close_notify: the end
                    self.ended = True
                    break
                count += got
            except ssl.SSLWantReadError:
                if self.outgoing.pending:
                    self.flush()
                if count or self.eof:
                    break
                if filled:          # half a record: wait for the rest
                    raise BlockingIOError(errno.EAGAIN, 'no whole record')
                self._fill()        # BlockingIOError: nothing to read
                filled = True
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.ended = True
                break
            except OSError as exc:
                if not count:
                    raise
                self.error = exc        # raised at the next read
                break
        if self.outgoing.pending:
            self.flush()
        return count

    def _read_one(self, read, size):
        """One ``obj.read(size)``, filling from the socket as needed."""
        while True:
            try:
                data = read(size)
                break
            except ssl.SSLWantReadError:
                if self.outgoing.pending:
                    self.flush()
                if self.eof:
                    data = b''
                    break
                self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b''
                break
        if not data:
            self.ended = True
        if self.outgoing.pending:
            self.flush()
        return data

    def read_into(self, buffer, nbytes=0):
        """Like a socket's ``recv_into``: plaintext into *buffer*."""
        return self.read(nbytes or len(buffer), buffer)

    def unread(self, data):
        """Put *data* back in front of what the next read returns (``b''``:
        the end of the stream)."""
        ahead = self.ahead
        self.ahead = data if ahead is None else data + ahead

    def buffered(self):
        """True when input is waiting in the channel, where the socket's
        readability does not show it."""
        return (self.ahead is not None or self.error is not None
                or self.ended or self.obj.pending() > 0
                or self.incoming.pending > 0)

    def at_eof(self):
        """Has the stream ended (without reading plaintext)?"""
        if self.ahead is not None:
            return not self.ahead
        if self.ended:
            return True
        if self.buffered():
            return False
        if self.eof:
            return True
        try:
            return not self.raw.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    # -- output --------------------------------------------------------------

    def write(self, data):
        """Encrypt all of *data* and send what the socket takes; returns
        ``len(data)``. BlockingIOError while the previous write's
        ciphertext is still waiting (wait until the socket is writable)."""
        if (self.backlog is not None or self.outgoing.pending) \
                and not self.flush():
            raise BlockingIOError(errno.EAGAIN, 'TLS output is waiting')
        count = self.obj.write(data)
        self.flush()
        return count

    def flush(self):
        """Send waiting ciphertext; True when all of it is sent."""
        outgoing = self.outgoing
        backlog = self.backlog
        if outgoing.pending:
            data = outgoing.read()
            if backlog is None and not self.shut and self.flusher is None:
                # The usual case: the socket takes it all at once.
                try:
                    sent = self.raw.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    return True     # the peer is gone: the next read says so
                if sent == len(data):
                    return True
                data = data[sent:]
            elif backlog is not None:
                data = bytes(backlog) + data
            backlog = memoryview(data)
        while backlog is not None:
            try:
                sent = self.raw.send(backlog)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # The peer is gone: the next read or write says so.
                backlog = None
                break
            backlog = backlog[sent:] if sent < len(backlog) else None
        self.backlog = backlog
        flusher = self.flusher
        if backlog is not None:
            if flusher is None:
                flusher = self.flusher = self.loop.io(self.raw.fileno(), 2)
            if not flusher.active:
                flusher.start(self.flush)
            return False
        if flusher is not None and flusher.active:
            flusher.stop()
        if self.shut:
            self.shut = False
            try:
                self.raw.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
        return True

    def shutdown_write(self):
        """Send close_notify, then shut the socket down for writing once
        every byte before it is sent; reading goes on."""
        # OpenSSL fails on application data it finds while shutting down:
        # what is already in the channel is read ahead first (at most one
        # buffer of ciphertext, so this is bounded).
        parts = [self.ahead] if self.ahead else []
        eof = self.ended
        while not eof and (self.incoming.pending or self.obj.pending()):
            try:
                data = self.obj.read(self.bufsize)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b''
            except OSError as exc:
                self.error = exc
                break
            if not data:
                eof = self.ended = True
                break
            parts.append(data)
        if parts:
            self.ahead = b''.join(parts)
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass    # close_notify is sent; the peer's comes later
        except (ssl.SSLError, ValueError):
            pass
        self.shut = True
        self.flush()

    # -- handshake and end ---------------------------------------------------------

    def handshake(self):
        """One step of the handshake: True once it is done, False when the
        peer must send more first (wait until the socket is readable)."""
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                try:
                    self._fill()
                except (BlockingIOError, InterruptedError):
                    return False
                continue
            self.flush()
            return True

    def close(self):
        """Stop the channel's watcher (the socket is closed by its owner)."""
        flusher = self.flusher
        if flusher is not None:
            flusher.stop()
            flusher.close()
            self.flusher = None
        self.backlog = None


class TLSSocket(_gevent.Socket):
    """The engine's socket for a side that speaks TLS: its traffic goes
    through a :class:`TLSChannel` (``tls``).

    It counts like the engine's plain sockets (``conn``, ``eof``, ``reads``,
    ``received``) and gives handlers the usual cooperative ``recv``,
    ``recv_into``, ``send``, ``sendall`` and ``shutdown``, on the
    plaintext.
    """

    __slots__ = ('tls',)

    def __init__(self, family=_socket.AF_INET, type=_socket.SOCK_STREAM,
                 proto=0, fileno=None, *, context, server_side,
                 server_hostname=None, bufsize=65536):
        super().__init__(family, type, proto, fileno)
        self.tls = TLSChannel(_gevent.raw(self), context, server_side,
                              server_hostname, bufsize,
                              gevent.get_hub().loop)

    def do_handshake(self, timeout):
        """The TLS handshake, waiting at most *timeout* seconds
        (HandshakeTimeout), in the calling greenlet."""
        tls = self.tls
        with gevent.Timeout(timeout, HandshakeTimeout(
                'no TLS handshake within %gs' % timeout)):
            while not tls.handshake():
                _gevent.wait_read(self)

    def refuse_handshake(self, record, timeout):
        """Read the client's hello and answer it with *record* (see
        :func:`alert_record`) instead of a handshake."""
        tls = self.tls
        with gevent.Timeout(timeout, HandshakeTimeout(
                'no TLS handshake within %gs' % timeout)):
            while True:
                try:
                    hello = tls.raw.recv(tls.bufsize)
                    break
                except (BlockingIOError, InterruptedError):
                    _gevent.wait_read(self)
            if hello[:1] == b'\x16':     # a handshake record: TLS indeed
                self._send_clear(record)

    def _send_clear(self, data):
        """Send *data* as it is, around the channel."""
        view = memoryview(data)
        while view:
            try:
                view = view[self.tls.raw.send(view):]
            except (BlockingIOError, InterruptedError):
                _gevent.wait_write(self)

    def abort_handshake(self, timeout):
        """Take the client's hello and send the first half of the answer's
        first flight, then stop there: the client is left mid-handshake
        (the caller resets the connection)."""
        tls = self.tls
        with gevent.Timeout(timeout, HandshakeTimeout(
                'no TLS handshake within %gs' % timeout)):
            while not tls.outgoing.pending:
                try:
                    tls.obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if tls.outgoing.pending:
                        break       # the answer to the hello is ready
                try:
                    tls._fill()
                except (BlockingIOError, InterruptedError):
                    _gevent.wait_read(self)
            flight = tls.outgoing.read()
            if flight:
                self._send_clear(flight[:max(1, len(flight) // 2)])

    def wait_readable(self):
        """Wait until there is something to read (at once when the channel
        holds input already)."""
        self.hot = False
        if not self.tls.buffered():
            _gevent.wait_read(self)

    def _turn(self):
        """Fairness, as a plain socket's (see ``_gevent.Socket.hot``): after
        a read that found its data at once, let the loop run first: until
        the socket's next readable event, or, when the channel holds input
        already (no event will announce it), for one turn."""
        self.hot = False
        if self.tls.buffered():
            gevent.sleep(0)
        else:
            _gevent.wait_read(self)

    def buffered(self):
        return self.tls.buffered()

    def at_eof(self):
        return self.tls.at_eof()

    def recv(self, bufsize, flags=0):
        tls = self.tls
        if self.hot:
            self._turn()
        hot = True
        while True:
            try:
                data = tls.read(bufsize)
                break
            except (BlockingIOError, InterruptedError):
                _gevent.wait_read(self)
                hot = False
        self.hot = hot
        self.reads += 1
        if data:
            self.received += len(data)
        elif bufsize:
            self.eof = True
        return data

    def recv_into(self, buffer, nbytes=0, flags=0):
        tls = self.tls
        if self.hot:
            self._turn()
        hot = True
        while True:
            try:
                count = tls.read_into(buffer, nbytes)
                break
            except (BlockingIOError, InterruptedError):
                _gevent.wait_read(self)
                hot = False
        self.hot = hot
        self.reads += 1
        if count:
            self.received += count
        elif nbytes or len(buffer):
            self.eof = True
        return count

    def send(self, data, flags=0):
        tls = self.tls
        chunk = memoryview(data).cast('B')[:tls.bufsize]
        while True:
            try:
                count = tls.write(chunk)
                break
            except (BlockingIOError, InterruptedError):
                _gevent.wait_write(self)
        self.sent += count      # plaintext, as ``received``
        return count

    def sendall(self, data, flags=0):
        """Send all of *data*; returns once every byte is handed to the
        socket (so a close right after loses nothing)."""
        tls = self.tls
        view = memoryview(data).cast('B')
        sent = 0
        while sent < len(view):
            sent += self.send(view[sent:sent + tls.bufsize])
        while not tls.flush():
            _gevent.wait_write(self)

    def shutdown(self, how):
        if how != _socket.SHUT_RD:
            self.tls.shutdown_write()
        if how != _socket.SHUT_WR:
            super().shutdown(_socket.SHUT_RD)

    def close(self):
        self.tls.close()
        super().close()

    def __repr__(self):
        return '<TLSSocket fd=%s>' % self.fileno()
