"""The admin site of the shop: one place for its title and header."""

from django.contrib import admin


class MallAdminSite(admin.AdminSite):
    site_header = "mall admin"  # the header on every admin page
    site_title = "mall admin"  # the end of each page's <title>
    index_title = "Site administration"
    # The app list is on the index page and one breadcrumb away; as a sidebar it took a quarter of a
    # 1280 px screen, pushing the order list's deadline and trace columns out of view.
    enable_nav_sidebar = False
