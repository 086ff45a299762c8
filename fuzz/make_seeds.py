#!/usr/bin/env python3
"""Writes the seed corpora of frame_decode, decode_differential, manifest_parse and archive_extract under
fuzz/corpus/<target>/seed-*. (worker_machine seeds come from the Rust scenarios:
ASTRA_WRITE_SEEDS=1 cargo test -p astra-core --test fuzz_corpus_replay.) Deterministic:
re-running it rewrites identical files."""
import gzip, io, json, os, tarfile, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# frame_decode: the first recorded frame of each (direction, type), plus a few edge cases
seen = set()
with open(os.path.join(ROOT, "core/tests/fixtures/astraflow-frames-c4bf80a.jsonl")) as f:
    next(f)
    for line in f:
        rec = json.loads(line)
        fr = rec["frame"]
        key = (rec["dir"], fr["type"])
        if key in seen:
            continue
        seen.add(key)
        who = "s2w" if rec["dir"].startswith("scheduler") else "w2s"
        write("frame_decode", f"{who}-{fr['type']}.json", json.dumps(fr).encode())
        # decode_differential: the compact wire form, which the fast path reads
        write("decode_differential", f"{who}-{fr['type']}.json", json.dumps(fr, separators=(",", ":")).encode())
dispatch = {"type": "cmd.dispatch", "id": "d1", "ts": "2025-11-03T13:21:00.100000+00:00", "corr": "n1", "seq": 1,
            "tenant": "default", "sender": {"role": "scheduler", "id": "scheduler-control"}, "ack": {"request": True},
            "payload": {"run_id": "r1", "task_id": "n1", "node_id": "n1", "node_type": "example.pkg.echo",
                        "package_name": "example.pkg", "package_version": "1.0.0", "parameters": {"m": "hi"},
                        "constraints": {}, "concurrency_key": "r1:n1"}}
text = json.dumps(dispatch)
write("frame_decode", "python-nan.json", text.replace('"hi"', 'NaN, "x": -Infinity, "s": "NaN"').encode())
write("frame_decode", "truncated.json", text[:-20].encode())
write("frame_decode", "extra-key.json", text.replace('"constraints": {}', '"constraints": {"x": 1}').encode())

# decode_differential: texts where the fast path must decline and serde explain
hb = ('{"type":"heartbeat","id":"h1","ts":"2025-11-03T13:20:00.148085+00:00","seq":7,"tenant":"default",'
      '"sender":{"role":"worker","id":"w1"},"payload":{"healthy":true,"metrics":{"inflight":0,"outbox":0}}}')
for name, t in [
    ("hb-spaced.json", hb.replace(",", " ,\n\t").replace('":', '" :\r ')),
    ("hb-dup-seq.json", hb.replace('"seq":7', '"seq":7,"seq":8')),
    ("hb-dup-metric.json", hb.replace('"outbox":0', '"outbox":0,"outbox":1')),
    ("hb-leading-zero.json", hb.replace('"seq":7', '"seq":07')),
    ("hb-big-numbers.json", hb.replace('"outbox":0', '"outbox":-0,"f":1.5e3,"big":18446744073709551616,"h":1E400')),
    ("hb-escaped-key.json", hb.replace('"healthy"', '"heal\\u0074hy"')),
    ("hb-nan.json", hb.replace('"outbox":0', '"outbox":[NaN,-Infinity]')),
    ("hb-nested.json", hb.replace('"outbox":0', '"outbox":' + "[" * 70 + "]" * 70)),
    ("hb-trailing.json", hb + " x"),
    ("dispatch-compact.json", json.dumps(dispatch, separators=(",", ":"))),
    ("dispatch-escapes.json", json.dumps(dispatch, separators=(",", ":")).replace('"hi"', '"h\\u00e9\\n\\ud83d\\ude00"')),
]:
    write("decode_differential", name, t.encode())

# manifest_parse: a manifest shaped like the example package, and a minimal one
def node(t, adapter, handler, label):
    return {"type": t, "status": "published", "category": "Examples", "label": label,
            "description": label, "tags": ["example"], "adapter": adapter, "handler": handler, "config": {},
            "schema": {"parameters": {"type": "object", "properties": {}, "required": []},
                       "results": {"type": "object", "properties": {}, "required": []}},
            "ui": {"widgets": [{"key": "message", "label": "Message", "component": "text",
                                "binding": {"path": "/parameters/message", "mode": "write"}}],
                   "outputPorts": [{"key": "out", "label": "Out", "binding": {"path": "/results/out", "mode": "read"}}]}}

manifest = {"schemaVersion": "1.0.0", "name": "example.pkg", "version": "1.0.0",
            "description": "Example echo package.",
            "adapters": [{"name": "echo", "entrypoint": "adapters.echo", "capabilities": ["example.pkg.echo"]}],
            "python": {"requires": ">=3.10,<3.12", "dependencies": []},
            "nodes": [node("example.pkg.echo", "echo", "echo", "Echo Message")]}
write("manifest_parse", "example.json", json.dumps(manifest, indent=1).encode())
write("manifest_parse", "bom.json", b"\xef\xbb\xbf" + json.dumps(manifest).encode())
compact = dict(manifest)
compact["nodes"] = manifest["nodes"] + [node("example.pkg.delay", "echo", "delay", "Delay")]
compact["adapters"] = [{"name": "echo", "entrypoint": "adapters.echo",
                        "capabilities": ["example.pkg.echo", "example.pkg.delay"]}]
write("manifest_parse", "two-nodes.json", json.dumps(compact, separators=(",", ":")).encode())

# archive_extract: small zip / tar / tar.gz packages and a few hostile ones
files = {"pkg/manifest.json": json.dumps(manifest).encode(),
         "pkg/adapters/__init__.py": b"",
         "pkg/adapters/echo.py": b"def echo(params, ctx):\n    return {'out': params.get('message')}\n"}


def tar_bytes(entries, gz=False, links=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in entries.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
        for name, target, kind in links:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.linkname = target
            ti.mtime = 0
            t.addfile(ti)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return buf.getvalue()


write("archive_extract", "pkg.zip", zip_bytes(files))
write("archive_extract", "pkg.tar", tar_bytes(files))
write("archive_extract", "pkg.tar.gz", tar_bytes(files, gz=True))
write("archive_extract", "dotdot.tar", tar_bytes({"../evil.txt": b"x", "pkg/a.txt": b"a"}))
write("archive_extract", "abs.zip", zip_bytes({"/tmp/evil.txt": b"x"}))
write("archive_extract", "symlink.tar", tar_bytes({"pkg/a.txt": b"a"}, links=[("pkg/link", "../../..", tarfile.SYMTYPE)]))
write("archive_extract", "hardlink.tar", tar_bytes({"pkg/a.txt": b"a"}, links=[("pkg/h", "pkg/a.txt", tarfile.LNKTYPE)]))
write("archive_extract", "dup.zip", zip_bytes({"pkg/a.txt": b"a", "pkg/./a.txt": b"b"}))
write("archive_extract", "bomb.zip", zip_bytes({"pkg/zeros.bin": b"\0" * (2 << 20)}))
print("seeds written under", OUT)
