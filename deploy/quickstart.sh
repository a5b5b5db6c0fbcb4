#!/usr/bin/env bash
# One command: install everything, then run the assistant on its embedded
# default. With no arguments it answers a recorded utterance end to end
# (`quickturn chat`); pass any quickturn command instead, e.g. `mic` or `serve web`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install.sh
if [ $# -gt 0 ]; then
  exec .venv/bin/quickturn "$@"
fi
sample=var/utterances/piper-joe/02.wav   # "set a timer for five minutes"
echo
echo "== quickturn chat $sample"
.venv/bin/quickturn chat "$sample"
real=../shared/data/speech-samples/goforward.wav
if [ -f "$real" ]; then
  echo; echo "== quickturn chat $real (a real recording)"
  .venv/bin/quickturn chat "$real"
fi
echo
echo "Next: .venv/bin/quickturn mic   |   .venv/bin/quickturn bench   |   .venv/bin/quickturn --help"
