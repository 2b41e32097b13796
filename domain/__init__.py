"""The pure model of global accounts: the aggregates ``GlobalAccount``,
``AccountPlan``, ``Stakeholder`` and ``Deal`` with their event classes and rules
(``account``, ``plan``, ``stakeholder``, ``deal``), the base classes they share
(``base``), value objects and enumerations (``values``, with the ISO tables in
``iso_codes``), one typed error per rule (``errors``), the metadata every event
carries (``metadata``) and the event catalogue with the helpers that read an
event as data (``catalog``). Nothing here does I/O or imports more than the
standard library and ``eventsourcing``'s domain classes; time, ids and the acting
principal come in from the edge, so replays and tests are deterministic.
"""
