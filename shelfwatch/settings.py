"""Settings from environment variables (prefix ``SHELFWATCH_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable. Paths default under ``home`` so one variable moves it all."""

    model_config = SettingsConfigDict(
        env_prefix="SHELFWATCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".shelfwatch")
    database_url: str | None = None
    storage_dir: Path | None = None
    backend: str = "opencv"
    model_dir: Path | None = None
    offline: bool = False
    device: str = "auto"
    quantize: str = "none"  # "int8": dynamic int8 linear layers for CLIPSeg on CPU
    clipseg_model: str = "CIDAS/clipseg-rd64-refined"
    mask2former_model: str = "facebook/mask2former-swin-tiny-coco-instance"
    oneformer_model: str = "shi-labs/oneformer_coco_swin_large"
    product_prompt: str = "a product on a shelf"
    gap_prompt: str = "empty shelf"
    max_attempts: int = 3
    lease_seconds: float = 300.0  # a dead worker's photo is taken over after this
    retry_backoff_s: float = 30.0  # first retry delay; doubles per attempt
    batch_size: int = 1  # photos per model pass in the worker (4-8 for model backends)
    dashboard_port: int = 8501
    session_idle_minutes: int = 60  # a dashboard login ends after this long unused

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'shelfwatch.db').as_posix()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or (self.home / "photos")

    def ensure_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.resolved_storage_dir.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
