from tests.factories import TEST_PASSWORD


def test_token_is_issued_for_valid_credentials(client, user):
    response = client.post("/api/auth/token/", {"username": user.username, "password": TEST_PASSWORD})

    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_token_is_refused_for_a_wrong_password(client, user):
    response = client.post("/api/auth/token/", {"username": user.username, "password": "wrong"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_token_authenticates_cart_requests(client, user):
    token = client.post("/api/auth/token/", {"username": user.username, "password": TEST_PASSWORD}).json()["token"]

    assert client.get("/api/cart/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert client.get("/api/cart/", HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


def test_session_login_authenticates_the_browsable_api(client, user):
    client.login(username=user.username, password=TEST_PASSWORD)

    response = client.get("/api/cart/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"Cart Item List" in response.content or b"Cart" in response.content


def test_anonymous_cart_and_orders_are_refused_with_a_code(client, db):
    for url in ("/api/cart/", "/api/orders/"):
        response = client.get(url)
        assert response.status_code in (401, 403)
        assert response.json()["code"] == "not_authenticated"
