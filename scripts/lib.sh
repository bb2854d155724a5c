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

# make_venv DIR: a venv with pip in it (Debian and Ubuntu ship venv's pip seeding as a package of its own).
make_venv() {
  local dir=$1 python version
  python=$(pick_python)
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    have_apt || { echo "error: $python cannot create a venv (no ensurepip): install Python's venv module" >&2; exit 2; }
    ensure_apt "python$version-venv"
  fi
  rm -rf "$dir"  # a venv whose creation failed half-way has a python but no pip
  "$python" -m venv "$dir"
}

# ensure_venv EXTRA: creates .venv once and (re)installs the project with EXTRA when pyproject.toml changed.
ensure_venv() {
  local extra=$1 root stamp want
  root=$(repo_root)
  if [ ! -x "$root/.venv/bin/python" ] || ! "$root/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "==> creating .venv" >&2
    make_venv "$root/.venv"
  fi
  stamp="$root/.venv/.installed-$extra"
  want=$("$root/.venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$root/pyproject.toml")
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the project with [$extra] into .venv" >&2
    local began=$SECONDS
    venv_install "$root/.venv" -e "${root}[$extra]"
    echo "$want" >"$stamp"
    echo "    installed in $((SECONDS - began)) s" >&2
  fi
}

# venv_install VENV ARGS...: pip install ARGS into VENV, done by uv (parallel downloads and unpacking, several
# times faster than pip) with pip's own package sources, and by pip if uv cannot be had. The chatter goes to
# VENV/install-uv.log and VENV/install.log; a failed uv's log stays next to pip's.
UV_VERSION=0.13.9
venv_install() {
  local venv=$1 log=$1/install.log uv_log=$1/install-uv.log root
  shift
  root=$(repo_root)
  if [ ! -x "$venv/bin/uv" ]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "uv==$UV_VERSION" >"$uv_log" 2>&1 || true
  fi
  # uv reads neither pip.conf nor PIP_*: the same index, mirror and CA settings are handed to it as UV_*.
  if [ -x "$venv/bin/uv" ] && (
    eval "$("$venv/bin/python" "$root/mlops/pipconfig.py" uv-env)" &&
      "$venv/bin/uv" pip install --python "$venv/bin/python" --compile-bytecode "$@"
  ) >"$uv_log" 2>&1; then
    return
  fi
  echo "    uv failed or could not be installed (its log: $uv_log); installing with pip" >&2
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
    make_venv "$root/.venv-sam"
    venv_install "$root/.venv-sam" "aws-sam-cli==1.170.0"
  fi
}

# aws_cli_reads_endpoint_url: the AWS CLI on PATH is one that reads AWS_ENDPOINT_URL (v1.29+, v2.13+), as the
# README's and the mails' commands expect against the local AWS (Debian 12's awscli package is v2.9).
aws_cli_reads_endpoint_url() {
  local version major minor
  version=$(aws --version 2>&1 | sed -n 's|^aws-cli/\([0-9]*\)\.\([0-9]*\).*|\1 \2|p') || return 1
  read -r major minor <<<"$version"
  [ -n "$major" ] || return 1
  { [ "$major" = 1 ] && [ "$minor" -ge 29 ]; } || { [ "$major" -ge 2 ] && { [ "$major" -gt 2 ] || [ "$minor" -ge 13 ]; }; }
}

# ensure_aws_cli: such an AWS CLI on PATH; when there is none, the AWS CLI v1 from PyPI goes into .venv-awscli
# (the caller puts its bin/ first on PATH).
ensure_aws_cli() {
  local root
  root=$(repo_root)
  [ -x "$root/.venv-awscli/bin/aws" ] && return
  command -v aws >/dev/null 2>&1 && aws_cli_reads_endpoint_url && return
  echo "==> installing the AWS CLI into .venv-awscli" >&2
  make_venv "$root/.venv-awscli"
  venv_install "$root/.venv-awscli" "awscli==1.46.2"
}

# have_apt: Debian's package manager is here (Debian, Ubuntu); elsewhere nothing is installed for the user.
have_apt() { command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; }

# ensure_command COMMAND [PACKAGE] [optional]: the command is on PATH, or apt installs its package where apt
# exists; otherwise the user is told what to install (an error, or a note when the command is optional).
ensure_command() {
  local command=$1 package=${2:-$1} optional=${3:-}
  command -v "$command" >/dev/null 2>&1 && return
  if have_apt; then
    ensure_apt "$package"
    return
  fi
  if [ -n "$optional" ]; then
    echo "note: $command is not installed ($optional); install it with your system's package manager" >&2
    return
  fi
  echo "error: $command is not installed: install it with your system's package manager (Debian/Ubuntu: $package)" >&2
  exit 2
}

# ensure_apt PACKAGE...: installs Debian packages that are missing (needs apt, and root or sudo).
ensure_apt() {
  local missing=() pkg sudo=""
  if ! have_apt; then
    echo "error: this machine has no apt; install these (Debian package names): $*" >&2
    exit 2
  fi
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

# ensure_browser: a Chromium for the browser tests (tests/browser/browsers.py chooses among what exists and
# says which): Debian's chromium package where apt has a real one (Ubuntu's is a snap wrapper), else
# Playwright's own download, unless the machine already has one (GitHub's runners have Google Chrome).
ensure_browser() {
  local root
  root=$(repo_root)
  # Playwright's driver is a Node.js binary that needs libatomic, which minimal Debian systems lack.
  if have_apt; then ensure_apt libatomic1; fi
  if ! "$root/.venv/bin/python" "$root/tests/browser/browsers.py" 2>/dev/null; then
    local info=""
    have_apt && info=$(apt-cache show chromium 2>/dev/null || true)
    if [[ $info == *"Package: chromium"* && $info != *[Ss]nap* ]]; then
      ensure_apt chromium
    else
      echo "==> playwright install chromium" >&2
      "$root/.venv/bin/playwright" install chromium >&2 || true
    fi
  fi
  "$root/.venv/bin/python" "$root/tests/browser/browsers.py" || true # the browser test then says what is missing
}
