"""The application layer and its edges: command handlers, CLI (and later HTTP, Kafka relay)."""
