"""uv gets the package sources pip is configured with (pip.conf files and PIP_* variables)."""

import subprocess
import sys
from pathlib import Path

from mlops import pipconfig

REPO = Path(__file__).resolve().parents[2]


def test_environment_variables_override_install_settings_which_override_global_ones():
    listed = (
        "global.index-url='https://global.example/simple'\n"
        "install.index-url='https://install.example/simple'\n"
        ":env:.index-url='https://env.example/simple'\n"
        "global.cert='/etc/ca.pem'\n"
        "download.find-links='/ignored'\n"
    )
    assert pipconfig.effective_settings(listed) == {
        "index-url": "https://env.example/simple",
        "cert": "/etc/ca.pem",
    }


def test_a_mirror_with_extra_indexes_find_links_and_a_ca_becomes_uv_settings():
    settings = {
        "index-url": "https://mirror.corp/simple",
        "extra-index-url": "https://extra.corp/simple file:///opt/pypi/simple",
        "find-links": "/opt/wheels /srv/wheels",
        "trusted-host": "mirror.corp extra.corp",
        "constraint": "/etc/pip/constraints.txt",
        "cert": "/etc/ssl/corp-ca.pem",
        "default-timeout": "180",
        "proxy": "http://proxy.corp:3128",
    }
    assert pipconfig.uv_environment(settings, {}) == {
        "UV_DEFAULT_INDEX": "https://mirror.corp/simple",
        "UV_INDEX": "https://extra.corp/simple file:///opt/pypi/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "UV_FIND_LINKS": "/opt/wheels,/srv/wheels",
        "UV_INSECURE_HOST": "mirror.corp extra.corp",
        "UV_CONSTRAINT": "/etc/pip/constraints.txt",
        "UV_HTTP_TIMEOUT": "180",
        "SSL_CERT_FILE": "/etc/ssl/corp-ca.pem",
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "HTTP_PROXY": "http://proxy.corp:3128",
    }


def test_no_index_is_kept_and_what_the_user_set_for_uv_wins():
    settings = {"no-index": "true", "index-url": "https://mirror.corp/simple", "cert": "/pip-ca.pem"}
    environ = {"UV_DEFAULT_INDEX": "https://uv-own.example/simple", "SSL_CERT_FILE": "/own-ca.pem"}
    assert pipconfig.uv_environment(settings, environ) == {"UV_NO_INDEX": "1"}


def test_without_pip_settings_uv_gets_nothing_extra():
    assert pipconfig.uv_environment({}, {}) == {}


def test_the_shell_gets_export_lines_from_a_real_pip_configuration(tmp_path):
    (tmp_path / "pip.conf").write_text(
        "[global]\nindex-url = https://mirror.corp/simple\n[install]\nfind-links = /opt/wheels\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIP_CONFIG_FILE": str(tmp_path / "pip.conf"),
        "PIP_TRUSTED_HOST": "mirror.corp",
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "mlops" / "pipconfig.py"), "uv-env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    exports = set(done.stdout.splitlines())
    assert "export UV_DEFAULT_INDEX=https://mirror.corp/simple" in exports
    assert "export UV_FIND_LINKS=/opt/wheels" in exports
    assert "export UV_INSECURE_HOST=mirror.corp" in exports
