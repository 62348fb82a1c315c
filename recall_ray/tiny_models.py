"""Offline test models: real model code with small configs and seeded random weights.

They prove code paths (shapes, normalisation, determinism, batching, persistence), never quality. Built by
``recall models build-tiny`` into MODEL_ROOT with manifests, exactly like downloaded weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from recall_ray import model_registry

TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

# A small corpus for the offline BPE tokenizer: enough to give the tiny LLM and VLM real tokens.
_CORPUS = [
    "Let's meet for board games this weekend at the cafe in Shibuya.",
    "Barbecue by the river, bring drinks and snacks. RSVP by Sep 10.",
    "Hiking trip to Mount Takao on Saturday morning, meet at the station at 8:00.",
    '{"title": "Weekend picnic", "body": "Shall we go?", "themes": ["picnic", "park"]}',
    "週末ボードゲーム会 渋谷カフェ 9月14日(土) 14:00〜18:00 来週土曜 花見 キャンプ 旅行 ラーメン",
    "みんなで集まりましょう。 写真 思い出 海 山 公園 誕生日 パーティー",
]


def _tmp_then_move(root: Path, full: str) -> Path:
    directory = model_registry.model_dir(root, full)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def build_clip(root: Path, full: str, seed: int, arch: str | None = None) -> None:
    """Random weights for the tiny test architecture, or for one of open_clip's own (``arch``)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    directory = _tmp_then_move(root, full)
    config: dict[str, object] = {"arch": arch or "recall-tiny-clip", "weights": "weights.safetensors"}
    if arch is None:
        open_clip.factory._MODEL_CONFIGS[config["arch"]] = TINY_CLIP_CONFIG
        config["open_clip_config"] = TINY_CLIP_CONFIG
    torch.manual_seed(seed)
    model = open_clip.create_model(str(config["arch"]), pretrained=None)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "weights.safetensors")
    )
    model_registry.write_manifest(root, full, files=["weights.safetensors"], config=config)


def build_faces(root: Path, full: str, seed: int = 7) -> None:
    """Haar cascade copied from the OpenCV wheel, and an ONNX recognizer with ArcFace's contract:
    input ``input.1`` float32 [N, 3, 112, 112] ((pixel - 127.5) / 127.5, RGB), output [N, 512]."""
    import cv2
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    directory = _tmp_then_move(root, full)
    cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    shutil.copy(cascade, directory / "haarcascade_frontalface_default.xml")

    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array((rng.normal(size=shape) / np.sqrt(fan_in)).astype(np.float32), name)

    inits = [
        weight("c1", 16, 3, 3, 3),
        weight("c2", 32, 16, 3, 3),
        weight("c3", 64, 32, 3, 3),
        weight("fc", 64 * 16, 512),
        numpy_helper.from_array(np.zeros(512, np.float32), "fcb"),
    ]
    nodes = [
        helper.make_node("Conv", ["input.1", "c1"], ["h1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["r1"]),
        helper.make_node("Conv", ["r1", "c2"], ["h2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h2"], ["r2"]),
        helper.make_node("Conv", ["r2", "c3"], ["h3"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h3"], ["r3"]),
        helper.make_node("AveragePool", ["r3"], ["p"], kernel_shape=[3, 3], strides=[3, 3]),  # 14 -> 4
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 512])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "recognizer.onnx"))
    model_registry.write_manifest(
        root,
        full,
        files=["haarcascade_frontalface_default.xml", "recognizer.onnx"],
        config={
            "detector": "haar",
            "detector_file": "haarcascade_frontalface_default.xml",
            "recognizer_file": "recognizer.onnx",
        },
    )


def build_tokenizer(
    directory: Path, extra_special: dict[str, str] | None = None, added: list[str] | None = None
):  # noqa: ANN201
    """A byte-level BPE tokenizer trained on a small built-in corpus (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(
        vocab_size=1200, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens=extra_special or {},
    )
    if added:
        fast.add_tokens(added)
    fast.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
    )
    fast.save_pretrained(directory)
    return fast


def build_llm(root: Path, full: str, seed: int = 3) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = _tmp_then_move(root, full)
    tok = build_tokenizer(directory)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    model_registry.write_manifest(root, full, files=files, config={"engine": "transformers"})


def build_all(root: Path) -> list[str]:
    from recall_ray.vlm_tiny import build_florence2

    root.mkdir(parents=True, exist_ok=True)
    build_clip(root, "openclip_tiny@test-1", seed=1)
    build_clip(root, "openclip_tiny@test-2", seed=2)
    build_faces(root, "faces_tiny@test-1")
    build_llm(root, "llm_tiny@test-1")
    build_florence2(root, "florence2_tiny@test-1")
    return [v for v, e in model_registry.CATALOGUE.items() if e.tiny]


def ensure_built(root: Path) -> None:
    """Build the tiny models once; a complete set is left alone."""
    missing = [
        v for v, e in model_registry.CATALOGUE.items() if e.tiny and not (root / v / "manifest.json").exists()
    ]
    if missing:
        build_all(root)
