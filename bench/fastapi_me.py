"""The comparison people ask about ("why not FastAPI?"): GET /api/v1/users/me as a
minimal FastAPI app, written the way FastAPI's own tutorial writes it (a sync
SQLAlchemy session per request through ``Depends``, a pydantic response model).

Same database, same tables (myapp's models), same token and the same checks as
myapp's /me: signature, algorithm, expiry, issuer, audience, token type, then one
query that the user is active, at the token's version, and the session live.
Not part of the product: bench/serve.py runs it under uvicorn beside myapp.

    DATABASE_URL=... JWT_SECRET_KEY=... uvicorn bench.fastapi_me:app --workers 2
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from myapp.auth.models import AuthSession
from myapp.users.models import User

engine = create_engine(os.environ["DATABASE_URL"])
SessionLocal = sessionmaker(bind=engine)
SECRET = os.environ["JWT_SECRET_KEY"]

app = FastAPI()


class UserOut(BaseModel):
    id: int
    email: str
    username: str
    is_active: bool
    is_admin: bool
    is_verified: bool
    created_at: datetime
    updated_at: datetime


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def unauthorized() -> HTTPException:
    return HTTPException(401, "Token is no longer valid.", {"WWW-Authenticate": "Bearer"})


def current_user(authorization: str = Header(), db: Session = Depends(get_db)) -> User:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized()
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], audience="myapp-api", issuer="myapp"
        )
        if claims.get("type") != "access":
            raise unauthorized()
        user_id, version, session_id = int(claims["sub"]), int(claims["ver"]), claims["sid"]
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise unauthorized() from None
    user = db.scalar(
        select(User)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            User.id == user_id,
            User.is_active.is_(True),
            User.token_version == version,
            AuthSession.id == session_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > datetime.now(UTC),
        )
    )
    if user is None:
        raise unauthorized()
    return user


@app.get("/api/v1/users/me", response_model=UserOut)
def me(user: User = Depends(current_user)) -> User:
    return user
