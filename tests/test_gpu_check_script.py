"""benchmarks/gpu_cuda_ep_check.py without a GPU: its log parser, and a clean exit.

The placement parser is checked on onnxruntime's real verbose log of a CPU
session (captured here) and on the per-provider block format of
session_state.cc; the script must exit 0 with a message where the CUDA
provider is unavailable.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_cuda_ep_check as G  # noqa: E402


def test_parser_reads_per_provider_blocks():
    log = "\n".join([
        "2026 [V:onnxruntime:, session_state.cc:1598 VerifyEachNodeIsAssignedToAnEp] Node placements",
        "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]  Node(s) "
        "placed on [CUDAExecutionProvider]. Number of nodes: 2",
        "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]   Transpose (t1)",
        "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]   Slice (Crop)",
        "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]  Node(s) "
        "placed on [CPUExecutionProvider]. Number of nodes: 1",
        "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]   "
        "ConvTranspose (ConvTranspose)",
        "2026 [V:onnxruntime:, session_state.cc:196 CreateGraphInfo] SaveMLValueNameIndexMapping",
    ])
    assert G.placements(log) == {
        "CUDAExecutionProvider": ["Transpose (t1)", "Slice (Crop)"],
        "CPUExecutionProvider": ["ConvTranspose (ConvTranspose)"]}


def test_parser_reads_a_real_cpu_session_log():
    import onnxruntime as ort

    from convt_tools.exporter import export_spec
    from convt_tools.spec import make_spec

    model = export_spec(make_spec(2, 3, strides=2, padding="same"), input_shape=(1, 3, 3, 2))
    G.EP = "CPUExecutionProvider"
    try:
        with G.CapturedStderr() as cap:
            G.session(ort, model, tf32=False, log=True)
    finally:
        G.EP = "CUDAExecutionProvider"
    assert G.placements(cap.text) == {"CPUExecutionProvider": ["<all nodes>"]}


def test_script_exits_cleanly_without_cuda():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is present: the script would run the real check")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_cuda_ep_check.py")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "CUDAExecutionProvider is not available" in out.stdout
    assert "Nothing checked." in out.stdout
