"""The one JUnit XML writer: ``convt check --junit-xml`` and ``convt validate --junit-xml``.

Each verb builds its testcases under :func:`junit_suite`; :func:`junit_document`
turns the suite into the bytes of the file (UTF-8, an XML declaration, a final
newline) and :func:`write_junit` writes them atomically. Untrusted text (model,
graph and node names, messages) goes through :func:`convt_tools.io.xml_safe`
before it enters the tree.
"""

from __future__ import annotations

import os
from xml.etree import ElementTree as ET

from .io import atomic_write

__all__ = ["junit_document", "junit_suite", "write_junit"]

_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


def junit_suite(name: str, tests: int, failures: int, errors: int = 0) -> ET.Element:
    """An empty ``<testsuite>`` with its counts; add ``<testcase>`` children to it."""
    return ET.Element("testsuite", name=name, tests=str(tests), failures=str(failures),
                      errors=str(errors))


def junit_document(suite: ET.Element) -> bytes:
    """The bytes of a JUnit XML file holding ``suite``: UTF-8 with an XML declaration and a
    final newline."""
    return _DECLARATION + ET.tostring(suite, encoding="unicode").encode("utf-8") + b"\n"


def write_junit(path: str | os.PathLike[str], data: bytes) -> None:
    """Write :func:`junit_document`'s ``data`` to ``path`` atomically (errors name ``junit_xml``)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(path, write, field="junit_xml")
