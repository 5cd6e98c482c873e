import { getTableName, sql, type Column, type SQL } from 'drizzle-orm';

/**
 * "table"."column", always. Drizzle leaves columns unqualified in queries without joins, and inside
 * a correlated subquery an unqualified "id" silently means the subquery's own table.
 */
export function qualified(column: Column): SQL {
  return sql`${sql.identifier(getTableName(column.table))}.${sql.identifier(column.name)}`;
}
