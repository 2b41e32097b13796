"""One settings object decides where gam keeps its events.

Environment variables (all optional):

=====================  ==========================================================
``GAM_STORE``          ``sqlite`` (default, embedded), ``postgres`` or ``memory``
``GAM_SQLITE_PATH``    SQLite file (default ``gam.db`` in the working directory)
``GAM_POSTGRES_DSN``   libpq DSN or URI, e.g. ``postgresql://gam:pw@db:5432/gam``
``GAM_POSTGRES_SCHEMA`` schema for gam's tables (default: the server's search path)
``GAM_POSTGRES_POOL_SIZE`` connections kept open (default 5)
``GAM_POSTGRES_MAX_OVERFLOW`` more connections each pool may open while busy (default 10);
                       a process's budget is in docs/operations.md (Capacity)
``GAM_KEY_STORE_PATH`` the personal-data key store, a file of its own outside the events'
                       database (default ``<sqlite file>.keys`` beside the SQLite database;
                       required with PostgreSQL); see docs/operations.md (Backup and restore)
``GAM_MASTER_KEY_FILE`` the master key every personal-data key is wrapped under (default
                       ``<key store>.master-key``, made on first use); keep it apart from
                       every backup. ``gam keys rotate-master`` replaces it
``GAM_MASTER_KEY``     the master key itself (base64 or hex of 32 bytes), instead of the file
``GAM_SNAPSHOT_INTERVAL`` take a snapshot every N events of an aggregate (default 50,
                       0 turns snapshots off)
``GAM_AGGREGATE_CACHE_SIZE`` aggregates kept in memory between commands (default 1000,
                       0 turns the cache off); a cached aggregate is fast-forwarded with
                       the events stored after it, so other writers are never missed
``GAM_VIEW_CHECKPOINT_INTERVAL`` keep a copy of an account's view every N events of the
                       account (default 1000, 0 takes none), so the account view as of a
                       moment replays only the events after the nearest copy
``GAM_READ_WAIT_SECONDS`` how long a read waits for a view to reach a caller's position
                       before answering 503 (default 5)
``GAM_MAX_BODY_BYTES`` the largest request body the API reads (default 1048576, 1 MiB);
                       a larger one is refused with 413 before anything is stored
``GAM_JWT_SECRET``     key that signs the API's bearer tokens (HS256, at least 32 bytes);
                       unset (and no public key), the API refuses every token
``GAM_JWT_PUBLIC_KEY_FILE`` PEM public key of an identity provider (RS256/ES256); when
                       set, it is used instead of the secret
``GAM_JWT_JWKS_URL``   an identity provider's JWKS (``https://…/jwks.json``, or ``file://``);
                       when set (or ``GAM_JWT_JWKS_FILE``, a local copy) tokens are checked
                       against its keys by ``kid``, instead of the secret or the PEM key
``GAM_JWT_ISSUER``     when set, a token's ``iss`` must be exactly this
``GAM_JWT_AUDIENCE``   when set, a token's ``aud`` must name this
``GAM_APPROVER_ROLES`` JSON list of the team roles that approve plans (default
                       ``["lead_gam", "executive_sponsor"]``); the submitter never approves
``GAM_API_KEYS_FILE``  JSON list of services' API keys, as SHA-256 digests with their
                       claims: ``[{"sha256": ..., "sub": ..., "roles": [...], "accounts": [...]}]``
``GAM_FX_RATES_FILE``  JSON exchange rates for the account view's conversions (default:
                       the built-in FY2027 planning rates; see projections.exchange_rates)
``GAM_KAFKA_BOOTSTRAP_SERVERS`` Kafka brokers for the relay and subscribers
                       (default ``localhost:9092``)
``GAM_KAFKA_TOPIC``    topic the relay publishes to (default ``gam.events``)
``GAM_KAFKA_MAX_POLL_INTERVAL_MS`` consumer rebalance timeout (default 300000)
``GAM_KAFKA_IDEMPOTENCE`` idempotent producer (default true). Turn it off for brokers
                       that lose acknowledged batches of an idempotent producer on a crash
                       (seen with tansu 0.6 on S3 after kill -9); ordering is then kept by one
                       request in flight, and a retry may duplicate (consumers drop duplicates).
``GAM_SIGNING_KEY_FILE`` Ed25519 key that signs the event log's checkpoints (note signer
                       key or PEM), made on first use; on SQLite by default ``<sqlite file>.signing-key``
                       beside the database; PostgreSQL signs no checkpoints until it is set
``GAM_CHECKPOINT_ORIGIN`` the log's name in its checkpoints and key (default ``gam.local/events``)
``GAM_CHECKPOINT_EVERY_EVENTS`` sign a checkpoint once this many events are not yet covered
                       (default 1000) ...
``GAM_CHECKPOINT_EVERY_SECONDS`` ... or once the oldest uncovered event waited this long (default 0.5)
``GAM_CHECKPOINT_DIR`` append-only directory checkpoints are published to (default
                       ``<sqlite file>.checkpoints`` beside the database; none for PostgreSQL)
``GAM_CHECKPOINT_TOPIC`` Kafka topic checkpoints are published to, on the relay's brokers
                       (default: none)
``GAM_POSTGRES_CONNECT_TIMEOUT`` seconds to wait for a PostgreSQL connection (default 5): a
                       process started with the database unreachable says so and exits
``GAM_LOG_FORMAT``     ``text`` (default, for a terminal) or ``json`` (one object a line)
``GAM_LOG_LEVEL``      DEBUG, INFO (default), WARNING or ERROR
``GAM_METRICS``        Prometheus ``/metrics`` and the per-request metrics (default true)
``GAM_METRICS_PORT``   port of ``gam project``'s and ``gam relay``'s ``/metrics`` and
                       ``/readyz`` (default: none; 0 picks a free one); ``GAM_METRICS_HOST``
                       the interface (default 127.0.0.1; 0.0.0.0 in a container)
``GAM_READY_MAX_LAG_EVENTS`` ``/readyz`` answers 503 while a view (or the relay) is more
                       than this many events behind the log (default 10000, 0: no limit)
``GAM_READY_MAX_LAG_SECONDS`` ... or its oldest unprocessed event is older than this
                       (default 60, 0: no limit)
``GAM_READY_RELAY_TOPIC`` the API's ``/readyz`` also counts the relay's lag on this topic
``GAM_READY_TIMEOUT_SECONDS`` ``/readyz`` answers 503 after this long (default 2)
``GAM_RATE_LIMIT_PER_PRINCIPAL`` requests a second per authenticated caller (default 300;
                       0: no limit); ``GAM_RATE_LIMIT_PER_ADDRESS`` per client address
                       (default 600); ``GAM_RATE_LIMIT_FAILED_AUTH_PER_ADDRESS`` requests with a
                       missing or bad credential per client address (default 10, against
                       guessing); bursts of ``GAM_RATE_LIMIT_BURST_SECONDS`` (10) times the rate
                       pass; past it, 429 with ``Retry-After``
``GAM_STORE_DOWN_SECONDS`` after the store failed a request, requests answer 503 at once for
                       this long (default 2; 0: never) instead of each waiting for the database
``GAM_CORS_ORIGINS``   JSON list of origins allowed to call the API from a browser (default
                       none: CORS is off)
``GAM_DOCS``           serve ``/docs``, ``/redoc`` and ``/openapi.json``, with their assets
                       from the API itself, no CDN (default true; off in production)
``GAM_RETENTION_AFTER_DEPARTURE_DAYS`` ``gam retention run`` erases the personal data of
                       people who left the customer more than this many days ago (default:
                       none, no retention policy)
``GAM_PERSONAL_DATA_GUARD`` free text that is not meant for personal data (objective
                       descriptions, deal titles, reasons...) holding an e-mail address, a
                       phone number or a stakeholder's name is refused (``refuse``: 422,
                       the default), accepted with a warning in the log (``warn``), or not
                       checked (``off``)
=====================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_BYTES = 32
ApproverRole = Literal["lead_gam", "gam", "executive_sponsor"]
DEFAULT_APPROVERS: tuple[ApproverRole, ...] = ("lead_gam", "executive_sponsor")


class Settings(BaseSettings):
    """Read from ``GAM_*`` environment variables; see the module docstring."""

    model_config = SettingsConfigDict(env_prefix="GAM_", extra="ignore")

    store: Literal["sqlite", "postgres", "memory"] = "sqlite"
    sqlite_path: Path = Path("gam.db")
    postgres_dsn: str | None = None
    postgres_schema: str | None = None
    postgres_pool_size: int = Field(default=5, ge=1)
    postgres_max_overflow: int = Field(default=10, ge=0)
    key_store_path: Path | None = None
    master_key_file: Path | None = None
    master_key: SecretStr | None = None
    snapshot_interval: int = Field(default=50, ge=0)
    aggregate_cache_size: int = Field(default=1000, ge=0)
    view_checkpoint_interval: int = Field(default=1000, ge=0)
    fx_rates_file: Path | None = None
    read_wait_seconds: float = Field(default=5.0, gt=0, le=60)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    jwt_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = Field(default=None, pattern=r"^(https?|file)://")
    jwt_jwks_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    approver_roles: list[ApproverRole] = Field(default_factory=lambda: list(DEFAULT_APPROVERS), min_length=1)
    """Team roles whose holders approve an account's plans (never the plan's own submitter)."""
    api_keys_file: Path | None = None
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_topic: str = Field(default="gam.events", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    kafka_max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    kafka_idempotence: bool = True
    kafka_compression: Literal["none", "gzip", "lz4", "zstd"] = "none"
    """How the relay's producer compresses its batches (the broker keeps them so unless the
    topic says otherwise). ``lz4`` or ``zstd`` shrink gam's JSON envelopes about threefold
    and, on the benchmark's broker, raised the relay's rate by half: see ``docs/operations.md``."""
    kafka_linger_ms: int = Field(default=5, ge=0, le=60_000)
    """How long the producer waits to fill a batch before sending it."""
    kafka_batch_bytes: int = Field(default=65_536, ge=1_024, le=16_777_216)
    """The largest batch the producer sends to one partition (Kafka's default is 16 KiB; the
    relay publishes its events 500 at a time, so larger batches mean fewer requests)."""
    signing_key_file: Path | None = None
    checkpoint_origin: str = Field(default="gam.local/events", pattern=r"^[^\s+]+$")
    checkpoint_every_events: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: float = Field(default=0.5, gt=0)
    checkpoint_dir: Path | None = None
    checkpoint_topic: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,249}$")
    postgres_connect_timeout: int = Field(default=5, ge=1, le=120)
    """Whole seconds: the event store library reads ``GAM_POSTGRES_CONNECT_TIMEOUT`` itself too."""
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    ready_max_lag_events: int = Field(default=10_000, ge=0)
    ready_max_lag_seconds: float = Field(default=60.0, ge=0)
    ready_relay_topic: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,249}$")
    ready_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    rate_limit_per_principal: float = Field(default=300.0, ge=0)
    rate_limit_per_address: float = Field(default=600.0, ge=0)
    rate_limit_failed_auth_per_address: float = Field(default=10.0, ge=0)
    rate_limit_burst_seconds: float = Field(default=10.0, gt=0)
    store_down_seconds: float = Field(default=2.0, ge=0, le=60)
    cors_origins: list[str] = Field(default_factory=list)
    docs: bool = True
    retention_after_departure_days: int | None = Field(default=None, ge=0)
    personal_data_guard: Literal["refuse", "warn", "off"] = "refuse"

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: str | None) -> str | None:
        """RFC 7518 (3.2): an HS256 key must have at least as many bits as the hash (256);
        a short secret can be found by brute force from any token it signed."""
        if not secret:
            return None
        if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            msg = f"GAM_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes (HS256), e.g. `openssl rand -hex 32`"
            raise ValueError(msg)
        return secret

    def describe_store(self) -> str:
        """A line for humans (the CLI prints it): which store, where."""
        if self.store == "sqlite":
            return f"SQLite file {self.sqlite_path.resolve()}"
        if self.store == "postgres":
            params = conninfo_to_dict(self._require_dsn())
            where = params.get("host") or "localhost"
            return f"PostgreSQL database {params.get('dbname', '?')} on {where}"
        return "in-memory store (nothing is kept)"

    def key_store_file(self) -> Path | None:
        """Where the personal-data keys live: never in the events' database, so no backup
        of it holds a key (None: in memory, with the memory store)."""
        if self.key_store_path is not None:
            return self.key_store_path
        if self.store == "sqlite":
            return self.sqlite_path.with_name(self.sqlite_path.name + ".keys")
        if self.store == "postgres":
            msg = (
                "GAM_STORE=postgres needs GAM_KEY_STORE_PATH: the personal-data keys are kept in a file "
                "outside the database (see docs/operations.md, Backup and restore)"
            )
            raise ValueError(msg)
        return None

    def master_key_path(self, key_store: Path) -> Path:
        return self.master_key_file or key_store.with_name(key_store.name + ".master-key")

    def postgres_conninfo(self) -> str:
        """A libpq conninfo for the tables gam keeps beside the events."""
        return conninfo_from_env(self.eventsourcing_env())

    def eventsourcing_env(self) -> dict[str, str]:
        """The ``eventsourcing`` library's own settings for this store."""
        env = {"IS_SNAPSHOTTING_ENABLED": "y" if self.snapshot_interval else "n"}
        # Not the library's: for an application built from this environment alone
        # (infra.personal_keys.keys_for_env), the key store these settings choose.
        if self.key_store_path is not None:
            env["GAM_KEY_STORE_PATH"] = str(self.key_store_path)
        if self.master_key_file is not None:
            env["GAM_MASTER_KEY_FILE"] = str(self.master_key_file)
        if self.master_key is not None:
            env["GAM_MASTER_KEY"] = self.master_key.get_secret_value()
        if self.aggregate_cache_size:
            # eventsourcing's repository cache; fast-forward reads newer events on every get.
            env["AGGREGATE_CACHE_MAXSIZE"] = str(self.aggregate_cache_size)
            env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
        if self.store == "memory":
            env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
        elif self.store == "sqlite":
            env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
            env["APPLICATION_RECORDER_TOPIC"] = "infra.hash_chain:SQLiteChainedRecorder"
            env["SQLITE_DBNAME"] = str(self.sqlite_path)
            env["SQLITE_LOCK_TIMEOUT"] = "10"
        else:
            env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
            env["APPLICATION_RECORDER_TOPIC"] = "infra.hash_chain:PostgresChainedRecorder"
            env.update(_postgres_env(self._require_dsn()))
            env["POSTGRES_POOL_SIZE"] = str(self.postgres_pool_size)
            env["POSTGRES_MAX_OVERFLOW"] = str(self.postgres_max_overflow)
            env["POSTGRES_CONNECT_TIMEOUT"] = str(self.postgres_connect_timeout)
            if self.postgres_schema:
                env["POSTGRES_SCHEMA"] = self.postgres_schema
        return env

    def _require_dsn(self) -> str:
        if not self.postgres_dsn:
            msg = "GAM_STORE=postgres needs GAM_POSTGRES_DSN"
            raise ValueError(msg)
        return self.postgres_dsn


_CONNINFO_KEYS = (
    ("host", "POSTGRES_HOST"),
    ("port", "POSTGRES_PORT"),
    ("user", "POSTGRES_USER"),
    ("password", "POSTGRES_PASSWORD"),
    ("dbname", "POSTGRES_DBNAME"),
)


def conninfo_from_env(env: Mapping[str, str]) -> str:
    """A libpq conninfo from ``eventsourcing``'s PostgreSQL settings, for the tables gam
    keeps beside the events (personal keys, idempotency keys); ``make_conninfo`` quotes
    values such as passwords properly."""
    params = {name: env[key] for name, key in _CONNINFO_KEYS if env.get(key)}
    if env.get("POSTGRES_CONNECT_TIMEOUT"):
        params["connect_timeout"] = str(max(1, round(float(env["POSTGRES_CONNECT_TIMEOUT"]))))
    return make_conninfo(**params)


def pool_wait_seconds(conninfo: str) -> float:
    """How long a pool of this conninfo waits for a connection: its ``connect_timeout``
    (psycopg_pool's own default, 30 s, kept a process started without its database
    silent for half a minute)."""
    timeout = conninfo_to_dict(conninfo).get("connect_timeout")
    return float(timeout) if timeout else 30.0


def _postgres_env(dsn: str) -> dict[str, str]:
    params = conninfo_to_dict(dsn)
    return {
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
    }
