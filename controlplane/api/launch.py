"""POST /api/v1/workspaces/{workspace_id}/sessions — launch a workspace session (seed document)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.launch_service import LaunchService
from controlplane.schemas import LaunchWorkspaceSessionRequest, LaunchWorkspaceSessionResponse
from controlplane.services import get_services

__all__ = ["router"]

router = APIRouter(tags=["launch"], route_class=StrictJSONRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown (or another owner's) workspace, machine or session"},
    422: {"description": "Invalid request; the detail names the field"},
    502: {"description": "Daemon unreachable: {status: 'error', payload: {error}}; the session is marked failed"},
    504: {"description": "Daemon too slow: {status: 'error', payload: {error}}; the session is marked failed"},
}


@router.post(
    "/api/v1/workspaces/{workspace_id}/sessions",
    response_model=LaunchWorkspaceSessionResponse,
    responses=_ERRORS,
    summary="Launch Workspace Session",
)
async def launch_workspace_session(
    workspace_id: str,
    body: LaunchWorkspaceSessionRequest,
    request: Request,
    p: Annotated[Principal, Depends(current_principal)],
) -> JSONResponse:
    """Start (or re-attach to) an agent session on the workspace's machine; answers the daemon's
    acknowledgement with the ids the web app needs in `payload`."""
    result = await LaunchService(get_services(request)).launch(p, workspace_id, body)
    return JSONResponse(result.body(), status_code=result.http_status)
