"""Stored topics name the public package, never a private module.

The journal keeps each event's topic forever. Topics such as
``aggregates:StepScheduled`` resolve through ``aggregates/__init__.py``, so the
private modules may be split or renamed without breaking any stored history.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

__all__ = ["PACKAGE", "public_topic"]

PACKAGE = "aggregates"


def public_topic(cls: type) -> str:
    """Register ``cls`` under ``aggregates:<its name>`` and return that topic."""
    topic = f"{PACKAGE}:{cls.__name__}"
    register_topic(topic, cls)
    return topic
