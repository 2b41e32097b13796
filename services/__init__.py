"""The application and its edges: ``GamApplication`` (``app``), the message bus
every command goes through (``bus``) with the registry of which aggregate decides
each command (``handlers``), and the composition root that builds a process's
runtime from settings (``bootstrap``); the HTTP API (``api``), bulk import
(``importer``) and the ``gam`` command line (``cli``, with the seeded ``demo`` and
its terminal views); running the views and reading them (``projector``,
``read_models``, ``time_travel``, ``audit_export``); and publishing events to Kafka
(``relay``) as CloudEvents (``envelope``) with committed JSON Schemas
(``event_schemas``), plus the reference consumer (``subscriber``).
"""
