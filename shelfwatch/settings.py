"""Settings from environment variables (prefix ``SHELFWATCH_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from shelfwatch.services.storage import PhotoStore


class Settings(BaseSettings):
    """Everything configurable. Paths default under ``home`` so one variable moves it all."""

    model_config = SettingsConfigDict(
        env_prefix="SHELFWATCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".shelfwatch")
    database_url: str | None = None
    storage_dir: Path | None = None
    # Where photos and reference images live: a local folder (default: storage_dir) or an
    # fsspec URL such as s3://bucket/prefix shared by workers on several machines.
    storage_url: str | None = None
    backend: str = "opencv"
    model_dir: Path | None = None
    # The default backend also reads the second detector beside its first (facings_long.onnx)
    # and averages the two: fewer misses, about 20 ms more a photo (see the README). Off:
    # the first detector alone, for machines where every millisecond counts.
    detector_ensemble: bool = True
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

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str(self.resolved_storage_dir)

    def photo_store(self) -> PhotoStore:
        from shelfwatch.services.storage import PhotoStore

        return PhotoStore(self.resolved_storage_url, cache_dir=self.home / "cache")

    @property
    def resolved_model_dir(self) -> Path:
        """Where fine-tuned weights (``train --out``) are looked for by default."""
        return self.model_dir or (self.home / "models")

    def ensure_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.storage_url is None or "://" not in self.storage_url:
            Path(self.resolved_storage_url.removeprefix("file://")).mkdir(
                parents=True, exist_ok=True
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
