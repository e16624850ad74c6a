"""The shape of the code: what may import what (issue 11)."""

import subprocess
import sys

import pytest

SEND_STACK = ("edumail.delivery", "edumail.compose", "edumail.transport")


@pytest.mark.parametrize("module", ["edumail.engine", "edumail.campaigns"])
def test_deciders_do_not_stand_on_the_send_stack(module):
    code = (
        f"import sys, {module}\n"
        f"print(sorted(m for m in sys.modules if m.startswith({SEND_STACK!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
