"""`nudge campaigns check`: every problem named by file, line and fix, once, at its first cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.person.campaign_files import CampaignDirError, load_campaign_dir
from streams.cli.campaigns import campaigns

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def check(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = CliRunner().invoke(campaigns, ["check", *args, str(root)] if root else ["check", *args], env=env)
    return result.exit_code, result.output.splitlines()


CLEAN = {
    "campaigns/welcome.yaml": "id: welcome\ntrigger: {event: signed_up}\nsteps:\n  - send: welcome\n",
    "templates/welcome.html": "---\nsubject: Hi {{ customer.first_name | default: 'there' }}\n---\n<p>Hello</p>\n",
}


def test_a_clean_folder_passes(tmp_path: Path) -> None:
    code, output = check(write(tmp_path, CLEAN))
    assert code == 0, output
    assert output[-1].startswith("ok: 1 campaign(s), 0 segment(s), 0 computed attribute(s) valid, 1 template(s) checked")


def test_the_folder_defaults_to_nudge_campaigns_dir(tmp_path: Path) -> None:
    write(tmp_path, CLEAN)
    result = CliRunner().invoke(campaigns, ["check"], env={"NUDGE_CAMPAIGNS_DIR": str(tmp_path)})
    assert result.exit_code == 0 and f"in {tmp_path}" in result.output


def test_the_example_folder_of_the_repo_has_no_errors() -> None:
    code, output = check(REPO)
    assert code == 0, output


def test_a_misspelt_key_names_its_line_and_the_key_meant(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "campaigns/welcome.yaml": (
        "id: welcome\ntrigger: {event: signed_up}\nfilter: {attribute: email, equals: x}\nsteps:\n  - send: welcome\n"
    )})
    code, output = check(tmp_path)
    assert code == 1
    assert f"{tmp_path}/campaigns/welcome.yaml:3: filter.equals: unknown key (did you mean 'eq'?)" in output


def test_a_misspelt_step_and_a_spelled_out_duration_get_their_fix(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "campaigns/welcome.yaml": (
        "id: welcome\ntrigger: {event: signed_up}\nsteps:\n  - send: welcome\n  - wait: 2 days\n  - sned: welcome\n"
    )})
    _, output = check(tmp_path)
    text = "\n".join(output)
    assert "welcome.yaml:5: steps[1].wait: '2 days' is not a duration (use s m h d w, e.g. 48h) (write '2d')" in text
    assert "welcome.yaml:6: steps[2]: not a step" in text and "('sned': did you mean 'send'?)" in text


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "segments/broken.yaml": "id: broken\nwhen: {attribute: plan, eq: [x}\n"})
    _, output = check(tmp_path)
    assert any(line.startswith(f"{tmp_path}/segments/broken.yaml:2: not valid YAML") for line in output), output


def test_a_broken_segment_is_reported_once_not_as_missing_from_the_campaign(tmp_path: Path) -> None:
    write(tmp_path, {
        **CLEAN,
        "campaigns/quiet.yaml": "id: quiet\ntrigger: {segment: quiet}\nsteps: [{send: welcome}]\n",
        "segments/quiet.yaml": "id: quiet\nwhen: {attribute: plan, equals: trial}\n",
    })
    _, output = check(tmp_path)
    errors = [line for line in output if not line.startswith(("warning", "ok", "1 error"))]
    assert errors == [f"{tmp_path}/segments/quiet.yaml:2: when.equals: unknown key (did you mean 'eq'?)"]


def test_the_templates_of_a_broken_campaign_are_not_also_unused(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "campaigns/welcome.yaml": "id: welcome\ntrigger: {evnt: signed_up}\nsteps: [{send: welcome}]\n"})
    _, output = check(tmp_path)
    assert any("welcome.yaml:2: trigger: not a trigger" in line and "did you mean 'event'" in line for line in output)
    assert not any("no campaign sends" in line for line in output)


def test_a_send_of_a_missing_template_names_the_step_line(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "campaigns/welcome.yaml": (
        "id: welcome\ntrigger: {event: signed_up}\nsteps:\n  - send: welcome\n  - branch:\n"
        "      if: {event: x, since: entry}\n      then: [{send: welcom}]\n"
    )})
    _, output = check(tmp_path)
    assert (
        f"{tmp_path}/campaigns/welcome.yaml:7: campaign welcome sends template 'welcom', which templates/ "
        "lacks (did you mean 'welcome'?); create templates/welcom.html"
    ) in output


def test_a_missing_segment_gets_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path, {
        **CLEAN,
        "campaigns/quiet.yaml": "id: quiet\ntrigger: {segment: quite}\nsteps: [{send: welcome}]\n",
        "segments/quiet.yaml": "id: quiet\nwhen: {not_performed: login, for: 7d}\n",
    })
    _, output = check(tmp_path)
    assert any(
        line.startswith(f"{tmp_path}/campaigns/quiet.yaml:2: campaign quiet refers to segment 'quite'")
        and "(did you mean 'quiet'?)" in line for line in output
    ), output


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "campaigns/again.yaml": "id: welcome\ntrigger: {event: x}\n"})
    _, output = check(tmp_path)
    assert f"{tmp_path}/campaigns/welcome.yaml:1: campaign id 'welcome' is already used by {tmp_path}/campaigns/again.yaml:1; rename one" in output


def test_unused_templates_and_segments_are_warnings_that_strict_fails(tmp_path: Path) -> None:
    write(tmp_path, {
        **CLEAN,
        "templates/old.html": "---\nsubject: Old\n---\n<p>x</p>\n",
        "segments/vips.yaml": "id: vips\nwhen: {attribute: plan, eq: vip}\n",
    })
    code, output = check(tmp_path)
    assert code == 0
    assert f"warning: {tmp_path}/templates/old.html: no campaign sends this template (fine if only transactional sends or broadcasts use it)" in output
    assert f"warning: {tmp_path}/segments/vips.yaml:1: no campaign or segment uses segment 'vips' (fine if you only broadcast to it)" in output
    assert check(tmp_path, "--strict")[0] == 1


def test_an_attribute_read_once_beside_a_close_spelling_is_flagged_once(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "campaigns/trial.yaml": (
        "- {id: half, trigger: {date: {from: started_at, to: trial_ends_at, at: 50%}}, steps: [{send: welcome}]}\n"
        "- {id: late, trigger: {date: {attribute: trial_end_at, offset: -1d}}, filter: {attribute: trial_ends_at, exists: true}, steps: [{send: welcome}]}\n"
    )})
    _, output = check(tmp_path)
    typos = [line for line in output if "misspelt" in line]
    assert typos == [
        f"warning: {tmp_path}/campaigns/trial.yaml:2: attribute 'trial_end_at' is read only here and "
        f"'trial_ends_at' at {tmp_path}/campaigns/trial.yaml:1: is one of them misspelt? (declare your "
        "attributes under `attributes:` in events.yaml to check exactly)"
    ]


def test_with_declared_attributes_an_undeclared_one_is_flagged(tmp_path: Path) -> None:
    write(tmp_path, {
        **CLEAN,
        "events.yaml": "attributes: {plan_type: string}\nevents: {signed_up: {}}\n",
        "segments/trial.yaml": "id: trial\nwhen: {attribute: plan_typ, eq: trial}\n",
        "campaigns/trial.yaml": "id: trial\ntrigger: {segment: trial}\nsteps: [{send: welcome}]\n",
    })
    _, output = check(tmp_path)
    assert (
        f"warning: {tmp_path}/segments/trial.yaml:2: attribute 'plan_typ' is not declared in events.yaml "
        "(did you mean 'plan_type'?)"
    ) in output


# --- templates --------------------------------------------------------------------------------


def template_problems(tmp_path: Path, body: str, extra: dict[str, str] | None = None, subject: str = "Hi") -> list[str]:
    write(tmp_path, {**CLEAN, "templates/welcome.html": f"---\nsubject: {subject}\nfrom: a@example.com\n---\n\n{body}", **(extra or {})})
    return [line for line in check(tmp_path)[1] if "welcome.html" in line or "base.html" in line or ".txt" in line]


def test_an_unknown_helper_is_an_error_at_its_file_line(tmp_path: Path) -> None:
    problems = template_problems(tmp_path, "<p>a</p>\n{% if has_performed('created_project') %}x{% endif %}\n")
    assert problems == [
        f"{tmp_path}/templates/welcome.html:7: body: unknown helper has_performed() (did you mean 'performed'?); "
        "the helpers are performed(), event_count(), total(), last_event()"
    ]


def test_a_misspelt_attribute_is_an_error_naming_the_one_meant(tmp_path: Path) -> None:
    extra = {"events.yaml": "attributes: {first_name: string}\nevents: {signed_up: {}}\n"}
    problems = template_problems(tmp_path, "<p>Hi {{ customer.firstname }}</p>\n", extra)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/templates/welcome.html:6: body: customer.firstname is not an attribute")
    assert "(did you mean 'first_name'?)" in problems[0]


def test_an_attribute_declared_in_events_yaml_or_read_by_a_condition_is_known(tmp_path: Path) -> None:
    extra = {
        "events.yaml": "attributes: {first_name: string}\nevents: {signed_up: {}}\n",
        "segments/trial.yaml": "id: trial\nwhen: {attribute: plan_type, eq: trial}\n",
        "campaigns/trial.yaml": "id: trial\ntrigger: {segment: trial}\nsteps: [{send: welcome}]\n",
    }
    assert template_problems(tmp_path, "<p>{{ customer.first_name }} on {{ customer.plan_type | upcase }}</p>\n", extra) == []


def test_a_missing_attribute_with_a_fallback_is_fine(tmp_path: Path) -> None:
    body = "<p>{{ customer.nickname | default: 'friend' }}{% if customer.coupon %}{{ customer.coupon | default: '' }}{% endif %}</p>\n"
    assert template_problems(tmp_path, body) == []


def test_an_undefined_variable_is_an_error(tmp_path: Path) -> None:
    problems = template_problems(tmp_path, "<p>{{ user.name }}</p>\n")
    assert len(problems) == 1 and "welcome.html:6: body: 'user' is undefined" in problems[0]


def test_a_syntax_error_names_the_line_in_the_file_not_the_body(tmp_path: Path) -> None:
    problems = template_problems(tmp_path, "<p>one</p>\n<p>two</p>\n{% if x %}\n")
    assert problems == [f"{tmp_path}/templates/welcome.html:8: body: syntax error: Unexpected end of template. "
                        "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block "
                        "that needs to be closed is 'if'."]


def test_a_subject_problem_names_the_subject_line(tmp_path: Path) -> None:
    problems = template_problems(tmp_path, "<p>x</p>\n", subject="Hi {{ customer.frist_name }}")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path}/templates/welcome.html:2: subject: customer.frist_name")


def test_event_properties_are_those_of_the_trigger_event(tmp_path: Path) -> None:
    extra = {"events.yaml": "events:\n  signed_up: {properties: {plan: string}}\n"}
    problems = template_problems(tmp_path, "<p>{{ event.plan }} {{ event.plann }}</p>\n", extra)
    assert problems == [
        f"{tmp_path}/templates/welcome.html:6: body: event.plann: campaign welcome sends this on event "
        "'signed_up', whose `event` holds plan (did you mean 'plan'?)"
    ]


def test_a_segment_triggered_campaign_has_no_event_properties(tmp_path: Path) -> None:
    extra = {
        "campaigns/welcome.yaml": "id: welcome\ntrigger: {segment: quiet}\nsteps: [{send: welcome}]\n",
        "segments/quiet.yaml": "id: quiet\nwhen: {not_performed: login, for: 7d}\n",
    }
    problems = template_problems(tmp_path, "<p>{{ event.product_name }}</p>\n", extra)
    assert len(problems) == 1 and "entering segment 'quiet', whose `event` holds segment" in problems[0]


def test_a_layout_problem_is_reported_in_the_layout_file(tmp_path: Path) -> None:
    extra = {"templates/layouts/base.html": "<html>\n<body>\n{{ content }}\n{{ footer }}\n</body></html>\n"}
    write(tmp_path, {**CLEAN, **extra, "templates/welcome.html": "---\nsubject: Hi\nlayout: base\n---\n<p>a</p>\n<p>b</p>\n"})
    _, output = check(tmp_path)
    assert any(line.startswith(f"{tmp_path}/templates/layouts/base.html:4: body: 'footer' is undefined") for line in output), output


def test_a_text_part_problem_is_reported_in_the_txt_file(tmp_path: Path) -> None:
    extra = {"templates/welcome.txt": "Hello\n{{ customer.frist_name }}\n"}
    problems = template_problems(tmp_path, "<p>x</p>\n", extra)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path}/templates/welcome.txt:2: text: customer.frist_name")


def test_a_render_failure_with_sample_values_is_a_warning_at_its_line(tmp_path: Path) -> None:
    extra = {"events.yaml": "attributes: {first_name: string}\nevents: {signed_up: {}}\n"}
    problems = template_problems(tmp_path, "<p>x</p>\n<p>{{ customer.first_name | money }}</p>\n", extra)
    assert len(problems) == 1
    assert problems[0].startswith(f"warning: {tmp_path}/templates/welcome.html:7: body: in campaign welcome, rendering for a sample person fails")


def test_liquid_templates_are_checked_too(tmp_path: Path) -> None:
    body = "{% assign n = customer.first_name | default: 'x' %}\n{% unless customer.firstname == blank %}{{ customer.firstname }}{% endunless %}\n"
    extra = {"events.yaml": "attributes: {first_name: string}\nevents: {signed_up: {}}\n"}
    problems = template_problems(tmp_path, body, extra)
    # The printed one fails the message; the tested one reads as a typo: both on line 7.
    assert sorted(p.split(": body: ")[0] for p in problems) == [
        f"{tmp_path}/templates/welcome.html:7", f"warning: {tmp_path}/templates/welcome.html:7",
    ]
    assert any("customer.firstname is not an attribute any campaign" in p for p in problems)


# --- the loader the worker uses still collects every problem -----------------------------------


def test_loading_a_broken_folder_raises_with_every_problem(tmp_path: Path) -> None:
    write(tmp_path, {"campaigns/a.yaml": "id: a\ntrigger: {evnt: x}\n"})
    with pytest.raises(CampaignDirError, match=r"a.yaml: trigger: not a trigger"):
        load_campaign_dir(tmp_path)


def test_a_misspelt_front_matter_key_names_its_line_and_the_key_meant(tmp_path: Path) -> None:
    write(tmp_path, {**CLEAN, "templates/welcome.html": "---\nfrom: a@example.com\nsubjet: Hi\n---\n<p>x</p>\n"})
    _, output = check(tmp_path)
    assert any(
        line.startswith(f"{tmp_path}/templates/welcome.html:3: unknown front matter key(s) subjet")
        and line.endswith("(did you mean 'subject'?)") for line in output
    ), output


def test_check_says_what_each_event_condition_sees_of_the_past(tmp_path: Path) -> None:
    write(tmp_path, {
        **CLEAN,
        "campaigns/welcome.yaml": (
            "id: welcome\ntrigger: {event: signed_up}\nexit: {event: upgraded}\nsteps:\n  - send: welcome\n"
            "  - branch:\n      if: {event: viewed, where: {sku: A}, within: 7d}\n      then: [{send: welcome}]\n"
        ),
        "segments/quiet.yaml": "id: quiet\nwhen: {event: logged_in, count: 3}\n",
    })
    _, output = check(tmp_path)
    assert "what each event condition sees of the past when first loaded:" in output
    assert f"  {tmp_path}/campaigns/welcome.yaml:3: {{event: upgraded}} counts only events after entry (the past does not matter)" in output
    assert any(line.startswith(f"  {tmp_path}/campaigns/welcome.yaml:7: {{event: viewed, where: {{'sku': 'A'}}, within: 7d}} starts from each person's recent history") for line in output), output
    assert f"  {tmp_path}/segments/quiet.yaml:2: {{event: logged_in, count: {{'gte': 3}}}} reads the lifetime totals (exact, kept forever)" in output
    assert check(tmp_path, "--quiet")[1][0].startswith("warning")
