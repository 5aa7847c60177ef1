from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The default run stays fast; CHRONIK_LONG=1 (or the "long" profile) runs more examples.
settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("long" if os.environ.get("CHRONIK_LONG") else "default")
