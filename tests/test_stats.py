"""vaurien/stats.py: the one percentile definition (nearest rank)."""
import pytest

from vaurien.stats import percentile

pytestmark = pytest.mark.timeout(10)


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))           # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.9) == 90
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    # Unsorted input, odd count: the true median; never interpolated.
    assert percentile([5, 1, 3], 0.5) == 3
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile([0.25], 0.99) == 0.25
    assert percentile([], 0.5) is None
