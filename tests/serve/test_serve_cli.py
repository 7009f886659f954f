"""``dpfusion serve`` argument and start-up errors: one line, exit code 1, before any request is served."""

from __future__ import annotations

import socket

import pytest

from dpfusion.cli import main


def test_a_taken_port_is_a_one_line_error(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--no-image-dial"]) == 1
    assert (
        capsys.readouterr().err.strip() == f"dpfusion: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_a_missing_sample_is_refused(tmp_path, capsys) -> None:
    assert main(["serve", "--sample", str(tmp_path / "none.png")]) == 1
    assert capsys.readouterr().err.startswith("dpfusion: error: sample image not found")


@pytest.mark.parametrize("option", [["--port", "70000"], ["--max-pixels", "0"], ["--queue", "x"], ["--device", "tpu"]])
def test_bad_options_are_one_line_errors(option, capsys) -> None:
    assert main(["serve", *option]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dpfusion: error:") and err.count("\n") == 1, err
