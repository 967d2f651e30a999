from django import template

from analytics.permissions import can_view_product_stats

register = template.Library()


@register.filter
def may_view_product_stats(user) -> bool:
    return can_view_product_stats(user)
