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
            assert f"#### `{name}(" in docs
    reference = render_reference()
    assert ":class:`" not in reference and ":func:`" not in reference     # Markdown, not Sphinx
    # grouped by phase, in call order: the lifecycle's cells start before they finish
    order = [reference.index(f"`sslbench_{h}(") for h in (
        "tasks", "trackers", "sweep_start", "cell_start", "cell_finish", "sweep_finish")]
    assert order == sorted(order)
    assert reference.index("### Contributions") < reference.index("### Lifecycle")
