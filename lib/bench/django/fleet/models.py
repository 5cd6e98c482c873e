# pgherd's inventory tables as they are (unmanaged: Django creates and migrates none of them).
from django.db import models

ROLES = [(r, r) for r in ("primary", "replica", "unknown")]
STATES = [(s, s) for s in ("running", "stopped", "unreachable", "fenced", "needs_rebuild")]


class Environment(models.Model):
    name = models.TextField()

    class Meta:
        managed = False
        db_table = "environments"

    def __str__(self):
        return self.name


class Herd(models.Model):
    environment = models.ForeignKey(Environment, models.DO_NOTHING)
    name = models.TextField()

    class Meta:
        managed = False
        db_table = "herds"

    def __str__(self):
        return self.name


class Server(models.Model):
    hostname = models.TextField()
    address = models.TextField()
    site = models.TextField()
    environment = models.ForeignKey(Environment, models.DO_NOTHING)

    class Meta:
        managed = False
        db_table = "servers"

    def __str__(self):
        return self.hostname


class Instance(models.Model):
    herd = models.ForeignKey(Herd, models.DO_NOTHING)
    server = models.ForeignKey(Server, models.DO_NOTHING)
    port = models.IntegerField()
    pg_version = models.SmallIntegerField("version")
    role = models.TextField(choices=ROLES)
    state = models.TextField(choices=STATES)
    upstream = models.ForeignKey("self", models.DO_NOTHING, null=True, db_column="upstream_instance_id", related_name="+")
    timeline = models.IntegerField("TL", null=True)
    lsn = models.BigIntegerField("LSN", null=True)
    lag_bytes = models.BigIntegerField("lag", null=True)
    lag_seconds = models.FloatField("lag (s)", null=True)
    pending_restart = models.BooleanField()
    # The instance's copies of its herd's environment and its server's site, as pgherd filters on them.
    environment = models.ForeignKey(Environment, models.DO_NOTHING, related_name="+")
    site = models.TextField()

    class Meta:
        managed = False
        db_table = "instances"

    def __str__(self):
        return f"{self.server.hostname}:{self.port}"
