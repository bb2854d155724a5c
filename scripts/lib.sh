# Shared by scripts/rehearse and scripts/test: a project venv with the named extra installed.
# shellcheck shell=bash

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 2
}

# ensure_venv EXTRA: creates .venv once and (re)installs the project with EXTRA when pyproject.toml changed.
ensure_venv() {
  local extra=$1 root stamp want
  root=$(repo_root)
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "==> creating .venv" >&2
    "$(pick_python)" -m venv "$root/.venv"
  fi
  stamp="$root/.venv/.installed-$extra"
  want=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the project with [$extra] into .venv" >&2
    local began=$SECONDS
    venv_install "$root/.venv" -e "${root}[$extra]"
    echo "$want" >"$stamp"
    echo "    installed in $((SECONDS - began)) s" >&2
  fi
}

# venv_install VENV ARGS...: pip install ARGS into VENV, done by uv (parallel downloads and unpacking, several
# times faster than pip) and by pip if uv cannot be had; the chatter goes to VENV/install.log.
UV_VERSION=0.13.9
venv_install() {
  local venv=$1 log=$1/install.log
  shift
  if [ ! -x "$venv/bin/uv" ]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "uv==$UV_VERSION" >"$log" 2>&1 || true
  fi
  if [ -x "$venv/bin/uv" ] &&
    "$venv/bin/uv" pip install --python "$venv/bin/python" --compile-bytecode "$@" >"$log" 2>&1; then
    return
  fi
  [ -x "$venv/bin/uv" ] && echo "    uv failed (see $log); trying pip" >&2
  pip_quietly "$log" "$venv/bin/python" "$@"
}

# pip_quietly LOG PYTHON ARGS...: pip install with its chatter in LOG, shown only when it fails.
pip_quietly() {
  local log=$1 python=$2
  shift 2
  if ! "$python" -m pip install --disable-pip-version-check "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "error: pip install failed (full log: $log)" >&2
    exit 1
  fi
}

# ensure_sam_cli: the SAM CLI pins its own boto3 and click, so it gets a venv of its own (.venv-sam).
ensure_sam_cli() {
  local root
  root=$(repo_root)
  if [ ! -x "$root/.venv-sam/bin/sam" ]; then
    echo "==> installing the SAM CLI into .venv-sam" >&2
    "$(pick_python)" -m venv "$root/.venv-sam"
    venv_install "$root/.venv-sam" "aws-sam-cli==1.170.0"
  fi
}

# ensure_apt PACKAGE...: installs Debian packages that are missing (needs root or sudo).
ensure_apt() {
  local missing=() pkg sudo=""
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: install these Debian packages first: ${missing[*]}" >&2; exit 2; }
    sudo=sudo
  fi
  echo "==> apt-get install ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
