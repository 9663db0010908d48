#!/usr/bin/env python3
"""Writes a one-layer image as a docker-archive (`docker save` format) from
a root filesystem tar, with the layer stored as given (plain, gzip or zstd:
docker, podman and hafen all accept compressed layer files on load).

Usage: make-image-archive.py ROOTFS.tar LAYER-FILE NAME:TAG OUT.tar
  ROOTFS.tar  the uncompressed layer (its sha256 is the diff ID)
  LAYER-FILE  the same, compressed or not, as it goes into the archive
"""
import hashlib
import io
import json
import sys
import tarfile


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def main():
    rootfs, layer, name, out = sys.argv[1:5]
    diff_id = "sha256:" + sha256_file(rootfs)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2026-01-01T00:00:00Z", "comment": "benchmark layer"}],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = sha256_file(layer) + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}]

    def add_bytes(t, arcname, data):
        info = tarfile.TarInfo(arcname)
        info.size = len(data)
        info.mtime = 0
        t.addfile(info, io.BytesIO(data))

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        t.add(layer, arcname=layer_name, recursive=False)
        add_bytes(t, config_name, config_bytes)
        add_bytes(t, "manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    main()
