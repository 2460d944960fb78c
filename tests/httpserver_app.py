"""A tiny WSGI app served by vaurien.httpserver, for tests/test_httpserver.py.

``python tests/httpserver_app.py`` prints the port, then serves until
killed: ``GET /ok`` answers ``ok``; ``POST /echo`` answers its body;
anything else is refused with 401 without reading the body.
"""
from vaurien._patch import patch_all

patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from vaurien.httpserver import HTTPServer  # noqa: E402
from vaurien.endpoints import bind  # noqa: E402

STATUS = {'bad_request': 400, 'body_too_large': 413,
          'headers_too_large': 431, 'request_timeout': 408}


def render_error(name, description):
    body = json.dumps({'status': 'error', 'errors': [
        {'location': 'request', 'name': name,
         'description': description}]}).encode() + b'\n'
    return STATUS[name], [('Content-Type', 'application/json')], body


def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/ok':
        start_response('200 OK', [('Content-Length', '2')])
        return [b'ok']
    if path == '/echo' and environ['REQUEST_METHOD'] == 'POST':
        try:
            body = environ['wsgi.input'].read(1025)
        except Exception:        # as a careless application would
            start_response('500 Internal Server Error', [])
            return [b'oops']
        start_response('200 OK', [('Content-Length', str(len(body)))])
        return [body]
    start_response('401 Unauthorized', [('Content-Length', '2')])
    return [b'no']


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    listener = bind(('127.0.0.1', 0), 'listen', 128)
    server = HTTPServer(listener, app, render_error, max_body=1024,
                        max_connections=int(sys.argv[1]),
                        timeout=float(sys.argv[2]))
    server.start()
    sys.stdout.write('%d\n' % server.address[1])
    sys.stdout.flush()
    gevent.wait()


if __name__ == '__main__':
    main()
