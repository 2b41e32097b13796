"""Long-running gam processes take what they built at start out of the garbage
collector's way.

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

import gc


def freeze_start_up_objects() -> None:
    """Collect once, then leave every object alive now out of later collections."""
    gc.collect()
    gc.freeze()
