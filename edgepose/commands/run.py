"""``edgepose run``: the service loop from a source to the configured sinks."""

from __future__ import annotations

import _thread
import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import NoReturn

from edgepose.analytics import Analytics
from edgepose.config import Config
from edgepose.config.flags import add_command_flags
from edgepose.config.preview_access import preview_url
from edgepose.control import SNAPSHOT, Controls
from edgepose.errors import EdgePoseError
from edgepose.health import PipelineStats
from edgepose.inference.factory import open_estimator
from edgepose.logs import error_line
from edgepose.pipeline.controls import ControlStore, state_dir, wire_controls
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import BackendInfo
from edgepose.sinks import Sink, close_all, sink_failure
from edgepose.sinks.jsonl import JsonlSink
from edgepose.sinks.notify import notify_address, notify_stopping
from edgepose.sinks.snapshot.sink import attach_snapshots
from edgepose.sources import open_source

HELP = "run pose estimation on a camera, stream, video or images and publish the results"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the run flags."""
    add_command_flags(parser, "run")


#: ``(config, stats, info, stop, controls)`` → a sink, or ``None`` when it is off; ``stop`` is the run's stop
#: event, ``controls`` the commands the run takes (a sink may take them in, or register one).
SinkFactory = Callable[[Config, PipelineStats, BackendInfo, threading.Event, Controls], "Sink | None"]


def _snapshot(config: Config, stats: PipelineStats, info: BackendInfo, _stop: threading.Event,
              controls: Controls) -> Sink | None:  # fmt: skip
    cfg = config.snapshot
    if not cfg.enabled or not (config.mqtt.url or config.preview.listen or cfg.folder):
        return None  # nobody to show them to
    from edgepose.sinks.snapshot.sink import SnapshotSink

    sink = SnapshotSink(cfg, config.model.min_score)
    controls.handle(SNAPSHOT.name, lambda _press: sink.request())  # the Home Assistant button
    return sink


def _jsonl(config: Config, stats: PipelineStats, info: BackendInfo, stop: threading.Event,
           _controls: Controls) -> Sink | None:  # fmt: skip
    other = bool(config.mqtt.url or config.preview.listen or config.display.enabled)
    target = config.output.path or ("" if other else "-")
    # A file read as fast as possible loses nothing (the loop waits for the disk); a camera never waits.
    lossless = not (config.source.realtime or stats.source_live)
    return JsonlSink(target, lossless=lossless, stop=stop, counters=stats.output) if target else None


def _mqtt(config: Config, stats: PipelineStats, info: BackendInfo, stop: threading.Event,
          controls: Controls) -> Sink | None:  # fmt: skip
    if not config.mqtt.url:
        return None
    from edgepose.sinks.mqtt.announce import Device, removed_zones
    from edgepose.sinks.mqtt.client import MqttSink
    from edgepose.sinks.mqtt.settings import device_id

    zones = tuple(zone.name for zone in config.zones)
    gone: tuple[str, ...] = ()
    kept = None
    if config.mqtt.ha_discovery:  # the zones announced before: the entities of those gone go with them
        kept = state_dir(config.control.state_dir) / f"ha-zones-{device_id(config.mqtt)}.json"
        gone = removed_zones(kept, zones)
    analytics = config.analytics
    safe = tuple(zone.name for zone in config.zones if not zone.falls)
    device = Device(controls, config.source.stale_after_s, analytics.decided_after_s(), analytics.person_decided_s(),
                    preview_url(config.preview), zones, gone, safe, kept)  # fmt: skip
    return MqttSink(config.mqtt, stats, info, config.model.min_score, stop=stop, device=device)


def _preview(config: Config, stats: PipelineStats, info: BackendInfo, _stop: threading.Event,
             _controls: Controls) -> Sink | None:  # fmt: skip
    if not config.preview.listen:
        return None
    from edgepose.sinks.preview.sink import PreviewSink

    return PreviewSink(config.preview, stats, info, config.model.min_score, config.source.stale_after_s,
                       config.zones)  # fmt: skip


def _quit_foreground_run() -> None:
    """Stop the run as Ctrl-C does: the SIGINT handler of :func:`install_signal_handlers` sets the stop event."""
    _thread.interrupt_main(signal.SIGINT)


def _display(config: Config, stats: PipelineStats, info: BackendInfo, _stop: threading.Event,
             _controls: Controls) -> Sink | None:  # fmt: skip
    if not config.display.enabled:
        return None
    from edgepose.sinks.screen import ScreenSink

    return ScreenSink(config.display, config.model.min_score, on_quit=_quit_foreground_run)


def _systemd(config: Config, stats: PipelineStats, info: BackendInfo, _stop: threading.Event,
             _controls: Controls) -> Sink | None:  # fmt: skip
    from edgepose.sinks.notify import make_sink

    return make_sink(stats, info)  # None outside systemd (no $NOTIFY_SOCKET)


#: Sinks in the order they are started; each factory returns ``None`` when its sink is off. The snapshot sink
#: comes first: the sinks that show snapshots (MQTT, the preview) are attached to it before they start.
SINKS: dict[str, SinkFactory] = {"snapshot": _snapshot, "jsonl": _jsonl, "mqtt": _mqtt, "preview": _preview,
                               "display": _display, "systemd": _systemd}  # fmt: skip


def _analytics(config: Config, still: bool) -> Analytics:
    """Build the analytics stage: smoothing for video unless turned off.

    For still images each image stands alone: presence, posture and zones are decided per image, without
    their delays.
    """
    smoothing = config.smoothing if config.smoothing.enabled(video=not still) else None
    settings = config.analytics
    if still:
        settings = dataclasses.replace(settings, enter_s=0.0, leave_s=0.0, dropout_s=0.0, posture_s=0.0, zone_s=0.0)
    return Analytics(settings, smoothing, config.zones)


def _controls(config: Config, analytics: Analytics, stats: PipelineStats) -> Controls:
    """Build the commands the run takes: from MQTT (``<base>/set/<name>``) unless ``control.commands`` is off.

    With commands, the Detection switch's state comes back from the state directory (a pause survives a
    restart); without MQTT or commands, detection is on and no command is taken.
    """
    controls = Controls()
    store = None
    if config.mqtt.url and config.control.commands:
        from edgepose.sinks.mqtt.settings import device_id

        store = ControlStore(state_dir(config.control.state_dir), device_id(config.mqtt))
    wire_controls(controls, analytics, stats, store)
    return controls


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT end the loop gracefully; a second SIGINT interrupts at once."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("%s received, stopping", signal.Signals(signum).name)
        notify_stopping()  # STOPPING=1 to systemd at once (no-op outside systemd)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def service_options(config: Config, environ: Mapping[str, str] | None = None) -> ServiceOptions:
    """Return the loop's options; ``[source] restart_after_s`` applies under systemd only, which starts it afresh."""
    under_systemd = notify_address(environ) is not None
    return ServiceOptions(
        max_frames=config.source.max_frames,
        realtime=config.source.realtime,
        pace_fps=config.source.fps,
        source_timeout_s=config.source.timeout_s,
        loop=config.source.loop,
        max_fps=config.source.max_fps,
        idle=config.idle,
        min_score=config.model.min_score,
        give_up_s=config.source.restart_after_s if under_systemd else 0.0,
    )


def execute(args: argparse.Namespace, config: Config) -> int:
    """Run until the source ends, ``--max-frames`` is reached, or SIGTERM/SIGINT."""
    source = open_source(config.source.source, config.source)
    analytics = _analytics(config, still=source.still)
    crop_alpha = config.smoothing.crop_alpha if analytics.smoothing is not None else 1.0
    stop = threading.Event()
    estimator = open_estimator(config.model, crop_alpha, stop)
    stats = PipelineStats(config.model.min_score)
    stats.source_live = source.live
    stats.inference = estimator.backend  # its info changes when the EdgeTPU worker falls back to the CPU
    install_signal_handlers(stop)
    controls = _controls(config, analytics, stats)
    sinks: list[Sink] = []
    as_analysed = dataclasses.replace(config, analytics=analytics.config)  # stills: no delays to wait for
    try:
        for factory in SINKS.values():
            sink = factory(as_analysed, stats, estimator.info, stop, controls)
            if sink is not None:
                attach_snapshots(sinks, sink)
                sink.start()
                sinks.append(sink)
        options = service_options(config)
        log.info("reading %s", source.name)
        service = Service(source, estimator, sinks, options, stats, analytics=analytics, controls=controls,
                          reopen=lambda: open_source(config.source.source, config.source))  # fmt: skip
        service.run(stop)
    finally:
        late = close_all(sinks)
        estimator.close()  # every backend; ends the EdgeTPU worker's child process, if there is one
    failure = sink_failure(sinks)  # e.g. the last write to a full disk, or results left unwritten at close
    if service.capture_stuck or late:
        _exit_past_stuck_threads(failure)
    if failure is not None:
        raise failure
    return 0


def _exit_past_stuck_threads(failure: EdgePoseError | None) -> NoReturn:
    """Exit at once (0, or with the error line and exit code of ``failure``); the sinks are closed already.

    A capture thread is still blocked in a driver or stream read (or a sink in its close). Python's
    normal exit would let it return into OpenCV's C++ during interpreter shutdown, which aborts the
    process ("FATAL: exception not rethrown"); systemd would see a crash instead of a clean stop.
    """
    code = 0 if failure is None else failure.exit_code
    if code:
        print(error_line(failure), file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
