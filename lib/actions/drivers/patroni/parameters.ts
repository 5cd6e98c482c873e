// A Patroni herd's settings: one configuration for every member, Patroni's dynamic configuration
// (PATCH /config), and a member restarted by its Patroni (POST /restart), never behind its back.
import { PatroniError, patchConfig, restart } from '@/lib/adapters/patroni/client';
import type { ParameterPlane } from '../parameters';
import { patroniCallStep, patroniEndpoint } from './steps';

export const patroniParameters: ParameterPlane = {
  runBy: "Patroni: pgherd changes Patroni's configuration and asks it to restart",
  scope: 'herd',
  // What Patroni sets itself, whatever its configuration says (its postgresql/config.py): asked of it, a
  // change would be taken and never run.
  keeps: { names: new Set(['hot_standby', 'wal_log_hints']), says: "Patroni keeps it on itself (leave it out of this herd's groups)" },
  oneConfig: 'Patroni keeps one configuration for every member',
  unready: (members) => {
    const noRest = members.filter((m) => !m.patroniUrl);
    return noRest.length
      ? `${noRest.map((m) => m.label).join(', ')}: no Patroni REST address (set it on the instance): pgherd changes a Patroni herd's settings through Patroni`
      : null;
  },
  writeHerd: (primary, changes) => {
    const set = Object.fromEntries(changes.map((c) => [c.name, c.write]));
    return {
      name: "change Patroni's configuration",
      does: { kind: 'settings.patroni-config', patroni: primary.patroniUrl, scope: primary.patroniScope, set },
      says: `PATCH /config {postgresql: {parameters: ${JSON.stringify(set)}}} through ${primary.label}'s Patroni`,
      write: async (x) => {
        const { url, access } = patroniEndpoint(primary);
        x.note({ command: `PATCH ${url}/config {"postgresql":{"parameters":${JSON.stringify(set)}}}` });
        try {
          await patchConfig(url, access, { postgresql: { parameters: set } });
        } catch (err) {
          throw err instanceof PatroniError ? new Error(`Patroni refused the change: ${err.message}`) : err;
        }
      },
    };
  },
  restart: (m) =>
    patroniCallStep(
      m,
      `${m.label}: restart`,
      { call: 'POST /restart' },
      `ask ${m.label}'s Patroni to restart it (POST /restart)`,
      (url, access) => restart(url, access, { pendingOnly: false }),
    ),
};
