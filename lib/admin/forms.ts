// Form schemas by model, importable from client components (no database code here).
import { environmentForm } from './models/environments.form';
import { herdForm } from './models/herds.form';
import { serverForm } from './models/servers.form';
import { instanceForm } from './models/instances.form';
import { dnsRecordForm } from './models/dns-records.form';
import { poolerForm } from './models/poolers.form';
import { roleBindingForm } from './models/role-bindings.form';
import type { FormSpec } from './form-fields';

export const forms: Record<string, FormSpec> = {
  environments: environmentForm,
  herds: herdForm,
  servers: serverForm,
  instances: instanceForm,
  'dns-records': dnsRecordForm,
  poolers: poolerForm,
  'role-bindings': roleBindingForm,
};

/** The form of a model that has one: the add and change pages are only routed for those. */
export function formFor(model: string): FormSpec {
  const spec = forms[model];
  if (!spec) throw new Error(`no form for the model ${model}`);
  return spec;
}
