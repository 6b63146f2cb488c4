#!/usr/bin/env python3
"""Check docs/api.md against the OpenAPI schema the shop serves at /api/schema/.

Every operation of the schema has a heading ``### `METHOD /path/` `` in the docs and every such
heading is an operation of the schema (path parameters compared by position, not name); every
field of the schema's components and every domain error code (``mall.errors.DomainError``
subclasses) appears in the docs in backticks. Prints what is missing; exit status 1 if anything is.

    .venv/bin/python scripts/check_api_docs.py [--docs docs/api.md]
"""

import argparse
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADING = re.compile(r"^### `([A-Z]+) (/\S*)`", re.MULTILINE)


def normalised(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def schema() -> dict:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")
    import django

    django.setup()
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def domain_error_codes() -> set[str]:
    from django.apps import apps
    from django.utils.module_loading import module_has_submodule

    from mall.errors import DomainError

    for app in apps.get_app_configs():
        if app.path.startswith(str(REPO)) and module_has_submodule(app.module, "errors"):
            __import__(f"{app.name}.errors")

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    return {cls.code for cls in subclasses(DomainError)}


def problems(docs: str, openapi: dict, error_codes: set[str]) -> list[str]:
    in_schema = {
        (method.upper(), normalised(path))
        for path, item in openapi["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    in_docs = {(method, normalised(path)) for method, path in HEADING.findall(docs)}
    found = [f"not in docs/api.md: {method} {path}" for method, path in sorted(in_schema - in_docs)]
    found += [f"in docs/api.md but not in the schema: {method} {path}" for method, path in sorted(in_docs - in_schema)]
    components = openapi["components"]["schemas"].values()
    fields = {name for component in components for name in component.get("properties", {})}
    found += [f"field not in docs/api.md: `{name}`" for name in sorted(fields) if f"`{name}`" not in docs]
    found += [f"error code not in docs/api.md: `{code}`" for code in sorted(error_codes) if f"`{code}`" not in docs]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default=str(REPO / "docs" / "api.md"))
    docs = Path(parser.parse_args().docs).read_text()
    found = problems(docs, schema(), domain_error_codes())
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print(f"docs/api.md matches the OpenAPI schema ({len(HEADING.findall(docs))} operations).")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
