"""Server settings: one model, read from CLI flags, POWERINFER_* environment variables and a config file.

Precedence, highest first: command-line flag, environment variable (``POWERINFER_N_CTX=4096``),
config file (JSON, or YAML when PyYAML is installed; ``--config-file`` or ``POWERINFER_CONFIG_FILE``),
then the defaults below. Every field is a flag spelled with dashes or underscores (``--n-ctx``/``--n_ctx``).
"""
from __future__ import annotations

import argparse
import json
import os
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Type

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "POWERINFER_"


class Settings(BaseSettings):
    """Everything the server needs: where to listen, which model, how to load it."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", protected_namespaces=())

    # -- the model
    model: str = Field(description="path of the GGUF model file")
    model_alias: Optional[str] = Field(default=None, description="name shown in /v1/models (default: the file name)")
    n_ctx: int = Field(default=2048, ge=16, le=1 << 20, description="context window in tokens")
    n_batch: int = Field(default=512, ge=1, description="prompt tokens evaluated per decode call")
    n_threads: Optional[int] = Field(default=None, ge=1, description="CPU threads for generation (default: all cores)")
    n_threads_batch: Optional[int] = Field(default=None, ge=1, description="CPU threads for prompt evaluation")
    n_gpu_layers: int = Field(default=0, description="layers to offload to the GPU (-1: all)")
    seed: int = Field(default=0xFFFFFFFF, description="default sampling seed (0xFFFFFFFF: random)")
    chat_format: Optional[str] = Field(default=None, description="chat format name (default: the model's template)")
    embedding: bool = Field(default=True, description="enable /v1/embeddings (mean-pooled hidden states)")
    logits_all: bool = Field(default=False, description="keep logits of every position, needed for logprobs "
                                                        "(costs n_ctx x n_vocab floats)")
    use_mmap: bool = Field(default=True, description="map the model file instead of reading it")
    sparse_mode: Optional[str] = Field(default=None, description="sparse FFN mode passed to Llama")
    offload_device: Optional[str] = Field(default=None, description="device for a ReLU model's hot FFN neurons: "
                                                                    "cuda, cuda:N or cpu-standin")
    vram_budget: Optional[str] = Field(default=None, description="device budget: bytes, or text such as 12GiB")
    gpu_index: Optional[str] = Field(default=None, description="PowerInfer .generated.gpuidx (which neurons go there)")
    offload_profile: Optional[str] = Field(default=None, description="activation profile .npz: our solver places "
                                                                     "the hot neurons under vram_budget")
    verbose: bool = Field(default=False, description="log loading details to stderr")

    # -- the HTTP side
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port)")
    api_key: Optional[str] = Field(default=None, description="if set, requests need 'Authorization: Bearer KEY'")
    ssl_keyfile: Optional[str] = Field(default=None, description="TLS private key file")
    ssl_certfile: Optional[str] = Field(default=None, description="TLS certificate file")
    max_queue: int = Field(default=64, ge=1, description="requests allowed to wait for the model; more get 503")
    log_level: str = Field(default="info", description="uvicorn log level")


class _DictSource(PydanticBaseSettingsSource):
    """Values from an already-read config file, below the environment in precedence."""

    def __init__(self, settings_cls: Type[BaseSettings], values: Dict[str, Any]):
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> Tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> Dict[str, Any]:
        return dict(self._values)


def read_config_file(path: str) -> Dict[str, Any]:
    """A flat mapping of setting names to values from a .json, .yaml or .yml file."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise ValueError(f"{path}: reading YAML config files needs PyYAML (pip install pyyaml)") from e
        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of setting names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_settings(cli_values: Optional[Dict[str, Any]] = None, config_file: Optional[str] = None) -> Settings:
    """Settings from flags (cli_values, None entries ignored) over env over config file over defaults."""
    config_file = config_file or os.environ.get(ENV_PREFIX + "CONFIG_FILE")
    file_values = read_config_file(config_file) if config_file else {}

    class _Layered(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                       file_secret_settings):
            return (init_settings, env_settings, _DictSource(settings_cls, file_values))

    given = {k: v for k, v in (cli_values or {}).items() if v is not None}
    return Settings.model_construct(**_Layered(**given).model_dump())


def _flag_type(annotation) -> Tuple[Any, bool]:
    """(argparse type, is_bool) for a field annotation such as Optional[int]."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if args else annotation
    if base is bool:
        return None, True
    return (base if base in (int, float) else str), False


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field (defaults None, so unset flags fall through to env/file/defaults)."""
    parser.add_argument("--config-file", "--config_file", dest="config_file", default=None,
                        help="JSON or YAML file of settings (env: POWERINFER_CONFIG_FILE)")
    for name, field in Settings.model_fields.items():
        typ, is_bool = _flag_type(field.annotation)
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        default = "required" if field.is_required() else f"default: {field.default}"
        help_text = f"{field.description} ({default}; env {ENV_PREFIX}{name.upper()})"
        if is_bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(*flags, dest=name, type=typ, default=None, help=help_text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    values = {name: getattr(args, name, None) for name in Settings.model_fields}
    return load_settings(values, getattr(args, "config_file", None))
