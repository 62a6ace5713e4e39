"""In-process profile of GET /api/v1/users/me, with flask-jwt-extended's own token
decoding (three decodes) and with ours (one), in alternating rounds on one app, so
that both see the same machine load. Prints µs per request for each, and with
``--profile`` the functions that take the most time in ours.

    .venv/bin/python bench/profile_me.py [--requests 2000] [--rounds 5] [--algorithm EdDSA]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import statistics
import sys
import time
from pathlib import Path

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from flask_jwt_extended import JWTManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from myapp import create_app  # noqa: E402
from myapp.extensions import SingleDecodeJWTManager, db, jwt, passwords  # noqa: E402
from myapp.users.models import User  # noqa: E402

PASSWORD = "a long bench password"


def signature_costs(token: str, repeat: int = 2000) -> dict[str, float]:
    """µs per verified decode of ``token``'s claims, signed with each algorithm."""
    from jwt.algorithms import get_default_algorithms

    claims = pyjwt.decode(token, options={"verify_signature": False})
    keys = {
        "HS256": (secrets.token_bytes(32),) * 2,
        "EdDSA": (private := ed25519.Ed25519PrivateKey.generate(), private.public_key()),
        "RS256": (rsa_key := rsa.generate_private_key(65537, 3072), rsa_key.public_key()),
    }
    assert set(keys) <= set(get_default_algorithms())
    costs = {}
    for algorithm, (signing, verifying) in keys.items():
        signed = pyjwt.encode(claims, signing, algorithm=algorithm)
        options = {"verify_aud": False, "verify_exp": False, "verify_iat": False}
        started = time.perf_counter()
        for _ in range(repeat):
            pyjwt.decode(signed, verifying, algorithms=[algorithm], options=options)
        costs[algorithm] = (time.perf_counter() - started) / repeat * 1e6
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--algorithm", default="HS256", choices=["HS256", "EdDSA", "RS256"])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    app = create_app("testing", overrides={"JWT_ALGORITHM": args.algorithm})
    with app.app_context():
        db.create_all()
        hashed = passwords.hash(PASSWORD)
        db.session.add(User(email="bench@example.com", username="bench", password_hash=hashed))
        db.session.commit()
    client = app.test_client()
    login = {"email": "bench@example.com", "password": PASSWORD}
    token = client.post("/api/v1/auth/login", json=login).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ours = SingleDecodeJWTManager._decode_jwt_from_config
    library = JWTManager._decode_jwt_from_config

    def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            client.get("/api/v1/users/me", headers=headers)
        return (time.perf_counter() - started) / n * 1e6

    run(200)  # warm up
    timings: dict[str, list[float]] = {"library (3 decodes)": [], "ours (1 decode)": []}
    for _ in range(args.rounds):
        for name, method in (("library (3 decodes)", library), ("ours (1 decode)", ours)):
            type(jwt)._decode_jwt_from_config = method  # type: ignore[method-assign]
            timings[name].append(run(args.requests))
    type(jwt)._decode_jwt_from_config = ours  # type: ignore[method-assign]

    print(f"GET /me in process, {args.algorithm} tokens, median of {args.rounds} rounds:")
    for name, values in timings.items():
        print(f"  {name:<22} {statistics.median(values):7.0f} µs per request")
    print("One verified decode of the same claims with PyJWT, per signing algorithm:")
    for algorithm, microseconds in signature_costs(token).items():
        print(f"  {algorithm:<22} {microseconds:7.0f} µs")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, args.requests)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
