"""Publishing to the Hugging Face Hub: one repo, one commit.

The token comes from huggingface_hub's usual places (HF_TOKEN, `hf auth login`); it is
never printed, and error messages are scrubbed of it. `HF_ENDPOINT` is read at call
time, so a test (or a private Hub) can point the upload elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from srlkit.errors import ConfigError, DataError, SrlkitError

_REPO = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def upload_list(folder: Path | str, repo_type: str = "dataset") -> list[str]:
    """Exactly what to publish: the files the folder's manifest lists (each checked against its
    sha256 first), the manifest itself and the card generated from it. Nothing else in the
    folder (notes, raw data, checkpoints) is ever uploaded."""
    from srlkit import stage

    root = Path(folder)
    m = stage.require(root, "decompose" if repo_type == "dataset" else "export", flag="push")
    card = [c for c in m.get("card", ["README.md", "steps_hist.png"]) if (root / c).is_file()]
    return sorted({*stage.listed(m), stage.MANIFEST, *card})


def _check(folder: Path, repo_id: str, repo_type: str) -> None:
    from srlkit import stage

    if not folder.is_dir():
        raise DataError(f"'{folder}' is not a folder")
    if not _REPO.match(repo_id):
        raise ConfigError(f"--repo '{repo_id}' is not USER/NAME (letters, digits, '-', '_', '.')")
    if repo_type == "dataset" and not (folder / "manifest.json").is_file():
        raise DataError(f"'{folder}' has no manifest.json; push a folder made by `srlkit decompose`")
    if repo_type == "dataset" and stage.stage_of(folder) == "decompose" and not (folder / "README.md").is_file():
        raise DataError(f"'{folder}' has no README.md; regenerate it with `srlkit decompose` again")


def _scrub(msg: str, token: str | None) -> str:
    msg = " ".join(str(msg).split())
    if token:
        msg = msg.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", msg)[:300]


def push_folder(folder: Path | str, repo_id: str, repo_type: str = "dataset", private: bool = False,
                revision: str | None = None, dry_run: bool = False,
                commit_message: str | None = None) -> list[str]:
    """Create `repo_id` if needed and upload the folder's files in a single commit.

    Returns the uploaded paths (with `dry_run`, the paths that would be uploaded).
    """
    folder = Path(folder)
    _check(folder, repo_id, repo_type)
    files = upload_list(folder, repo_type)
    if not files:
        raise DataError(f"'{folder}' has no files to push")
    if dry_run:
        return files
    from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if constants.is_offline_mode():
        raise SrlkitError("HF_HUB_OFFLINE is set; unset it (and TRANSFORMERS_OFFLINE) to push")
    token = get_token()
    if not token:
        raise SrlkitError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files]
    message = commit_message or f"Upload {repo_type} with srlkit ({len(files)} files)"
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        api.create_commit(repo_id, operations=ops, commit_message=message, repo_type=repo_type,
                          revision=revision)
    except HfHubHTTPError as e:
        code = getattr(getattr(e, "response", None), "status_code", "?")
        raise SrlkitError(f"the Hub refused the push of {repo_id} (HTTP {code}): {_scrub(e, token)}") from None
    except Exception as e:  # connection refused, DNS, TLS (httpx errors are not OSErrors)
        raise SrlkitError(f"cannot reach the Hub to push {repo_id}: {type(e).__name__}: "
                          f"{_scrub(e, token)}") from None
    return files
