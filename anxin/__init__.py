"""The Anxin process: settings, the core, the device listeners, the HTTP face and the timers, composed.

This package is the only one that imports every other: ``dispatch`` (the core), ``gateway`` (device
listeners), ``console`` (the ASGI app) and, for ``demo`` and ``drill``, ``simulators``. It owns the
``anxin`` command (:mod:`anxin.cli`), the running server (:mod:`anxin.server`) and the demo
(:mod:`anxin.demo`). See docs/architecture.md for the layers and the path of one alarm.
"""
