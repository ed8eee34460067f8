"""Reading a submission upload: the multipart parts, bounded while they stream in.

A checkpoint may be hundreds of MB, so the body is never held whole in memory: Starlette's
parser spools each file to a temporary file past 1 MiB, and the byte count is checked on every
chunk, so an oversized upload stops at the limit instead of filling the disk first.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..checkpoint import MAX_SIDE_FILE_BYTES, MIB
from ..client import CODE_PREFIX, REQUIRED
from ..client import RUN_FILES as PARTS  # the upload's part names, and the run files they carry
from ..custom import MAX_CODE_BYTES, MAX_CODE_FILES

# The tokenizer files and the training log ride along with the checkpoint, each within the
# checkpoint reader's own limit, and the config and multipart framing within one more MiB.
EXTRAS_ALLOWANCE = 3 * MAX_SIDE_FILE_BYTES + MAX_CODE_BYTES + MIB


class _TooLarge(Exception):
    """The body went past its limit while streaming in."""


@dataclass
class Upload:
    """The parts of one submission; files stay spooled until ``read`` (blocking: call it from a thread)."""

    parts: dict[str, UploadFile | str]

    def read(self) -> dict[str, bytes]:
        return {name: part.encode() if isinstance(part, str) else part.file.read() for name, part in self.parts.items()}

    def close(self) -> None:
        for part in self.parts.values():
            if not isinstance(part, str):
                part.file.close()


async def read_upload(request: Request, *, board: str, max_checkpoint_mb: float) -> Upload:
    """The parts of a multipart submission; 400 for a malformed one, 413 past the board's checkpoint limit."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(400, "send the files as multipart/form-data: weights, config, and optionally "
                                 "vocab, merges, log.")
    body_limit = int(max_checkpoint_mb * MIB) + EXTRAS_ALLOWANCE
    too_large = HTTPException(413, f"the upload is larger than board '{board}' accepts: checkpoints of at most "
                                   f"{max_checkpoint_mb:g} MiB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_limit:
        raise too_large
    parts = len(PARTS) + MAX_CODE_FILES
    parser = MultiPartParser(request.headers, _bounded(request.stream(), body_limit), max_files=parts, max_fields=parts)
    try:
        form = await parser.parse()
    except _TooLarge:
        raise too_large from None
    except MultiPartException as exc:
        raise HTTPException(400, f"the multipart upload is malformed: {exc}") from None
    items = form.multi_items()
    upload = Upload(dict(items))
    try:
        weights = _check_parts([name for name, _ in items], upload)
        _check_size(weights, board, max_checkpoint_mb)
    except HTTPException:
        upload.close()
        raise
    return upload


def _check_parts(names: list[str], upload: Upload) -> UploadFile:
    """The weights file, once every part is known, sent once, and the required ones are there."""
    for name in names:
        if name not in PARTS and not name.startswith(CODE_PREFIX):
            raise HTTPException(400, f"unexpected part '{name}': send weights, config, and optionally "
                                     "vocab, merges, log, and code/<file> parts.")
        if names.count(name) > 1:
            raise HTTPException(400, f"the part '{name}' was sent more than once.")
    for name in REQUIRED:
        if name not in upload.parts:
            raise HTTPException(400, f"the upload has no '{name}' part ({PARTS[name]}).")
    weights = upload.parts["weights"]
    if isinstance(weights, str):
        raise HTTPException(400, "send 'weights' as a file, e.g. curl -F weights=@model.safetensors.")
    return weights


def _check_size(weights: UploadFile, board: str, max_checkpoint_mb: float) -> None:
    size = weights.size or 0
    if size > max_checkpoint_mb * MIB:
        raise HTTPException(413, f"model.safetensors is {size / MIB:.1f} MiB; board '{board}' takes at most "
                                 f"{max_checkpoint_mb:g} MiB.")


async def _bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk
