"""Adapters to the outside: settings and the event store's configuration
(``settings``, ``postgres_ddl``), the event mapper that seals personal data under
per-person keys kept in a key store of their own, wrapped under a master key
(``mapping``, ``personal_keys``), opened again when a view is read
(``sealed_reads``), SQLite disk hygiene (``sqlite_hygiene``), JSON transcodings of the
domain's value types (``transcodings``), the hash chain over stored events
(``hash_chain``), remembered answers for idempotency keys (``idempotency``), view
storage in memory, SQLite and PostgreSQL with a lease for a single writer
(``views_*``), and the Kafka clients (``kafka``).
"""
