"""Llama.from_pretrained's file lookup through huggingface_hub (imported only when used).

``filename`` is an fnmatch glob over the repository's paths: exactly one file must match. The file
list comes from the Hub, or, offline (HF_HUB_OFFLINE=1, or no network), from the local cache's
snapshot of the repository, so a pre-populated cache works without a connection.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import List, Optional, Union


def _hub():
    try:
        import huggingface_hub
    except ImportError as e:
        raise ImportError("Llama.from_pretrained needs huggingface_hub: pip install huggingface_hub") from e
    return huggingface_hub


def _offline(hub) -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:
        return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _cached_files(hub, repo_id: str, cache_dir) -> List[str]:
    """Files of the repository's cached snapshots (repo-relative paths)."""
    try:
        info = hub.scan_cache_dir(cache_dir)
    except Exception:
        return []
    files = set()
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            for rev in repo.revisions:
                for f in rev.files:
                    files.add(Path(f.file_path).relative_to(rev.snapshot_path).as_posix())
    return sorted(files)


def _local_dir_files(local_dir) -> List[str]:
    root = Path(local_dir)
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts)


def list_repo_files(repo_id: str, cache_dir=None, local_dir=None) -> List[str]:
    hub = _hub()
    if not _offline(hub):
        try:
            return sorted(hub.list_repo_files(repo_id))
        except Exception as e:  # no network: fall back to what is cached
            cached = _cached_files(hub, repo_id, cache_dir) or (_local_dir_files(local_dir) if local_dir else [])
            if cached:
                return cached
            raise ValueError(f"cannot list the files of {repo_id!r} (offline, and nothing cached): {e}") from e
    cached = _cached_files(hub, repo_id, cache_dir) or (_local_dir_files(local_dir) if local_dir else [])
    if not cached:
        raise ValueError(f"{repo_id!r} is not in the local cache and HF_HUB_OFFLINE is set")
    return cached


def match_one(files: List[str], pattern: str, repo_id: str) -> str:
    matches = [f for f in files if fnmatch.fnmatch(f, pattern)]
    if not matches:
        raise ValueError(f"No file found in {repo_id} that match {pattern}\n\nAvailable Files:\n"
                         + "\n".join(files))
    if len(matches) > 1:
        raise ValueError(f"Multiple files found in {repo_id} matching {pattern}\n\nAvailable Files:\n"
                         + "\n".join(files))
    return matches[0]


def resolve_files(repo_id: str, filename: Optional[str], additional_files: Optional[List[str]] = None,
                  local_dir: Optional[Union[str, os.PathLike]] = None,
                  cache_dir: Optional[Union[str, os.PathLike]] = None) -> List[Path]:
    """Downloads (or finds in the cache) the file matching filename and each additional glob;
    returns their local paths, the main file first."""
    hub = _hub()
    if not filename:
        raise ValueError("from_pretrained needs filename (a glob such as '*Q4_K_M.gguf')")
    files = list_repo_files(repo_id, cache_dir=cache_dir, local_dir=local_dir)
    wanted = [match_one(files, filename, repo_id)]
    for pattern in additional_files or []:
        wanted.append(match_one(files, pattern, repo_id))
    paths = []
    for name in wanted:
        subfolder, base = (name.rsplit("/", 1) if "/" in name else (None, name))
        p = hub.hf_hub_download(repo_id=repo_id, filename=base, subfolder=subfolder, local_dir=local_dir,
                                cache_dir=cache_dir, local_files_only=_offline(hub))
        paths.append(Path(p))
    return paths
