"""The tests mirror the layout of the code: ``tests/sslbench/X/test_M.py`` tests
``sslbench/X/M.py`` and ``tests/plugins/X/test_M.py`` tests
``plugins/sslbench_plugins/X/M.py`` (``test_M_ASPECT.py`` for one aspect of a large module);
``tests/acceptance/`` holds what crosses modules (end-to-end runs, fault injection, the public
surface, third-party plugins). A newcomer looking for a module's tests finds them by its path."""

from pathlib import Path

from conftest import REPO

TESTS = REPO / "tests"
MIRRORS = {"sslbench": REPO / "sslbench", "plugins": REPO / "plugins" / "sslbench_plugins"}


def module_of(test: Path) -> Path | None:
    """The module a mirrored test file tests, or None when no module matches its name."""
    top, *folders = test.relative_to(TESTS).parent.parts
    base = MIRRORS[top].joinpath(*folders)
    words = test.stem.removeprefix("test_").split("_")
    # the longest module name that the file name starts with: test_cli_bad_input -> cli.py
    for n in range(len(words), 0, -1):
        candidate = base / ("_".join(words[:n]) + ".py")
        if candidate.is_file():
            return candidate
    return None


def test_every_test_file_is_in_a_known_place():
    stray = [str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")
             if p.relative_to(TESTS).parts[0] not in (*MIRRORS, "acceptance")]
    assert not stray, f"test files outside tests/sslbench, tests/plugins, tests/acceptance: {stray}"


def test_every_mirrored_test_file_names_an_existing_module():
    orphans = [str(p.relative_to(TESTS)) for top in MIRRORS
               for p in (TESTS / top).rglob("test_*.py") if module_of(p) is None]
    assert not orphans, f"test files that mirror no module: {orphans}"
