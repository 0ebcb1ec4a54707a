"""The built wheel holds the whole package and the defaults it documents, and an installation
made from it reads them (no hand-copied fallback)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from paths import ROOT


def test_wheel_carries_every_module_and_the_documented_defaults(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("promisebot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {p.relative_to(ROOT).as_posix() for d in ("bot", "runners") for p in (ROOT / d).rglob("*.py")}
    assert source <= names, f"missing from the wheel: {sorted(source - names)}"
    assert not any(n.startswith(("tests/", "bench/", "config/examples")) for n in names)
    shipped = zipfile.ZipFile(wheel).read("bot/defaults.yaml")
    assert shipped == (ROOT / "config" / "defaults.yaml").read_bytes()

    # Installed from the wheel alone (unpacked, away from the source tree), promisebot reads them.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    documented = str(ROOT / "config" / "defaults.yaml")
    probe = ("import bot.settings as s, yaml; print(s.__file__); "
             f"assert s.default_settings_dict() == yaml.safe_load(open({documented!r}).read())")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(site))
