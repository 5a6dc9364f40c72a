#!/usr/bin/env bash
# Makes the seed corpora of the fuzz targets (docs/fuzzing.md) in OUTDIR/<target>/:
#   images   small qcow2 files written by qemu-img/qemu-io: v2 and v3, 512 B to 64 KiB clusters,
#            refcount widths, extended L2, zlib and zstd compressed clusters, zero and discarded
#            clusters, internal snapshots, an overlay with a backing file, a lazy image left
#            dirty by a killed qemu-io, persistent bitmaps, preallocated metadata
#   traces   the repository's traces (format version 1) and, when a crashsim program is at hand
#            ($CRASHSIM, build-fuzz/bin or build/bin), a version 2 trace from a small validate run
#   nbd      client sessions: handshake options, then requests of every kind
#   parsers  workload files (also cut from the traces), create options, sizes, open options
# Generated, not committed: every file is made from the tools and the tree in a few seconds.
# Usage: fuzz/make_corpus.sh OUTDIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: fuzz/make_corpus.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for t in fuzz_image_read fuzz_repair fuzz_trace_parse fuzz_nbd_server fuzz_parsers; do
  mkdir -p "$out/$t"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- images ---------------------------------------------------------------------------------
img() {  # img NAME OPTS SIZE [qemu-io commands...]
  local name=$1 opts=$2 size=$3
  shift 3
  qemu-img create -q -f qcow2 -o "$opts" "$tmp/$name.qcow2" "$size"
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  [ ${#args[@]} -eq 0 ] || qemu-io -f qcow2 "${args[@]}" "$tmp/$name.qcow2" >/dev/null
}
writes=("write -P 0x11 0 4k" "write -P 0x22 64k 1k" "write -z 128k 8k" "discard 64k 512")
img v3-512 compat=1.1,cluster_size=512 1M "${writes[@]}"
img v3-4k compat=1.1,cluster_size=4k 4M "${writes[@]}"
img v3-64k compat=1.1,cluster_size=64k 4M "write -P 0x33 0 512"
img v2-4k compat=0.10,cluster_size=4k 2M "${writes[@]}"
img empty-4k compat=1.1,cluster_size=4k 1G
img rc1-4k compat=1.1,cluster_size=4k,refcount_bits=1 1M "write -P 0x44 0 8k"
img rc64-512 compat=1.1,cluster_size=512,refcount_bits=64 1M "write -P 0x55 0 2k"
img extl2-16k compat=1.1,cluster_size=16k,extended_l2=on 1M "write -P 0x66 0 2k" "write -z 8k 2k"
img zlib-4k compat=1.1,cluster_size=4k 1M "write -c -P 0x77 0 4k" "write -c -P 0x78 8k 4k"
img zstd-4k compat=1.1,cluster_size=4k,compression_type=zstd 1M "write -c -P 0x79 0 4k"
img prealloc-4k compat=1.1,cluster_size=4k,preallocation=metadata 256k
img snap-4k compat=1.1,cluster_size=4k 1M "write -P 0x12 0 8k"
qemu-img snapshot -c s1 "$tmp/snap-4k.qcow2"
qemu-io -f qcow2 -c "write -P 0x13 4k 4k" "$tmp/snap-4k.qcow2" >/dev/null
qemu-img snapshot -c s2 "$tmp/snap-4k.qcow2"
img base-4k compat=1.1,cluster_size=4k 1M "write -P 0x21 0 16k"
qemu-img create -q -f qcow2 -o compat=1.1,cluster_size=4k -b base-4k.qcow2 -F qcow2 \
  "$tmp/overlay-4k.qcow2"
qemu-io -f qcow2 -c "write -P 0x31 4k 4k" "$tmp/overlay-4k.qcow2" >/dev/null
# A lazy-refcounts image whose writer died: the dirty bit is set and the refcounts are stale.
img lazy-dirty-4k compat=1.1,cluster_size=4k,lazy_refcounts=on 1M
(qemu-io -f qcow2 -c "write -P 0x41 0 8k" -c "write -P 0x42 64k 4k" -c "sigraise 9" \
  "$tmp/lazy-dirty-4k.qcow2" >/dev/null 2>&1 || true) 2>/dev/null
img bitmap-4k compat=1.1,cluster_size=4k 1M "write -P 0x51 0 4k"
qemu-img bitmap --add "$tmp/bitmap-4k.qcow2" b0
qemu-img bitmap --add -g 64k "$tmp/bitmap-4k.qcow2" b1
qemu-io -f qcow2 -c "write -P 0x52 8k 4k" "$tmp/bitmap-4k.qcow2" >/dev/null
for f in "$tmp"/*.qcow2; do
  cp "$f" "$out/fuzz_image_read/"
  cp "$f" "$out/fuzz_repair/"
done

# --- traces and workloads -------------------------------------------------------------------
traces=(traces/regressions/*.cstrace traces/examples/*.cstrace)
crashsim=${CRASHSIM:-}
for c in build-fuzz/bin/crashsim build/bin/crashsim; do
  [ -n "$crashsim" ] || { [ -x "$c" ] && crashsim=$c; } || true
done
if [ -n "$crashsim" ]; then
  # QEMU's known -r leaks finding (docs/findings.md F1) keeps a version 2 trace of a tiny run.
  printf 'disk 1048576\nwrite 0x0 512 p=7\nflush\n' >"$tmp/tiny.workload"
  "$crashsim" validate --target qemu -t writethrough --lazy on --crash power \
    --workload "$tmp/tiny.workload" --max-states 24 \
    --trace-dir "$tmp/validate" >/dev/null 2>&1 || true
  for t in "$tmp"/validate/*/trace.cstrace; do
    [ -f "$t" ] || continue
    cp "$t" "$out/fuzz_trace_parse/v2-$(basename "$(dirname "$t")").cstrace"
    traces+=("$t")
  done
else
  echo "make_corpus: no crashsim program: no version 2 trace (set CRASHSIM)" >&2
fi
cp traces/regressions/*.cstrace traces/examples/*.cstrace "$out/fuzz_trace_parse/"
n=0
for t in "${traces[@]}"; do  # the workload block of each trace, as a workload file
  n=$((n + 1))
  sed -n '/^disk /,/^device-ops /p' "$t" | sed '$d' >"$out/fuzz_parsers/trace-workload-$n"
done

# --- parsers --------------------------------------------------------------------------------
p=$out/fuzz_parsers
printf 'disk 1048576\nwrite 0x10000 4096 p=17\nzero 0x0 65536 unmap\ndiscard 0x20000 65536\nflush\nread 0x10000 4096\nsnapshot\nreopen\n' >"$p/workload-all-ops"
printf '# a comment\ndisk 512\n\nwrite 0 512 p=4294967295\n' >"$p/workload-edge"
printf 'compat=1.1,cluster_size=65536,lazy_refcounts=on,refcount_bits=16' >"$p/create-lazy"
printf 'compat=0.10,cluster_size=4k,size=1G,preallocation=metadata' >"$p/create-v2"
printf 'extended_l2=on,compression_type=zstd,backing_file=a,,b.qcow2,backing_fmt=qcow2' >"$p/create-backing"
for s in 64M 1G 512 4k 1.5M 0x1000 8E 2T 1b; do printf '%s' "$s" >"$p/size-$s"; done
for m in writeback writethrough directsync none unsafe; do printf '%s' "$m" >"$p/cache-$m"; done
printf 'overlap-check=all,overlap-check.inactive-l2=off,overlap-check.main-header=on' >"$p/overlap"

# --- NBD client sessions --------------------------------------------------------------------
python3 - "$out/fuzz_nbd_server" <<'PY'
import struct, sys
out = sys.argv[1]
IHAVEOPT = 0x49484156454f5054
def opt(code, data=b""): return struct.pack(">QII", IHAVEOPT, code, len(data)) + data
def go(code, name=b"crashsim", reqs=()):
    return opt(code, struct.pack(">I", len(name)) + name + struct.pack(">H", len(reqs)) +
               b"".join(struct.pack(">H", r) for r in reqs))
def req(cmd, off=0, length=0, flags=0, handle=1, data=b""):
    return struct.pack(">IHHQQI", 0x25609513, flags, cmd, handle, off, length) + data
flags = struct.pack(">I", 3)  # fixed newstyle, no zeroes
transmission = (req(0, 0, 4096) + req(1, 4096, 512, 1, 2, b"\xab" * 512) + req(3, handle=3) +
                req(4, 8192, 4096, 1, 4) + req(6, 12288, 8192, 3, 5) + req(9, handle=6) +
                req(0, 1 << 30, 512, handle=7) + req(2))
sessions = {
    "go": flags + opt(8) + opt(3) + go(6, reqs=(3,)) + go(7) + transmission,
    "export-name": flags + opt(1, b"crashsim") + transmission,
    "export-name-zeroes": struct.pack(">I", 1) + opt(1, b"") + transmission,
    "abort": flags + opt(5) + opt(2),
    "bad-go": flags + go(7, b"other") + opt(7, b"\0\0\0\x09x") + go(7, b""),
}
for name, body in sessions.items():
    for ro in (0, 1):
        with open(f"{out}/{name}-ro{ro}", "wb") as f:
            f.write(bytes([ro]) + body)
PY
for t in "$out"/*/; do echo "make_corpus: $(ls "$t" | wc -l) seeds in $t"; done
