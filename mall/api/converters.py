"""Path converters of the API's URLs."""


class IdConverter:
    """A database id in a URL: up to 18 digits, so it always fits a 64-bit integer column."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
