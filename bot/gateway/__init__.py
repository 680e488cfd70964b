"""The gateway: how programs and browsers reach the bot (docs/gateway-protocol.md; README "Web, API and monitoring").

One module per concern: `server` (the aiohttp app in the bot process and its front
door), `sockets` (the WebSocket endpoint and the `web` platform), `protocol` (its
versioned frames), `tokens` (JWTs, the signing key, login codes), `guard` (where
it may listen, who may come in, the audit of who was refused), `api` (REST),
`web` (login, session, pages), `hooks` (signed webhooks), `health` (/readyz),
`metrics` (/metrics), `client` (a small Python client of the protocol).
"""
