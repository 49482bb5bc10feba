"""``edgepose run``: the service loop from a source to the configured sinks."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from edgepose.commands.flags import add_command_flags
from edgepose.commands.setup import open_estimator
from edgepose.config import Config
from edgepose.pose import BackendInfo
from edgepose.service import Service, ServiceOptions
from edgepose.sinks import Sink
from edgepose.sinks.jsonl import JsonlSink
from edgepose.sources import open_source
from edgepose.stats import PipelineStats

HELP = "run pose estimation on a camera, stream, video or images and publish the results"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the run flags."""
    add_command_flags(parser, "run")


SinkFactory = Callable[[Config, PipelineStats, BackendInfo], "Sink | None"]


def _jsonl(config: Config, stats: PipelineStats, info: BackendInfo) -> Sink | None:
    other = bool(config.mqtt.url or config.preview.listen or config.display.enabled)
    target = config.output.path or ("" if other else "-")
    return JsonlSink(target) if target else None


#: Sinks in the order they are started; each factory returns ``None`` when its sink is off.
SINKS: dict[str, SinkFactory] = {"jsonl": _jsonl}


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT end the loop gracefully; a second SIGINT interrupts at once."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def execute(args: argparse.Namespace, config: Config) -> int:
    """Run until the source ends, ``--max-frames`` is reached, or SIGTERM/SIGINT."""
    source = open_source(config.source.source, config.source)
    estimator = open_estimator(config.model)
    stats = PipelineStats()
    stop = threading.Event()
    install_signal_handlers(stop)
    sinks: list[Sink] = []
    try:
        for factory in SINKS.values():
            sink = factory(config, stats, estimator.backend.info)
            if sink is not None:
                sink.start()
                sinks.append(sink)
        options = ServiceOptions(max_frames=config.source.max_frames, realtime=config.source.realtime,
                                 pace_fps=config.source.fps)  # fmt: skip
        log.info("reading %s", source.name)
        Service(source, estimator, sinks, options, stats).run(stop)
    finally:
        for sink in reversed(sinks):
            sink.close()
    return 0
