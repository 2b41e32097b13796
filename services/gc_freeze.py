"""Long-running gam processes take what they built at start out of the garbage
collector's way; a bulk import, the lines of its file.

CPython's full collection walks every tracked object. After start-up, a ``gam serve``
holds about 130,000 of them (145,000 when tracing: the OpenTelemetry SDK, its
instrumentations and protobuf), nearly all of them modules, classes and the app, which
live as long as the process. A full collection took 120-230 ms with the GIL held, so
every request in flight stood still; under the demo mix it came about once in 2,400
commands (every half minute at 90 commands/s). ``gc.freeze()`` (the standard library's
tool for this) moves them to a permanent generation that collections skip; a full
collection then took about 10 ms. On average that is only 0.05-0.1 ms per command; what it
removes is the pause.

Only processes call this, at the end of their start-up: a test process that froze
what it holds would keep every cycle it made before for good.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def freeze_start_up_objects() -> None:
    """Collect once, then leave every object alive now out of later collections."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def kept_out_of_collections(build: Callable[[], T]) -> Iterator[T]:
    """What ``build()`` returns, kept out of the collector's way while the block uses it.

    A bulk import holds every line of its file for its whole run: a hundred thousand
    lines are some million tracked objects, which each full collection walks. Parsing
    them with the collector on took 1.3 s instead of 0.5 s, and the import's own
    collections then walked them again and again (a third of its time, all told). So
    the collector is paused while they are built (nothing they make is a cycle to
    reclaim), then they are frozen until the block ends. A process that froze objects
    of its own (:func:`freeze_start_up_objects`) is left as it was after the build: the
    unfreeze at the end would release those too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        built = build()
    finally:
        if enabled:
            gc.enable()
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        yield built
    finally:
        if freezing:
            gc.unfreeze()
