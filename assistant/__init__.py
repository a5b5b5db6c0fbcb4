"""QuickTurn: a streaming voice assistant (orchestrator, transports and CLI)."""

__version__ = "0.1.0"
