// node-postgres's crypto utilities (pg/lib/crypto/utils.js), of which lib/fleet/scram-cache.ts wraps one.
// Not a public API: typed as what may be missing.
declare module 'pg/lib/crypto/utils' {
  const utils: { deriveKey?: (password: string, salt: Uint8Array, iterations: number) => Promise<ArrayBuffer> } | undefined;
  export default utils;
}
