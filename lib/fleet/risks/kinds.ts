// The kinds of risk (lib/features/risks/find.ts finds them; docs/risks.md lists them).
export const RISK_KINDS = [
  'xid_age',
  'mxid_age',
  'slot',
  'long_transaction',
  'certificate',
  'single_member',
  'one_site',
  'no_dr_site',
  'checksums_off',
  'fsync_off',
  'full_page_writes_off',
  'major_eol',
  'minor_behind',
  'disk_full_soon',
  'disk_low',
] as const;
