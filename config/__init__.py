"""One settings tree for the whole pipeline: ``config/settings.toml`` then ``BTT_*`` env.

Values are typed and bounded; a bad value fails at start with one message naming the
setting (:class:`ConfigError`). Modules take a :class:`Settings` (or parts of it) as a
parameter instead of reading globals.
"""

from __future__ import annotations

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
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting is invalid; the message names it."""


class CrawlSettings(BaseModel):
    base_url: str = "https://baotintuc.vn"
    user_agent: str = Field(min_length=8)
    contact: str = ""
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

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {v!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"must be an origin without path or query: {v!r}")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, v: list[str]) -> list[str]:
        from baotintuc.site import category_by_key

        unknown = [c for c in v if category_by_key(c) is None]
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(unknown)}")
        return v

    @property
    def full_user_agent(self) -> str:
        return f"{self.user_agent} contact: {self.contact}" if self.contact else self.user_agent


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


class WarehouseSettings(BaseModel):
    lock_timeout_seconds: float = Field(60, ge=0)
    lock_retry_interval_seconds: float = Field(1.0, gt=0)


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
    extract: ExtractSettings = ExtractSettings()
    quality: QualitySettings = QualitySettings()
    search: SearchSettings = SearchSettings()
    mirror: MirrorSettings = MirrorSettings()

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
    """Load settings; relative paths resolve against ``root`` (default: project root).

    Raises:
        ConfigError: naming each invalid setting and its environment variable.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    base = root or Path(os.environ.get("BTT_ROOT", PROJECT_ROOT))
    settings.paths = settings.paths.resolved(base)
    if not settings.mirror.site_dir.is_absolute():
        settings.mirror.site_dir = base / settings.mirror.site_dir
    _check_paths(settings.paths)
    return settings


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


def check_base_url(value: str, setting: str = "--base-url") -> str:
    """``value`` as an ``http(s)://host[:port]`` origin, else :class:`ConfigError` naming
    ``setting`` (for origins given outside the settings tree, e.g. on the command line)."""
    try:
        return CrawlSettings._check_url(value)
    except ValueError as err:
        raise ConfigError(f"{setting}: {err}") from None


__all__ = ["ConfigError", "Settings", "check_base_url", "load_settings", "PROJECT_ROOT"]
