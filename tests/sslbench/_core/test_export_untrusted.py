"""``sslbench export`` reads a record, the cache and writes two files: a record cannot make it
read outside the cache, a damaged checkpoint is refused, it never overwrites a file it did
not write, and a pair left mismatched by a kill is refused by ``load_backbone``."""

import json
import shutil

import pytest

import sslbench
from sslbench.errors import SSLBenchError


def export(cli, results, cache, out, *extra):
    return cli("export", str(results), "--task", "rotation", "--seed", "0",
               "--cache-dir", str(cache), "-o", str(out), *extra)


def test_export_never_overwrites_a_record_or_a_file_it_did_not_write(cli, finished_sweep,
                                                                      tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished_sweep[0], results)
    [record] = (results / "records").glob("*rotation__linear__f1__s0.json")
    before = record.read_bytes()
    status, _, err = export(cli, record, finished_sweep[1], record.with_suffix(".safetensors"))
    assert status == 2 and "will not overwrite" in err and "is not an sslbench export" in err
    assert record.read_bytes() == before
    assert not record.with_suffix(".safetensors").exists()
    mine = tmp_path / "weights.safetensors"
    mine.write_bytes(b"someone's file")
    status, _, err = export(cli, results, finished_sweep[1], mine)
    assert status == 2 and "has no export description" in err
    again = tmp_path / "exp" / "rot.safetensors"
    assert export(cli, results, finished_sweep[1], again)[0] == 0
    assert export(cli, results, finished_sweep[1], again)[0] == 0     # its own pair: replaced


def test_a_pair_from_two_exports_is_refused(cli, finished_sweep, tmp_path):
    """A kill between the two writes leaves new weights beside the old description: the
    digest in the description does not match, and load_backbone says so."""
    a, b = tmp_path / "a" / "rot.safetensors", tmp_path / "b" / "rot.safetensors"
    assert export(cli, finished_sweep[0], finished_sweep[1], a)[0] == 0
    assert cli("export", str(finished_sweep[0]), "--task", "rotation", "--seed", "1",
               "--cache-dir", str(finished_sweep[1]), "-o", str(b))[0] == 0
    sslbench.load_backbone(a)                                   # the control: a whole pair
    shutil.copy(b, a)                                           # seed 1's weights, seed 0's JSON
    with pytest.raises(SSLBenchError, match="does not match its description"):
        sslbench.load_backbone(a)


def test_a_record_cannot_point_export_outside_the_cache(cli, finished_sweep, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished_sweep[0], results)
    secret = tmp_path / "secret.pt"
    secret.write_bytes(b"not yours")
    for path in (results / "records").glob("*rotation*.json"):
        record = json.loads(path.read_text())
        record["pretraining"]["checkpoint"] = str(secret.with_suffix(""))
        path.write_text(json.dumps(record))
    status, _, err = export(cli, results, finished_sweep[1], tmp_path / "x.safetensors")
    assert status == 2 and "unknown task 'rotation'" in err, err     # none left to export
    assert err.count("pretraining.checkpoint is not a checkpoint id") == 4     # named, skipped


def test_a_damaged_checkpoint_is_refused_and_a_wrong_shape_named(cli, finished_sweep,
                                                                  tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(finished_sweep[1], cache)
    [record] = (finished_sweep[0] / "records").glob("*rotation__linear__f1__s0.json")
    ckpt = cache / "checkpoints" / f"{json.loads(record.read_text())['pretraining']['checkpoint']}.pt"
    data = bytearray(ckpt.read_bytes())
    data[-100] ^= 1                                             # one flipped bit
    ckpt.write_bytes(bytes(data))
    status, _, err = export(cli, finished_sweep[0], cache, tmp_path / "x.safetensors")
    assert status == 2 and "checksum does not match" in err, err
    # a checkpoint of another shape (another backbone's, say): named, not loaded
    from sslbench._core.atomic import torch_bytes
    import torch
    ckpt.write_bytes(torch_bytes({"backbone": {"conv.weight": torch.zeros(1)}, "info": {}}))
    status, _, err = export(cli, finished_sweep[0], cache, tmp_path / "x.safetensors")
    assert status == 2 and "its tensors are not the backbone's" in err, err


def test_bad_resolution_or_options_in_a_record_are_one_line(cli, finished_sweep, tmp_path):
    results = tmp_path / "results"
    for change, message in ((("settings", "resolution"), "'16'"),
                            (("options", "backbone"), "backbone options")):
        shutil.rmtree(results, ignore_errors=True)
        shutil.copytree(finished_sweep[0], results)
        for path in (results / "records").glob("*rotation*.json"):
            record = json.loads(path.read_text())
            record[change[0]][change[1]] = "16" if change[1] == "resolution" else [1]
            path.write_text(json.dumps(record))
        status, _, err = export(cli, results, finished_sweep[1], tmp_path / "x.safetensors")
        assert status == 2 and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


def test_a_misspelt_task_gets_a_did_you_mean(cli, finished_sweep, tmp_path):
    status, _, err = cli("export", str(finished_sweep[0]), "--task", "rotaton",
                         "--cache-dir", str(finished_sweep[1]), "-o", str(tmp_path / "x"))
    assert status == 2 and "unknown task 'rotaton'" in err and "Did you mean 'rotation'?" in err
