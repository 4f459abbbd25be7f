"""`nudge campaigns check` and the campaign folder loader: every problem named by file and path."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.person.campaign_files import CampaignDirError, load_campaign_dir
from streams.cli.campaigns import campaigns


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_valid_folder_loads_its_campaigns_and_segments(tmp_path: Path) -> None:
    write(tmp_path, "campaigns/welcome.yaml", "id: welcome\ntrigger: {segment: quiet}\nsteps: [{send: hi}]\n")
    write(tmp_path, "segments/quiet.yaml", "id: quiet\nwhen: {not_performed: login, for: 7d}\n")
    found, segments = load_campaign_dir(tmp_path)
    assert [c.id for c in found] == ["welcome"] and [s.id for s in segments] == ["quiet"]


def test_check_reports_the_file_and_path_of_each_problem(tmp_path: Path) -> None:
    write(tmp_path, "campaigns/welcome.yaml", "id: welcome\ntrigger: {event: a}\nsteps: [{send: a}, {send: b}, {wait: 48x}]\n")
    write(tmp_path, "campaigns/other.yaml", "id: other\ntrigger: {segment: nowhere}\n")
    result = CliRunner().invoke(campaigns, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'campaigns/welcome.yaml'}: steps[2].wait: '48x' is not a duration" in result.output
    assert "campaign other: refers to segment 'nowhere'" in result.output


def test_check_flags_sends_of_templates_the_folder_lacks(tmp_path: Path) -> None:
    write(tmp_path, "campaigns/welcome.yaml", "id: welcome\ntrigger: {event: a}\nsteps: [{send: welcome}, {send: missing}]\n")
    write(tmp_path, "templates/welcome.html", "---\nsubject: Hi\n---\n<p>Hello</p>\n")
    result = CliRunner().invoke(campaigns, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "sends template 'missing', which templates/ lacks" in result.output


def test_check_passes_a_clean_folder(tmp_path: Path) -> None:
    write(tmp_path, "campaigns/welcome.yaml", "id: welcome\ntrigger: {event: a}\nsteps: [{send: welcome}]\n")
    write(tmp_path, "templates/welcome.html", "---\nsubject: Hi\n---\n<p>Hello</p>\n")
    result = CliRunner().invoke(campaigns, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 1 campaign(s), 0 segment(s), 1 template(s)")


def test_loading_a_broken_folder_raises_with_every_problem(tmp_path: Path) -> None:
    write(tmp_path, "campaigns/a.yaml", "id: a\ntrigger: {evnt: x}\n")
    with pytest.raises(CampaignDirError, match=r"a.yaml: trigger: not a trigger"):
        load_campaign_dir(tmp_path)
