import pytest


def test_goods_list_is_paginated_with_stock(client, goods_in_stock):
    apple = goods_in_stock(name="Apple", price="1.20", stock=7)

    response = client.get("/api/goods/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"count", "next", "previous", "results"}
    assert body["count"] == 1
    assert body["results"][0] == {
        "id": apple.pk, "name": "Apple", "price": "1.20", "stock": 7,
        "description": "", "image_url": "", "on_sale": True,
    }  # fmt: skip


def test_goods_list_pages_without_a_query_per_goods(client, goods_in_stock, django_assert_max_num_queries):
    for _ in range(25):
        goods_in_stock()

    with django_assert_max_num_queries(2):  # count + page (stock joined)
        response = client.get("/api/goods/")

    assert len(response.json()["results"]) == 20
    assert response.json()["next"].endswith("page=2")


def test_goods_detail(client, goods_in_stock):
    pear = goods_in_stock(name="Pear", price="0.99", stock=3)

    response = client.get(f"/api/goods/{pear.pk}/")

    assert response.status_code == 200
    assert response.json()["stock"] == 3


@pytest.mark.parametrize("path", ["/api/goods/999999/", "/api/goods/abc/", "/api/goods/99999999999999999999999/"])
def test_unknown_goods_is_a_json_404(client, db, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_goods_filter_by_on_sale_and_search_by_name(client, goods_in_stock):
    goods_in_stock(name="Red Apple")
    goods_in_stock(name="Green Apple", on_sale=False)
    goods_in_stock(name="Banana")

    on_sale = client.get("/api/goods/", {"on_sale": "true"}).json()["results"]
    off_sale = client.get("/api/goods/", {"on_sale": "false"}).json()["results"]
    apples = client.get("/api/goods/", {"search": "apple"}).json()["results"]

    assert [g["name"] for g in on_sale] == ["Red Apple", "Banana"]
    assert [g["name"] for g in off_sale] == ["Green Apple"]
    assert [g["name"] for g in apples] == ["Red Apple", "Green Apple"]


def test_an_unreadable_on_sale_filter_is_a_400(client, db):
    response = client.get("/api/goods/", {"on_sale": "perhaps"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_the_api_root_is_open_to_visitors(client, db):
    response = client.get("/api/")

    assert response.status_code == 200
    assert set(response.json()) == {"goods", "stock", "cart", "orders"}
