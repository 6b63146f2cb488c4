from mall.errors import DomainError


class InsufficientStock(DomainError):
    status_code = 409
    code = "insufficient_stock"
    default_detail = "Not enough stock for some goods."
