"""Times typed on the command line: ISO 8601, UTC unless they carry an offset, a bare date at 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from services.cli import parse_moment

OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
MOMENTS = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))


@given(moment=MOMENTS, offset=OFFSETS)
def test_a_time_with_its_offset_is_that_instant(moment: datetime, offset: timezone) -> None:
    aware = moment.replace(tzinfo=offset)
    assert parse_moment(aware.isoformat()) == aware


@given(moment=MOMENTS)
def test_a_time_without_an_offset_is_utc(moment: datetime) -> None:
    assert parse_moment(moment.isoformat()) == moment.replace(tzinfo=UTC)
    assert parse_moment(moment.isoformat(sep=" ")) == moment.replace(tzinfo=UTC)


@given(day=st.dates(date(1, 1, 1), date(9999, 12, 31)))
def test_a_bare_date_is_midnight_utc(day: date) -> None:
    assert parse_moment(day.isoformat()) == datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2027-02-30", "31/03/2027", "2027-03-31T25:00", ""])
def test_anything_else_is_refused_with_the_formats(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="00:00 UTC"):
        parse_moment(text)


def test_gam_import_batches_as_the_importer_does_by_default() -> None:
    """The CLI names the importer's default without importing it (it builds a model per
    command at import, which every other ``gam`` command would pay for)."""
    from services import cli, importer

    assert cli.IMPORT_BATCH == importer.DEFAULT_BATCH
