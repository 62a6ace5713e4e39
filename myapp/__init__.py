"""myapp: a production-grade Flask accounts backend."""

from myapp.app import create_app

__all__ = ["create_app"]
