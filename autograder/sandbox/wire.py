"""The wire format between the trusted grader and the student's sandboxed process.

Shared by both sides of the trust boundary, and nothing else: no grading logic, no expected values,
no imports of the trusted side (the sandbox gets a copy of ``autograder/sandbox/``, and nothing more
of ``autograder/``).

A frame is ``[u32 header length][header: JSON object][u32 blob count]([u64 length][bytes])*``.
Arrays travel as ``.npy`` bytes read with ``allow_pickle=False``. The reader enforces its bounds on the
length prefixes, *before* it buffers or parses anything: a header of at most ``MAX_HEADER`` bytes,
at most ``MAX_BLOBS`` blobs, at most ``max_frame`` bytes in all, and a JSON nesting depth of at most
``MAX_DEPTH`` (checked on the raw bytes, before ``json.loads``). The bounds are the reader's: nothing
the writer sends can raise them. Anything out of bounds or malformed raises ``ProtocolError``.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct

MAX_HEADER = 4 * 1024 * 1024  # bytes of JSON in one frame
MAX_BLOBS = 4096  # arrays in one frame
MAX_FRAME = 64 * 1024 * 1024  # bytes of one whole frame (header and arrays)
MAX_DEPTH = 48  # nesting of JSON arrays and objects in a header
MAX_STRING = 10_000  # characters of one string the student's side may send (longer ones are cut)


class ProtocolError(ValueError):
    """A frame that breaks the wire format or its bounds."""


# ----------------------------------------------------------------------------------- framing
def encode_frame(header: dict, blobs=()) -> bytes:
    h = json.dumps(header, ensure_ascii=True, allow_nan=True).encode()
    parts = [struct.pack("<I", len(h)), h, struct.pack("<I", len(blobs))]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


def send_frame(sock, header: dict, blobs=()) -> None:
    """Write one whole frame to a socket (or a file descriptor)."""
    data = encode_frame(header, blobs)
    if isinstance(sock, int):
        view = memoryview(data)
        while view:
            n = os.write(sock, view)
            view = view[n:]
    else:
        sock.sendall(data)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """Nesting depth of a JSON text, from its bytes alone (strings skipped), without parsing it."""
    import numpy as np

    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    a = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((a == ord("[")) | (a == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


class FrameReader:
    """Incremental reader for one channel: feed bytes, pop complete frames.

    One reader serves one child process and is dropped with it: no buffered byte crosses from one
    submission to the next.
    """

    def __init__(self, max_frame: int = MAX_FRAME):
        self.buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> None:
        self.buf += data
        self._check_prefixes()

    def _check_prefixes(self) -> None:
        """Validate every length prefix already buffered; refuse before buffering past the bound."""
        b = self.buf
        if len(b) >= 4:
            (hl,) = struct.unpack_from("<I", b, 0)
            if hl > MAX_HEADER or hl == 0:
                raise ProtocolError(f"a message header of {hl} bytes (the limit is {MAX_HEADER})")
            if len(b) >= 8 + hl:
                (nb,) = struct.unpack_from("<I", b, 4 + hl)
                if nb > MAX_BLOBS:
                    raise ProtocolError(f"a message with {nb} arrays (the limit is {MAX_BLOBS})")
                pos, total = 8 + hl, 8 + hl
                for _ in range(nb):
                    if len(b) < pos + 8:
                        break
                    (bl,) = struct.unpack_from("<Q", b, pos)
                    total += 8 + bl
                    if total > self.max_frame:
                        raise ProtocolError(f"a message larger than {self.max_frame >> 20} MiB")
                    pos += 8 + bl
        if len(self.buf) > self.max_frame + 16:
            raise ProtocolError(f"a message larger than {self.max_frame >> 20} MiB")

    def pop(self):
        """The next complete frame as (header dict, [blob bytes]), or None if incomplete."""
        b = self.buf
        if len(b) < 4:
            return None
        (hl,) = struct.unpack_from("<I", b, 0)
        if len(b) < 8 + hl:
            return None
        (nb,) = struct.unpack_from("<I", b, 4 + hl)
        pos, spans = 8 + hl, []
        for _ in range(nb):
            if len(b) < pos + 8:
                return None
            (bl,) = struct.unpack_from("<Q", b, pos)
            if len(b) < pos + 8 + bl:
                return None
            spans.append((pos + 8, pos + 8 + bl))
            pos += 8 + bl
        raw = bytes(b[4 : 4 + hl])
        blobs = [bytes(b[s:e]) for s, e in spans]
        del b[:pos]
        if json_depth(raw) > MAX_DEPTH:
            raise ProtocolError(f"a message nested deeper than {MAX_DEPTH} levels")
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ProtocolError(f"a message that is not valid JSON ({type(e).__name__})") from None
        if not isinstance(header, dict):
            raise ProtocolError("a message that is not a JSON object")
        self._check_prefixes()
        return header, blobs


# ---------------------------------------------------------------------- arrays as .npy bytes
def array_to_bytes(a) -> bytes:
    import numpy as np

    a = np.asarray(a)
    if not a.flags.c_contiguous:
        a = a.copy(order="C")  # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    out = io.BytesIO()
    np.lib.format.write_array(out, a, allow_pickle=False)
    return out.getvalue()


def bytes_to_array(b: bytes):
    """A plain numeric (or bool) ndarray from ``.npy`` bytes; anything else raises ProtocolError."""
    import numpy as np

    try:
        a = np.lib.format.read_array(io.BytesIO(b), allow_pickle=False)
    except Exception as e:  # a malformed .npy header, a truncated body, an object array
        raise ProtocolError(f"an array that could not be read ({type(e).__name__})") from None
    if a.dtype.hasobject or a.dtype.fields is not None or a.dtype.kind not in "biufc":
        raise ProtocolError(f"an array of dtype {a.dtype} (only numbers and booleans are accepted)")
    return a
