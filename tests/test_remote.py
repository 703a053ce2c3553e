"""Remote benchmarking over TVM's RPC tracker, for real, on loopback."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import edgehound_cmd
from edgehound.export.tvm_env import tvm_python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rpc_device(tmp_path):
    """A tracker and one device server on 127.0.0.1, and a profile that reaches them."""
    port = free_port()
    tracker = subprocess.Popen([tvm_python(), "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(port),
                                "--port-end", str(port + 1)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    server = subprocess.Popen([tvm_python(), "-m", "tvm.exec.rpc_server", "--tracker", f"127.0.0.1:{port}",
                               "--key", "loopback", "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    profile = tmp_path / "loopback.toml"
    profile.write_text(f'''name = "loopback"
description = "this host behind TVM's RPC tracker"
arch = "x86_64"
formats = ["tvm-x86"]
tvm_target = {{ kind = "llvm" }}
cross_compiler = ""
reach = {{ kind = "rpc", tracker = "127.0.0.1:{port}", key = "loopback", timeout = 10 }}
''')
    time.sleep(3)  # the server registers with the tracker
    yield profile, server
    for proc in (server, tracker):
        kill_group(proc)


def kill_group(proc):
    """The RPC server serves from a child process: end the whole group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def bench(source, out, *extra, exit_code=0):
    """exit_code 1: a row is an error (a device gone or silent), and bench says so by its exit code."""
    result = subprocess.run([*edgehound_cmd(), "bench", str(source), "--out", str(out), "--runs", "10", "--warmup", "1",
                             "--no-progress", *extra], capture_output=True, text=True, timeout=300)
    assert result.returncode == exit_code, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def test_tvm_artifact_over_rpc_merges_with_local_results(tiny_export, rpc_device, tmp_path):
    profile, server = rpc_device
    local = bench(tiny_export, tmp_path / "local", "--artifacts", "onnx", "tvm-x86")
    remote = bench(tiny_export, tmp_path / "remote", "--artifacts", "onnx", "tvm-x86", "--device", str(profile),
                   "--merge", str(tmp_path / "local" / "results.json"))
    rows = {(r["device"], r["name"]): r for r in remote["rows"]}
    over_rpc = rows[(str(profile), "tvm-x86")]
    assert over_rpc["status"] == "ok" and over_rpc["latency"]["n"] == 10 and over_rpc["latency"]["p50"] > 0
    assert over_rpc["measured_by"] == "tvm time_evaluator over RPC"
    assert rows[(str(profile), "onnx")]["status"] == "not run"
    assert rows[("local", "tvm-x86")]["status"] == "ok" and rows[("local", "pytorch")]["status"] == "ok"
    assert "loopback.toml" in (tmp_path / "remote" / "report.html").read_text()  # one report, a device column
    assert len(local["rows"]) == 3 and len(remote["rows"]) == 5

    kill_group(server)  # the device vanishes: a clear per-device failure, within the timeout, and the run completes
    t0 = time.monotonic()
    gone = bench(tiny_export, tmp_path / "gone", "--artifacts", "tvm-x86", "--device", str(profile), exit_code=1)
    row = gone["rows"][0]
    assert row["status"] == "error" and "loopback" in row["reason"]
    assert time.monotonic() - t0 < 120


def test_tuning_over_rpc_fills_the_device_database_and_is_reused(tiny_run, rpc_device, tmp_path):
    """Candidates are timed on the RPC device; the database lands under the profile's name and a later
    compile for that device reuses it without new trials."""
    profile, _ = rpc_device
    db = tmp_path / "tuning"

    def export(*extra):
        result = subprocess.run([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(tmp_path / "x"),
                                 "--device", str(profile), "--tuning-dir", str(db), "--no-progress", *extra],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
        return {e["name"]: e for e in manifest["artifacts"]}["tvm-x86"]["tvm"]["tuned"]

    tuned = export("--tune-trials", "8")
    assert tuned["measured_on"].startswith("rpc loopback@127.0.0.1:") and tuned["records"] > 0
    # the device's database, in the folder of the CPU it was tuned for (this profile names none)
    assert tuned["database"] == "loopback/tvm-x86/generic" and tuned["cpu"] == "generic"  # no mcpu: LLVM's generic CPU
    records = (db / "loopback" / "tvm-x86" / tuned["cpu"] / "database_tuning_record.json").read_text().splitlines()
    run_secs = [sec for line in records for sec in json.loads(line)[1][1]]
    assert run_secs and all(0 < sec < 1 for sec in run_secs)  # real timings from the device (failures are 1e10)
    again = export()
    assert again["trials_this_run"] == 0 and again["records"] == tuned["records"]


@pytest.fixture
def ssh_device(tmp_path):
    """An sshd of our own on 127.0.0.1 (throwaway keys, a high port), and a profile that reaches it."""
    import getpass
    import shutil
    import sys
    from pathlib import Path

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd).exists(), "openssh-server is missing (.ci/run installs it)"
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "user.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {keys / 'host'}
PidFile {keys / 'sshd.pid'}
AuthorizedKeysFile {keys / 'authorized_keys'}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
""")
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    profile = tmp_path / "sshbox.toml"
    profile.write_text(f'''name = "sshbox"
description = "this host behind its own sshd"
arch = "x86_64"
formats = ["onnx", "tflite-int8"]
tvm_target = {{}}
cross_compiler = ""
reach = {{ kind = "ssh", host = "{getpass.getuser()}@127.0.0.1", port = {port}, identity = "{keys / 'user'}", known_hosts = "{keys / 'known_hosts'}", remote_dir = "{tmp_path / 'device'}", edgehound = "{sys.executable} -m edgehound.cli", timeout = 120, connect_timeout = 5 }}
''')
    time.sleep(1)
    yield profile, server
    kill_group(server)


def test_every_format_over_ssh_merges_into_one_report(tiny_export, ssh_device, tmp_path):
    profile, server = ssh_device
    bench(tiny_export, tmp_path / "local", "--artifacts", "onnx")
    res = bench(tiny_export, tmp_path / "ssh", "--artifacts", "onnx", "tflite-int8", "--device", str(profile),
                "--merge", str(tmp_path / "local" / "results.json"))
    rows = {(r["device"], r["name"]): r for r in res["rows"]}
    for name in ("onnx", "tflite-int8"):
        assert rows[("sshbox", name)]["status"] == "ok" and rows[("sshbox", name)]["latency"]["n"] == 10
    assert rows[("local", "onnx")]["status"] == "ok"
    assert (tmp_path / "device" / tiny_export.name / "manifest.json").is_file()  # the folder was copied over

    # one artifact the device cannot measure: the device's bench exits 1 with its rows written, and they come back
    broken = tmp_path / "broken"
    shutil.copytree(tiny_export, broken)
    (broken / "model.int8.tflite").write_bytes(b"not a model")
    res = bench(broken, tmp_path / "ssh-broken", "--artifacts", "onnx", "tflite-int8", "--device", str(profile),
                exit_code=1)
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["onnx"]["status"] == "ok" and rows["onnx"]["device"] == "sshbox"
    assert rows["tflite-int8"]["status"] == "error" and "truncated or replaced" in rows["tflite-int8"]["reason"]

    kill_group(server)  # the device vanishes: its row says so, the command still completes
    t0 = time.monotonic()
    gone = bench(tiny_export, tmp_path / "gone", "--device", str(profile), exit_code=1)
    assert gone["rows"][0]["status"] == "error" and "sshbox: ssh" in gone["rows"][0]["reason"]
    assert time.monotonic() - t0 < 60


# None in sys.modules is Python's "not installed": import raises ModuleNotFoundError, find_spec says None.
RUNTIME_ONLY = """import sys
sys.modules.update(dict.fromkeys({blocked!r}))
"""


def test_a_device_with_only_the_runtime_extra_benchmarks_over_ssh(tiny_export, ssh_device, tmp_path):
    """The README's promise: the device needs only a runtime extra. Its Python (and every worker it starts)
    cannot import torch, onnx, TensorFlow, TVM, matplotlib, rich or psutil."""
    import sys

    profile, _ = ssh_device
    site = tmp_path / "device-site"
    site.mkdir()
    blocked = {"torch", "onnx", "onnxscript", "tensorflow", "tvm", "tvm_ffi", "litert_torch", "matplotlib", "rich",
               "psutil", "jax"}
    (site / "sitecustomize.py").write_text(RUNTIME_ONLY.format(blocked=blocked))
    import os

    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    text = profile.read_text().replace(f'edgehound = "{sys.executable} -m edgehound.cli"',
                                       f'edgehound = "env PYTHONPATH={path} {sys.executable} -m edgehound.cli"')
    assert text != profile.read_text()
    profile.write_text(text)
    res = bench(tiny_export, tmp_path / "ssh", "--artifacts", "onnx", "tflite-int8", "--device", str(profile))
    rows = {r["name"]: r for r in res["rows"]}
    for name in ("onnx", "tflite-int8"):
        assert rows[name]["status"] == "ok" and rows[name]["latency"]["n"] == 10 and rows[name]["peak_rss_mb"] > 0
    load = res["settings"]["other_load_cores"]  # the device's own load, measured there without psutil
    assert len(load) == 2 and all(v is None or v >= 0 for v in load) and any(v is not None for v in load)
    report = (tmp_path / "device" / f"results-{tiny_export.name}" / "report.html").read_text()
    assert "No plots: matplotlib is not installed here" in report


def test_a_device_that_accepts_and_then_hangs_is_a_timeout(tiny_export, tmp_path):
    """A host whose TCP port accepts and never speaks ssh: a failure of that device within its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    profile = tmp_path / "hang.toml"
    profile.write_text(f'''name = "hang"
description = "accepts, then says nothing"
arch = "x86_64"
formats = ["onnx"]
reach = {{ kind = "ssh", host = "127.0.0.1", port = {listener.getsockname()[1]}, timeout = 4, connect_timeout = 30 }}
''')
    try:
        t0 = time.monotonic()
        res = bench(tiny_export, tmp_path / "b", "--artifacts", "onnx", "--device", str(profile), exit_code=1)
        assert time.monotonic() - t0 < 60
    finally:
        listener.close()
    row = res["rows"][0]
    assert row["status"] == "error" and row["reason"] == "hang: ssh 127.0.0.1: no answer within 4 s"


def test_bench_from_dot_copies_the_real_folder_and_keeps_its_neighbours(tiny_export, ssh_device, tmp_path):
    """`bench .` once made the device command `rm -rf <remote_dir>/`: now the folder keeps its name."""
    profile, _ = ssh_device
    neighbour = tmp_path / "device" / "keep-me.txt"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text("the user's file")
    result = subprocess.run([*edgehound_cmd(), "bench", ".", "--out", str(tmp_path / "b"), "--runs", "5", "--warmup",
                             "1", "--no-progress", "--artifacts", "onnx", "--device", str(profile)],
                            capture_output=True, text=True, timeout=300, cwd=tiny_export)
    assert result.returncode == 0, result.stderr[-2000:]
    assert neighbour.read_text() == "the user's file"
    assert (tmp_path / "device" / tiny_export.name / "manifest.json").is_file()
