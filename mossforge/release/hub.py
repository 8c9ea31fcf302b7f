"""Pushing a published version to the Hugging Face Hub: one commit per version, tagged `v<number>`.

The repo's tree at the tag is exactly the version's folder (files of an earlier version that this
one no longer has are deleted in the same commit), so `load_dataset(repo, name, revision=tag)`
loads what the manifest describes. Pushing a version whose tag already points at it makes no
commit. The token comes from `HF_TOKEN` or the saved login (`hf auth login`); it is checked with
`whoami` before anything is uploaded and never printed, logged or written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mossforge.errors import MossforgeError
from mossforge.release.layout import MANIFEST
from mossforge.release.versions import parse_number, tag_for, verify_version

KEEP_ON_HUB = {".gitattributes"}  # the Hub's own file (LFS rules): never deleted by a push


class HubError(MossforgeError, RuntimeError):
    """A push that cannot be done; the message says why and what to do, and never holds the token."""


class HubTokenError(HubError):
    """No token, a rejected one or a read-only one: found before anything is uploaded (or, for a
    `mossforge run` that pushes, before any stage). Exit 3, as for a rejected model API key."""

    exit_code = 3


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a dataset repo id ORG/NAME the Hub accepts (huggingface_hub's own
    rules: the config and `publish --repo` agree with what a push would say), or None."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if "/" not in repo_id:
        return "it has no ORG/ part"
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        return str(error).split(": '")[0]
    return None


@dataclass
class PushResult:
    repo_id: str
    tag: str
    version: str  # the content id
    version_number: str
    url: str | None = None  # the tag's tree on the Hub
    revision: str | None = None  # the commit the tag points to
    created_commit: bool = False  # False: the Hub already had this version (no new commit)
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes) uploaded
    deleted: list[str] = field(default_factory=list)  # files of an earlier version removed
    dry_run: bool = False


def version_files(path: Path, manifest: dict) -> list[tuple[str, int]]:
    """What a push uploads: every file of the version (checksummed in the manifest) and the manifest."""
    names = sorted(manifest["files"]) + [MANIFEST]
    return [(name, (Path(path) / name).stat().st_size) for name in names]


def _token_source() -> str:
    return "the HF_TOKEN environment variable" if os.environ.get("HF_TOKEN") else "the saved Hugging Face login"


def _http_error(action: str, error) -> HubError:
    """A readable error from a Hub HTTP error: status, and the server's message (no headers)."""
    response = getattr(error, "response", None)
    status = f"{response.status_code} {response.reason_phrase}" if response is not None else "no response"
    server = getattr(error, "server_message", None) or ""
    return HubError(f"{action}: the Hub answered {status}" + (f": {server.strip()}" if server else ""))


def _check_token(api) -> str:
    """The account the token belongs to; a clear error, before any upload, if it is missing,
    rejected or read-only."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        me = api.whoami()
    except HfHubHTTPError as error:
        if error.response is not None and error.response.status_code == 401:
            raise HubTokenError(f"the Hugging Face token from {_token_source()} was rejected (401 "
                                "Unauthorized): set a valid write token in HF_TOKEN or run `hf auth login`. "
                                "Nothing was uploaded.") from None
        raise _http_error("checking the Hugging Face token", error) from None
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubTokenError(f"the Hugging Face token from {_token_source()} is read-only: pushing needs a "
                            "write (or fine-grained) token. Nothing was uploaded.")
    return me.get("name", "?")


def _api(endpoint: str | None = None):
    """An HfApi with the user's token; HubTokenError when there is none."""
    from huggingface_hub import HfApi, get_token

    from mossforge import __version__

    token = get_token()
    if not token:
        raise HubTokenError("no Hugging Face token: set HF_TOKEN to a write token or run `hf auth login`. "
                            "Nothing was uploaded.")
    return HfApi(endpoint=endpoint, token=token, library_name="mossforge", library_version=__version__)


def check_push_access(endpoint: str | None = None) -> str:
    """The account a push would use; HubTokenError when the token is missing, rejected or
    read-only, HubError when the Hub answers with another error. Uploads nothing (a run's preflight)."""
    return _check_token(_api(endpoint))


def _remote_manifest(api, repo_id: str, revision: str) -> dict | None:
    """The manifest.json of the repo at `revision`, or None when it has none."""
    from urllib.parse import quote

    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = f"{api.endpoint}/datasets/{repo_id}/resolve/{quote(revision, safe='')}/{MANIFEST}"
    response = get_session().get(url, headers=build_hf_headers(token=api.token), follow_redirects=True)
    if response.status_code == 404:
        return None
    hf_raise_for_status(response)
    return response.json()


def push_version(path: Path, repo_id: str, *, private: bool = False, dry_run: bool = False,
                 endpoint: str | None = None) -> PushResult:
    """Push the published version at `path` to the dataset repo `repo_id` and tag it.

    Raises HubError, before any upload, when the version does not match its manifest, when there
    is no token or the Hub rejects it, or when the repo's tag already names another version.
    """
    path = Path(path)
    manifest = verify_version(path)
    if not manifest.get("version_number"):
        raise HubError(f"{path} has no version number (published by an older mossforge); publish it "
                       "again with `mossforge run` to number it")
    result = PushResult(repo_id, tag_for(manifest), manifest["version"], manifest["version_number"],
                        files=version_files(path, manifest), dry_run=dry_run)
    if dry_run:
        return result  # nothing contacted: a dry run needs neither a token nor a network

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import HfHubHTTPError

    api = _api(endpoint)
    _check_token(api)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        tags = {t.name: t.target_commit for t in refs.tags}
        result.url = f"{api.endpoint}/datasets/{repo_id}/tree/{result.tag}"
        if result.tag in tags:
            remote = _remote_manifest(api, repo_id, tags[result.tag])
            if remote and remote.get("version") == manifest["version"]:
                result.revision, result.files = tags[result.tag], []
                return result  # already published: no new commit, the tag stays where it is
            raise HubError(f"{repo_id} already has tag {result.tag} for another version "
                           f"({(remote or {}).get('version', 'no manifest')}); tags are never moved. "
                           f"Publish this content under a new number, or push to another repo.")
        main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        head = _remote_manifest(api, repo_id, main) if main else None
        if head and head.get("version") == manifest["version"]:
            result.revision, result.files = main, []  # committed by a push that did not get to tag
        else:
            if head and head.get("version_number") and \
                    parse_number(head["version_number"]) > parse_number(manifest["version_number"]):
                raise HubError(f"{repo_id}'s main branch holds {head['version_number']}, newer than "
                               f"{manifest['version_number']}: pushing would move main backwards. "
                               "Nothing was uploaded.")
            remote_files = set(api.list_repo_files(repo_id, repo_type="dataset", revision=main)) if main else set()
            ours = {name for name, _ in result.files}
            result.deleted = sorted(remote_files - ours - KEEP_ON_HUB)
            operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path / name))
                          for name in sorted(ours)]
            operations += [CommitOperationDelete(path_in_repo=name) for name in result.deleted]
            change = manifest.get("change") or {}
            commit = api.create_commit(
                repo_id, operations, repo_type="dataset", parent_commit=main,
                commit_message=f"{manifest['dataset']} {manifest['version_number']} ({manifest['version']})",
                commit_description=f"{change.get('level', '')}: {'; '.join(change.get('reasons', []))}\n"
                                   f"Published by mossforge {manifest.get('code_version', '')}.",
            )
            result.revision, result.created_commit = commit.oid, True
        api.create_tag(repo_id, tag=result.tag, revision=result.revision, repo_type="dataset",
                       tag_message=f"{manifest['dataset']} {manifest['version_number']} ({manifest['version']})")
    except HfHubHTTPError as error:
        step = "uploading" if not result.revision else "tagging"
        raise _http_error(f"{step} {manifest['version_number']} to {repo_id} failed"
                          + ("" if result.revision else " (nothing was tagged)"), error) from None
    return result
