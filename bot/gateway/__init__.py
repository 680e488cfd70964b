"""The gateway: how programs and browsers reach the bot (docs/gateway-protocol.md; README "Web, API and monitoring").

One module per concern: `tokens` (JWTs and the signing key), `guard` (who may come
in, and the audit of who was refused), `protocol` (the versioned WebSocket
frames), `server` (the aiohttp app in the bot process), `client` (a small Python
client of the protocol).
"""
