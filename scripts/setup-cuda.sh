#!/usr/bin/env bash
# Makes `cargo build --features cuda` work offline: Burn's CUDA backend (cubecl-cuda 0.11)
# always compiles its LLVM/NVPTX code path, and the build script of `tracel-llvm-bundler`
# downloads an LLVM 23.1 bundle from GitHub unless
#   <data dir>/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed
# exists; it then only asks that prefix's `bin/llvm-config` for libraries and flags
# (tracel-llvm-bundler 23.1.0-4, build.rs and src/config.rs). PyPI's `mlc-llvm-static` 23.1.x
# is a static LLVM 23.1 with the NVPTX target and a working llvm-config, so this script
# installs it from PyPI (which this project's machines reach) and points the bundler at it.
#
#   scripts/setup-cuda.sh            # install the LLVM prefix and print the environment
#   scripts/setup-cuda.sh --runtime  # also the CUDA pieces a GPU run needs (libdevice)
#   eval "$(scripts/setup-cuda.sh --print-env)"   # export the variables in this shell
#   cargo build --release --features cuda
#
# At run time a GPU machine needs the NVIDIA driver's libcuda.so.1 (from the driver, not
# from here) and libdevice.10.bc, which the `nvidia-cuda-nvcc-cu12` wheel ships; `--runtime`
# installs it and prints the CUDA_PATH to export. CUDARC_CUDA_VERSION picks the CUDA API
# version cudarc binds to at build time (default 12090 = CUDA 12.9: any driver >= 12.9).
set -euo pipefail

LLVM_VERSION=23.1.1.post0
PREFIX_NAME=tracel-llvm-23.1.0-4
tools_dir="${EMBER_CUDA_TOOLS:-$HOME/.cache/ember-cuda-tools}"
data_dir="${XDG_DATA_HOME:-$HOME/.local/share}"
link="$data_dir/tracel/$PREFIX_NAME"
cuda_version="${CUDARC_CUDA_VERSION:-12090}"
runtime=false
print_env=false
for arg in "$@"; do
  case "$arg" in
    --runtime) runtime=true ;;
    --print-env) print_env=true ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "setup-cuda.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "setup-cuda.sh: needs python3 with pip" >&2; exit 1; }

llvm_root="$tools_dir/llvm/mlc_llvm_static/static"
if [ ! -x "$llvm_root/bin/llvm-config" ]; then
  echo "installing mlc-llvm-static $LLVM_VERSION (static LLVM with NVPTX) into $tools_dir/llvm" >&2
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$tools_dir/llvm" \
    "mlc-llvm-static==$LLVM_VERSION" "mlc-llvm-static-extra-targets==$LLVM_VERSION" >&2
fi
if [ ! -x "$llvm_root/bin/llvm-config" ]; then
  echo "setup-cuda.sh: $llvm_root/bin/llvm-config missing after the install" >&2
  exit 1
fi
if ! "$llvm_root/bin/llvm-config" --targets-built | grep -qw NVPTX; then
  echo "setup-cuda.sh: the LLVM in $llvm_root has no NVPTX target" >&2
  exit 1
fi

mkdir -p "$(dirname "$link")"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  echo "setup-cuda.sh: $link exists and is not ours (a downloaded bundle?); leaving it" >&2
else
  # Only when missing: the bundler's build script watches this prefix, and a fresh link or
  # marker makes cargo rebuild it and everything above it (about half an hour on 2 cores).
  [ "$(readlink "$link" 2>/dev/null)" = "$llvm_root" ] || ln -sfn "$llvm_root" "$link"
  [ -e "$link/.tracel-llvm-installed" ] || touch "$link/.tracel-llvm-installed"
fi

cuda_path=""
if $runtime; then
  cuda_dir="$tools_dir/cuda"
  if [ ! -f "$cuda_dir/nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc" ]; then
    echo "installing nvidia-cuda-nvcc-cu12 (libdevice) into $cuda_dir" >&2
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$cuda_dir" nvidia-cuda-nvcc-cu12 >&2
  fi
  cuda_path="$cuda_dir/nvidia/cuda_nvcc"
fi

if $print_env; then
  echo "export CUDARC_CUDA_VERSION=$cuda_version"
  [ -n "$cuda_path" ] && echo "export CUDA_PATH=$cuda_path"
  exit 0
fi
echo "LLVM for cubecl-cuda: $link -> $llvm_root ($("$llvm_root/bin/llvm-config" --version))"
echo "now: CUDARC_CUDA_VERSION=$cuda_version cargo build --release --features cuda"
[ -n "$cuda_path" ] && echo "at run time: export CUDA_PATH=$cuda_path (libdevice.10.bc), plus the driver's libcuda.so.1"
exit 0
