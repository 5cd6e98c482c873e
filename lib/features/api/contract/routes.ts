// Every route of the REST API and the agents' endpoint, as declared (the OpenAPI document lists these;
// a unit test checks that every route file under app/api/v1 is here, and nothing else).
import { z } from 'zod';
import type { RouteSpec } from './define';
import { agentReportRoute } from './agent';
import { spotNoticeRoute } from './spot';
import { discoveryStatusRoute, getDiscoveryRunRoute, requestDiscoveryRoute } from './cloud';
import { listHerds, listInstances } from './inventory';
import { herdLagRoute, instanceLagRoute } from './history';
import { instanceSettingsRoute } from './settings';
import { pendingMaintenanceRoute } from './upgrades';
import { auditExportRoute } from './audit';
import { drScorecardRoute, herdBackupsRoute, recoverabilityRoute } from './scorecards';
import { ackRoute, risksRoute, scopedMetricsRoute, unackRoute } from './risks';
import { drPairsRoute, groupsRoute, herdSettingsRoute, policiesRoute, restoreWindowRoute } from './fleet-config';
import {
  approveOperationRoute,
  denyOperationRoute,
  getOperationRoute,
  listApprovalsRoute,
  operationVerbRoute,
  planOperationRoute,
  submitOperationRoute,
} from './operations';
import {
  createBlackoutRoute,
  createRuleRoute,
  createWebhookRoute,
  createWindowRoute,
  deleteBlackoutRoute,
  deleteRuleRoute,
  deleteWebhookRoute,
  keepWebhookRoute,
  deleteWindowRoute,
  getRuleRoute,
  listBlackoutsRoute,
  listDeliveriesRoute,
  listRuleRunsRoute,
  listRulesRoute,
  listWebhooksRoute,
  listWindowsRoute,
  runRuleRoute,
  approveRuleRoute,
  updateRuleRoute,
} from './rules';

export const openApiRoute = {
  method: 'get',
  path: '/api/v1/openapi.json',
  tag: 'Inventory',
  summary: 'This document',
  description: 'The OpenAPI 3.1 description of this API (no token needed: it says nothing of the fleet).',
  auth: 'none',
  query: z.object({}).strict(),
  responses: { 200: { description: 'The document.', schema: z.record(z.string(), z.unknown()) } },
} satisfies RouteSpec;

/** The declared route a request is for (by method and path), and its path parameters as given, if any. */
export function matchRoute(method: string, pathname: string): { spec: RouteSpec; params: Record<string, string> } | undefined {
  for (const m of matchers()) {
    const found = m.method === method.toLowerCase() ? m.pattern.exec(pathname) : null;
    if (found) return { spec: m.spec, params: Object.fromEntries(m.names.map((n, i) => [n, decodeURIComponent(found[i + 1] ?? '')])) };
  }
  return undefined;
}

export const routeFor = (method: string, pathname: string): RouteSpec | undefined => matchRoute(method, pathname)?.spec;

let compiled: { method: string; pattern: RegExp; names: string[]; spec: RouteSpec }[] | null = null;
// Literal paths before templated ones (/operations/plan before /operations/{id}).
const matchers = () =>
  (compiled ??= API_ROUTES.map((spec) => {
    const names: string[] = [];
    const pattern = spec.path.replace(/[.]/g, '\\.').replace(/\{([^}]+)\}/g, (_, n: string) => {
      names.push(n);
      return '([^/]+)';
    });
    return { method: spec.method, pattern: new RegExp(`^${pattern}$`), names, spec };
  }).sort((a, b) => a.names.length - b.names.length));

export const API_ROUTES: RouteSpec[] = [
  auditExportRoute,
  recoverabilityRoute,
  drScorecardRoute,
  herdBackupsRoute,
  risksRoute,
  ackRoute,
  unackRoute,
  scopedMetricsRoute,
  drPairsRoute,
  policiesRoute,
  groupsRoute,
  herdSettingsRoute,
  restoreWindowRoute,
  listInstances,
  listHerds,
  herdLagRoute,
  instanceLagRoute,
  instanceSettingsRoute,
  pendingMaintenanceRoute,
  planOperationRoute,
  submitOperationRoute,
  getOperationRoute,
  operationVerbRoute,
  approveOperationRoute,
  denyOperationRoute,
  listApprovalsRoute,
  listRulesRoute,
  createRuleRoute,
  getRuleRoute,
  updateRuleRoute,
  deleteRuleRoute,
  runRuleRoute,
  approveRuleRoute,
  listRuleRunsRoute,
  listBlackoutsRoute,
  createBlackoutRoute,
  deleteBlackoutRoute,
  listWindowsRoute,
  createWindowRoute,
  deleteWindowRoute,
  listWebhooksRoute,
  createWebhookRoute,
  deleteWebhookRoute,
  keepWebhookRoute,
  listDeliveriesRoute,
  discoveryStatusRoute,
  requestDiscoveryRoute,
  getDiscoveryRunRoute,
  openApiRoute,
  agentReportRoute,
  spotNoticeRoute,
];
