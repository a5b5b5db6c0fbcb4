#!/usr/bin/env bash
# Create (once) a cached Python 3.10 virtualenv with Rasa 3.6, outside the repo:
#
#   ${QUICKTURN_CACHE:-$HOME/.cache/quickturn}/rasa-3.6-venv
#
# Rasa 3.6 supports Python 3.8-3.10 only, so the venv is made from a 3.10
# interpreter: $QT_PYTHON310 if set, else pyenv's newest 3.10.x, else
# python3.10 on PATH. The requirement is deploy/rasa-requirements.txt (rasa==3.6.21),
# every dependency pinned by deploy/rasa-constraints.txt; a stamp file keyed on
# the sha256 of both (and the interpreter version) makes a second run a no-op.
# Prints the venv path on the last line of stdout.
# Non-interactive: no prompts, safe with CI=true and no stdin.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/rasa-requirements.txt"
constraints="$here/rasa-constraints.txt"
cache="${QUICKTURN_CACHE:-$HOME/.cache/quickturn}"
venv="$cache/rasa-3.6-venv"
stamp="$venv/.quickturn-rasa-stamp"

log() { printf '[rasa-env] %s\n' "$*" >&2; }
die() { printf '[rasa-env] error: %s\n' "$*" >&2; exit 1; }

find_py310() {
  if [ -n "${QT_PYTHON310:-}" ]; then echo "$QT_PYTHON310"; return; fi
  local root="${PYENV_ROOT:-$HOME/.pyenv}" cand
  for cand in $(ls -d "$root"/versions/3.10.* 2>/dev/null | sort -V -r); do
    if [ -x "$cand/bin/python3.10" ]; then echo "$cand/bin/python3.10"; return; fi
  done
  cand="$(command -v python3.10 || true)"
  if [ -n "$cand" ] && "$cand" -c 'import sys' >/dev/null 2>&1; then echo "$cand"; return; fi
}

py="$(find_py310)"
[ -n "$py" ] || die "Python 3.10 not found. Rasa 3.6 needs Python 3.8-3.10: install one (e.g. 'pyenv install 3.10.13') or set QT_PYTHON310=/path/to/python3.10"
ver="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" \
  || die "$py does not run"
case "$ver" in 3.10.*) ;; *) die "$py is Python $ver, Rasa 3.6 needs 3.10" ;; esac

key="$(cat "$req" "$constraints" | sha256sum | cut -d' ' -f1) py$ver"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$venv/bin/rasa" ]; then
  log "cached: $venv (rasa $(cat "$venv/.rasa-version" 2>/dev/null || echo '?'))"
  echo "$venv"
  exit 0
fi

mkdir -p "$cache" || die "cannot create cache dir $cache"
# One builder at a time (parallel test runs); whoever waited finds the stamp and stops.
exec 9>"$cache/.rasa-env.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$venv/bin/rasa" ]; then
  log "cached: $venv (built by another run)"
  echo "$venv"
  exit 0
fi
# A stale or half-built venv is rebuilt from scratch.
if [ -e "$venv" ]; then
  log "removing stale $venv"
  rm -rf "$venv"
fi
start=$(date +%s)
log "creating venv from $py (Python $ver) in $venv"
"$py" -m venv "$venv"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
log "upgrading pip"
"$venv/bin/python" -m pip install -q --upgrade "pip>=24,<25" </dev/null
log "pip install -r $req -c $constraints (rasa and 160 dependencies, ~2.7 GB; about 6 minutes)"
# Progress: one line per package collected and the final summary; the whole
# pip output goes to $cache/rasa-env-pip.log.
set +e
"$venv/bin/python" -m pip install --progress-bar off -r "$req" -c "$constraints" </dev/null 2>&1 \
  | tee "$cache/rasa-env-pip.log" \
  | grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed|ERROR)' \
  | sed -u 's/^/[rasa-env]   /' >&2
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
  rm -rf "$venv"
  die "pip install failed (exit $rc; full log: $cache/rasa-env-pip.log); venv removed"
fi
"$venv/bin/rasa" --version >/dev/null 2>&1 || { rm -rf "$venv"; die "rasa installed but '$venv/bin/rasa --version' fails"; }
"$venv/bin/python" -c 'import rasa; print(rasa.__version__)' > "$venv/.rasa-version"
echo "$key" > "$stamp"
log "installed rasa $(cat "$venv/.rasa-version") in $(( $(date +%s) - start )) s"
echo "$venv"
