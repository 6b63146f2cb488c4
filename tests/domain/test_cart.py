import pytest

from carts.models import CartItem


def test_adding_goods_creates_a_checked_line(api, user, goods_in_stock):
    goods = goods_in_stock(name="Tea", price="3.50")

    response = api.post("/api/cart/", {"goods": goods.pk, "nums": 2}, format="json")

    assert response.status_code == 201
    line = response.json()
    assert line == {
        "id": line["id"],
        "goods": goods.pk,
        "goods_name": "Tea",
        "price": "3.50",
        "nums": 2,
        "checked": True,
    }


def test_adding_the_same_goods_again_merges_into_its_line(api, user, goods_in_stock):
    goods = goods_in_stock()

    first = api.post("/api/cart/", {"goods": goods.pk, "nums": 2}, format="json").json()
    second = api.post("/api/cart/", {"goods": goods.pk, "nums": 3, "checked": False}, format="json")

    assert second.status_code == 201
    assert second.json()["id"] == first["id"]
    assert second.json()["nums"] == 5
    assert CartItem.objects.filter(user=user).count() == 1


def test_cart_lists_only_the_callers_lines(api, client_for, user, other_user, goods_in_stock):
    goods = goods_in_stock()
    api.post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json")
    client_for(other_user).post("/api/cart/", {"goods": goods.pk, "nums": 9}, format="json")

    lines = api.get("/api/cart/").json()

    assert [line["nums"] for line in lines] == [1]


def test_patch_changes_nums_and_checked(api, goods_in_stock):
    goods = goods_in_stock()
    line = api.post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json").json()

    response = api.patch(f"/api/cart/{line['id']}/", {"nums": 4, "checked": False}, format="json")

    assert response.status_code == 200
    assert (response.json()["nums"], response.json()["checked"]) == (4, False)


def test_delete_removes_the_line(api, goods_in_stock):
    goods = goods_in_stock()
    line = api.post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json").json()

    response = api.delete(f"/api/cart/{line['id']}/")

    assert response.status_code == 204
    assert not CartItem.objects.filter(pk=line["id"]).exists()


def test_another_users_line_is_invisible(api, client_for, other_user, goods_in_stock):
    goods = goods_in_stock()
    theirs = client_for(other_user).post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json").json()

    assert api.get(f"/api/cart/{theirs['id']}/").status_code == 404
    assert api.patch(f"/api/cart/{theirs['id']}/", {"nums": 5}, format="json").status_code == 404
    assert api.delete(f"/api/cart/{theirs['id']}/").status_code == 404
    assert CartItem.objects.get(pk=theirs["id"]).nums == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"nums": 0},
        {"nums": -1},
        {"nums": 10**12},
        {"nums": "abc"},
        {"nums": 1.5},
        {"nums": None},
        {"goods": "x"},
        {"goods": 10**30},
        {"checked": "maybe"},
    ],
)
def test_invalid_cart_input_is_a_400_with_a_code(api, goods_in_stock, payload):
    goods = goods_in_stock()

    response = api.post("/api/cart/", {"goods": goods.pk, "nums": 1, **payload}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not CartItem.objects.exists()


def test_unknown_goods_is_a_400_with_a_code(api, db):
    response = api.post("/api/cart/", {"goods": 424242, "nums": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "goods_not_found"


def test_goods_off_sale_cannot_be_added(api, goods_in_stock):
    goods = goods_in_stock(on_sale=False)

    response = api.post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "goods_unavailable"


def test_merging_beyond_the_line_limit_is_refused(api, goods_in_stock, settings):
    goods = goods_in_stock()
    api.post("/api/cart/", {"goods": goods.pk, "nums": settings.MAX_CART_LINE_NUMS}, format="json")

    response = api.post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "cart_line_too_large"


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"'])
def test_malformed_bodies_are_a_400(api, db, body):
    response = api.post("/api/cart/", body, content_type="application/json")

    assert response.status_code == 400
    assert "code" in response.json()


@pytest.mark.parametrize("nums", [0, -3, "abc", 10**12])
def test_invalid_patch_is_a_400(api, goods_in_stock, nums):
    goods = goods_in_stock()
    line = api.post("/api/cart/", {"goods": goods.pk, "nums": 1}, format="json").json()

    response = api.patch(f"/api/cart/{line['id']}/", {"nums": nums}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert CartItem.objects.get(pk=line["id"]).nums == 1
