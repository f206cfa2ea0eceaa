#!/usr/bin/env bash
# Builds the project's Rust kernel: evcxr_jupyter 0.22.0 from crates.io with the patches in
# patches/ (README.md here says what each fixes and why), locked to Cargo.lock here.
#
#   bash scripts/evcxr/build.sh ROOT      # installs ROOT/bin/evcxr_jupyter
#
# scripts/setup.sh and Binder's postBuild call it (through ub_install_evcxr) with a ROOT
# named after a hash of this folder, so a changed patch builds a new kernel and an unchanged
# one is built once per machine. Needs cargo, Python 3 (to fetch the two crates, checked
# against crates.io's sha256) and git (to apply the patches). Takes 5-20 min on 2 cores.
set -euo pipefail

root=${1:?usage: build.sh INSTALL_ROOT}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=0.22.0
build=$(mktemp -d "${TMPDIR:-/tmp}/evcxr-build.XXXXXX")
trap 'rm -rf "$build"' EXIT

# name sha256: the two crates the patches change, as crates.io's index lists them.
crates=(
  "evcxr_jupyter 3ce0d7b3058f68a9673df4f1266b641942fea0ec131881d095306e509a382764"
  "evcxr ee69caeeefc311959b85962458e370d8eccb165123edbc5270134aaee6d7ed80"
)
for entry in "${crates[@]}"; do
  read -r name sha <<<"$entry"
  python3 - "$name" "$version" "$sha" "$build" <<'PY'
import hashlib, io, os, sys, tarfile, urllib.request
from pathlib import Path
name, version, sha, build = sys.argv[1:]
file = f"{name}-{version}.crate"
home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
cached = sorted(home.glob(f"registry/cache/*/{file}"))  # cargo's own download, if any
data = cached[0].read_bytes() if cached else urllib.request.urlopen(
    f"https://static.crates.io/crates/{name}/{file}", timeout=120).read()
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(f"build.sh: {file} does not have crates.io's checksum {sha}")
safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12
tarfile.open(fileobj=io.BytesIO(data), mode="r:gz").extractall(build, **safe)
PY
done

for patch in "$here"/patches/*.patch; do
  git -C "$build" apply -p1 "$patch"
done
cp "$here/Cargo.lock" "$build/evcxr_jupyter-$version/Cargo.lock"

# A throw-away target dir: the 700+ MB of build output is not needed afterwards.
CARGO_TARGET_DIR=$build/target cargo install --path "$build/evcxr_jupyter-$version" \
  --locked --force --root "$root"
[ -x "$root/bin/evcxr_jupyter" ] || { echo "build.sh: no $root/bin/evcxr_jupyter after the build" >&2; exit 1; }
