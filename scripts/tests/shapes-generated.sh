#!/usr/bin/env bash
# The generated files in shapes/ are what scripts/gen-shapes/gen_shapes.py makes from the
# pinned botocore and shapes/operations.toml: nobody edited them, and nobody forgot to re-run
# the generator. Skipped (exit 77) when the virtualenv with botocore 1.44.18 is not there
# (scripts/gen-shapes/README.md says how to make it).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${KEC2_VENV:-/var/cache/kec2/venv}
if ! "$venv/bin/python" -c 'import botocore, sys; sys.exit(botocore.__version__ != "1.44.18")' 2>/dev/null; then
  echo "shapes-generated: skipped: no botocore 1.44.18 in $venv (scripts/gen-shapes/README.md)"
  exit 77
fi
"$venv/bin/python" scripts/gen-shapes/gen_shapes.py --check
