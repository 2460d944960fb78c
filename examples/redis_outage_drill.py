"""The application side of the Redis outage drill.

Runs a small workload through the proxy, retrying each command when Redis
answers with an error, then checks that no write was lost::

    python redis_outage_drill.py localhost 16379

Exit status 0 and "drill passed" when the application survived.
"""
import sys
import warnings

import redis


def with_retries(call, *args, attempts=10):
    """Call, retrying on a server error; returns (result, errors seen)."""
    for attempt in range(attempts):
        try:
            return call(*args), attempt
        except redis.exceptions.ResponseError:
            continue
    raise SystemExit('drill failed: %d errors in a row' % attempts)


def main(host, port, count=100):
    with warnings.catch_warnings():
        # No HELLO / CLIENT SETINFO on connect: only the workload's commands
        # meet the chaos (lib_name=None is deprecated in newer redis-py).
        warnings.simplefilter('ignore', DeprecationWarning)
        r = redis.Redis(host=host, port=int(port), socket_timeout=10,
                        protocol=2, lib_name=None, lib_version=None)
    absorbed = 0
    for i in range(count):
        _, errors = with_retries(r.set, 'drill:%d' % i, i)
        absorbed += errors
    for i in range(count):
        value, errors = with_retries(r.get, 'drill:%d' % i)
        absorbed += errors
        if value != str(i).encode():
            raise SystemExit('drill failed: drill:%d is %r' % (i, value))
    print('drill passed: %d writes, %d reads, %d server errors absorbed'
          % (count, count, absorbed))


if __name__ == '__main__':
    main(*sys.argv[1:])
