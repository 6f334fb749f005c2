"""Long commands print plain progress lines as they go when their output is not a terminal
(a file, a CI log): `show --check` too, not only `run`; rates say what they count."""


def test_show_check_prints_progress_lines_when_redirected(cli, image_folder):
    status, out, err = cli("show", "rotation", "--check", "--epochs", "2", "--resolution", "16",
                           "--dataset", f"imagefolder:{image_folder}")
    assert status == 0, err
    lines = [line for line in err.splitlines() if "pretrain rotation:" in line]
    assert len(lines) >= 2, err                           # one per epoch, as they happen
    assert "source img/s" in lines[0] and "inputs/s" in lines[0]
    assert "held-out pretext accuracy" in out


def test_rates_say_what_they_count():
    from sslbench._core.progress import rates
    assert rates(112.4, 449.6) == "112 source img/s, 450 inputs/s"
    assert rates(500.0, 500.0) == "500 source img/s"      # one input per image: one rate
    assert rates(500.0) == "500 source img/s"
