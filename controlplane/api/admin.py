"""/api/v1/machines, /api/v1/workspaces, /api/v1/tokens — administration.

Admin tokens create, change and delete machines, workspaces and tokens, and see every owner's machines
and workspaces. Other tokens may list and read only their own machines and workspaces (another
owner's → 404); mutations need an admin token (403). A machine's daemon token is never returned.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import (
    client_for,
    conflict,
    field_error,
    get_db,
    not_found,
    owned_machine,
    owned_workspace,
)
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, create_token, current_principal, require_admin, token_cache
from controlplane.daemons import message_to_dict
from controlplane.db.models import AgentSession, Machine, Token, Workspace, new_id, utcnow
from controlplane.schemas import (
    Enrolled,
    EnrollmentOut,
    EnrollRequest,
    MachineCreate,
    MachineCreated,
    MachineOut,
    MachineUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    WorkspaceCreate,
    WorkspaceOut,
    WorkspaceUpdate,
)
from controlplane.services import get_services
from controlplane.statuses import NOT_ENDED

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["admin"], route_class=StrictJSONRoute)
# Called with no bearer token (the enrollment token is the proof); included through `router` below.
public_router = APIRouter(tags=["admin"], route_class=StrictJSONRoute)
Db = Annotated[AsyncSession, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]


def _machine_out(m: Machine, request: Request) -> dict:
    out = {
        "id": m.id,
        "owner": m.owner,
        "name": m.name,
        "address": m.address,
        "has_tls_ca": bool(m.tls_ca),
        "has_token": bool(m.token),
        "created_at": m.created_at,
        "dial_out": bool(m.dial_out),
    }
    if m.dial_out:
        dial_out = get_services(request).dial_out
        online = dial_out is not None and dial_out.online(m.id)
        out |= {
            "enrolled": m.credential_hash is not None,
            "online": online,
            "connected_since": m.connected_since,
            # Open tunnel: seen now (its keepalives close a dead one within 20 s); else: when it closed.
            "last_seen": utcnow() if online else m.last_seen,
        }
    return out


def _dial_out_of(request: Request):
    dial_out = get_services(request).dial_out
    if dial_out is None:
        raise conflict("dial_out: this control plane has no [tunnel] listener for machines that dial out")
    return dial_out


def _workspace_out(w: Workspace) -> dict:
    return {
        "id": w.id,
        "owner": w.owner,
        "name": w.name,
        "repository": w.repository,
        "default_machine_id": w.default_machine_id,
        "base_ref": w.base_ref,
        "created_at": w.created_at,
        "allowed_tools": list(w.allowed_tools or []),
        "approval_timeout_seconds": w.approval_timeout_seconds,
        "max_turns": w.max_turns,
        "max_cost_usd": w.max_cost_usd,
    }


# --- machines ------------------------------------------------------------------------------------


@router.post("/machines", response_model=MachineCreated, status_code=201)
async def create_machine(body: MachineCreate, request: Request, db: Db, p: Admin) -> dict:
    """Register a machine's daemon (address `unix:/path` or `host:port`, optional TLS CA and token; the
    token is stored encrypted), or with `dial_out: true` one whose daemon dials the control plane: the
    answer's `enrollment_token` (shown once) is what `berth-daemon enroll` trades for its credential."""
    if body.dial_out:
        if body.address is not None or body.tls_ca is not None or body.token is not None:
            raise field_error("address", "a dial-out machine has no address, tls_ca or token: its daemon dials in")
        dial_out = _dial_out_of(request)
    elif body.address is None:
        raise field_error("address", "is required (or dial_out: true)")
    m = Machine(
        id=new_id("machine"),
        owner=body.owner or p.owner,
        name=body.name,
        address=body.address or "tunnel",
        tls_ca=body.tls_ca,
        token=get_services(request).sealer.seal(body.token),
        dial_out=body.dial_out,
    )
    enrollment = dial_out.new_enrollment(m) if body.dial_out else None
    db.add(m)
    await db.commit()
    return {**_machine_out(m, request), "enrollment_token": enrollment}


@router.post("/machines/{machine_id}/enrollment", response_model=EnrollmentOut, status_code=201)
async def new_enrollment(machine_id: str, request: Request, db: Db, p: Admin) -> dict:
    """A new one-time enrollment token for a dial-out machine (enrolling with it replaces the credential)."""
    m = await owned_machine(db, p, machine_id, admin_sees_all=True)
    if not m.dial_out:
        raise conflict(f"machine {m.id!r} does not dial out: it is reached at its address")
    token = _dial_out_of(request).new_enrollment(m)
    expires = m.enrollment_expires_at
    await db.commit()
    return {"machine_id": m.id, "enrollment_token": token, "expires_at": expires}


@router.post("/machines/{machine_id}/revoke", response_model=MachineOut)
async def revoke_machine(machine_id: str, request: Request, db: Db, p: Admin) -> dict:
    """Forget a dial-out machine's credential and close its tunnel; it reconnects only after enrolling again."""
    m = await owned_machine(db, p, machine_id, admin_sees_all=True)
    if not m.dial_out:
        raise conflict(f"machine {m.id!r} does not dial out: it has no credential to revoke")
    _dial_out_of(request).revoke(m)
    await db.commit()
    return _machine_out(m, request)


@public_router.post("/enroll", response_model=Enrolled)
async def enroll(body: EnrollRequest, request: Request) -> dict:
    """Trade a machine's one-time enrollment token for its credential (no bearer token: the enrollment
    token is the proof). 401 for a wrong, used or expired token."""
    done = await _dial_out_of(request).enroll(body.token)
    return dataclasses.asdict(done)


@router.get("/machines", response_model=list[MachineOut])
async def list_machines(request: Request, db: Db, p: Caller) -> list[dict]:
    q = select(Machine).order_by(Machine.created_at, Machine.id)
    if not p.is_admin:
        q = q.where(Machine.owner == p.owner)
    return [_machine_out(m, request) for m in (await db.execute(q)).scalars().all()]


@router.get("/machines/{machine_id}", response_model=MachineOut)
async def get_machine(machine_id: str, request: Request, db: Db, p: Caller) -> dict:
    return _machine_out(await owned_machine(db, p, machine_id, admin_sees_all=True), request)


@router.get("/machines/{machine_id}/info")
async def machine_info(machine_id: str, request: Request, db: Db, p: Caller) -> dict:
    """The daemon's GetMachineInfo (versions, sessions by status) — also a connectivity check."""
    m = await owned_machine(db, p, machine_id, admin_sees_all=True)
    return message_to_dict(await client_for(request, m).machine_info())


@router.patch("/machines/{machine_id}", response_model=MachineOut)
async def update_machine(machine_id: str, body: MachineUpdate, request: Request, db: Db, p: Admin) -> dict:
    m = await owned_machine(db, p, machine_id, admin_sees_all=True)
    for k, v in body.model_dump(exclude_unset=True).items():
        if k in ("name", "address") and v is None:
            raise field_error(k, "must not be null")
        if m.dial_out and k in ("address", "tls_ca", "token"):
            raise field_error(k, "a dial-out machine has no address, tls_ca or token: its daemon dials in")
        if k == "token":
            v = get_services(request).sealer.seal(v)
        setattr(m, k, (v or None) if k in ("tls_ca", "token") else v)
    await db.commit()
    await get_services(request).pool.forget(m.id)
    return _machine_out(m, request)


@router.delete("/machines/{machine_id}", status_code=204)
async def delete_machine(machine_id: str, request: Request, db: Db, p: Admin) -> Response:
    m = await owned_machine(db, p, machine_id, admin_sees_all=True)
    running = (
        await db.execute(
            select(func.count()).where(
                AgentSession.machine_id == m.id,
                AgentSession.status.in_(NOT_ENDED),
                AgentSession.launched.is_(True),
            )
        )
    ).scalar_one()
    if running:
        raise conflict(f"machine {m.id!r} has {running} running session(s); stop or delete them first")
    dial_out = get_services(request).dial_out
    await db.delete(m)
    await db.commit()
    if dial_out is not None:
        dial_out.server.revoke(machine_id)  # its credential went with the row
    await get_services(request).pool.forget(machine_id)
    return Response(status_code=204)


# --- workspaces ----------------------------------------------------------------------------------


async def _check_machine_for(db: AsyncSession, machine_id: str | None, owner: str) -> None:
    if machine_id is None:
        return
    m = await db.get(Machine, machine_id)
    if m is None or m.owner != owner:
        raise field_error("default_machine_id", f"no machine {machine_id!r} belongs to owner {owner!r}")


@router.post("/workspaces", response_model=WorkspaceOut, status_code=201)
async def create_workspace(body: WorkspaceCreate, db: Db, p: Admin) -> dict:
    """Create a workspace: a repository path or clone URL on the machine, and its default machine."""
    owner = body.owner or p.owner
    await _check_machine_for(db, body.default_machine_id, owner)
    w = Workspace(
        id=new_id("ws"),
        owner=owner,
        name=body.name,
        repository=body.repository,
        default_machine_id=body.default_machine_id,
        base_ref=body.base_ref,
        allowed_tools=list(body.allowed_tools),
        approval_timeout_seconds=body.approval_timeout_seconds,
        max_turns=body.max_turns,
        max_cost_usd=body.max_cost_usd,
    )
    db.add(w)
    await db.commit()
    return _workspace_out(w)


@router.get("/workspaces", response_model=list[WorkspaceOut])
async def list_workspaces(db: Db, p: Caller) -> list[dict]:
    q = select(Workspace).order_by(Workspace.created_at, Workspace.id)
    if not p.is_admin:
        q = q.where(Workspace.owner == p.owner)
    return [_workspace_out(w) for w in (await db.execute(q)).scalars().all()]


@router.get("/workspaces/{workspace_id}", response_model=WorkspaceOut)
async def get_workspace(workspace_id: str, db: Db, p: Caller) -> dict:
    return _workspace_out(await owned_workspace(db, p, workspace_id, admin_sees_all=True))


@router.patch("/workspaces/{workspace_id}", response_model=WorkspaceOut)
async def update_workspace(workspace_id: str, body: WorkspaceUpdate, db: Db, p: Admin) -> dict:
    w = await owned_workspace(db, p, workspace_id, admin_sees_all=True)
    changes = body.model_dump(exclude_unset=True)
    if "allowed_tools" in changes and changes["allowed_tools"] is None:
        changes["allowed_tools"] = []
    for k in ("name", "repository"):
        if k in changes and changes[k] is None:
            raise field_error(k, "must not be null")
    if "default_machine_id" in changes:
        await _check_machine_for(db, changes["default_machine_id"], w.owner)
    for k, v in changes.items():
        setattr(w, k, v)
    await db.commit()
    return _workspace_out(w)


@router.delete("/workspaces/{workspace_id}", status_code=204)
async def delete_workspace(workspace_id: str, db: Db, p: Admin) -> Response:
    """Delete a workspace and its (stopped) sessions; refused while a session still runs."""
    w = await owned_workspace(db, p, workspace_id, admin_sees_all=True)
    running = (
        await db.execute(
            select(func.count()).where(
                AgentSession.workspace_id == w.id,
                AgentSession.status.in_(NOT_ENDED),
                AgentSession.launched.is_(True),
            )
        )
    ).scalar_one()
    if running:
        raise conflict(f"workspace {w.id!r} has {running} running session(s); stop or delete them first")
    await db.delete(w)
    await db.commit()
    return Response(status_code=204)


# --- tokens --------------------------------------------------------------------------------------


def _token_out(t: Token) -> dict:
    return {"id": t.id, "owner": t.owner, "is_admin": t.is_admin, "name": t.name, "created_at": t.created_at}


@router.post("/tokens", response_model=TokenCreated, status_code=201)
async def create_owner_token(body: TokenCreate, db: Db, p: Admin) -> dict:
    """Create a token for an owner; the token is shown only in this response (its hash is stored)."""
    row, plain = await create_token(db, body.owner, is_admin=body.is_admin, name=body.name)
    await db.commit()
    return {**_token_out(row), "token": plain}


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(db: Db, p: Admin) -> list[dict]:
    rows = (await db.execute(select(Token).order_by(Token.created_at, Token.id))).scalars().all()
    return [_token_out(t) for t in rows]


@router.delete("/tokens/{token_id}", status_code=204)
async def delete_token(token_id: str, request: Request, db: Db, p: Admin) -> Response:
    t = await db.get(Token, token_id)
    if t is None:
        raise not_found("token", token_id)
    await db.delete(t)
    await db.commit()
    token_cache(request.app).drop_token(token_id)
    return Response(status_code=204)


router.include_router(public_router)
