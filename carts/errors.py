from mall.errors import DomainError


class CartEmpty(DomainError):
    code = "cart_empty"
    default_detail = "There are no checked items in the cart."


class CartLineTooLarge(DomainError):
    code = "cart_line_too_large"
    default_detail = "Too many units of one goods in the cart."


class CartFull(DomainError):
    code = "cart_full"
    default_detail = "The cart has too many lines."


class CartItemGone(DomainError):
    code = "cart_line_gone"
    default_detail = "This cart line no longer exists (ordered or removed meanwhile)."
