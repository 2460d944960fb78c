"""CPU time and memory of a process (and the processes it forked), from /proc.

The suite charges each proxy only for what its own processes spent: user
plus system time from ``/proc/PID/stat``, in seconds. A proxy that forks a
process per connection (socat) is charged for its live children too, and
for the children it has reaped (``cutime`` + ``cstime``), so that every
subject is measured the same way whatever its process model.
"""
import os

TICKS = os.sysconf('SC_CLK_TCK')

__all__ = ['cpu_seconds', 'children', 'descendants', 'rss_bytes',
           'pss_bytes', 'tree_memory']


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name, or None."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as fh:
            raw = fh.read()
    except OSError:     # gone (or going) meanwhile
        return None
    # The command name is in parentheses and may itself hold spaces or
    # parentheses: split after the last ')'.
    return raw[raw.rindex(b')') + 2:].split()


def _own_ticks(pid):
    """utime + stime + cutime + cstime of *pid*, in clock ticks (0 if gone).

    Fields (1-based in proc(5)): 14 utime, 15 stime, 16 cutime, 17 cstime;
    after dropping pid and comm they are at indexes 11-14.
    """
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    return sum(int(value) for value in fields[11:15])


def children(pid):
    """The pids of *pid*'s live children (all its threads' children)."""
    result = []
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return result
    for tid in tasks:
        try:
            with open('/proc/%d/task/%s/children' % (pid, tid)) as fh:
                result.extend(int(child) for child in fh.read().split())
        except OSError:
            continue
    return result


def descendants(pid):
    """*pid*'s live descendants, breadth first (not *pid* itself)."""
    found = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children(child))
    return found


def cpu_seconds(pid):
    """CPU seconds spent by *pid*, its live descendants and reaped children.

    A child's time moves into its parent's ``cutime`` when it is reaped, so
    the sum over the live tree plus reaped children counts each tick once
    (up to a child reaped between two reads, a few ticks at most).
    """
    ticks = _own_ticks(pid)
    for child in descendants(pid):
        ticks += _own_ticks(child)
    return ticks / TICKS


def _status_kib(pid, key):
    try:
        with open('/proc/%d/status' % pid) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pid):
    """Resident memory of *pid* (VmRSS from /proc/PID/status), in bytes."""
    return _status_kib(pid, 'VmRSS:') * 1024


def pss_bytes(pid):
    """Proportional set size of *pid* (/proc/PID/smaps_rollup), in bytes.

    Pages shared by N processes count 1/N in each, so the sum over a set of
    processes counts every page once.
    """
    try:
        with open('/proc/%d/smaps_rollup' % pid) as fh:
            for line in fh:
                if line.startswith('Pss:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_memory(pid, pss=False):
    """Bytes held by *pid* (VmRSS), or with *pss* by it and its descendants.

    A proxy that forks a process per connection is measured with *pss*: the
    sum of the PSS of its processes, since the sum of their RSS would count
    the pages they share many times over. Use the same *pss* for the two
    readings of a delta.
    """
    if not pss:
        return rss_bytes(pid)
    return sum(pss_bytes(p) for p in [pid] + descendants(pid))
