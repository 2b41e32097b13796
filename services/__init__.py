"""The application and its edges: ``GamApplication`` (``app``) and one command
handler per use case (``handlers``); the HTTP API (``api``) and the ``gam`` command
line (``cli``, with the seeded ``demo`` and its terminal views); running the views
and reading them (``projector``, ``read_models``, ``time_travel``, ``audit_export``);
and publishing events to Kafka (``relay``) as CloudEvents (``envelope``) with
committed JSON Schemas (``event_schemas``), plus the reference consumer
(``subscriber``).
"""
