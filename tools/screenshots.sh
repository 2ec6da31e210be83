#!/usr/bin/env bash
# Regenerates screenshots/*.png from the real binary in a real terminal:
# tmux runs `shadowscope demo`, send-keys drives it, capture-pane -e keeps the colours,
# aha turns the ANSI into HTML and headless Chromium renders the PNG.
# Needs: tmux aha chromium (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
BIN=$PWD/target/release/shadowscope
OUT=$PWD/screenshots
TMP=$(mktemp -d)
DB=$TMP/demo.db
mkdir -p "$OUT"
"$BIN" --db "$DB" demo --no-ui
tmux kill-session -t shot 2>/dev/null || true
tmux new-session -d -s shot -x 160 -y 45 "env -u NO_COLOR TERM=xterm-256color XDG_STATE_HOME=$TMP XDG_CONFIG_HOME=$TMP $BIN --db $DB ui"
sleep 1.5
shot() { # name keys...
  local name=$1; shift
  for k in "$@"; do tmux send-keys -t shot "$k"; sleep 0.4; done
  sleep 0.8
  tmux capture-pane -e -p -t shot | aha --black --title "$name" > "$OUT/$name.html"
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --no-first-run --disable-sync --user-data-dir="$(mktemp -d)" --hide-scrollbars \
    --window-size=1400,900 --screenshot="$OUT/$name.png" "file://$OUT/$name.html" >/dev/null 2>&1
  rm -f "$OUT/$name.html"
}
shot users 3
shot user-detail Enter
shot device-detail Tab BTab j j Enter
shot apps 2
shot app-detail Enter
shot devices 4
shot dashboard 1
shot alerts 5
shot settings 7
shot confirm-unsanction 2 / d e e p s e e k Enter u
tmux send-keys -t shot n Escape
shot help '?'
tmux send-keys -t shot Escape q
tmux kill-session -t shot 2>/dev/null || true
echo "screenshots written to $OUT"
