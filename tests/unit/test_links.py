"""Signed email links and click/open tracking in HTML (pure)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from agents.render.tracking import add_open_pixel, rewrite_links
from agents.sender.links import LinkSignatureError, message_links, sign, verify

SECRET = "s3cret"


def test_a_token_verifies_and_carries_message_and_person():
    token = sign(SECRET, "unsubscribe", "m1", "ana")
    claims = verify(SECRET, token, "unsubscribe")
    assert (claims.message_id, claims.person) == ("m1", "ana")


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),   # signature changed
    lambda t: "x" + t,                                     # payload changed
    lambda t: t.split(".")[0],                             # signature missing
    lambda t: "",                                          # nothing
])
def test_a_tampered_token_is_refused(mutate):
    token = sign(SECRET, "unsubscribe", "m1", "ana")
    with pytest.raises(LinkSignatureError):
        verify(SECRET, mutate(token), "unsubscribe")


def test_a_token_for_another_person_cannot_be_forged_by_swapping_the_payload():
    mine = sign(SECRET, "unsubscribe", "m1", "ana")
    theirs = sign(SECRET, "unsubscribe", "m2", "bob")
    forged = theirs.split(".")[0] + "." + mine.split(".")[1]
    with pytest.raises(LinkSignatureError):
        verify(SECRET, forged, "unsubscribe")


def test_kinds_do_not_mix_and_other_secrets_fail():
    token = sign(SECRET, "open", "m1", "ana")
    with pytest.raises(LinkSignatureError):
        verify(SECRET, token, "unsubscribe")
    with pytest.raises(LinkSignatureError):
        verify("other", token, "open")


def test_click_signature_covers_the_destination():
    links = message_links("https://n.test/", SECRET, "m1", "ana")
    url = links.click("https://shop.test/p?a=1&b=2")
    parts = urlsplit(url)
    token = parts.path.rsplit("/", 1)[1]
    [target] = parse_qs(parts.query)["u"]
    assert target == "https://shop.test/p?a=1&b=2"
    assert verify(SECRET, token, "click", target).person == "ana"
    with pytest.raises(LinkSignatureError):
        verify(SECRET, token, "click", "https://evil.test/")


def test_message_links_shapes():
    links = message_links("https://n.test", SECRET, "m1", "ana", mailto="unsub@n.test")
    assert links.unsubscribe.startswith("https://n.test/unsubscribe/")
    assert links.preferences.startswith("https://n.test/preferences/")
    assert links.open_pixel.startswith("https://n.test/o/") and links.open_pixel.endswith(".gif")
    assert links.unsubscribe_mailto is not None
    assert links.unsubscribe_mailto.startswith("mailto:unsub@n.test?subject=unsubscribe%20")


def test_rewrite_links_tracks_http_links_only():
    html = (
        '<a href="https://shop.test/x?a=1&amp;b=2">Shop</a>'
        "<a href='mailto:hi@x.test'>Mail</a><a href=\"#top\">Top</a>"
        '<a href="https://n.test/unsubscribe/tok">Unsub</a>'
        '<a data-nudge-track="false" href="https://private.test/">P</a>'
    )
    seen = []

    def track(url: str) -> str:
        seen.append(url)
        return f"https://n.test/c/T?u={url}"

    out = rewrite_links(html, track, keep_prefix="https://n.test/")
    # The URL tracked is the unescaped one; written back escaped.
    assert seen == ["https://shop.test/x?a=1&b=2"]
    assert '<a href="https://n.test/c/T?u=https://shop.test/x?a=1&amp;b=2">Shop</a>' in out
    assert "mailto:hi@x.test" in out and 'href="#top"' in out
    assert 'href="https://n.test/unsubscribe/tok"' in out
    assert 'href="https://private.test/"' in out


def test_open_pixel_goes_before_the_closing_body_tag():
    assert add_open_pixel("<html><body><p>x</p></body></html>", "https://n/o/t.gif").endswith(
        '<img src="https://n/o/t.gif" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px"></body></html>'
    )
    assert add_open_pixel("<p>x</p>", "u").startswith("<p>x</p><img")
