"""`nudge preview`: render a template from the command line."""

from pathlib import Path

from click.testing import CliRunner

from streams.cli.preview import preview


def test_preview_renders_with_given_attributes(tmp_path: Path):
    (tmp_path / "hi.html").write_text(
        "---\nsubject: Hi {{ customer.name }}\n---\n<p>Total {{ event.total | money }}</p>"
    )
    result = CliRunner().invoke(preview, [
        "hi", "--dir", str(tmp_path), "--attributes", '{"name": "Ana"}', "--event", '{"total": 5}'
    ])
    assert result.exit_code == 0, result.output
    assert "Subject: Hi Ana" in result.output and "Total $5.00" in result.output


def test_preview_reports_render_errors_and_unknown_templates(tmp_path: Path):
    (tmp_path / "hi.html").write_text("---\nsubject: Hi\n---\n<p>{{ customer.coupon }}</p>")
    failed = CliRunner().invoke(preview, ["hi", "--dir", str(tmp_path)])
    assert failed.exit_code == 1 and "coupon" in failed.output
    unknown = CliRunner().invoke(preview, ["nope", "--dir", str(tmp_path)])
    assert unknown.exit_code == 1 and "known: hi" in unknown.output


def test_person_and_attributes_together_are_refused(tmp_path: Path):
    (tmp_path / "hi.html").write_text("---\nsubject: Hi\n---\n<p>x</p>")
    result = CliRunner().invoke(preview, ["hi", "--dir", str(tmp_path), "--person", "a",
                                          "--attributes", "{}"])
    assert result.exit_code == 2
