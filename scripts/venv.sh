# Sourced by the scripts: creates .venv if needed and installs the project with the given extra.
# The install is skipped when pyproject.toml has not changed since the last one with this extra
# (the project is installed editable, so code changes need none); FIRM_REINSTALL=1 forces it.
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
_stamp=".venv/.installed-$1"
_want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "${FIRM_REINSTALL:-0}" = 1 ] || [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$1]"
  echo "$_want" > "$_stamp"
fi
unset _stamp _want
