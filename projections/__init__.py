"""Read models built from the event log (account view, audit trail, strategy flow)."""
