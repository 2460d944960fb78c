"""Certificates and real TLS servers for the endpoint tests.

The certificates are made by the ``openssl`` command for each test session:
a CA, a server certificate it signs (for ``localhost``, ``127.0.0.1`` and
``::1``), a client certificate it signs (mTLS), a self-signed certificate
from no CA, and a key that matches none of them.
"""
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading

import support

HOST = support.HOST


class PKI:
    """Paths of the files made by :func:`make_pki` (attributes)."""

    def __init__(self, base):
        self.base = base
        for name in ('ca', 'ca_key', 'cert', 'key', 'client_cert',
                     'client_key', 'self_cert', 'self_key', 'other_key'):
            setattr(self, name, os.path.join(base, name + '.pem'))


def _openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True,
                   timeout=60)


def make_pki(base):
    """Make the certificates under *base*; returns a :class:`PKI`."""
    if shutil.which('openssl') is None:
        raise AssertionError('the openssl command is needed (Debian: openssl)')
    pki = PKI(base)
    ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes')
    _openssl('req', '-x509', *ec, '-keyout', pki.ca_key, '-out', pki.ca,
             '-days', '2', '-subj', '/CN=Vaurien test CA')
    for cert, key, cn, ext in (
            (pki.cert, pki.key, 'localhost',
             'subjectAltName=DNS:localhost,DNS:v6only.vaurien.test,'
             'IP:127.0.0.1,IP:::1'),
            (pki.client_cert, pki.client_key, 'client', 'extendedKeyUsage='
             'clientAuth')):
        csr = os.path.join(base, cn + '.csr')
        extfile = os.path.join(base, cn + '.ext')
        with open(extfile, 'w') as fh:
            fh.write(ext + '\n')
        _openssl('req', '-new', *ec, '-keyout', key, '-out', csr, '-subj',
                 '/CN=' + cn)
        _openssl('x509', '-req', '-in', csr, '-CA', pki.ca, '-CAkey',
                 pki.ca_key, '-CAcreateserial', '-out', cert, '-days', '2',
                 '-extfile', extfile)
    _openssl('req', '-x509', *ec, '-keyout', pki.self_key, '-out',
             pki.self_cert, '-days', '2', '-subj', '/CN=localhost',
             '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1')
    _openssl('genpkey', '-algorithm', 'ec', '-pkeyopt',
             'ec_paramgen_curve:P-256', '-out', pki.other_key)
    return pki


def server_context(pki, client_ca=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(pki, cert=False):
    context = ssl.create_default_context(cafile=pki.ca)
    if cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


class TLSEchoServer:
    """A Python ``ssl`` server on *host*:0 echoing every byte, one thread
    per client. ``peers`` lists the client certificates' subjects seen."""

    def __init__(self, context, host=HOST):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.address = self.listener.getsockname()[:2]
        self.context = context
        self.peers = []
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(sock,),
                             daemon=True).start()

    def _echo(self, sock):
        sock.settimeout(30)
        try:
            with self.context.wrap_socket(sock, server_side=True) as tls:
                cert = tls.getpeercert()
                if cert:
                    self.peers.append(dict(x[0] for x in cert['subject']))
                while True:
                    data = tls.recv(65536)
                    if not data:
                        break
                    tls.sendall(data)
        except OSError as exc:
            self.errors.append(exc)
        finally:
            sock.close()

    def close(self):
        self.listener.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True     # no delayed-ACK wait per response

    def do_GET(self):
        size = int(self.path.rsplit('/', 1)[1]) if self.path.startswith(
            '/size/') else 0
        body = support_payload(size) if size else b'hello over TLS\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def support_payload(size):
    """What ``/size/N`` returns: N bytes of numbered lines."""
    return b''.join(b'%09d\n' % i for i in range(size // 10 + 1))[:size]


class HTTPSServer:
    """A threaded HTTPS/1.1 server (``http.server`` + ``ssl``) on *host*:0."""

    def __init__(self, context, host=HOST):
        cls = http.server.ThreadingHTTPServer
        if ':' in host:
            cls = type('V6Server', (cls,), {'address_family':
                                             socket.AF_INET6})
        self.server = cls((host, 0), _Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket,
                                                 server_side=True)
        self.address = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
