"""Settings: ``tfclaims.toml`` in the working directory, then ``TFCLAIMS_*`` variables.

Environment variables win over the file. ``TFCLAIMS_CONFIG`` names another
TOML file.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sampling import SamplingSettings

DEFAULT_DATABASE_URL = "sqlite:///tfclaims.db"


def config_file() -> Path:
    """The TOML settings file in force (it need not exist)."""
    return Path(os.environ.get("TFCLAIMS_CONFIG", "tfclaims.toml"))


class Settings(BaseSettings):
    """Every setting, with its default."""

    model_config = SettingsConfigDict(env_prefix="TFCLAIMS_", extra="forbid")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the warehouse: sqlite:///file.db or postgresql+psycopg://...",
    )
    la_code: str = Field("E06000049", description="the council's ONS code, written on claims")
    payment_per_claim: Decimal = Field(Decimal("800"), description="results payment, GBP")
    quota: int = Field(1900, description="families to be turned around by programme_end")
    programme_end: date = Field(date(2020, 3, 31), description="end of the programme")
    run_rate_months: int = Field(6, ge=1, description="months the projection's run rate averages")
    min_history: int = Field(
        50, ge=0, description="claimed families below which pipeline conversion falls back"
    )
    output_dir: Path = Field(
        Path("claims-output"), description="folder holding one folder of outputs per claim window"
    )
    templates_dir: Path | None = Field(
        None, description="a council's own templates, used before the shipped ones"
    )
    sampling: SamplingSettings = Field(
        default_factory=SamplingSettings, description="verification sampling ([sampling] table)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file()),
        )
