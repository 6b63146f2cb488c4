from mall.errors import DomainError


class GoodsNotFound(DomainError):
    code = "goods_not_found"
    default_detail = "No such goods."


class GoodsUnavailable(DomainError):
    code = "goods_unavailable"
    default_detail = "Some goods are no longer on sale."
