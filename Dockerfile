# The shop's image: gunicorn (the `shop` service) and `manage.py qcluster` (the `worker`) on MySQL.
# Build: docker compose build   (or: docker build -t mall .)

FROM python:3.11-slim-bookworm AS build
# mysqlclient is compiled against MariaDB Connector/C (Debian's libmysqlclient).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev \
    && rm -rf /var/lib/apt/lists/*
# The lock: every package at an exact version, checked against its hashes (`make lock`).
COPY requirements-mysql.lock /src/
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r /src/requirements-mysql.lock

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels

WORKDIR /app
# The application only: no virtualenv, local database or test tree from the checkout.
COPY manage.py gunicorn.conf.py ./
COPY mall ./mall
COPY goods ./goods
COPY inventory ./inventory
COPY carts ./carts
COPY orders ./orders
COPY traces ./traces
COPY faults ./faults
COPY templates ./templates

RUN useradd --system --no-create-home --home-dir /app mall
USER mall
ENV PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=mall.settings \
    GUNICORN_BIND=0.0.0.0:8000
EXPOSE 8000
# gunicorn reads ./gunicorn.conf.py: workers/threads from the environment, telemetry set up after the fork.
CMD ["gunicorn", "mall.wsgi:application"]
