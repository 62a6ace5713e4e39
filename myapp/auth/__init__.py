"""Authentication: registration, login and JWT handling."""
