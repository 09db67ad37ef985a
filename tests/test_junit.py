"""One JUnit XML writer for ``convt check`` and ``convt validate``: the same file format."""

from __future__ import annotations

import os
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from support.cli import invoke

from convt_tools.errors import ConvtError
from convt_tools.junit import junit_document, junit_suite, write_junit

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "examples" / "seed.json"
DCGAN = Path(__file__).parent / "data" / "dcgan_generator.onnx"
HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n'


def test_document_has_declaration_final_newline_and_counts() -> None:
    suite = junit_suite("s", 2, 1, 0)
    ET.SubElement(suite, "testcase", name="caf\u00e9")
    data = junit_document(suite)
    assert data.startswith(HEAD) and data.endswith(b"</testsuite>\n")
    root = ET.fromstring(data)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    assert root.find("testcase").get("name") == "caf\u00e9"   # UTF-8, not escaped away


def test_write_junit_errors_name_junit_xml(tmp_path: Path) -> None:
    with pytest.raises(ConvtError, match="^junit_xml: ") as info:
        write_junit(tmp_path / "missing" / "r.xml", b"<x/>")
    assert info.value.field == "junit_xml"
    assert os.listdir(tmp_path) == []


def test_check_and_validate_write_the_same_format(tmp_path: Path) -> None:
    check_xml, validate_xml = tmp_path / "check.xml", tmp_path / "validate.xml"
    res = invoke("check", DCGAN, "--no-numeric", "--junit-xml", check_xml)
    assert res.exit_code in (0, 1), res.output
    res = invoke("validate", SEED, "--junit-xml", validate_xml)
    assert res.exit_code == 0, res.output
    for path, name in ((check_xml, "convt check"), (validate_xml, "convt validate")):
        data = path.read_bytes()
        assert data.startswith(HEAD) and data.endswith(b"</testsuite>\n"), data[:80]
        root = ET.fromstring(data)
        assert root.tag == "testsuite" and root.get("name") == name
        assert int(root.get("tests")) == len(root.findall("testcase")) >= 1
