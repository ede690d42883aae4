"""The README's curl example is the one the credentials page shows, character for character."""

from __future__ import annotations

import html
import re
from pathlib import Path

from django.conf import settings

MARKER = "<!-- The credentials page's curl example (#snippet-curl), for an app named my-cli"


def readme_curl() -> str:
    text = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert MARKER in text, "the README lost its marked curl example"
    after = text.split(MARKER, 1)[1]
    return re.search(r"```sh\n(.*?)\n```", after, re.S).group(1)


def test_the_readme_curl_example_is_the_credentials_pages(login, alice, app):
    assert app.name == "my-cli"
    page = login(alice).get(f"/orgs/{app.organization.public_id}/apps/{app.public_id}/credentials/").content.decode()
    shown = re.search(r'<pre id="snippet-curl"><code>(.*?)</code></pre>', page, re.S).group(1)
    assert readme_curl() == html.unescape(re.sub(r"<[^>]+>", "", shown))


def test_the_readme_quick_start_leads_with_the_browser(login):
    text = (Path(settings.BASE_DIR) / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert quick_start.index("in a browser") < quick_start.index("manage.py")
    assert "debug off" in quick_start and "background jobs on" in quick_start
