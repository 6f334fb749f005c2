"""docs/settings.md is generated from the code (sslbench._core.settingsdoc) and kept in step."""


def test_settings_page_is_generated_from_the_code():
    from conftest import REPO

    from sslbench._core.settingsdoc import render
    assert (REPO / "docs" / "settings.md").read_text() == render(), \
        "run: python -m sslbench._core.settingsdoc"
