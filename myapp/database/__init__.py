"""Database plumbing shared by every domain; each module has one concern:

- ``columns``: column types (timestamps stored as UTC);
- ``unit_of_work``: a use case's transaction, which services commit and repositories work in;
- ``reads``: single-round-trip reads outside the session's transaction (hot paths);
- ``engine``: what every engine the app creates gets (SQLite BEGIN handling, idle pings).
"""
