"""Adapters to the outside: settings and the event store's configuration
(``settings``, ``postgres_ddl``), the event mapper that seals personal data under
per-person keys (``mapping``, ``personal_keys``) and JSON transcodings of the
domain's value types (``transcodings``), the hash chain over stored events
(``hash_chain``), remembered answers for idempotency keys (``idempotency``), view
storage in memory, SQLite and PostgreSQL with a lease for a single writer
(``views_*``), and the Kafka clients (``kafka``).
"""
