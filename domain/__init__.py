"""The pure model of global accounts: aggregates, events, value objects, rules.

Nothing here does I/O. Time, ids and the acting principal come in from the edge
(see :class:`domain.metadata.EventMetadata`), so replays and tests are
deterministic.
"""
