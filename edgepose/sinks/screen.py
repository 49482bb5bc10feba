"""The screen sink: the picture with the skeleton on an attached monitor (the only importer of pygame).

pygame/SDL2 picks the video driver: X11 or Wayland on a desktop, KMSDRM on a Raspberry Pi console
(``SDL_VIDEODRIVER=kmsdrm``), ``dummy`` in tests. Everything SDL runs in one thread of its own;
:meth:`ScreenSink.publish` only stores the newest result, so drawing never holds up inference.
Esc, q or closing the window calls ``on_quit``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from edgepose.config import DisplayConfig
from edgepose.errors import BackendUnavailableError
from edgepose.pose import PoseResult
from edgepose.sinks.drawing import render

log = logging.getLogger(__name__)

#: Seconds between event checks while no frame arrives.
POLL_S = 0.03
#: Seconds ``start`` waits for the display to open.
OPEN_TIMEOUT_S = 10.0
#: Window size before the first frame (windowed mode).
INITIAL_SIZE = (640, 480)


def fit(frame: tuple[int, int], screen: tuple[int, int]) -> tuple[float, int, int, int, int]:
    """Place a frame on a screen, scaled to fit with its aspect ratio kept, centred.

    Args:
        frame: Frame width and height.
        screen: Screen width and height.

    Returns:
        ``(scale, x, y, width, height)`` of the drawn picture.
    """
    scale = min(screen[0] / frame[0], screen[1] / frame[1])
    width, height = max(1, round(frame[0] * scale)), max(1, round(frame[1] * scale))
    return scale, (screen[0] - width) // 2, (screen[1] - height) // 2, width, height


def _import_pygame() -> ModuleType:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # it would print to stdout, mixed with JSON lines
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")  # keep Ctrl-C and SIGTERM for edgepose
    try:
        import pygame
    except ImportError:
        raise BackendUnavailableError("--display needs pygame: pip install 'edgepose[display]'") from None
    return pygame


class ScreenSink:
    """Shows each newest result on the screen, full-screen or in a window.

    Args:
        cfg: The ``[display]`` section.
        min_score: Keypoints below this score are not drawn.
        on_quit: Called (from the display thread) when Esc or q is pressed or the window is closed.
    """

    def __init__(self, cfg: DisplayConfig, min_score: float, on_quit: Callable[[], None] | None = None) -> None:
        self._cfg = cfg
        self._min_score = min_score
        self._on_quit = on_quit
        self._lock = threading.Lock()
        self._latest: PoseResult | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: str | None = None
        self._snapshot_wanted = threading.Event()
        self._snapshot_done = threading.Event()
        self._snapshot: np.ndarray | None = None
        self._thread: threading.Thread | None = None
        #: Frames drawn so far.
        self.drawn = 0
        #: ``(scale, x, y, width, height)`` of the last drawn picture on the screen.
        self.placement: tuple[float, int, int, int, int] | None = None

    def start(self) -> None:
        """Open the display in the display thread.

        Raises:
            BackendUnavailableError: pygame missing, or no display can be opened.
        """
        pygame = _import_pygame()
        self._thread = threading.Thread(target=self._run, args=(pygame,), name="edgepose-screen", daemon=True)
        self._thread.start()
        if not self._ready.wait(OPEN_TIMEOUT_S):
            self._error = "the display did not open within 10 s"
        if self._error is not None:
            self._stop.set()
            raise BackendUnavailableError(
                f"cannot open the display: {self._error} (a desktop needs $DISPLAY or $WAYLAND_DISPLAY; "
                "a Pi console SDL_VIDEODRIVER=kmsdrm and a user in the 'video' and 'render' groups)"
            )

    def publish(self, result: PoseResult) -> None:
        """Keep the newest result for the display thread (O(1), never blocks)."""
        with self._lock:
            self._latest = result
        self._wake.set()

    def snapshot(self, timeout: float = 5.0) -> np.ndarray | None:
        """Return a copy of what the screen shows, RGB ``(height, width, 3)``, or ``None`` on timeout."""
        self._snapshot_done.clear()
        self._snapshot_wanted.set()
        self._wake.set()
        return self._snapshot if self._snapshot_done.wait(timeout) else None

    def close(self) -> None:
        """Close the window and end the display thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _open(self, pygame: Any) -> Any:
        pygame.display.init()
        pygame.display.set_caption("edgepose")
        if self._cfg.fullscreen:
            screen = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
            pygame.mouse.set_visible(False)
        else:
            screen = pygame.display.set_mode(INITIAL_SIZE)
        log.info("display: %s driver, %dx%d%s", pygame.display.get_driver(), *screen.get_size(),
                 " full-screen" if self._cfg.fullscreen else "")  # fmt: skip
        return screen

    def _run(self, pygame: Any) -> None:
        try:
            screen = self._open(pygame)
        except Exception as exc:  # pygame.error and driver failures, reported by start()
            self._error = str(exc) or type(exc).__name__
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                self._handle_events(pygame)
                self._wake.wait(POLL_S)
                self._wake.clear()
                with self._lock:
                    result, self._latest = self._latest, None
                if result is not None:
                    screen = self._draw(pygame, screen, result)
                if self._snapshot_wanted.is_set():
                    self._snapshot_wanted.clear()
                    self._snapshot = np.ascontiguousarray(pygame.surfarray.array3d(screen).swapaxes(0, 1))
                    self._snapshot_done.set()
        except Exception:  # never take the pipeline down with the window
            log.exception("display failed; the pipeline keeps running without it")
        finally:
            pygame.display.quit()

    def _handle_events(self, pygame: Any) -> None:
        for event in pygame.event.get():
            quit_key = event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)
            if (event.type == pygame.QUIT or quit_key) and self._on_quit is not None:
                log.info("display: quit requested")
                self._on_quit()

    def _draw(self, pygame: Any, screen: Any, result: PoseResult) -> Any:
        picture = render(result, "video", self._min_score)
        height, width = picture.shape[:2]
        if not self._cfg.fullscreen and self.drawn == 0 and screen.get_size() != (width, height):
            desktop = pygame.display.get_desktop_sizes()[0]
            _, _, _, w, h = fit((width, height), desktop) if width > desktop[0] or height > desktop[1] else (
                1.0, 0, 0, width, height)  # fmt: skip
            screen = pygame.display.set_mode((w, h))
        placement = fit((width, height), screen.get_size())
        scale, x, y, w, h = placement
        if (w, h) != (width, height):
            picture = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)
        surface = pygame.image.frombuffer(rgb.tobytes(), (w, h), "RGB")
        screen.fill((0, 0, 0))
        screen.blit(surface, (x, y))
        pygame.display.flip()
        self.placement = placement
        self.drawn += 1
        return screen
