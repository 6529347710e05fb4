#!/usr/bin/env bash
# npm run gpu-check: on a Linux x86_64 machine with an NVIDIA GPU, checks that visionq
# really runs on CUDA, then runs the e2e bench (`npm run bench -- e2e`) with
# EXECUTION_PROVIDERS=cuda, worker and raw session alike, and prints e2e ÷ raw.
#
# Needs: the NVIDIA driver (nvidia-smi), the CUDA 12 runtime libraries with cuDNN 9 (as in
# nvidia/cuda:12.x-cudnn-runtime images), `npm ci` done, python3 with moto[server], and
# redis-server (started here on 127.0.0.1:6379 when nothing answers there). onnxruntime-node
# keeps its CUDA provider out of the npm package: its install script fetches it from NuGet
# (ONNXRUNTIME_NODE_INSTALL=cuda12), which `npm ci` here skips; this script runs it once
# when the provider is missing.
#
# Everything, preflight included, ends within GPU_CHECK_BUDGET_S (default 300) seconds.
# On a machine without a GPU it stops at once, saying so. Exit status: 0 when the bench
# ran on CUDA, 69 when the machine lacks something, 1 when a check or the bench failed.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
BUDGET_S=${GPU_CHECK_BUDGET_S:-300}
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
CUDA_PROVIDER=$ORT_BIN/libonnxruntime_providers_cuda.so

say() { echo "gpu-check: $*" >&2; }
missing() { say "$*"; exit 69; }
failed() { say "$*"; exit 1; }
left() { echo $((BUDGET_S - SECONDS)); }

# 1. A GPU, seen by its driver.
command -v nvidia-smi >/dev/null 2>&1 ||
  missing "no NVIDIA GPU here: nvidia-smi is not installed. Run this on a machine with an NVIDIA GPU and its driver (see README, \"GPU check\")."
gpus=$(timeout 20 nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1) ||
  missing "nvidia-smi found no usable GPU: $gpus"
[ -n "$gpus" ] || missing "nvidia-smi lists no GPU"
say "GPUs: $(echo "$gpus" | tr '\n' ';')"
[ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] ||
  missing "onnxruntime-node ships its CUDA provider for Linux x86_64 only, this is $(uname -s)/$(uname -m)"

# 2. visionq built, onnxruntime's CUDA provider installed and its libraries found.
[ -d node_modules/onnxruntime-node ] || missing "node_modules is missing: run npm ci first"
npm run build || failed "the build failed"
if [ ! -f "$CUDA_PROVIDER" ]; then
  version=$(node -p "require('onnxruntime-node/package.json').version")
  say "onnxruntime-node's CUDA provider is not installed: fetching it from NuGet (Microsoft.ML.OnnxRuntime.Gpu.Linux $version)"
  ONNXRUNTIME_NODE_INSTALL=cuda12 timeout 150 node node_modules/onnxruntime-node/script/install.js && [ -f "$CUDA_PROVIDER" ] ||
    missing "could not install the CUDA provider. Without access to api.nuget.org, copy libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so from runtimes/linux-x64/native/ of the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux $version into $ORT_BIN/"
fi
unresolved=$(ldd "$CUDA_PROVIDER" | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' ')
[ -z "$unresolved" ] ||
  missing "the CUDA provider needs libraries not found here: ${unresolved}(the CUDA 12 runtime, cuBLAS, cuFFT, cuRAND and cuDNN 9: use an nvidia/cuda:12.x-cudnn-runtime image, or add their folders to LD_LIBRARY_PATH)"

# 3. What the e2e bench runs on: Redis at 127.0.0.1:6379 and a moto S3 server.
python3 -c 'import moto.server' 2>/dev/null || missing "python3 cannot import moto.server: pip install 'moto[server]' (or Debian's python3-moto)"
redis_pid=
cleanup() { [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null; }
trap cleanup EXIT
if ! node -e "require('net').connect(6379, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"; then
  command -v redis-server >/dev/null 2>&1 || missing "nothing answers at 127.0.0.1:6379 and redis-server is not installed"
  redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  redis_pid=$!
  for _ in $(seq 50); do node -e "require('net').connect(6379, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))" && break; sleep 0.2; done
  say "started redis-server on 127.0.0.1:6379 (pid $redis_pid), stopped at the end"
fi

# 4. A session really on CUDA: the worker's own loading path, where a fallback would be silent.
export EXECUTION_PROVIDERS=cuda
timeout 120 node --import tsx tools/gpu-check/cuda-session.ts || failed "no session on CUDA (reason above)"

# 5. The e2e bench on CUDA, in what is left of the budget. timeout signals the bench's whole
#    process group, so its gateway, worker and moto go with it.
budget=$(left)
[ "$budget" -ge 60 ] || failed "only ${budget} s of the ${BUDGET_S} s budget left for the e2e bench"
say "running npm run bench -- e2e with EXECUTION_PROVIDERS=cuda (at most ${budget} s)"
out=$(mktemp)
timeout --kill-after=15 "$budget" node --import tsx bench/main.ts e2e >"$out"
rc=$?
[ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && failed "the e2e bench ran past the ${BUDGET_S} s budget"
[ "$rc" -eq 0 ] || failed "the e2e bench failed (exit $rc; its log is above)"

# 6. e2e ÷ raw, from the suite's JSON line, and proof that both sides ran on CUDA.
node - "$out" <<'EOF'
const lines = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n');
const { figures, ratios } = JSON.parse(lines[lines.length - 1]);
console.log(lines[lines.length - 1]);
const onCpu = String(figures.worker_providers).split(',').filter((m) => !m.endsWith(':cuda'));
if (!String(figures.providers).startsWith('cuda') || onCpu.length > 0) {
  console.error(`gpu-check: not all on CUDA: raw ${figures.providers}, worker ${figures.worker_providers}`);
  process.exit(1);
}
console.log(`gpu-check: raw on ${figures.providers}, worker on ${figures.worker_providers}`);
for (const key of ['vgg16', 'fashion']) {
  console.log(
    `gpu-check: ${key}: raw ${figures[`${key}_raw_images_per_s`]} images/s, e2e ${figures[`${key}_e2e_images_per_s`]} images/s, ` +
      `e2e ÷ raw ${ratios[`${key}_e2e_vs_raw`]} (median over rounds), e2e ÷ raw with preprocessing ${ratios[`${key}_e2e_vs_raw_with_preprocessing`]}`,
  );
}
EOF
