#!/usr/bin/env bash
# Set up QuickTurn on a fresh Debian/Ubuntu machine: system packages, a
# virtualenv in .venv, the Python packages (pinned model packages included)
# and the generated benchmark utterances. Idempotent: a second run only checks.
#
#   QT_EXTRAS   pip extras to install (default: mic,dev)
#   QT_SKIP_APT set to 1 to skip apt-get (you installed the packages yourself)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng sox libsndfile1 portaudio19-dev libasound2-plugins pulseaudio pulseaudio-utils chromium)
EXTRAS="${QT_EXTRAS:-mic,dev}"

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

if [ "${QT_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    log "apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "QuickTurn needs Python >= 3.11"' || {
  echo "install: Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.quickturn-installed   # "<sha256 of pyproject.toml> <installed extras, comma-separated>"
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
need_install=1
if [ -f "$stamp" ] && [ "$(cut -d' ' -f1 "$stamp")" = "$hash" ]; then
  have=",$(cut -d' ' -f2 "$stamp"),"
  need_install=0
  IFS=',' read -ra wanted <<< "$EXTRAS"
  for e in "${wanted[@]}"; do
    case "$have" in *",$e,"*) ;; *) need_install=1 ;; esac
  done
fi
if [ "$need_install" = 1 ]; then
  if [ -f "$stamp" ] && [ "$(cut -d' ' -f1 "$stamp")" = "$hash" ]; then
    EXTRAS="$(cut -d' ' -f2 "$stamp"),$EXTRAS"   # keep what is installed
  fi
  log "pip install -e .[$EXTRAS]"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  # numpy < 2: the Triton Python backend and the pinned model packages expect it.
  .venv/bin/pip install -q -e ".[$EXTRAS]" "numpy<2"
  # Smart Turn v3.2 (the acoustic end-of-turn model) is a file inside the pipecat-ai wheel:
  # only the file is used (sha256-checked in services/model_files.py), so none of its dependencies.
  .venv/bin/pip install -q --no-deps "pipecat-ai==1.14.0"
  echo "$hash $EXTRAS" > "$stamp"
fi
# A .venv stamped before Smart Turn was added (or holding another pipecat-ai) still gets the
# pinned wheel; a no-op once it is there. Reads the metadata only: pipecat is never imported.
if ! .venv/bin/python -c 'import importlib.metadata as m,sys; sys.exit(m.version("pipecat-ai") != "1.14.0")' 2>/dev/null; then
  log "pip install --no-deps pipecat-ai==1.14.0 (Smart Turn v3.2 model file)"
  .venv/bin/pip install -q --no-deps "pipecat-ai==1.14.0"
fi

log "generating benchmark utterances (quickturn setup)"
.venv/bin/quickturn setup
log "done: .venv/bin/quickturn --help"
