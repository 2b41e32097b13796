"""Adapters: event-store configuration, transcodings, and (later) read-model storage, Kafka, crypto."""
