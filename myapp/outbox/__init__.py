"""The transactional outbox: every email the app sends is first a row, written in
the same transaction as the change that causes it, then delivered by a worker
(``flask mail-worker``), or right after the commit in development (``MAIL_EAGER``).

Used by the domains (they queue messages); imports none of them.
"""
