"""Ray Serve deployments: one module per model (CLIP, faces, VLM + OCR, LLM) and the composed graphs."""
