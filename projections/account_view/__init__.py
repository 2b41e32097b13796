"""Account view: the account at a glance, for the GAM.

Stored: one document per account (``account:<id>``) holding the normalised
current state of its units, team, plans, stakeholders and deals, evolved event
by event (read, change a copy, write back with the tracking position). It holds
facts only; everything that depends on *when* one reads or on exchange rates is
derived at read time by :func:`read_account_view`: the unit tree, objectives
and cascade state per unit, actions, the stakeholder map with coverage and
relationship health, the whitespace grid, the open pipeline by stage, unit and
level (weighted and unweighted, in deal and reporting currency), roll-ups up the
tree against the objectives' targets, and the win rate.

The modules, by what they hold:

* :mod:`~projections.account_view.evolve`: the stored document and how each event changes it;
* :mod:`~projections.account_view.checkpoints`: the account's coverage and checkpoints (for time travel);
* :mod:`~projections.account_view.projection`: the projection that keeps both, in one transaction;
* :mod:`~projections.account_view.read`: the whole answer, from its sections:
  :mod:`~projections.account_view.units` (the unit tree and its order),
  :mod:`~projections.account_view.plans` (objectives, cascade, actions, SWOT, reviews),
  :mod:`~projections.account_view.stakeholders` (the stakeholder map and relationship health),
  :mod:`~projections.account_view.whitespace`, :mod:`~projections.account_view.pipeline`
  (open deals), :mod:`~projections.account_view.rollups` (up the tree, against the
  targets) and :mod:`~projections.account_view.win_rate`, with
  :mod:`~projections.account_view.figures` (how money and percentages are output).
"""

from projections.account_view.checkpoints import (
    CHECKPOINT_PREFIX,
    checkpoint_key,
    checkpoints_key,
    covered_key,
    newest_checkpoint,
)
from projections.account_view.evolve import EVOLVE, IGNORED, account_key, evolve_document
from projections.account_view.projection import (
    AccountReplayProjection,
    AccountViewProjection,
    account_view_projection,
)
from projections.account_view.read import SECTIONS, TIMELESS, account_view, read_account_view
from projections.account_view.stakeholders import relationship_health

__all__ = [
    "CHECKPOINT_PREFIX",
    "EVOLVE",
    "IGNORED",
    "SECTIONS",
    "TIMELESS",
    "AccountReplayProjection",
    "AccountViewProjection",
    "account_key",
    "account_view",
    "account_view_projection",
    "checkpoint_key",
    "checkpoints_key",
    "covered_key",
    "evolve_document",
    "newest_checkpoint",
    "read_account_view",
    "relationship_health",
]
