"""HTTP(S) camera streams: multipart MJPEG read here and decoded part by part; any other stream via OpenCV.

Most network cameras serve ``multipart/x-mixed-replace`` MJPEG. OpenCV's FFmpeg reader handles it
badly: a broken part fails the read as if the stream had ended, and a camera that switches resolution
keeps coming out at the old size, the new picture squashed. Here each part is decoded on its own
with ``cv2.imdecode``, so a broken part is one :class:`~edgepose.errors.FrameError` and every frame
has its true size. The content type is looked at on :meth:`MjpegSource.open`: anything that is not
multipart (an HLS playlist, an ``.mp4`` file, a redirect) is handed to :class:`OpenCVSource`.
"""

from __future__ import annotations

import base64
import http.client
import logging
import ssl
import urllib.parse

import cv2
import numpy as np

from edgepose.config import SourceConfig
from edgepose.config.rendering import redact_url
from edgepose.errors import FrameError, SourceError
from edgepose.sources.opencv import OpenCVSource

log = logging.getLogger(__name__)

MULTIPART = "multipart/x-mixed-replace"
#: Longest line accepted in the part headers, and most header lines in one part.
MAX_LINE = 8192
MAX_HEADERS = 64
#: Largest part accepted (a 4K JPEG is a few MB); more is not a camera's picture.
MAX_PART_BYTES = 32 * 1024 * 1024
#: Bytes at the end of a part that may follow a JPEG's end marker (padding some cameras add).
JPEG_TAIL = 1024
#: What the request says it is (a server's log tells edgepose's look at the stream from FFmpeg's reading of it).
USER_AGENT = "edgepose"


def whole_jpeg(data: bytes) -> bool:
    """Return whether a JPEG is whole: well-formed marker segments from its start to the scan, and an end marker.

    Noise and truncated pictures fail here rather than in libjpeg, which prints its complaints ("Corrupt
    JPEG data: ...", "Premature end of JPEG file") straight to stderr and hands out a half-grey picture.
    """
    if b"\xff\xd9" not in data[-JPEG_TAIL:]:
        return False
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: the compressed picture follows
            return True
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return False
        pos += 2 + length
    return False


def _boundary(content_type: str) -> bytes:
    """Return the multipart boundary named in a ``Content-Type`` (``b""`` when the server does not name it)."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"').encode("latin-1")
    return b""


class MjpegSource:
    """An ``http://`` or ``https://`` URL; a user and password in it are sent as HTTP basic authentication.

    Args:
        url: The stream's URL.
        cfg: Source settings; ``timeout_s`` bounds the connection and every read from the socket.
    """

    still = False
    live = True

    def __init__(self, url: str, cfg: SourceConfig) -> None:
        self._url = url
        self._cfg = cfg
        self.name = redact_url(url)
        self.fps = 0.0
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._boundary = b""
        self._in_part = False  # the boundary line of the next part was read already
        self._closed = False  # the closing boundary was read: no part follows
        self._fallback: OpenCVSource | None = None

    def open(self) -> None:
        """Connect and look at the content type: multipart MJPEG is read here, anything else by OpenCV.

        Raises:
            SourceError: The server cannot be reached, or answers with an HTTP error.
        """
        response = self._request()
        status, content_type = response.status, response.getheader("Content-Type", "")
        if status == 200 and content_type.lower().startswith(MULTIPART):
            self._boundary = _boundary(content_type)
            log.info("opened %s (MJPEG, each picture decoded on its own)", self.name)
            return
        self.close()
        if status >= 400:
            hint = ": check the user and password in the URL" if status in (401, 403) else ""
            raise SourceError(f"{self.name} answered HTTP {status} {response.reason}{hint}")
        log.debug("%s is %s (HTTP %d), not MJPEG: reading it with OpenCV", self.name, content_type, status)
        self._fallback = OpenCVSource(self._url, self._cfg, live=True)
        self._fallback.name = self.name
        self._fallback.open()
        self.fps = self._fallback.fps

    def _request(self) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(self._url)
        timeout = self._cfg.timeout_s
        try:
            host, secure = parts.hostname or "", parts.scheme.lower() == "https"
            port = parts.port or (443 if secure else 80)
            if secure:
                self._connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                               context=ssl.create_default_context())  # fmt: skip
            else:
                self._connection = http.client.HTTPConnection(host, port, timeout=timeout)
            headers = {"Accept": "*/*", "User-Agent": USER_AGENT}
            if parts.username is not None:
                user = urllib.parse.unquote(parts.username)
                password = urllib.parse.unquote(parts.password or "")
                headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            self._connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")),
                                     headers=headers)  # fmt: skip
            self._response = self._connection.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            why = str(exc) or type(exc).__name__
            raise SourceError(f"cannot open {self.name}: {why} (check the URL is reachable)") from exc
        return self._response

    def read(self) -> np.ndarray | None:
        """Return the next picture (``None``: an OpenCV stream gave no frame; it may have ended).

        Raises:
            FrameError: This part is not a picture (the next one may be).
            SourceError: The stream ended, broke off, or sent nothing for ``timeout_s``.
        """
        if self._fallback is not None:
            return self._fallback.read()
        data = self._next_part()
        whole = not data.startswith(b"\xff\xd8") or whole_jpeg(data)  # other formats: imdecode decides
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if whole else None
        if image is None:
            raise FrameError(f"{self.name}: a part of {len(data)} bytes is not a picture")
        return image

    def grab(self) -> bool:
        """Take the next part without decoding it; ``False`` when an OpenCV stream stops."""
        if self._fallback is not None:
            return self._fallback.grab()
        self._next_part()
        return True

    def _next_part(self) -> bytes:
        try:
            if self._closed:
                raise SourceError(f"{self.name}: the server ended the stream")
            if not self._in_part:
                self._skip_to_boundary()
            self._in_part = False
            length = self._part_headers()
            if length is not None:
                return self._read_exactly(length)
            return self._read_to_boundary()
        except TimeoutError as exc:
            raise SourceError(f"{self.name} sent nothing for {self._cfg.timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(f"{self.name} broke off: {str(exc) or type(exc).__name__}") from exc

    def _line(self) -> bytes:
        assert self._response is not None, "open() first"
        line = self._response.readline(MAX_LINE)
        if not line:
            raise SourceError(f"{self.name}: the server ended the stream")
        return line

    def _is_boundary(self, line: bytes) -> bool:
        """Whether ``line`` ends a part: a boundary, or the closing one (then :attr:`_closed` is set).

        The first ``--`` line names the boundary of a server that did not name it in its ``Content-Type``.
        """
        text = line.strip()
        if not self._boundary and text.startswith(b"--"):
            self._boundary = text[2:]
        names = (b"--" + self._boundary, self._boundary) if self._boundary else ()
        if text.endswith(b"--") and text[:-2] in names:
            self._closed = True
            return True
        return text in names

    def _skip_to_boundary(self) -> None:
        skipped = 0
        while not self._is_boundary(line := self._line()):
            skipped += len(line)
            if skipped > MAX_PART_BYTES:
                raise SourceError(f"{self.name}: no multipart boundary in {skipped} bytes; not an MJPEG stream")
        if self._closed:
            raise SourceError(f"{self.name}: the server ended the stream")

    def _part_headers(self) -> int | None:
        """Read a part's headers; return its ``Content-Length`` if it has one."""
        length: int | None = None
        for _ in range(MAX_HEADERS):
            line = self._line()
            if not line.strip():
                return length
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
                if length > MAX_PART_BYTES:
                    raise SourceError(f"{self.name}: a part of {length} bytes is too large for a picture")
        raise SourceError(f"{self.name}: a part has more than {MAX_HEADERS} header lines")

    def _read_exactly(self, length: int) -> bytes:
        assert self._response is not None, "open() first"
        data = self._response.read(length)
        if len(data) < length:
            raise SourceError(f"{self.name}: the server ended the stream inside a picture")
        return data

    def _read_to_boundary(self) -> bytes:
        """Read a part without a ``Content-Length``: everything up to the next boundary line."""
        chunks: list[bytes] = []
        size = 0
        while not self._is_boundary(line := self._line()):
            chunks.append(line)
            size += len(line)
            if size > MAX_PART_BYTES:
                raise SourceError(f"{self.name}: a part of more than {MAX_PART_BYTES} bytes is too large")
        self._in_part = True
        return b"".join(chunks).removesuffix(b"\n").removesuffix(b"\r")

    def close(self) -> None:
        """Close the connection (or the OpenCV capture)."""
        if self._fallback is not None:
            self._fallback.close()
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
