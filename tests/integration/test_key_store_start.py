"""gam's processes start together on a fresh volume (``docker compose up``): they must
agree on one master key, or keys wrapped by one could not be opened by the others."""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import uuid4

from infra.personal_keys import keys_for
from infra.settings import Settings


def test_stores_opened_together_on_a_fresh_folder_share_one_master_key(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")
    starting = 8
    barrier = threading.Barrier(starting)
    subjects = [uuid4() for _ in range(starting)]
    errors: list[str] = []

    def start(subject_index: int) -> None:
        try:
            barrier.wait()
            keys = keys_for(settings)
            keys.key(subjects[subject_index], create=True)
            keys.close()
        except Exception as error:
            errors.append(repr(error)[:200])

    threads = [threading.Thread(target=start, args=(n,)) for n in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir() if "master-key" in p.name) == ["gam.db.keys.master-key"]
    reopened = keys_for(settings)
    assert all(reopened.key(subject, create=False) is not None for subject in subjects)
    reopened.close()
