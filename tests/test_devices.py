import json
import subprocess

from conftest import edgehound_cmd
from edgehound.devices.profiles import all_profiles, detect
from edgehound.export.formats import FORMATS

# every key is read by something: formats (export's table), tvm_target and cross_compiler (TVM builds), reach (bench)
KEYS = {"name", "description", "arch", "formats", "tvm_target", "cross_compiler", "tuning", "reach"}


def test_profiles_cover_the_devices_and_name_known_formats():
    profiles = all_profiles()
    assert {"laptop-x86", "rpi4", "rpi5", "jetson-orin-nano", "jetson-nano", "ethos-u55-128", "desktop-gpu"} <= set(profiles)
    for name, p in profiles.items():
        assert set(p) == KEYS, (name, set(p) ^ KEYS)
        assert p["name"] == name and set(p["formats"]) <= set(FORMATS)
        assert p["reach"]["kind"] in ("local", "ssh", "rpc")
    assert profiles["jetson-orin-nano"]["tvm_target"]["arch"] == "sm_87"
    assert profiles["rpi5"]["tvm_target"]["mcpu"] == "cortex-a76"


def test_each_format_s_devices_are_the_profiles_that_run_it():
    profiles = all_profiles()
    for fmt in FORMATS.values():
        assert fmt.devices == [n for n, p in profiles.items() if fmt.name in p["formats"]] and fmt.devices, fmt.name
        if fmt.backend == "tvm":  # each TVM format builds for a device whose profile holds its target
            assert all(profiles[d]["tvm_target"] for d in fmt.devices), fmt.name


def test_detect_describes_this_host():
    import os
    import platform

    host = detect()
    assert host["detected"] and host["cores"] == os.cpu_count() and host["arch"] == platform.machine()
    if platform.machine() == "x86_64":
        assert host["name"] == "laptop-x86" and "avx2" in host["cpu_flags"]  # every x86 CPU CI runs on has AVX2


def test_devices_cli_and_export_for_a_device(tiny_run, tmp_path):
    out = subprocess.run([*edgehound_cmd(), "devices", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "rpi5" in out.stdout and "jetson-orin-nano" in out.stdout
    show = subprocess.run([*edgehound_cmd(), "devices", "show", "rpi5"], capture_output=True, text=True)
    assert json.loads(show.stdout)["arch"] == "aarch64"
    bad = subprocess.run([*edgehound_cmd(), "devices", "show", "toaster"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown device 'toaster'" in bad.stderr

    folder = tmp_path / "rpi5"
    result = subprocess.run([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(folder),
                             "--device", "rpi5", "--targets", "tvm-aarch64", "--no-progress"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    entry = {e["name"]: e for e in json.loads((folder / "manifest.json").read_text())["artifacts"]}["tvm-aarch64"]
    assert entry["tvm"]["target"]["mcpu"] == "cortex-a76"  # the profile's target, not the format's default
