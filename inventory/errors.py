from mall.errors import DomainError


class InsufficientStock(DomainError):
    code = "insufficient_stock"
    default_detail = "Not enough stock for some goods."


class StockChanged(DomainError):
    code = "stock_changed"
    default_detail = "The stock changed since it was read; nothing was changed. Read it again."


class StockLimitExceeded(DomainError):
    code = "stock_too_large"
    default_detail = "The stock quantity would exceed the maximum."
