"""The ops configuration: one TOML file, validated into frozen typed settings (O1)."""

from vvk_pbx.config.loader import ConfigError, Problem, default_path, load, validate
from vvk_pbx.config.model import Settings

__all__ = ["ConfigError", "Problem", "Settings", "default_path", "load", "validate"]
