"""The websocket web client: server, wire protocol, page and transport bench.

``quickturn serve web`` runs :func:`assistant.web.server.serve_web_main`; the
wire format is specified in ``docs/protocol.md`` and implemented (both
directions) in :mod:`assistant.web.protocol`.
"""
