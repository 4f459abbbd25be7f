"""Template files: YAML front matter + HTML body, optional text sibling, errors naming the file."""

from pathlib import Path

import pytest

from agents.render.template_files import TemplateFileError, load_templates


def write(folder: Path, name: str, content: str) -> None:
    (folder / name).write_text(content, encoding="utf-8")


def test_loads_front_matter_body_and_text_sibling(tmp_path: Path):
    write(
        tmp_path,
        "welcome.html",
        "---\nsubject: Hi {{ customer.first_name }}\nfrom: Team <t@ex.com>\n"
        "reply_to: help@ex.com\npreheader: Ready\n---\n<p>Hello</p>\n",
    )
    write(tmp_path, "welcome.txt", "Hello")
    template = load_templates(tmp_path)["welcome"]
    assert template.subject == "Hi {{ customer.first_name }}"
    assert template.from_address == "Team <t@ex.com>"
    assert template.reply_to == "help@ex.com"
    assert template.preheader == "Ready"
    assert template.body == "<p>Hello</p>"
    assert template.text == "Hello"
    assert len(template.version) == 12


def test_version_changes_with_the_content(tmp_path: Path):
    write(tmp_path, "a.html", "---\nsubject: A\n---\n<p>1</p>")
    first = load_templates(tmp_path)["a"].version
    write(tmp_path, "a.html", "---\nsubject: A\n---\n<p>2</p>")
    assert load_templates(tmp_path)["a"].version != first


def test_missing_front_matter_names_the_file(tmp_path: Path):
    write(tmp_path, "bad.html", "<p>no front matter</p>")
    with pytest.raises(TemplateFileError, match=r"bad\.html.*front matter"):
        load_templates(tmp_path)


def test_missing_subject_is_an_error(tmp_path: Path):
    write(tmp_path, "bad.html", "---\nfrom: a@ex.com\n---\n<p>x</p>")
    with pytest.raises(TemplateFileError, match="subject"):
        load_templates(tmp_path)


def test_unknown_front_matter_key_is_an_error(tmp_path: Path):
    write(tmp_path, "bad.html", "---\nsubject: A\nsubjet: typo\n---\n<p>x</p>")
    with pytest.raises(TemplateFileError, match="subjet"):
        load_templates(tmp_path)


def test_jinja_syntax_error_is_reported_at_load_time(tmp_path: Path):
    write(tmp_path, "bad.html", "---\nsubject: A\n---\n<p>{% if %}</p>")
    with pytest.raises(TemplateFileError, match=r"bad\.html: body: syntax error"):
        load_templates(tmp_path)


def test_a_missing_templates_folder_means_no_templates(tmp_path):
    assert load_templates(tmp_path / "nowhere") == {}
