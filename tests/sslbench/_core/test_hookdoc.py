"""The hook reference in docs/plugins.md is generated from the hook specifications
(sslbench._core.hookdoc) and kept in step."""

from conftest import REPO


def test_hook_reference_in_docs_is_generated_from_the_hookspecs():
    from sslbench import hookspecs
    from sslbench._core.hookdoc import render_reference
    docs = (REPO / "docs" / "plugins.md").read_text()
    assert render_reference() in docs, "run: python -m sslbench._core.hookdoc"
    for name in dir(hookspecs):
        if name.startswith("sslbench_"):
            assert f"### `{name}(" in docs
