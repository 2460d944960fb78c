"""The ``slicer`` toxic (vaurien/toxics/slicer.py)."""
import random

from toxiproxy_support import Sender, connect
from vaurien.toxics.slicer import Slicer


def test_cuts_stay_within_the_variation():
    kind = Slicer(Slicer.check({'average_size': 10, 'size_variation': 4}))
    bounds = kind.cuts(1000, random.Random(3))
    sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    assert sum(sizes) == 1000
    assert all(1 <= s <= 14 for s in sizes), sizes


def test_zero_sizes_do_not_loop():
    kind = Slicer(Slicer.check({}))
    bounds = kind.cuts(5, random.Random(1))
    assert bounds[0] == 0 and bounds[-1] == 5


def test_data_arrives_in_slices_with_pauses(toxiproxy):
    sender = Sender([bytes(range(200))])
    try:
        addr = toxiproxy.create('s', sender.address)
        toxiproxy.add_toxic('s', 'slicer', average_size=20,
                            size_variation=0, delay=30000)
        with connect(addr) as sock:
            sock.sendall(b'go')
            sock.settimeout(5)
            pieces = []
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    break
                pieces.append(data)
        assert b''.join(pieces) == bytes(range(200))
        assert len(pieces) >= 5, [len(p) for p in pieces]
    finally:
        sender.close()
