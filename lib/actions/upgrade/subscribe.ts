// A subscription of the upgrade, made on the subscriber under pgherd's rule for connection strings a
// host's libpq reads: the publisher's certificate verified for its address against the environment's
// CA (a file put on the subscriber's host), SCRAM bound to the channel, and require_auth where the
// subscriber's libpq has it. It connects as the upgrade's own role, whose password is new for it.
import type { ActionDeps } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { accessFor } from '@/lib/fleet/pg-access';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import { caPemOf } from '@/lib/actions/steps/host-ca';
import { ruledConninfo } from '@/lib/actions/steps/libpq-rule';
import { onDb, type Endpoint } from '@/lib/actions/steps/endpoint-db';
import { grantPublished, quietSession, upgradeRoleWithNewPassword } from './upgrade-role';

export interface Subscriber extends Endpoint {
  label: string;
  ssh: SshTarget;
  dataDirectory: string;
}

export interface Publisher extends Endpoint {
  label: string;
}

/** Where the environment's CA is put on the subscriber's host: beside its data, readable by its server. */
const caFileOf = (s: Subscriber) => `${s.dataDirectory}/pgherd-upgrade-ca.crt`;

/**
 * The upgrade's role on the publisher, with a new password: taken once for all the subscriptions a step
 * makes to that publisher (each new password replaces the one before, for every subscription holding it).
 */
export const newLogin = (pub: Publisher, upgradeId: number) => onDb(pub, 'postgres', (c) => upgradeRoleWithNewPassword(c, upgradeId));

export async function subscribe(
  deps: ActionDeps,
  ctx: StepContext,
  o: {
    sub: Subscriber;
    pub: Publisher;
    login: { user: string; password: string };
    database: string;
    name: string;
    publication: string;
    upgradeId: number;
    copyData: boolean;
  },
): Promise<void> {
  const ca = caPemOf(accessFor(o.pub.serverEnvironment).postgres.tls);
  if (ca !== null)
    await execNotedOk(
      deps,
      o.sub,
      ctx,
      ['sh', '-c', 'umask 022; cat > "$1.part" && mv -f -- "$1.part" "$1"', 'pgherd-ca', caFileOf(o.sub)],
      20_000,
      { stdin: ca },
    );
  const login = o.login;
  if (o.copyData) await onDb(o.pub, o.database, (c) => grantPublished(c, o.upgradeId, o.publication));
  await onDb(o.sub, o.database, async (c) => {
    await quietSession(c);
    const v = Number((await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v ?? '0');
    // The subscriber's walreceiver speaks through the libpq its server was built with: its major is the server's.
    const conninfo = ruledConninfo(
      {
        host: o.pub.host,
        port: String(o.pub.port),
        dbname: o.database,
        user: login.user,
        password: login.password,
        application_name: 'pgherd-upgrade',
      },
      {
        caPem: ca,
        caPath: ca === null ? null : caFileOf(o.sub),
        password: true,
        libpqMajor: Math.floor(v / 10000),
        channelBinding: true,
        what: `${o.sub.label}'s subscription to ${o.pub.label}`,
      },
    );
    await c.query(
      `CREATE SUBSCRIPTION ${o.name} CONNECTION ${c.escapeLiteral(conninfo)} PUBLICATION ${o.publication} WITH (copy_data = ${o.copyData ? 'true' : 'false'})`,
    );
  });
}
