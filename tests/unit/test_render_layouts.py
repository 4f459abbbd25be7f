"""Layouts: templates/layouts/NAME.html wraps a template's body via `layout:` in front matter."""

from pathlib import Path

import pytest

from agents.render.email import render_email
from agents.render.errors import TemplateFileError
from agents.render.template_files import load_templates
from schemas.commands import RenderContext

LAYOUT = """<html><body><div class="frame">{{ content }}</div>
<footer><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ customer.first_name }}</footer></body></html>"""


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_layout_wraps_the_body_and_sees_the_same_variables(tmp_path: Path):
    write(tmp_path, "layouts/base.html", LAYOUT)
    write(tmp_path, "hi.html", "---\nsubject: Hi\nlayout: base\npreheader: Pre\n---\n<p>Hi {{ customer.first_name }} & co</p>")
    template = load_templates(tmp_path)["hi"]
    rendered = render_email(
        template, RenderContext(customer={"first_name": "<Ana>"}), unsubscribe_url="https://u/x"
    )
    # The body's escaping is kept once, not doubled by the layout.
    assert '<div class="frame"><p>Hi &lt;Ana&gt; & co</p></div>' in rendered.html
    assert '<a href="https://u/x">Unsubscribe</a> &lt;Ana&gt;' in rendered.html
    # The preheader goes right after <body>, inside the layout.
    assert rendered.html.index("Pre</div>") < rendered.html.index('class="frame"')
    assert "Unsubscribe (https://u/x)" in rendered.text


def test_block_placeholder_works_too(tmp_path: Path):
    write(tmp_path, "layouts/base.html", "<main>{% block content %}{% endblock %}</main>")
    write(tmp_path, "hi.html", "---\nsubject: Hi\nlayout: base\n---\n<p>x</p>")
    rendered = render_email(load_templates(tmp_path)["hi"], RenderContext())
    assert rendered.html == "<main><p>x</p></main>"


def test_changing_the_layout_changes_the_template_version(tmp_path: Path):
    write(tmp_path, "layouts/base.html", "<main>{{ content }}</main>")
    write(tmp_path, "hi.html", "---\nsubject: Hi\nlayout: base\n---\n<p>x</p>")
    before = load_templates(tmp_path)["hi"].version
    write(tmp_path, "layouts/base.html", "<main class='new'>{{ content }}</main>")
    assert load_templates(tmp_path)["hi"].version != before


def test_unknown_layout_is_a_load_error_naming_the_folder(tmp_path: Path):
    write(tmp_path, "hi.html", "---\nsubject: Hi\nlayout: nope\n---\n<p>x</p>")
    with pytest.raises(TemplateFileError, match=r"layouts/nope\.html"):
        load_templates(tmp_path)


def test_layout_without_placeholder_is_refused(tmp_path: Path):
    write(tmp_path, "layouts/base.html", "<main></main>")
    write(tmp_path, "hi.html", "---\nsubject: Hi\n---\n<p>x</p>")
    with pytest.raises(TemplateFileError, match="content"):
        load_templates(tmp_path)


def test_topic_is_read_from_front_matter(tmp_path: Path):
    write(tmp_path, "news.html", "---\nsubject: News\ntopic: newsletter\n---\n<p>x</p>")
    assert load_templates(tmp_path)["news"].topic == "newsletter"
