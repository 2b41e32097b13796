"""The read side: views built from the event log, as pure logic over the documents
they read, stored through the :class:`~projections.ports.ViewRecorder` port with
their tracking position (``base``, ``ports``). The views are the account view
(``account_view``, a package: the stored document, its checkpoints and one module
per read section), the audit trail (``audit_trail``) and the strategy flow
(``strategy_flow``); ``exchange_rates`` converts deal currencies for them and
``encoding`` turns documents into canonical JSON. Nothing here knows which store
holds the views.
"""
