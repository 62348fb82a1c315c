"""GPU placement: a replica's share of the GPU is its Serve ``num_gpus``; its memory cap follows from it.

Ray does not isolate GPU memory between processes, so every model caps its own allocator to its share:
torch through ``set_per_process_memory_fraction``, ONNX Runtime through the CUDA provider's ``gpu_mem_limit``
and vLLM through ``gpu_memory_utilization``.
"""

from __future__ import annotations


def assigned_share() -> float:
    """The fraction of one GPU that Ray assigned to this replica (0 on CPU deployments)."""
    import ray

    # Outside Ray (tools) asking would start a local Ray; a driver (tests, benchmarks) has no assignment.
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return 0.0
    return float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))


def torch_device() -> str:
    """``cuda`` with this process's allocator capped to the assigned share, else ``cpu``."""
    share = assigned_share()
    import torch

    if share <= 0 or not torch.cuda.is_available():
        return "cpu"
    torch.cuda.set_per_process_memory_fraction(min(1.0, share), 0)
    return "cuda"


def onnx_providers() -> list[object]:
    """CUDA with a memory limit of the assigned share where available, with CPU as the fallback."""
    import onnxruntime as ort

    share = assigned_share()
    if share > 0 and "CUDAExecutionProvider" in ort.get_available_providers():
        import torch

        total = torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else 0
        options = {"gpu_mem_limit": int(total * share)} if total else {}
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
