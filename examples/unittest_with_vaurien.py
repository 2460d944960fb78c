"""Vaurien in a unittest suite: start_proxy / stop_proxy and the Client.

Run with ``python -m unittest unittest_with_vaurien`` from this directory.
"""
import http.client
import http.server
import socket
import threading
import unittest

from vaurien import Client, start_proxy, stop_proxy


def free_port():
    """A port free right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Greeter(http.server.BaseHTTPRequestHandler):
    """The backend: answers every GET with "hello"."""
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '5')
        self.end_headers()
        self.wfile.write(b'hello')

    def log_message(self, *args):
        pass


class TestWithVaurien(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.backend = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Greeter)
        threading.Thread(target=cls.backend.serve_forever,
                         daemon=True).start()
        cls.proxy_port, http_port = free_port(), free_port()
        cls.pid = start_proxy(
            proxy_host='127.0.0.1', proxy_port=cls.proxy_port,
            backend_host='127.0.0.1',
            backend_port=cls.backend.server_address[1],
            http_host='127.0.0.1', http_port=http_port,
            warmup=30, log_level='warning')
        cls.client = Client('127.0.0.1', http_port)

    @classmethod
    def tearDownClass(cls):
        stop_proxy(cls.pid)
        cls.backend.shutdown()
        cls.backend.server_close()

    def get(self):
        conn = http.client.HTTPConnection('127.0.0.1', self.proxy_port,
                                          timeout=5)
        try:
            conn.request('GET', '/')
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def test_blackout(self):
        self.assertEqual(self.get(), 'hello')
        with self.client.with_handler('blackout'):
            with self.assertRaises((ConnectionError,
                                    http.client.HTTPException)):
                self.get()
        self.assertEqual(self.get(), 'hello')

    def test_service_down(self):
        with self.client.down():
            with self.assertRaises(ConnectionRefusedError):
                self.get()
        self.assertEqual(self.get(), 'hello')


if __name__ == '__main__':
    unittest.main()
