// Postgres's fields of whatever was thrown: drizzle wraps driver errors, and the fields are on the cause.

export interface PgErrorFields {
  code?: string;
  constraint?: string;
  detail?: string;
  cause?: unknown;
}

export function pgError(err: unknown): PgErrorFields {
  let e = err;
  while (typeof e === 'object' && e !== null) {
    const fields: PgErrorFields = e;
    if (fields.code || !fields.cause) return fields;
    e = fields.cause;
  }
  return {};
}
