# Sourced by the CI scripts that need a pinned Python tool. Needs PY set
# (an interpreter) and a `die` function.
#
# pip_tool DIST VERSION: makes PY an interpreter that has DIST==VERSION,
# installing it with pip, or into a private virtualenv when the system
# Python refuses (a Debian externally managed one).
pip_tool() {
    local dist="$1" version="$2"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
    has() {
        "$1" -c "import importlib.metadata as m, sys; sys.exit(m.version('$dist') != '$version')" 2>/dev/null
    }
    has "$PY" && return 0
    "$PY" -m pip install --quiet "$dist==$version" && has "$PY" && return 0
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/nephele-ci/$dist-$version"
    [[ -x "$venv/bin/python" ]] || "$PY" -m venv "$venv" \
        || die "cannot create a virtualenv (is python3-venv installed?)"
    "$venv/bin/python" -m pip install --quiet "$dist==$version" \
        || die "cannot install $dist==$version from PyPI"
    PY="$venv/bin/python"
}
