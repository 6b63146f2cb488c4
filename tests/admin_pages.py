"""Admin pages as a browser submits them: read a page's form, change some fields, post it back."""

from html.parser import HTMLParser


class _FormFields(HTMLParser):
    """The fields of the page's form with id ``form_id`` (or the first form), as a browser would send them."""

    def __init__(self, form_id: str | None):
        super().__init__()
        self.form_id = form_id
        self.in_form = False
        self.done = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.done and (self.form_id is None or attrs.get("id") == self.form_id):
            self.in_form = True
        if not self.in_form or "name" not in attrs and tag not in ("option",):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields[attrs["name"]] = attrs.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select":
            self._select = attrs["name"]
            self.fields.setdefault(self._select, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields[self._select] = attrs.get("value", "")
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form, self.done = False, True
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data


def form_fields(html: str, form_id: str | None = None) -> dict[str, str]:
    parser = _FormFields(form_id)
    parser.feed(html)
    return parser.fields


def read_form(client, url: str, form_id: str | None = None) -> dict[str, str]:
    """GET an admin page and return its form's fields (hidden inputs included)."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return form_fields(response.content.decode(), form_id)


def page_messages(response) -> list[str]:
    """The admin messages shown after a (followed) redirect."""
    return [str(message) for message in response.context["messages"]] if response.context else []
