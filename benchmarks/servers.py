"""The backends the suite brings: an echo server and a bulk stream server.

Run as ``python -m benchmarks.servers``: both listen on 127.0.0.1 with
ports chosen by the kernel, and the process prints one JSON line,
``{"echo": PORT, "bulk": PORT}``, once they accept connections.

* **echo** (one thread, epoll): sends back whatever each connection sends.
  It holds any number of idle connections cheaply, for the latency and idle
  workloads.
* **bulk** (a thread per direction): the client first sends 8 bytes, the
  big-endian count N of bytes it wants; the server then streams N bytes to
  it while it reads the client's own stream to end of stream, and finally
  sends 8 more bytes: the count it received. The client so checks that
  every byte went through, both ways.
* **bulk_tls** (with ``--tls CERT KEY``; a thread per connection): the
  same in TLS, one way after the other (one thread may not read and write
  a TLS connection at once): the client sends the count N then N bytes;
  the server reads them, streams N bytes back, then the 8-byte count.
"""
import json
import os
import resource
import selectors
import socket
import struct
import sys
import threading

HOST = '127.0.0.1'
CHUNK = 1 << 20
_HEADER = struct.Struct('!Q')


def _listener(backlog=4096):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(backlog)
    return sock


def _read_exact(sock, size):
    data = b''
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            raise ConnectionError('end of stream after %d bytes' % len(data))
        data += more
    return data


def serve_echo(listener):
    """Echo every connection's data back, forever (one thread, epoll)."""
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is listener:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(conn, selectors.EVENT_READ, True)
                continue
            try:
                data = sock.recv(65536)
                if data:
                    # Small pings only: a blocking sendall is fine here.
                    sock.sendall(data)
                    continue
            except OSError:
                pass
            sel.unregister(sock)
            sock.close()


def _bulk_connection(conn):
    try:
        wanted = _HEADER.unpack(_read_exact(conn, _HEADER.size))[0]
        received = [0]

        def sink():
            buf = bytearray(CHUNK)
            count = 0
            recv_into = conn.recv_into
            while True:
                n = recv_into(buf)
                if not n:
                    break
                count += n
            received[0] = count

        reader = threading.Thread(target=sink, daemon=True)
        reader.start()
        stream(conn, wanted)
        reader.join()
        conn.sendall(_HEADER.pack(received[0]))
    except OSError:
        pass
    finally:
        conn.close()


def stream(sock, count):
    """Send *count* zero bytes on *sock*, 1 MiB at a time."""
    view = memoryview(bytes(CHUNK))
    sendall = sock.sendall
    while count >= CHUNK:
        sendall(view)
        count -= CHUNK
    if count:
        sendall(view[:count])


def serve_bulk(listener):
    """Serve the bulk protocol (see the module docstring), forever."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_bulk_connection, args=(conn,),
                         daemon=True).start()


def _read_count(conn, count):
    """Read exactly *count* bytes (discarded); the number read."""
    buf = bytearray(CHUNK)
    got = 0
    while got < count:
        n = conn.recv_into(buf, min(CHUNK, count - got))
        if not n:
            break
        got += n
    return got


def _bulk_tls_connection(context, conn):
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            wanted = _HEADER.unpack(_read_exact(tls, _HEADER.size))[0]
            received = _read_count(tls, wanted)
            stream(tls, wanted)
            tls.sendall(_HEADER.pack(received))
    except OSError:
        pass
    finally:
        conn.close()


def serve_bulk_tls(listener, context):
    """Serve the TLS bulk protocol (see the module docstring), forever."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_bulk_tls_connection, args=(context, conn),
                         daemon=True).start()


def raise_nofile(wanted):
    """Raise this process's descriptor limit to *wanted* if it can."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (wanted, max(hard, wanted)))
        return wanted
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard


def main():
    """Start both servers and print their ports as one JSON line."""
    raise_nofile(65536)
    echo, bulk = _listener(), _listener()
    threading.Thread(target=serve_bulk, args=(bulk,), daemon=True).start()
    ports = {'echo': echo.getsockname()[1], 'bulk': bulk.getsockname()[1],
             'pid': os.getpid()}
    if sys.argv[1:2] == ['--tls']:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        bulk_tls = _listener()
        threading.Thread(target=serve_bulk_tls, args=(bulk_tls, context),
                         daemon=True).start()
        ports['bulk_tls'] = bulk_tls.getsockname()[1]
    sys.stdout.write(json.dumps(ports) + '\n')
    sys.stdout.flush()
    try:
        serve_echo(echo)
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
