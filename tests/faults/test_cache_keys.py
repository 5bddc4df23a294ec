"""Progress cache keys suit every Django cache backend, memcached included, and the public
progress endpoint never answers 500, whatever the query string."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote_from_bytes

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client, override_settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from powercrud_async import progress
from powercrud_async.async_manager import AsyncManager
from tests.services import MemcachedServer

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/async/progress/"
FINE = {200, 286, 400, 404}
KEYS = ["nightly report", "ü" * 100, "tab\there", "semi;colon:and/slash", "k" * 100]


@pytest.fixture(params=["database", "memcached"])
def cache_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """The progress cache: the test default (DatabaseCache), or a real memcached."""
    if request.param == "database":
        yield "default"
        return
    server: MemcachedServer = request.getfixturevalue("memcached_server")
    caches_setting = {
        **settings.CACHES,
        "memcached": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": server.location,
        },
    }
    options = {**settings.POWERCRUD_SETTINGS, "CACHE_NAME": "memcached"}
    with override_settings(CACHES=caches_setting, POWERCRUD_SETTINGS=options):
        caches["memcached"].clear()
        yield "memcached"


@pytest.mark.parametrize("task_key", KEYS, ids=["space", "200 bytes", "tab", "punctuation", "100"])
def test_any_accepted_task_key_has_working_progress(cache_name: str, task_key: str) -> None:
    manager = AsyncManager()
    manager.launch_async_task("tests.testapp.tasks.add", 1, 2, task_key=task_key)
    manager.update_progress(task_key, "half way", current=1, total=2)
    assert progress.read(task_key).message == "half way"  # type: ignore[union-attr]
    response = Client().get(URL, {"task_name": task_key})  # anonymous: launched without a user
    assert response.status_code == 200 and response.json()["percent"] == 50.0
    assert len(progress.cache_key(task_key)) < 100 and progress.cache_key(task_key).isascii()


def test_the_endpoint_never_answers_500_for_any_query_string(cache_name: str) -> None:
    AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2, task_key="nightly report")
    client = Client()

    @hypothesis_settings(max_examples=150, deadline=None, database=None)
    @given(
        name=st.text(),
        raw=st.binary(max_size=300),
        param=st.sampled_from(["task_name", "task_key"]),
    )
    def check(name: str, raw: bytes, param: str) -> None:
        for query in (
            f"{param}={quote_from_bytes(name.encode('utf-8', 'surrogatepass'))}",
            f"{param}={quote_from_bytes(raw)}",
            quote_from_bytes(raw),
        ):
            response = client.get(URL, QUERY_STRING=query)
            assert response.status_code in FINE, (query, response.status_code)

    check()
    assert client.get(URL, {"task_name": "nightly report"}).status_code == 200
