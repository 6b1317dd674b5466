"""``GET /metrics`` (Prometheus text format).

Who may scrape: in keyless loopback mode anyone on this machine (like every route); otherwise an
admin key (``Authorization: Bearer <admin key>``, which Prometheus sends with
``authorization: {credentials: ...}``). ``VOXSERVE_METRICS__ENABLED=false`` removes the route
and the counting. Requests are counted by ``api.observation``'s middleware.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from voxserve.api.deps import CurrentAdmin, MetricsDep
from voxserve.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
)
async def metrics(metrics: MetricsDep, _admin: CurrentAdmin) -> Response:
    """This process's metrics in the Prometheus text format (needs an admin key, except in
    keyless loopback mode)."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
