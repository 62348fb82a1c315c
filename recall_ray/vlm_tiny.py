"""The offline Florence-2 test model: the real Florence-2 architecture at a tiny size with random weights, an
offline BPE tokenizer carrying Florence-2's special and location tokens, and its processor."""

from __future__ import annotations

from pathlib import Path

from recall_ray import model_registry

# The parse rules Florence-2's own processor config ships with, for the tasks this project uses.
POST_PROCESSOR_CONFIG = {
    "ocr": {
        "pattern": r"(.+?)" + r"<loc_(\d+)>" * 8,
        "area_threshold": 0.0,
    },
    "pure_text": {},
    "description_with_bboxes": {},
    "bboxes": {},
}


def build_florence2(root: Path, full: str, seed: int = 11) -> None:
    import torch
    from transformers import (
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    from recall_ray.tiny_models import _tmp_then_move, build_tokenizer

    directory = _tmp_then_move(root, full)
    specials = [f"<loc_{i}>" for i in range(1000)] + [
        "<od>",
        "</od>",
        "<ocr>",
        "</ocr>",
        "<poly>",
        "</poly>",
        "<sep>",
    ]
    tok = build_tokenizer(directory, extra_special={"image_token": "<image>"}, added=specials)
    vision = {
        "depths": [1, 1, 1, 1],
        "embed_dim": [16, 32, 32, 64],
        "num_heads": [1, 2, 2, 4],
        "num_groups": [1, 2, 2, 4],
        "window_size": 2,
        "projection_dim": 64,
        "drop_path_rate": 0.0,
    }
    text = {
        "vocab_size": len(tok),
        "d_model": 64,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
        "max_position_embeddings": 256,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "decoder_start_token_id": tok.eos_token_id,
        "forced_eos_token_id": tok.eos_token_id,
    }
    config = Florence2Config(vision_config=vision, text_config=text, image_token_id=tok.image_token_id)
    torch.manual_seed(seed)
    Florence2ForConditionalGeneration(config).save_pretrained(directory)
    image_processor = CLIPImageProcessor(
        size={"height": 128, "width": 128},
        crop_size={"height": 128, "width": 128},
        do_center_crop=False,
        image_seq_length=17,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    Florence2Processor(
        image_processor=image_processor, tokenizer=tok, post_processor_config=POST_PROCESSOR_CONFIG
    ).save_pretrained(directory)
    files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    model_registry.write_manifest(root, full, files=files, config={"engine": "florence2"})
