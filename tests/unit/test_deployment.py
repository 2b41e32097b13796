"""The docker-compose deployment is well formed: parsed by ``docker compose config``
where Docker Compose is installed, otherwise loaded as YAML and checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


REQUIRED = {
    "GAM_POSTGRES_PASSWORD": "pw-from-the-host",
    "GAM_JWT_SECRET": "s" * 32,
    "GAM_MASTER_KEY": "bWFzdGVyLWtleS1vZi10aGUtdGVzdC0zMi1ieXRlcyE=",
}
"""What an operator must export before ``docker compose up`` (there are no defaults)."""


def _interpolated(text: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:?message}`` substitution: a required variable that is unset is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(f"{name} is required: {match.group(2)}")
        return env[name]

    return re.sub(r"\$\{(\w+):\?([^}]*)\}", value, text)


def _compose(env: dict[str, str] = REQUIRED) -> dict[str, Any]:
    text = _interpolated((ROOT / "docker-compose.yml").read_text(encoding="utf-8"), env)
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_compose_has_no_default_credentials() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert ":-" not in text  # no ${VAR:-default}
    for name in REQUIRED:
        assert f"${{{name}:?" in text
        with pytest.raises(KeyError, match=name):
            _compose({k: v for k, v in REQUIRED.items() if k != name})
    services = _compose()["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == REQUIRED["GAM_POSTGRES_PASSWORD"]
    assert services["api"]["environment"]["GAM_DOCS"] == "false"


def test_projector_and_relay_are_checked_by_their_progress_and_scraped() -> None:
    compose = _compose()
    services = compose["services"]
    for name in ("projector", "relay"):
        assert "9100/readyz" in " ".join(services[name]["healthcheck"]["test"])
        assert services[name]["environment"]["GAM_METRICS_PORT"] == "9100"
    scraped = compose["configs"]["prometheus"]["content"]
    for target in ("api:8000", "projector:9100", "relay:9100"):
        assert target in scraped


def test_compose_file_parses_with_docker_compose_when_present() -> None:
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False) if docker else None
    if probe is not None and probe.returncode == 0:
        result = subprocess.run(
            [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],  # type: ignore[list-item]
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **REQUIRED},
        )
        assert result.returncode == 0, result.stderr
    services = _compose()["services"]
    assert {"postgres", "kafka", "api", "projector", "relay"} <= set(services)


def test_services_use_the_official_images_and_this_repository_image() -> None:
    services = _compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["api"]["build"] == "."
    assert services["relay"]["image"] == services["projector"]["image"] == services["api"]["image"]
    assert (ROOT / "Dockerfile").read_text(encoding="utf-8").count("ENTRYPOINT") == 1


def test_kafka_runs_kraft_single_node() -> None:
    env = _compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "zookeeper" not in (ROOT / "docker-compose.yml").read_text(encoding="utf-8").lower()


def test_every_service_has_a_health_check_or_is_a_one_off() -> None:
    for name, service in _compose()["services"].items():
        assert "healthcheck" in service or service.get("profiles"), name


def test_gam_services_get_a_complete_configuration() -> None:
    services = _compose()["services"]
    commands = (
        ("api", ["serve", "--host", "0.0.0.0", "--port", "8000"]),
        ("projector", ["project"]),
        ("relay", ["relay"]),
    )
    for name, command in commands:
        service = services[name]
        assert service["command"] == command
        settings = Settings(**{k.removeprefix("GAM_").lower(): v for k, v in service["environment"].items()})
        assert settings.store == "postgres"
        env = settings.eventsourcing_env()
        assert (env["POSTGRES_HOST"], env["POSTGRES_USER"], env["POSTGRES_DBNAME"]) == ("postgres", "gam", "gam")
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["relay"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    postgres_env = services["postgres"]["environment"]
    dsn = services["projector"]["environment"]["GAM_POSTGRES_DSN"]
    assert f"{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}@" in dsn


def test_the_monitoring_profile_collects_traces_from_every_gam_process() -> None:
    compose = _compose()
    services = compose["services"]
    for name in ("api", "projector", "relay"):
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in services[name]["environment"]
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] is None  # passed through, no default
    collector = services["otel-collector"]
    assert collector["profiles"] == ["monitoring"]
    config = yaml.safe_load((ROOT / compose["configs"]["otel-collector"]["file"]).read_text(encoding="utf-8"))
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert all(exporter in config["exporters"] for exporter in pipeline["exporters"])
