"""The readiness line and file: one documented format, written whole, read back the same."""

from __future__ import annotations

import io
import json
import os

from chorus.common import readiness


def test_the_line_is_the_prefix_and_one_json_object():
    out = io.StringIO()
    ready = readiness.announce("broker", None, out=out, router="tcp://127.0.0.1:40123", grpc="127.0.0.1:50053")
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.startswith("CHORUS-READY {")
    assert json.loads(line.removeprefix("CHORUS-READY ")) == ready == {
        "service": "broker", "pid": os.getpid(), "router": "tcp://127.0.0.1:40123", "grpc": "127.0.0.1:50053"}
    assert readiness.parse_line(line) == ready
    assert readiness.parse_line(line.encode()) == ready


def test_other_lines_are_not_readiness():
    for line in ["auth listening on 127.0.0.1:50051", "CHORUS-READY not json", "CHORUS-READY [1, 2]",
                 " CHORUS-READY {}", ""]:
        assert readiness.parse_line(line) is None, line


def test_the_file_holds_the_same_object_and_nothing_else_is_left_behind(tmp_path):
    path = tmp_path / "auth.ready"
    assert readiness.read_file(path) is None
    ready = readiness.announce("auth", path, out=io.StringIO(), grpc="127.0.0.1:50051")
    assert readiness.read_file(path) == ready
    assert [p.name for p in tmp_path.iterdir()] == ["auth.ready"], "the temporary file was renamed into place"


def test_a_new_file_replaces_an_old_one(tmp_path):
    path = tmp_path / "webgate.ready"
    path.write_text('{"service": "webgate", "http": "http://127.0.0.1:1"}')
    readiness.announce("webgate", path, out=io.StringIO(), http="http://127.0.0.1:2")
    assert readiness.read_file(path)["http"] == "http://127.0.0.1:2"
