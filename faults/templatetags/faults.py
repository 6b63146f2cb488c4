from django import template

from faults.selectors import active_rules

register = template.Library()


@register.inclusion_tag("faults/banner.html")
def fault_banner():
    """Render the banner every admin page shows while a fault rule is in force."""
    return {"rules": active_rules()}
