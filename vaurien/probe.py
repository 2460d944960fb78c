"""Can the backend be reached? The start-up check of ``vaurien``.

:func:`probe_backend` answers None (yes) or why not, in words. The proxy
serves whatever the answer -- backends come and go -- but a user who
forgot ``--distant``, or whose backend is down, learns it from one warning
at start-up instead of from every connection failing.

A loopback backend, or a Unix socket (``unix:PATH``), is checked without
connecting to it where the system lists its listening sockets (Linux:
``/proc/net/tcp``, ``tcp6`` and ``unix``), so that the backend never sees
a connection no client made. Any other backend gets one connection,
closed at once.
"""
import ipaddress
import os
import socket
import stat
import struct

__all__ = ['probe_backend', 'listening']

_PROC = {socket.AF_INET: '/proc/net/tcp', socket.AF_INET6: '/proc/net/tcp6'}
_PROC_UNIX = '/proc/net/unix'
_LISTEN = '0A'
# The flag of a listening Unix socket in /proc/net/unix (__SO_ACCEPTCON).
_ACCEPTING = 0x10000


def _decode(family, text):
    """An address of ``/proc/net/tcp*`` (hex words in host order)."""
    raw = b''.join(struct.pack('=I', int(text[i:i + 8], 16))
                   for i in range(0, len(text), 8))
    return ipaddress.ip_address(socket.inet_ntop(family, raw))


def listening(family, host, port):
    """True when a socket of this system listens on *host*:*port* (or on
    the wildcard address of that port), False when none does, None when
    the system does not say (no ``/proc/net``)."""
    target = ipaddress.ip_address(host)
    found = False
    for table_family, path in _PROC.items():
        try:
            with open(path, encoding='ascii') as fh:
                lines = fh.readlines()[1:]
        except OSError:
            return None
        found = True
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != _LISTEN:
                continue
            address, _, hexport = fields[1].partition(':')
            if int(hexport, 16) != port:
                continue
            local = _decode(table_family, address)
            if local.is_unspecified or local == target:
                return True
            if (table_family == socket.AF_INET6 and family == socket.AF_INET
                    and local.ipv4_mapped == target):
                return True
    return False if found else None


def listening_unix(path):
    """True when a Unix socket listens at *path*, False when none does,
    None when the system does not say."""
    try:
        with open(_PROC_UNIX, encoding='utf-8', errors='replace') as fh:
            lines = fh.readlines()[1:]
    except OSError:
        return None
    target = os.path.abspath(path)
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) == 8 and int(fields[3], 16) & _ACCEPTING and \
                os.path.abspath(fields[7].rstrip('\n')) == target:
            return True
    return False


def _probe_unix(path):
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    if not stat.S_ISSOCK(mode):
        return 'not a socket'
    if listening_unix(path) is False:
        return 'nothing listens there'
    return None


def _connect(family, sockaddr, timeout):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
        return None
    except socket.timeout:
        return 'no answer within %gs' % timeout
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    finally:
        sock.close()


def probe_backend(distant, timeout):
    """None when the backend *distant* (``(host, port)``, or a Unix
    socket's path) can be reached, else why not (a phrase). Waits at most
    about *timeout* seconds per address tried.
    """
    if isinstance(distant, str):
        return _probe_unix(distant)
    host, port = distant[:2]
    try:
        infos = socket.getaddrinfo(host or None, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return 'cannot resolve %r: %s' % (
            host, getattr(exc, 'strerror', None) or exc)
    reason = 'no address for %r' % host
    for family, _, _, _, sockaddr in infos:
        if family not in _PROC:
            continue
        if ipaddress.ip_address(sockaddr[0]).is_loopback:
            found = listening(family, sockaddr[0], port)
            if found:
                return None
            if found is False:
                reason = 'nothing listens there'
                continue
        reason = _connect(family, sockaddr, timeout)
        if reason is None:
            return None
    return reason
