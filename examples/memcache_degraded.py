"""Cache-aside that treats a cache failure as a miss.

    python memcache_degraded.py localhost 21211

Every value must still be right (from the cache or from the "database").
"""
import sys

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheServerError

DATABASE = {'user:%d' % i: ('name-%d' % i).encode() for i in range(100)}


def lookup(cache, key, stats):
    try:
        value = cache.get(key)
    except MemcacheServerError:
        stats['errors'] += 1
        value = None
    if value is None:
        value = DATABASE[key]           # the slow path
        stats['misses'] += 1
        try:
            cache.set(key, value)
        except MemcacheServerError:
            stats['errors'] += 1
    return value


def main(host, port):
    cache = Client((host, int(port)), timeout=10, default_noreply=False)
    stats = {'errors': 0, 'misses': 0}
    for _ in range(3):
        for key, expected in DATABASE.items():
            if lookup(cache, key, stats) != expected:
                raise SystemExit('cache failed: wrong value for %s' % key)
    print('cache passed: %d lookups, %d misses, %d server errors absorbed'
          % (3 * len(DATABASE), stats['misses'], stats['errors']))


if __name__ == '__main__':
    main(*sys.argv[1:])
