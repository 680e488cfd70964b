"""Podbot's core, grouped by stage: chat, store, jobs, runtime, understanding, cli (docs/architecture.md maps it)."""

__version__ = "0.2.0"
