import Link from 'next/link';
import { formatDuration } from '@/lib/adapters/format/units';
import { healthy, SILENT_AFTER_INTERVALS, UNOBSERVED_AFTER_INTERVALS, type FleetHealth as Health } from '@/lib/features/agents/health';
import { visibleEnds } from '@/lib/adapters/format/visible';

const more = (shown: number, total: number) => (total > shown ? <li className="help">and {total - shown} more</li> : null);

/** What the agents' reports and pgherd's own looks say is wrong: silent agents, herds with two primaries or none, replicas streaming from outside their herd. */
export function FleetHealth({ health, scope }: { health: Health; scope: 'fleet' | 'herd' }) {
  if (healthy(health)) {
    return (
      <p className="health-ok" data-testid="fleet-health">
        {scope === 'fleet'
          ? 'No agent is silent, no herd has two primaries or none, no replica streams from outside its herd, no instance is held, no EC2 tag disagrees with the agents, no archive fails or lags, every instance was observed lately and runs what its parameter groups say.'
          : 'The agents report nothing wrong with this herd.'}
      </p>
    );
  }
  const { silent, twoPrimaries, noPrimary, foreignUpstreams, conflicts, tagDisagreements, archive, unobserved, drifted, objectsDrifted } =
    health;
  return (
    <div className="health" data-testid="fleet-health" role="alert">
      {objectsDrifted.total > 0 && (
        <section data-health="objects-drifted">
          <h3>
            {objectsDrifted.total === 1 ? 'A herd whose primary does' : `${objectsDrifted.total} herds whose primaries do`} not have what{' '}
            {objectsDrifted.total === 1 ? 'its' : 'their'} object sets declare
          </h3>
          <ul>
            {objectsDrifted.rows.map((d) => (
              <li key={d.herdId}>
                <Link href={`/herds/${d.herdId}#objects`}>{d.herd}</Link>: {d.objects} difference{d.objects === 1 ? '' : 's'}
                {d.since && (
                  <>
                    {' '}
                    since <time dateTime={d.since.toISOString()}>{d.since.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>
                  </>
                )}
              </li>
            ))}
            {more(objectsDrifted.rows.length, objectsDrifted.total)}
          </ul>
        </section>
      )}
      {drifted.total > 0 && (
        <section data-health="drifted">
          <h3>
            {drifted.total === 1 ? 'An instance that does' : `${drifted.total} instances that do`} not run what{' '}
            {drifted.total === 1 ? 'its' : 'their'} parameter groups say
          </h3>
          <ul>
            {drifted.rows.map((d) => (
              <li key={d.id}>
                <Link href={`/herds/${d.herdId}#settings`}>{d.label}</Link> ({d.herd}): {d.settings} setting{d.settings === 1 ? '' : 's'}
                {d.since && (
                  <>
                    {' '}
                    since <time dateTime={d.since.toISOString()}>{d.since.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>
                  </>
                )}
              </li>
            ))}
            {more(drifted.rows.length, drifted.total)}
          </ul>
        </section>
      )}
      {archive.total > 0 && (
        <section data-health="archive">
          <h3>{archive.total === 1 ? 'A herd whose' : `${archive.total} herds whose`} WAL archive fails or lags</h3>
          <ul>
            {archive.rows.map((a) => (
              <li key={a.herdId}>
                <Link href={`/herds/${a.herdId}`}>{a.herd}</Link>:{' '}
                {a.failing
                  ? `archive_command fails on ${a.primary}${a.lastFailedWal ? ` (last: ${a.lastFailedWal}${a.lastFailedAt ? ` at ${a.lastFailedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC` : ''})` : ''}`
                  : `${a.primary} has kept written WAL from the repository`}
                {a.waitingSeconds !== null && `; WAL waiting ${formatDuration(a.waitingSeconds)}: what a restore now would lose`}
              </li>
            ))}
            {more(archive.rows.length, archive.total)}
          </ul>
        </section>
      )}
      {noPrimary.total > 0 && (
        <section data-health="no-primary">
          <h3>{noPrimary.total === 1 ? 'A herd with' : `${noPrimary.total} herds with`} no primary</h3>
          <ul>
            {noPrimary.rows.map((h) => (
              <li key={h.herdId}>
                <Link href={`/herds/${h.herdId}`}>{h.herd}</Link>: no member answers as a primary since{' '}
                <time dateTime={h.since.toISOString()}>{h.since.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>
                {h.primaries.length > 0 && (
                  <>
                    ; recorded as primary:{' '}
                    {h.primaries.map((p, n) => (
                      <span key={p.id}>
                        {n > 0 && ', '}
                        <Link href={`/admin/instances/${p.id}`}>{p.label}</Link> ({p.state})
                      </span>
                    ))}
                  </>
                )}
                {h.detail && <div className="help">{h.detail}</div>}
              </li>
            ))}
            {more(noPrimary.rows.length, noPrimary.total)}
          </ul>
        </section>
      )}
      {twoPrimaries.total > 0 && (
        <section data-health="two-primaries">
          <h3>{twoPrimaries.total === 1 ? 'A herd with' : `${twoPrimaries.total} herds with`} more than one primary</h3>
          <ul>
            {twoPrimaries.rows.map((h) => (
              <li key={h.herdId}>
                <Link href={`/herds/${h.herdId}`}>{h.herd}</Link>: {h.primaries.length} instances run as primaries:{' '}
                {h.primaries.map((p, n) => (
                  <span key={p.id}>
                    {n > 0 && ', '}
                    <Link href={`/admin/instances/${p.id}`}>{p.label}</Link>
                  </span>
                ))}
              </li>
            ))}
            {more(twoPrimaries.rows.length, twoPrimaries.total)}
          </ul>
        </section>
      )}
      {foreignUpstreams.total > 0 && (
        <section data-health="foreign-upstreams">
          <h3>
            {foreignUpstreams.total === 1 ? 'A replica streams' : `${foreignUpstreams.total} replicas stream`} from outside{' '}
            {foreignUpstreams.total === 1 ? 'its' : 'their'} herd
          </h3>
          <ul>
            {foreignUpstreams.rows.map((r) => (
              <li key={r.id}>
                <Link href={`/admin/instances/${r.id}`}>{r.label}</Link> in <Link href={`/herds/${r.herdId}`}>{r.herd}</Link> streams from{' '}
                {r.upstreamHerd ? (
                  <>
                    <Link href={`/admin/instances/${r.upstreamId}`}>{r.upstream}</Link> in {r.upstreamHerd}
                  </>
                ) : (
                  'an instance in an environment you cannot see'
                )}
              </li>
            ))}
            {more(foreignUpstreams.rows.length, foreignUpstreams.total)}
          </ul>
        </section>
      )}
      {conflicts.total > 0 && (
        <section data-health="conflicts">
          <h3>
            {conflicts.total === 1 ? 'An instance is' : `${conflicts.total} instances are`} held: {conflicts.total === 1 ? 'its' : 'their'}{' '}
            agent names a herd of another environment
          </h3>
          <ul>
            {conflicts.rows.map((c) => (
              <li key={`${c.serverId}/${c.label}`}>
                <Link href={`/admin/servers/${c.serverId}`}>{c.label}</Link> ({c.serverEnvironment}) reports system identifier{' '}
                {c.systemIdentifier}, that of{' '}
                {c.herd ? <Link href={`/herds/${c.herdId}`}>{c.herd}</Link> : 'a herd in an environment you cannot see'}: not merged into it
                (a server and the instances on it are in one environment). A copy restored in the wrong place, or a server filed in the
                wrong environment.
              </li>
            ))}
            {more(conflicts.rows.length, conflicts.total)}
          </ul>
        </section>
      )}
      {tagDisagreements.total > 0 && (
        <section data-health="tag-disagreements">
          <h3>
            {tagDisagreements.total === 1 ? 'An instance runs' : `${tagDisagreements.total} instances run`} in another herd or environment
            than {tagDisagreements.total === 1 ? 'its' : 'their'} server&rsquo;s EC2 tags say
          </h3>
          <ul>
            {tagDisagreements.rows.map((d) => (
              <li key={d.id}>
                <Link href={`/admin/instances/${d.id}`}>{d.label}</Link>: the tags of{' '}
                <Link href={`/admin/servers/${d.serverId}`}>{d.hostname}</Link>
                {d.cloudInstanceId ? ` (${d.cloudInstanceId})` : ''} say <strong>{visibleEnds(d.taggedHerd)}</strong>; its agent&rsquo;s
                system identifier puts it in <Link href={`/herds/${d.herdId}`}>{d.herd}</Link>. Retag the instance, or find out why this
                data runs there.
              </li>
            ))}
            {more(tagDisagreements.rows.length, tagDisagreements.total)}
          </ul>
        </section>
      )}
      {unobserved.total > 0 && (
        <section data-health="unobserved">
          <h3>
            {unobserved.total === 1 ? 'An instance' : `${unobserved.total} instances`} not observed for {UNOBSERVED_AFTER_INTERVALS} refresh
            intervals: what the inventory says of {unobserved.total === 1 ? 'it' : 'them'} is old (are the workers running, and keeping up?)
          </h3>
          <ul>
            {unobserved.rows.map((i) => (
              <li key={i.id}>
                <Link href={`/admin/instances/${i.id}`}>{i.label}</Link> (<Link href={`/herds/${i.herdId}`}>{i.herd}</Link>):{' '}
                {i.lastObservedAt ? (
                  <>
                    last observed{' '}
                    <time dateTime={i.lastObservedAt.toISOString()}>
                      {i.lastObservedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC
                    </time>
                  </>
                ) : (
                  'never observed'
                )}
              </li>
            ))}
            {more(unobserved.rows.length, unobserved.total)}
          </ul>
        </section>
      )}
      {silent.total > 0 && (
        <section data-health="silent">
          <h3>
            {silent.total === 1 ? 'A server\u2019s agent is' : `${silent.total} servers\u2019 agents are`} silent (no report for{' '}
            {SILENT_AFTER_INTERVALS} intervals)
          </h3>
          <ul>
            {silent.rows.map((s) => (
              <li key={s.id}>
                <Link href={`/admin/servers/${s.id}`}>{s.hostname}</Link> ({s.environment}): last report {formatDuration(s.silentSeconds)}{' '}
                ago, <time dateTime={s.lastSeenAt.toISOString()}>{s.lastSeenAt.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>
                {s.intervalSeconds > 0 ? `, reports every ${formatDuration(s.intervalSeconds)}` : ''}
              </li>
            ))}
            {more(silent.rows.length, silent.total)}
          </ul>
        </section>
      )}
    </div>
  );
}
