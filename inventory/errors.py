from mall.errors import DomainError


class InsufficientStock(DomainError):
    status_code = 409
    code = "insufficient_stock"
    default_detail = "Not enough stock for some goods."


class StockChanged(DomainError):
    status_code = 409
    code = "stock_changed"
    default_detail = "The stock changed since it was read; nothing was changed. Read it again."


class StockLimitExceeded(DomainError):
    status_code = 400
    code = "stock_too_large"
    default_detail = "The stock quantity would exceed the maximum."
