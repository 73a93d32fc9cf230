#!/usr/bin/env bash
# Smoke test of the screenshot skill: renders a card and checks the JSON it prints.
# Runs from the skill folder (the gateway's cwd for skill scripts). Prints one JSON object.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
python_bin="${PYTHON:-python3}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python

fail() {
  printf '{"ok": false, "error": "%s"}\n' "$1"
  exit 1
}

out="$("$python_bin" "$here/render_svg.py" --title "smoke" --line "a" --line "b" --theme dark --include-svg)" \
  || fail "render_svg.py exited non-zero"
checks=0
for needle in '"ok": true' '"format": "svg"' '"theme": "dark"' '<svg' '"lines": \["a", "b"\]'; do
  printf '%s' "$out" | grep -q -- "$needle" || fail "render output lacks $needle"
  checks=$((checks + 1))
done
bad="$("$python_bin" "$here/render_svg.py" --title "x" --theme neon)" && fail "an unknown theme was accepted"
printf '%s' "$bad" | grep -q '"ok": false' || fail "an unknown theme gave no JSON error"
checks=$((checks + 1))
printf '{"ok": true, "checks": %d}\n' "$checks"
