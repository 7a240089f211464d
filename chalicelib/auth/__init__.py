"""Identity and access (issue 13): who is calling, in which tenant, with which role.

- `principal`: the caller of the current request (`Principal`, `current_principal`), roles and their order.
- `keys`: API keys - generated, hashed, verified, listed and revoked (`ApiKeyService`).
- `tokens`: bearer tokens (JWT) from an identity provider, verified with PyJWT against configured keys.
- `authenticator`: one credential -> one principal, with a short per-container cache of verified credentials.
- `middleware`: the HTTP middleware that applies `chalicelib.api.access.ROUTE_ACCESS` to every request.
- `audit`: records every mutation in the audit log.

No key, token or hash is ever logged, put in a metric label, an error body or an event: the code here
logs key ids and prefixes only.
"""
