from mall.errors import DomainError


class GoodsNotFound(DomainError):
    status_code = 400
    code = "goods_not_found"
    default_detail = "No such goods."


class GoodsUnavailable(DomainError):
    status_code = 409
    code = "goods_unavailable"
    default_detail = "Some goods are no longer on sale."
