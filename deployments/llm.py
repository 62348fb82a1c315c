"""Text generation behind one interface: ``generate(messages, json_schema=None, max_tokens, temperature)``.

GPU with the ``gpu`` extra: vLLM's async engine in the replica, serving VLLM_MODEL_NAME with
JSON-schema-constrained decoding. CPU: a transformers engine (the offline profile uses a tiny random model).
Output that is not valid JSON for the schema is reported (``schema_valid: false`` and the reason) so that
callers fall back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from ray import serve

from recall_ray import model_registry


class ChatMessage(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = Field(max_length=32_000)


class GenerateRequest(BaseModel):
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    json_schema: dict[str, Any] | None = None
    max_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


class GenerateResult(BaseModel):
    text: str
    json_value: Any | None = None
    schema_valid: bool | None = None  # None when no schema was asked for
    error: str | None = None
    model_version: str
    engine: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


def check_json(text: str, schema: dict[str, Any]) -> tuple[Any | None, str | None]:
    """Parse the first JSON object in ``text`` and validate it; returns (value, error)."""
    import jsonschema

    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None, "output contains no JSON object"
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        return None, f"output is not valid JSON: {exc.msg}"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return None, f"output does not match the schema: {exc.message}"
    return value, None


class TransformersEngine:
    name = "transformers"

    def __init__(self, directory: Path, version: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.version = version
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
        self._lock = threading.Lock()

    def generate(self, req: GenerateRequest) -> tuple[str, int, int]:
        import torch

        messages = [m.model_dump() for m in req.messages]
        if req.json_schema is not None:  # no constrained decoding here: the schema goes into the prompt
            messages.insert(
                0,
                {
                    "role": "system",
                    "content": "Answer with JSON matching this schema: "
                    + json.dumps(req.json_schema, ensure_ascii=False),
                },
            )
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        kwargs: dict[str, Any] = {
            "max_new_tokens": req.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if req.temperature > 0:
            kwargs.update(do_sample=True, temperature=req.temperature)
        else:
            kwargs.update(do_sample=False)
        with self._lock, torch.inference_mode():
            out = self.model.generate(**ids, **kwargs)
        prompt_len = ids["input_ids"].shape[1]
        completion = out[0, prompt_len:]
        return (
            self.tokenizer.decode(completion, skip_special_tokens=True),
            prompt_len,
            int(completion.shape[0]),
        )


class VllmEngine:
    """vLLM's async engine inside the replica (needs a GPU and the ``gpu`` extra)."""

    name = "vllm"

    def __init__(
        self,
        directory: Path,
        version: str,
        max_model_len: int,
        tensor_parallel_size: int,
        gpu_memory_utilization: float,
    ):
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self.version = version
        args = AsyncEngineArgs(
            model=str(directory),
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=False,
        )
        self.engine = AsyncLLMEngine.from_engine_args(args)

    async def generate(self, req: GenerateRequest) -> tuple[str, int, int]:
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if req.json_schema is not None:
            try:  # vLLM >= 0.11
                from vllm.sampling_params import StructuredOutputsParams

                extra["structured_outputs"] = StructuredOutputsParams(json=req.json_schema)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                extra["guided_decoding"] = GuidedDecodingParams(json=req.json_schema)
        params = SamplingParams(max_tokens=req.max_tokens, temperature=req.temperature, **extra)
        tokenizer = await self.engine.get_tokenizer()
        prompt = tokenizer.apply_chat_template(
            [m.model_dump() for m in req.messages], tokenize=False, add_generation_prompt=True
        )
        final = None
        async for output in self.engine.generate(prompt, params, request_id=uuid.uuid4().hex):
            final = output
        assert final is not None
        completion = final.outputs[0]
        return completion.text, len(final.prompt_token_ids or []), len(completion.token_ids)


@serve.deployment(name="Llm", max_ongoing_requests=16, ray_actor_options={"num_cpus": 1})
class LlmDeployment:
    def __init__(
        self,
        model_root: str,
        version: str,
        max_model_len: int = 4096,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.35,
    ):
        manifest = model_registry.verify(Path(model_root), version)
        directory = model_registry.model_dir(Path(model_root), version)
        if manifest.config.get("engine") == "vllm":
            from deployments.gpu import assigned_share

            # vLLM takes exactly the GPU share this replica was given (its KV cache fills the rest of it).
            share = assigned_share() or gpu_memory_utilization
            self.engine: TransformersEngine | VllmEngine = VllmEngine(
                directory, version, max_model_len, tensor_parallel_size, share
            )
        else:
            self.engine = TransformersEngine(directory, version)

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        req = GenerateRequest.model_validate(request)
        t0 = time.monotonic()
        if isinstance(self.engine, VllmEngine):
            text, n_prompt, n_out = await self.engine.generate(req)
        else:
            text, n_prompt, n_out = await asyncio.to_thread(self.engine.generate, req)
        value, error, valid = None, None, None
        if req.json_schema is not None:
            value, error = check_json(text, req.json_schema)
            valid = error is None
        return GenerateResult(
            text=text,
            json_value=value,
            schema_valid=valid,
            error=error,
            model_version=self.engine.version,
            engine=self.engine.name,
            prompt_tokens=n_prompt,
            completion_tokens=n_out,
            latency_ms=int((time.monotonic() - t0) * 1000),
        ).model_dump()

    def info(self) -> dict[str, Any]:
        return {"version": self.engine.version, "engine": self.engine.name}

    def check_health(self) -> None:
        if self.engine is None:
            raise RuntimeError("LLM engine is not loaded")
