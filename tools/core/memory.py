"""Give freed memory back to the system between the stages of a large run.

Freed memory stays with the process (glibc's heap, Arrow's pool) until it is asked to let go, so a
stage's temporaries would count in the process's resident size until it exits. A run calls
:func:`release_memory` after each stage whose temporaries are large: it returns what is already free,
nothing more, and costs milliseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_memory() -> None:
    """Return the free heap (glibc ``malloc_trim``) and Arrow's unused pool memory to the system, where they exist."""
    pa = sys.modules.get("pyarrow")  # only when something already uses Arrow: importing it here would cost more
    if pa is not None:
        pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
