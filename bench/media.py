"""Media gateway benchmark: downloads through the gateway against straight from Synapse, in one run;
stripping a 12-megapixel JPEG; the bridge's memory while 1 GB streams through.

    .venv/bin/python bench/media.py [--size-mb 1024 --rounds 3 --strip-runs 5 --keep]

One run starts a fresh Synapse on loopback (max_upload_size raised to fit the file) and the
bridge as its own process with the gateway on (bridge.devtools.media_stack), makes one user,
then:

1. upload: --size-mb of random bytes (as an encrypted attachment is) through the gateway,
   streamed from disk; the bridge's peak resident memory over the upload.
2. memory: one download of the whole file through the gateway, hashed and checked against what
   was uploaded; the bridge's peak resident memory over the download (the kernel's high-water
   mark VmHWM, reset at the start through /proc/<pid>/clear_refs, and 5 ms RSS samples).
3. throughput: --rounds pairs of whole-file downloads, direct from Synapse's authenticated media
   endpoint and through the gateway, alternating (direct first in odd rounds, gateway first in
   even ones), with the same token. MB/s per download; the ratio gateway/direct per pair and
   its median.
4. strip: a 4000x3000 JPEG carrying EXIF with GPS and camera tags, XMP, IPTC and a comment;
   --strip-runs timings each of the gateway's lossless strip (orientation normal), its
   re-encoding strip (orientation 6: turned upright), and, for comparison, Pillow decoding and
   re-encoding the same file with no stripping logic at all.
5. photo upload: the same JPEG uploaded through the gateway against straight to Synapse,
   --strip-runs times each, alternating.

Figures go to stdout and bench/results/media-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from harness import machine_info
from PIL import Image, ImageChops, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.devtools.media_stack import (  # noqa: E402
    CHUNK,
    MediaStack,
    PeakRSS,
    stream_download,
    stream_upload,
    write_random_file,
)
from bridge.media.strip import strip_image  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MB = 1024 * 1024


async def timed_download(
    session: aiohttp.ClientSession, base: str, token: str, mxc: str
) -> tuple[float, int]:
    """Seconds to read the whole file (bytes counted, not kept) and its length."""
    server_name, media_id = mxc.removeprefix("mxc://").split("/")
    url = f"{base}/_matrix/client/v1/media/download/{server_name}/{media_id}"
    n = 0
    start = time.perf_counter()
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, r.status
        async for chunk in r.content.iter_chunked(CHUNK):
            n += len(chunk)
    return time.perf_counter() - start, n


def photo_pixels_12mp() -> Image.Image:
    """4000x3000 pixels with the fine texture of a photo (a JPEG of about 5 MB at quality 90,
    as phones write them; smooth test images compress far better and would flatter the figures)."""
    size = (4000, 3000)
    fine = Image.effect_noise(size, 48).filter(ImageFilter.GaussianBlur(0.8))
    finer = Image.effect_noise(size, 48).filter(ImageFilter.GaussianBlur(0.8))
    gradient = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    return Image.merge(
        "RGB",
        [ImageChops.add(gradient, fine, 2, -60), ImageChops.add(radial, finer, 2, -60), fine],
    )


def photo_12mp(im: Image.Image, orientation: int) -> bytes:
    """A 12-megapixel JPEG as a phone writes it: EXIF (camera, GPS), XMP, IPTC, a comment."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS 5D Mark IV", orientation
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 30.1), 3: "E", 4: (2.0, 17.0, 40.1)})
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif.tobytes())
    data = out.getvalue()
    xmp = (
        b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
        b"xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description "
        b"xmlns:dc='http://purl.org/dc/elements/1.1/' dc:creator='Jane Witness'/></rdf:RDF>"
        b"</x:xmpmeta>"
    )
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x19\x00\x08evidence"
    comment = b"taken at the safe house"
    extra = b"".join(
        bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body
        for marker, body in ((0xE1, xmp), (0xED, iptc), (0xFE, comment))
    )
    return data[:2] + extra + data[2:]


def time_strip(src: Path, runs: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        with tempfile.TemporaryFile() as out:
            start = time.perf_counter()
            result = strip_image(src, out, "image/jpeg", keep_icc=True, max_pixels=50_000_000)
            times.append(time.perf_counter() - start)
    return times, result


def time_plain_reencode(src: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with Image.open(src) as im:
            im.save(io.BytesIO(), "JPEG", quality="keep")
        times.append(time.perf_counter() - start)
    return times


async def photo_uploads(
    session: aiohttp.ClientSession, stack: MediaStack, token: str, data: bytes, runs: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
    for i in range(runs):
        order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
        for mode in order:
            base = stack.hs_url if mode == "direct" else stack.gateway
            start = time.perf_counter()
            async with session.post(
                f"{base}/_matrix/media/v3/upload", data=data, headers=headers
            ) as r:
                assert r.status == 200, await r.text()
            times[mode].append(time.perf_counter() - start)
    return times


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="firm-media-bench-"))
    size = args.size_mb * MB
    stack = MediaStack(work, max_upload=f"{args.size_mb + 64}M", bridge_log_level="WARNING")
    out: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "size_mb": args.size_mb,
    }
    ok = False
    try:
        await stack.start()
        _, token = await stack.user("bench")
        big = work / "big.bin"
        digest = write_random_file(big, size)
        timeout = aiohttp.ClientTimeout(total=3600)
        async with aiohttp.ClientSession(timeout=timeout, read_bufsize=CHUNK) as s:
            print(f"upload: {args.size_mb} MB through the gateway ...", flush=True)
            start = time.perf_counter()
            async with PeakRSS(stack.pid) as up:
                status, body = await stream_upload(
                    s, stack.gateway, token, big, "application/octet-stream"
                )
            upload_s = time.perf_counter() - start
            assert status == 200, body
            mxc = body["content_uri"]
            big.unlink()
            print("memory: one download through the gateway ...", flush=True)
            async with PeakRSS(stack.pid) as down:
                status, got, n = await stream_download(s, stack.gateway, token, mxc)
            assert (status, n, got) == (200, size, digest), "the download differs from the upload"
            out["upload"] = {
                "seconds": round(upload_s, 2),
                "mb_per_s": round(args.size_mb / upload_s, 1),
            }
            out["memory"] = {
                span: {
                    "baseline_mb": round(m.baseline / MB, 1),
                    "peak_mb": round(m.peak / MB, 1),
                    "growth_mb": round((m.peak - m.baseline) / MB, 1),
                    "kernel_hwm": m.hwm is not None,
                }
                for span, m in (("upload", up), ("download", down))
            }
            print(
                f"throughput: {args.rounds} rounds, direct and through the gateway ...", flush=True
            )
            rounds = []
            for i in range(args.rounds):
                order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
                speeds = {}
                for mode in order:
                    base = stack.hs_url if mode == "direct" else stack.gateway
                    seconds, n = await timed_download(s, base, token, mxc)
                    assert n == size
                    speeds[mode] = args.size_mb / seconds
                rounds.append(
                    {
                        "direct_mb_s": round(speeds["direct"], 1),
                        "gateway_mb_s": round(speeds["gateway"], 1),
                        "ratio": round(speeds["gateway"] / speeds["direct"], 3),
                    }
                )
                print(f"  round {i + 1}: {rounds[-1]}", flush=True)
            out["throughput"] = {
                "rounds": rounds,
                "median_direct_mb_s": round(statistics.median(r["direct_mb_s"] for r in rounds), 1),
                "median_gateway_mb_s": round(
                    statistics.median(r["gateway_mb_s"] for r in rounds), 1
                ),
                "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
            }
            print("strip: a 12-megapixel JPEG ...", flush=True)
            strip: dict[str, Any] = {}
            pixels = photo_pixels_12mp()
            for orientation, name in ((1, "lossless"), (6, "re-encoded")):
                src = work / f"photo-{orientation}.jpg"
                src.write_bytes(photo_12mp(pixels, orientation))
                times, result = time_strip(src, args.strip_runs)
                assert result.method == name, result
                strip[name] = {
                    "median_ms": round(statistics.median(times) * 1000, 1),
                    "runs_ms": [round(t * 1000, 1) for t in times],
                    "removed": list(result.removed),
                    "file_mb": round(src.stat().st_size / MB, 2),
                }
            plain = time_plain_reencode(work / "photo-1.jpg", args.strip_runs)
            strip["pillow_decode_encode"] = {"median_ms": round(statistics.median(plain) * 1000, 1)}
            base_ms = strip["pillow_decode_encode"]["median_ms"]
            strip["lossless_vs_pillow"] = round(strip["lossless"]["median_ms"] / base_ms, 3)
            strip["reencoded_vs_pillow"] = round(strip["re-encoded"]["median_ms"] / base_ms, 3)
            out["strip"] = strip
            print("photo upload: gateway against direct ...", flush=True)
            photo = (work / "photo-1.jpg").read_bytes()
            ups = await photo_uploads(s, stack, token, photo, args.strip_runs)
            out["photo_upload"] = {
                "median_direct_ms": round(statistics.median(ups["direct"]) * 1000, 1),
                "median_gateway_ms": round(statistics.median(ups["gateway"]) * 1000, 1),
            }
            out["photo_upload"]["ratio"] = round(
                out["photo_upload"]["median_gateway_ms"] / out["photo_upload"]["median_direct_ms"],
                3,
            )
        ok = True
    finally:
        out["machine"]["loadavg_end"] = os.getloadavg()
        stack.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            out["workdir"] = str(work)
            print(f"work dir kept: {work} (bridge.log, synapse/)", flush=True)
    return out


def report(out: dict[str, Any]) -> str:
    t, m, st, pu = out["throughput"], out["memory"], out["strip"], out["photo_upload"]
    return "\n".join(
        [
            "",
            f"Command: {out['command']}",
            f"Machine: {out['machine']['nproc']} CPUs, {out['machine']['cpu_model']}, load "
            f"{out['machine']['loadavg_start'][0]:.2f} at start",
            "",
            f"Download {out['size_mb']} MB, median of {len(t['rounds'])} alternating rounds:",
            f"  direct from Synapse  {t['median_direct_mb_s']:>8.1f} MB/s",
            f"  through the gateway  {t['median_gateway_mb_s']:>8.1f} MB/s",
            f"  gateway / direct     {t['median_ratio']:>8.3f}   (target >= 0.8)",
            "",
            f"Bridge process memory while {out['size_mb']} MB streamed through the gateway:",
            f"  download: peak {m['download']['peak_mb']} MB "
            f"(baseline {m['download']['baseline_mb']} MB, +{m['download']['growth_mb']} MB)",
            f"  upload:   peak {m['upload']['peak_mb']} MB "
            f"(baseline {m['upload']['baseline_mb']} MB, +{m['upload']['growth_mb']} MB)",
            "",
            "Strip a 12-megapixel JPEG (EXIF+GPS, XMP, IPTC, comment), median:",
            f"  lossless (upright photo)          {st['lossless']['median_ms']:>8.1f} ms",
            f"  re-encoded (orientation 6)        {st['re-encoded']['median_ms']:>8.1f} ms",
            f"  Pillow decode+encode, for scale   {st['pillow_decode_encode']['median_ms']:>8.1f} ms",
            f"  ratios to Pillow: lossless {st['lossless_vs_pillow']}, "
            f"re-encoded {st['reencoded_vs_pillow']}",
            "",
            f"Upload of that photo: direct {pu['median_direct_ms']} ms, through the gateway "
            f"{pu['median_gateway_ms']} ms (ratio {pu['ratio']})",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/media.py", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="download pairs (default 3)")
    parser.add_argument("--strip-runs", type=int, default=5, help="timings each (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/media-<ts>.json)"
    )
    args = parser.parse_args()
    out = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.out or RESULTS / f"media-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(report(out))
    print(f"\nWritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
