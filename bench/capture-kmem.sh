#!/bin/sh
# Records a real kmem capture on the live kernel for the benchmarks (root):
#   OUT/kmem.dat  `nftrace record -e kmem` (every kmem event, page allocator included), v7 zstd
#   OUT/kmem.txt  the ftrace text of the same run: `cat trace` of a second instance with a large
#                 buffer, kmalloc/kfree/kmem_cache_alloc/kmem_cache_free only (trace_analyze's set)
# around a file-system-heavy workload: find over /usr, cat of headers, tar of a source tree, a git
# repository built, committed and walked. Captures are generated, never committed.
#
# Usage: bench/capture-kmem.sh [OUT] [ROUNDS]   (defaults: bench/captures, 2)
set -eu
cd "$(dirname "$0")/.."
OUT="${1:-bench/captures}"
ROUNDS="${2:-2}"
TRACEFS=/sys/kernel/tracing
[ -d "$TRACEFS/instances" ] || mount -t tracefs nodev "$TRACEFS"
[ -f dist/src/cli/main.js ] || npm run build --silent
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

TEXT_INSTANCE="nftrace-bench-text-$$"
TEXT="$TRACEFS/instances/$TEXT_INSTANCE"
WORK="$(mktemp -d)"
cleanup() {
  [ -d "$TEXT" ] && { echo 0 > "$TEXT/events/enable" || true; rmdir "$TEXT" || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

mkdir "$TEXT"
echo 131072 > "$TEXT/buffer_size_kb"
for e in kmalloc kfree kmem_cache_alloc kmem_cache_free; do echo 1 > "$TEXT/events/kmem/$e/enable"; done

cat > "$WORK/workload.sh" <<'EOF'
#!/bin/sh
set -eu
work="$1"; rounds="$2"
i=0
while [ "$i" -lt "$rounds" ]; do
  find /usr/share /usr/include -xdev > /dev/null 2>&1 || true
  find /usr/include -name '*.h' | head -4000 | xargs cat > /dev/null
  tar cf "$work/inc.tar" -C /usr include/linux include/asm-generic 2>/dev/null || true
  rm -rf "$work/repo" && mkdir "$work/repo"
  tar xf "$work/inc.tar" -C "$work/repo"
  git -C "$work/repo" init -q
  git -C "$work/repo" -c user.name=bench -c user.email=bench@localhost add -A
  git -C "$work/repo" -c user.name=bench -c user.email=bench@localhost commit -qm "round $i"
  git -C "$work/repo" status --short > /dev/null
  git -C "$work/repo" log --stat > /dev/null
  i=$((i + 1))
done
EOF

echo 1 > "$TEXT/tracing_on"
node dist/src/cli/main.js record -e kmem -b 65536 -o "$OUT/kmem.dat" -- sh "$WORK/workload.sh" "$WORK" "$ROUNDS"
echo 0 > "$TEXT/tracing_on"
cat "$TEXT/trace" > "$OUT/kmem.txt"
for s in "$TEXT"/per_cpu/cpu*/stats; do echo "== $s"; grep -E 'entries|overrun|dropped' "$s"; done
echo "wrote $OUT/kmem.dat ($(du -h "$OUT/kmem.dat" | cut -f1)) and $OUT/kmem.txt ($(grep -vc '^#' "$OUT/kmem.txt") events)"
