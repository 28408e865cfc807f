"""The `reportqa` command line as a user runs it: subprocesses, exit codes, one-line errors."""
import json
import os
import subprocess
import sys

import pytest


def run(args, settings, timeout=180, **env):
    full_env = dict(os.environ, REPORTQA_INDEX_DIR=str(settings.index_dir), **env)
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def test_ask_json_and_text(settings, built_index):
    out = run(["ask", "How many 5G base stations has China built?", "--k", "2", "--json"], settings)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["passages"][0]["citation"]["section_id"] == "p2.x" and len(data["passages"]) == 2
    assert data["answerable"] is True and data["reasons"] == []
    text = run(["ask", "cybercrime cooperation with neighbouring countries"], settings)
    assert text.returncode == 0 and "[p2.vi]" in text.stdout and "»" in text.stdout
    rejected = run(["ask", "How many staff does CNCERT/CC employ?"], settings)
    assert "probably NOT answered" in rejected.stdout and "   - no number of staff in the best passages" in rejected.stdout


def test_output_into_a_closed_pipe_stops_quietly(settings, built_index):
    """`reportqa ask … | head`: the reader goes away before the answer is printed."""
    env = dict(os.environ, REPORTQA_INDEX_DIR=str(settings.index_dir))
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "ask", "data security", "--k", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the model has even loaded, so the first write finds no reader
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 141 and err == b"", err.decode()[-500:]


def test_sections_tree(settings, built_index):
    out = run(["sections"], settings)
    assert out.returncode == 0
    assert "p2.iv" in out.stdout and "(IV) Enhancing the Protection of Critical Information Infrastructure" in out.stdout


def test_config_prints_overrides(settings):
    out = run(["config"], settings, REPORTQA_CHUNK_TOKENS="123", REPORTQA_API_TOKEN="s3cret")
    data = json.loads(out.stdout)
    assert data["chunk_tokens"] == 123 and data["api_token"] == "***" and "s3cret" not in out.stdout


@pytest.mark.parametrize("args,code,message", [
    (["ask", "   "], 2, "empty"),
    (["ask", "data", "--k", "0"], 2, "--k"),
    (["ask", "data", "--section", "zz"], 2, "unknown section"),
])
def test_errors_are_one_line_with_exit_codes(settings, built_index, args, code, message):
    out = run(args, settings)
    assert out.returncode == code
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_missing_index_refuses_to_serve(settings, tmp_path):
    out = run(["serve", "--index", str(tmp_path / "none"), "--port", "0"], settings, timeout=60)
    assert out.returncode == 4
    assert "no index found" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_serve_refuses_a_public_bind_without_flag(settings):
    out = run(["serve", "--host", "0.0.0.0"], settings, timeout=60)
    assert out.returncode == 2 and "--allow-remote" in out.stderr


def test_ingest_if_stale_is_a_noop_when_up_to_date(settings, built_index):
    out = run(["ingest", "--if-stale"], settings)
    assert out.returncode == 0 and "up to date" in out.stderr


def test_ingest_reports_bad_files_and_fails_when_nothing_is_left(settings, tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\x00\x00binary")
    out = run(["ingest", str(tmp_path / "bad.txt"), "--index", str(tmp_path / "idx")], settings)
    assert out.returncode == 3
    assert "skipped" in out.stderr and "binary" in out.stderr and not (tmp_path / "idx").exists()


def test_ingest_warns_about_pdf_pages_it_cannot_read(settings, tmp_path):
    from library_samples import pdf_with_blank_pages

    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf_with_blank_pages("Grain Stores", ["Wheat stocks rose by a tenth.", "", "", "Barley fell."],
                                          blank={2, 3}))
    out = run(["ingest", str(path), "--index", str(tmp_path / "idx"), "--quiet", "--json"], settings)
    assert out.returncode == 0, out.stderr
    assert f"warning {path}: 2 of 4 pages have no extractable text (pages 2-3)" in out.stderr
    assert json.loads(out.stdout)["per_document"][0]["pages_without_text"] == [2, 3]


def test_every_command_has_help_with_examples(settings):
    for command in ["ingest", "ask", "serve", "eval", "sections", "config", "bench"]:
        out = run([command, "--help"], settings, timeout=60)
        assert out.returncode == 0 and "examples:" in out.stdout, command


def test_settings_round_trip_through_the_environment(monkeypatch):
    """What `serve --workers N` hands its worker processes: the same settings, secrets included."""
    from pathlib import Path

    from pydantic import SecretStr

    from settings import Settings

    given = Settings(chunk_tokens=200, encoder_threads=1, api_token=SecretStr("t0k3n"),
                     reports=[Path("/r/a.md"), Path("/r/b.md")])
    env = given.to_environment()
    assert env["REPORTQA_API_TOKEN"] == "t0k3n" and env["REPORTQA_CHUNK_TOKENS"] == "200"
    assert env["REPORTQA_REPORTS"] == '["/r/a.md", "/r/b.md"]' and "REPORTQA_MILVUS_TOKEN" not in env
    for name in [n for n in os.environ if n.startswith("REPORTQA_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == given
