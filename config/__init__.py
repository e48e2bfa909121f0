"""One settings tree for the whole pipeline: ``config/settings.toml`` then ``BTT_*`` env.

Values are typed and bounded; a bad value fails at start with one message naming the
setting (:class:`ConfigError`). Modules take a :class:`Settings` (or parts of it) as a
parameter instead of reading globals.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SETTINGS_FILE = Path(__file__).with_name("settings.toml")
# The folder holding the project's packages: the checkout, or site-packages when installed
# with ``pip install .``. For code and packaged files only; data paths use data_root().
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "config" / "settings.toml").is_file()


def data_root() -> Path:
    """Where relative data paths (``data/…``) resolve: ``$BTT_ROOT``; else the checkout when
    the code runs from one; else the current directory (an installed package never writes
    into site-packages)."""
    env = os.environ.get("BTT_ROOT")
    if env:
        return Path(env).resolve()
    return PROJECT_ROOT if is_checkout(PROJECT_ROOT) else Path.cwd().resolve()


class ConfigError(ValueError):
    """A setting is invalid; the message names it (``settings``: the names, when known)."""

    def __init__(self, message: str, settings: list[str] | None = None) -> None:
        super().__init__(message)
        self.settings = settings or []


def normalize_origin(value: str) -> str:
    """``value`` as an ``http(s)://host[:port]`` origin; ValueError says what is wrong."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"must be an origin without path or query: {value!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as err:
        raise ValueError(f"bad port in {value!r}: {err}") from None
    return f"{parts.scheme}://{parts.netloc}"


def unknown_categories(keys: list[str]) -> list[str]:
    """The keys (slug, ``<slug>-<id>ct<parent>`` or id) that name no known category."""
    from baotintuc.site import category_by_key

    return [k for k in keys if category_by_key(k) is None]


class Politeness(BaseModel):
    """How a crawl treats the site: the ``[crawl]`` settings a crawl request carries."""

    user_agent: str = Field(min_length=8)
    obey_robots_txt: bool = True
    download_delay: float = Field(1.0, ge=0)
    autothrottle: bool = True
    autothrottle_target_concurrency: float = Field(1.0, gt=0)
    concurrent_requests: int = Field(2, ge=1, le=64)
    download_timeout: float = Field(30, gt=0)
    retry_times: int = Field(3, ge=0, le=20)
    retry_backoff_base: float = Field(2.0, ge=0)
    retry_backoff_max: float = Field(120.0, ge=0)
    max_page_bytes: int = Field(10 * 1024 * 1024, gt=1024)


class CrawlSettings(Politeness):
    base_url: str = "https://baotintuc.vn"
    contact: str = ""
    categories: list[str] = Field(default_factory=list)
    max_pages: int = Field(1, ge=1, le=1000)
    feeds: list[str] = Field(default_factory=list)
    discover_feed_index: bool = True
    recheck_max_age_hours: float = Field(72, ge=0)
    recheck_interval_hours: float = Field(6, gt=0)
    recheck_max_per_run: int = Field(100, ge=0)
    loopback_polite: bool = False
    busy_wait_seconds: float = Field(900, ge=0)
    offline_probe_timeout: float = Field(10, gt=0, le=30)
    max_articles_per_run: int = Field(1000, ge=0)  # 0 = no cap
    sitemaps: bool = True
    queued_articles: int = Field(2000, ge=10)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return normalize_origin(v)

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, v: list[str]) -> list[str]:
        unknown = unknown_categories(v)
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(unknown)}")
        return v

    @property
    def full_user_agent(self) -> str:
        return f"{self.user_agent} contact: {self.contact}" if self.contact else self.user_agent

    def politeness(self) -> Politeness:
        """These settings as a crawl request carries them (the contact in the User-Agent)."""
        values = {name: getattr(self, name) for name in Politeness.model_fields}
        return Politeness(**values | {"user_agent": self.full_user_agent})


class PathSettings(BaseModel):
    data_dir: Path = Path("data")
    db_path: Path = Path("data/baotintuc.duckdb")
    raw_dir: Path = Path("data/raw")
    runs_dir: Path = Path("data/runs")
    prefect_home: Path = Path("data/prefect")
    reports_dir: Path = Path("data/reports")

    def resolved(self, root: Path) -> PathSettings:
        """Relative paths are taken from ``root`` (the project directory by default)."""
        return PathSettings(
            **{k: (v if v.is_absolute() else root / v) for k, v in self.model_dump().items()}
        )


class ArchiveSettings(BaseModel):
    segment_pages: int = Field(200, ge=1, le=100_000)
    segment_seconds: float = Field(30.0, gt=0)
    gzip_level: int = Field(2, ge=0, le=3)


class RunSettings(BaseModel):
    max_failure_share: float = Field(0.5, ge=0, le=1)
    min_fetches_for_failure_share: int = Field(10, ge=1)
    stop_grace_seconds: float = Field(5.0, gt=0, le=8)
    parse_workers: int = Field(1, ge=0, le=64)


class WarehouseSettings(BaseModel):
    lock_timeout_seconds: float = Field(60, ge=0)
    lock_retry_interval_seconds: float = Field(1.0, gt=0)
    writer_memory_limit: str = Field("64MB", pattern=r"^(\d+(\.\d+)?\s*(KB|MB|GB)|)$")
    row_group_size: int = Field(2048, ge=0, multiple_of=2048)


class ExtractSettings(BaseModel):
    body_min_chars: int = Field(80, ge=0)


class QualitySettings(BaseModel):
    min_fill_rate: dict[str, float] = Field(default_factory=dict)
    max_generic_parser_share: float = Field(0.0, ge=0, le=1)
    min_pages_for_gate: int = Field(5, ge=0)

    @field_validator("min_fill_rate")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: r for k, r in v.items() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"fill rates must be within 0..1: {bad}")
        return v


class PrefectServerSettings(BaseModel):
    """The local background Prefect server (``baotintuc server start``); state in
    ``paths.prefect_home``. Ignored when ``PREFECT_API_URL`` names another server."""

    background: bool = True  # false: a temporary in-process server per run (slow start-up)
    host: str = "127.0.0.1"
    port: int = Field(4200, ge=1, le=65535)
    startup_timeout_seconds: float = Field(90, gt=0)
    stop_timeout_seconds: float = Field(10, gt=0)
    log_level: str = Field("WARNING", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    heartbeat_seconds: int = Field(30, ge=30)  # Prefect's minimum is 30
    crash_silent_runs_after_seconds: int = Field(150, ge=60)


class SearchSettings(BaseModel):
    """Ranking of ``baotintuc search`` (BM25F) and upkeep of its index."""

    title_weight: float = Field(3.0, gt=0)
    sapo_weight: float = Field(1.5, gt=0)
    body_weight: float = Field(1.0, gt=0)
    k1: float = Field(1.2, ge=0)
    b: float = Field(0.75, ge=0, le=1)
    snippet_chars: int = Field(240, ge=40, le=5000)
    # Re-sort the postings when more than this share was appended since the last sort.
    compact_unsorted_share: float = Field(0.15, gt=0, le=1)
    # DuckDB's memory while the index is updated after a run (it spills to disk above it).
    index_memory_limit: str = Field("128MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB)$")
    compact_memory_limit: str = Field("64MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB)$")


class MirrorSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    site_dir: Path = Path("data/mirror/site")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BTT_", env_nested_delimiter="__", extra="forbid", toml_file=SETTINGS_FILE
    )

    crawl: CrawlSettings
    paths: PathSettings = PathSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    archive: ArchiveSettings = ArchiveSettings()
    run: RunSettings = RunSettings()
    extract: ExtractSettings = ExtractSettings()
    quality: QualitySettings = QualitySettings()
    search: SearchSettings = SearchSettings()
    mirror: MirrorSettings = MirrorSettings()
    prefect_server: PrefectServerSettings = PrefectServerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("BTT_SETTINGS_FILE") or SETTINGS_FILE
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        name = ".".join(str(p) for p in e["loc"])
        env = "BTT_" + "__".join(str(p).upper() for p in e["loc"])
        lines.append(f"setting {name} (env {env}): {e['msg']}")
    return "; ".join(lines)


def load_settings(root: Path | None = None, **overrides: Any) -> Settings:
    """Load settings; relative paths resolve against ``root`` (default: :func:`data_root`).

    Raises:
        ConfigError: naming each invalid setting and its environment variable.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    base = root or data_root()
    settings.paths = settings.paths.resolved(base)
    if not settings.mirror.site_dir.is_absolute():
        settings.mirror.site_dir = base / settings.mirror.site_dir
    _check_paths(settings.paths)
    return settings


def get_settings() -> Settings:
    """The settings of this process, loaded once per environment.

    The CLI and the flows it runs share them; a spider process loads none (it reads its
    request). They are loaded again only when a ``BTT_*`` variable changes.
    """
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("BTT_")))
    return _settings_for(key)


@functools.lru_cache(maxsize=8)
def _settings_for(env: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings()


def _file_in_the_way(directory: Path) -> Path | None:
    """The regular file at ``directory`` or at one of its ancestors, if any: then no
    directory can ever be created there (for root either)."""
    for p in (directory, *directory.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def _check_paths(paths: PathSettings) -> None:
    """Fail at start, naming the setting, when a data path lies under a regular file.

    Only this side-effect-free, permission-independent check is done here (read-only
    commands such as ``query`` load the same settings); writability is checked by the
    commands that write.
    """
    problems = []
    for name, value in paths.model_dump().items():
        directory = value.parent if name == "db_path" else value
        blocker = _file_in_the_way(directory)
        if blocker is not None:
            env = f"BTT_PATHS__{name.upper()}"
            problems.append(
                f"setting paths.{name} (env {env}): {value} cannot be created, "
                f"{blocker} is a file, not a directory"
            )
    if problems:
        raise ConfigError("; ".join(problems))


__all__ = [
    "PROJECT_ROOT",
    "ConfigError",
    "Politeness",
    "QualitySettings",
    "Settings",
    "WarehouseSettings",
    "data_root",
    "get_settings",
    "load_settings",
    "normalize_origin",
    "unknown_categories",
]
