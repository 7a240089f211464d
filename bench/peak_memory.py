"""A process's own peak resident set, in MB (issue 16's memory figures).

`resource.getrusage(RUSAGE_SELF).ru_maxrss` is not that for a process another one started: Linux carries the
high-water mark across fork and execve, so a child reports at least what its parent held when it started it. A
bench whose parent had grown to 84 MB reported 84.3 MB for every function it ran after that. `VmHWM` in
`/proc/self/status` is the peak of this process's own address space since its execve.
"""
from __future__ import annotations


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux: the closest figure there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
