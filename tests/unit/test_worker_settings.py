"""A worker reads its settings by field name, so one restarted after an upgrade
(newer code than its supervisor's) is not handed values in the wrong fields."""

from __future__ import annotations

import pickle

import pytest

from autosdlc_ws.config import Settings
from autosdlc_ws.server.worker_settings import settings_for_worker, settings_from_supervisor


def test_settings_round_trip() -> None:
    settings = Settings(log_level="DEBUG", log_format="json", workers=2, broker="redis://r:6379/0")
    assert settings_from_supervisor(settings_for_worker(settings)) == settings


def test_fields_added_or_removed_between_versions_do_not_shift_the_others() -> None:
    named = pickle.loads(settings_for_worker(Settings(log_level="WARNING", log_format="text")))
    del named["redis_partitions"]  # the supervisor's older code had no such field
    named["some_future_field"] = 42  # or the worker's older code has none
    settings = settings_from_supervisor(pickle.dumps(named))
    assert settings.log_level == "WARNING" and settings.log_format == "text"
    assert settings.redis_partitions == Settings().redis_partitions


def test_anything_else_is_refused() -> None:
    with pytest.raises(ValueError):
        settings_from_supervisor(pickle.dumps(["not", "by", "name"]))
