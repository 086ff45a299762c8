"""sentence-transformers (PyTorch CPU) side of bench/embed.sh: same model files, same
sentences, same thread count as the candle side; prints one JSON line.

    python bench/embed_peer.py MODEL_DIR THREADS SENTENCES_JSON
"""
import json
import resource
import sys
import time


def main():
    model_dir, threads, sentences_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    from sentence_transformers import SentenceTransformer

    sentences = json.load(open(sentences_path))
    t = time.perf_counter()
    model = SentenceTransformer(model_dir, device="cpu")
    load_s = time.perf_counter() - t
    model.encode(sentences[:8], batch_size=8, normalize_embeddings=True)  # warm-up
    rates = []
    for batch in (1, 32):
        n = min(64, len(sentences)) if batch == 1 else len(sentences)
        t = time.perf_counter()
        with torch.inference_mode():
            model.encode(sentences[:n], batch_size=batch, normalize_embeddings=True)
        rates.append(n / (time.perf_counter() - t))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"impl": "sentence-transformers", "threads": threads, "load_s": load_s,
                      "batch1_sps": rates[0], "batch32_sps": rates[1],
                      "peak_rss_mib": peak_kib / 1024.0}))


if __name__ == "__main__":
    main()
