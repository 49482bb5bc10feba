"""``edgepose bench``'s report as Markdown tables, and the stage labels shared with ``benchmarks/``."""

from __future__ import annotations

from typing import Any

#: Row labels of the per-stage latency table, shared with benchmarks/run_matrix.py.
STAGE_LABELS: dict[str, str] = {
    "capture": "capture (read/decode)",
    "preprocess": "preprocess",
    "invoke": "invoke",
    "postprocess": "postprocess",
    "pre_post": "preprocess + postprocess",
    "total": "total (frame available → result)",
    "capture_to_result": "capture → result (decode included)",
    "overhead": "capture → result minus invoke",
}


def _input(report: dict[str, Any]) -> str:
    """Return the model input as ``192²`` (square) or ``481×641`` (height × width)."""
    height, width = report["input_size"], report.get("input_width", report["input_size"])
    return f"{height}²" if width == height else f"{height}×{width}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |\n"


def _stage_rows(stages: dict[str, dict[str, float]]) -> str:
    out = ""
    for key, label in STAGE_LABELS.items():
        if key in stages:
            p = stages[key]
            out += _row([label, f"{p['p50']:.2f}", f"{p['p95']:.2f}", f"{p['p99']:.2f}"])
    return out


def _cpu_rows(report: dict[str, Any]) -> str:
    """Render the CPU budget: process CPU time per frame (user + system, all threads) against bare ``invoke()``."""
    bare, pipeline, live, idle = report["bare"], report["pipeline"], report.get("live"), report.get("idle")
    out = "\nCPU time per frame (process, user + system, all threads):\n\n"
    out += _row(["run", "pipeline (ms)", "bare invoke() (ms)", "pipeline / bare"]) + _row(["---"] * 4)

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "-"

    out += _row(["saturated", f"{pipeline['cpu_ms_per_frame']:.2f}", f"{bare['cpu_ms_per_frame']:.2f}",
                 ratio(pipeline["cpu_ms_per_frame"], bare["cpu_ms_per_frame"])])  # fmt: skip
    if live:
        out += _row([f"paced ({live['fps']:.0f} fps)", f"{live['cpu_ms_per_frame']:.2f}",
                     f"{live['bare_cpu_ms_per_frame']:.2f}",
                     ratio(live["cpu_ms_per_frame"], live["bare_cpu_ms_per_frame"])])  # fmt: skip
    if idle:
        active = idle.get("active_cpu_percent")
        out += f"\nidle mode on an empty scene ({idle['state']} after {idle['went_idle_after_s']} s): "
        out += f"{idle['cpu_percent']:.1f} % CPU, {idle['model_runs_per_s']:.1f} model runs/s"
        out += f"; paced active run {active:.1f} % CPU, idle/active {idle['ratio']:.3f}\n" if active else "\n"
    return out


def format_report(report: dict[str, Any]) -> str:
    """Render the report as markdown tables (the TFLite pose docs' columns first)."""
    size = report["frame_size"]
    bare = report["bare"]
    pipeline = report["pipeline"]
    runtime = f"{report['runtime']} {report['runtime_version']}"
    model_mb = report.get("model_mb")
    out = _row(["model", "size", "input", "runtime", "delegate", "threads", "invoke p50 (ms)",
                "pipeline (ms/frame)"])  # fmt: skip
    out += _row(["---"] * 8)
    out += _row([
        report["model"], f"{model_mb:.1f} MB" if model_mb else "?", _input(report), runtime,
        report["delegate"], str(report["threads"]), f"{bare['latency_ms']['p50']:.2f}",
        f"{1000.0 / pipeline['fps']:.2f}" if pipeline["fps"] else "-",
    ])  # fmt: skip
    out += f"\nsource {report['source']} ({size[0]}×{size[1]}), {report['frames']} frames in "
    out += f"{report['rounds']} alternating rounds, {report['cpu_count']} CPU cores\n\n"
    out += _row(["", "frames/s", "vs bare"]) + _row(["---"] * 3)
    out += _row(["bare invoke()", f"{bare['fps']:.1f}", "1.000"])
    out += _row(["pipeline (decode → result)", f"{pipeline['fps']:.1f}", f"{report['ratio']:.3f}"])
    out += "\n" + _row(["pipeline stage (ms)", "p50", "p95", "p99"]) + _row(["---"] * 4)
    out += _row(["bare invoke()", *(f"{bare['latency_ms'][q]:.2f}" for q in ("p50", "p95", "p99"))])
    out += _stage_rows(pipeline["latency_ms"])
    live = report.get("live")
    if live:
        out += f"\npaced like a camera ({live['fps']:.1f} frames/s, {live['frames']} frames):\n\n"
        out += _row(["stage (ms)", "p50", "p95", "p99"]) + _row(["---"] * 4)
        paced = live["bare_invoke_ms"]
        out += _row(["bare invoke(), same pace", *(f"{paced[q]:.2f}" for q in ("p50", "p95", "p99"))])
        out += _stage_rows(live["latency_ms"])
    out += _cpu_rows(report)
    first = report["first_result_s"]
    out += f"\npeak RSS {report['peak_rss_mb']:.1f} MB; first result {first if first is not None else '?'} s "
    out += "after the process started\n"
    return out
