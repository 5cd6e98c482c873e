import { describe, expect, it } from 'vitest';
import { conninfo, conninfoValue } from './conninfo';

describe('libpq connection strings', () => {
  it('quotes every value, so a value cannot add a keyword', () => {
    expect(conninfo({ host: "h' sslmode='disable", port: 5432 })).toBe("host='h\\' sslmode=\\'disable' port='5432'");
    expect(conninfoValue('a\\b')).toBe("'a\\\\b'");
    expect(conninfo({ dbname: '' })).toBe("dbname=''");
  });
});
