"""Who is calling: the hook that authenticates every request before any
route runs, except the explicit allowlist of paths that need no token, and
`subject()`, the caller a route passes to the broker.

The broker decides what the subject may do; this module only makes sure
every request outside the allowlist has one, or ends in a 401. A route
that asks for the subject of a request that has none fails (500) rather
than act for nobody in particular.
"""

from __future__ import annotations

from quart import g, request
from quart_trio import QuartTrio

from broker.authorization import Subject

from .auth import Authenticator

PUBLIC_PATHS = frozenset({"/health", "/ready"})
"""The paths answered without a token, whatever the mode."""


def authenticate_requests(app: QuartTrio, authenticator: Authenticator) -> None:
    """Authenticate each request to a path outside `PUBLIC_PATHS`
    (`Unauthenticated` ends it with a 401); registered before any other
    hook, so that nothing else looks at a request of an unknown caller."""
    async def authenticate() -> None:
        if request.path not in PUBLIC_PATHS:
            g.subject = authenticator.authenticate(request.headers.get("Authorization"))
    assert not app.before_request_funcs, "authentication must be the first hook"
    app.before_request(authenticate)


def subject() -> Subject:
    """This request's authenticated caller."""
    return g.subject
