#!/usr/bin/env bash
# Run sdpo-jax on a Cloud TPU VM slice: create (or reuse) the slice, copy this checkout to every
# worker, install it there idempotently (launch/setup.sh tpu), run the same `python -m
# sdpo_jax.main` on all workers (main calls jax.distributed.initialize()), and stream the logs.
#
#   launch/tpu_pod.sh --name sdpo-chart --zone us-east5-a --accelerator v5p-64 [--project P] \
#       [--version tpu-ubuntu2204-base] [--spot] [--dry-run] \
#       -- --config=configs/chart_8b.py --workdir=gs://BUCKET/runs/chart_8b [--config.key=value ...]
#
# --dry-run prints every command instead of running it (tests check these commands).
# The workdir must be on GCS (gs://...): every host writes checkpoints and host 0 writes metrics.
set -euo pipefail

NAME="" ZONE="" ACCEL="" PROJECT="" VERSION="tpu-ubuntu2204-base" SPOT=0 DRY=0
REMOTE_DIR="sdpo-jax"
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --zone) ZONE="$2"; shift 2 ;;
    --accelerator) ACCEL="$2"; shift 2 ;;
    --project) PROJECT="$2"; shift 2 ;;
    --version) VERSION="$2"; shift 2 ;;
    --spot) SPOT=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "tpu_pod.sh: unknown option $1 (program flags go after --)" >&2; usage ;;
  esac
done
MAIN_ARGS=("$@")
for var in NAME ZONE ACCEL; do
  [ -n "${!var}" ] || { echo "tpu_pod.sh: --$(tr 'A-Z' 'a-z' <<<"${var/ACCEL/accelerator}") is required" >&2; usage; }
done
printf '%s\n' "${MAIN_ARGS[@]}" | grep -q -- '^--config=' || { echo "tpu_pod.sh: pass --config=configs/NAME.py after --" >&2; exit 2; }
WORKDIR=$(printf '%s\n' "${MAIN_ARGS[@]}" | sed -n 's/^--workdir=//p' | tail -n1)
case "$WORKDIR" in
  gs://*) ;;
  *) echo "tpu_pod.sh: --workdir must be a gs:// path shared by all hosts, got '${WORKDIR}'" >&2; exit 2 ;;
esac

GCLOUD=(gcloud compute tpus tpu-vm)
COMMON=(--zone="$ZONE")
[ -n "$PROJECT" ] && COMMON+=(--project="$PROJECT")

run() {  # print, then run unless --dry-run
  printf '+ %s\n' "$(printf '%q ' "$@")"
  ((DRY)) || "$@"
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARBALL="/tmp/${NAME}-code.tar.gz"

# 1. Create the slice unless it exists (a dry run cannot ask, so it shows the create command).
if ((DRY)) || ! "${GCLOUD[@]}" describe "$NAME" "${COMMON[@]}" >/dev/null 2>&1; then
  CREATE=("${GCLOUD[@]}" create "$NAME" "${COMMON[@]}" --accelerator-type="$ACCEL" --version="$VERSION")
  ((SPOT)) && CREATE+=(--spot)
  run "${CREATE[@]}"
else
  echo "reusing TPU slice $NAME in $ZONE"
fi

# 2. Copy the committed tree of this checkout (uncommitted edits are NOT shipped: commit first)
#    to every worker; .venv, runs and caches stay behind.
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ] || \
  echo "warning: uncommitted changes in $ROOT are not shipped (git archive HEAD)" >&2
run git -C "$ROOT" archive --format=tar.gz -o "$TARBALL" HEAD
run "${GCLOUD[@]}" scp "$TARBALL" "$NAME:/tmp/code.tar.gz" "${COMMON[@]}" --worker=all
run "${GCLOUD[@]}" ssh "$NAME" "${COMMON[@]}" --worker=all \
  --command="mkdir -p ~/$REMOTE_DIR && tar -xzf /tmp/code.tar.gz -C ~/$REMOTE_DIR"

# 3. Install on every worker (idempotent: a second launch skips what is there).
run "${GCLOUD[@]}" ssh "$NAME" "${COMMON[@]}" --worker=all \
  --command="cd ~/$REMOTE_DIR && bash launch/setup.sh tpu"

# 4. The same program on every worker; output streams back, each line tagged by its worker.
QUOTED_ARGS=$(printf '%q ' "${MAIN_ARGS[@]}")
run "${GCLOUD[@]}" ssh "$NAME" "${COMMON[@]}" --worker=all \
  --command="cd ~/$REMOTE_DIR && .venv/bin/python -m sdpo_jax.main ${QUOTED_ARGS}2>&1 | tee -a ~/$REMOTE_DIR/worker.log"
