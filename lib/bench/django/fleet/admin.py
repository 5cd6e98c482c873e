# The instances changelist as pgherd's (lib/features/admin/models/instances.admin.ts): the same columns, 100
# rows a page, the same filters but the herd's (2,000 herds as links on every page: pgherd loads that
# facet on demand), search on the server's host name, herd and environment, sorted by host and port.
from django.contrib import admin

from .models import Instance


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = (
        "server",
        "port",
        "herd",
        "environment",
        "site",
        "role",
        "state",
        "pg_version",
        "upstream",
        "timeline",
        "lsn",
        "lag_bytes",
        "lag_seconds",
        "pending_restart",
    )
    list_filter = ("environment", "role", "state", "pg_version", "site")
    search_fields = ("server__hostname", "herd__name", "environment__name")
    list_select_related = ("server", "herd", "environment", "upstream__server")
    list_per_page = 100
    ordering = ("server__hostname", "port")
