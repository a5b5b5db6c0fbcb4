"""CLI subcommands of the assistant itself (chat, say, mic, bench, eval, setup)."""
