// A server that pretends to be PostgreSQL at an address, for the tests that check pgherd's fleet
// connections give nothing to a server that is not the one at the address: it answers the SSL request
// (no TLS, or TLS with the certificate it is given), then asks for the password in clear text (or as
// MD5), and keeps every byte the client sent so that a test can say whether a password reached it.
import net from 'node:net';
import tls from 'node:tls';

export interface Impostor {
  host: string;
  port: number;
  /** Everything clients sent, after TLS (if any) was taken off. */
  received(): Buffer;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;

/** R, length 8, code 3: AuthenticationCleartextPassword. */
const ASK_CLEARTEXT = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);
/** R, length 12, code 5, a salt: AuthenticationMD5Password. */
const ASK_MD5 = Buffer.from([0x52, 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4]);

export async function startImpostor(
  host: string,
  opts: { tls?: { cert: string; key: string }; ask?: 'cleartext' | 'md5' } = {},
): Promise<Impostor> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  /** After the startup message (whatever it says): ask for the password (in clear, or as MD5), keep what comes. */
  const ask = (s: net.Socket) => {
    s.write(opts.ask === 'md5' ? ASK_MD5 : ASK_CLEARTEXT);
    s.on('data', (more: Buffer) => chunks.push(more));
  };
  const speak = (s: net.Socket) => {
    s.once('data', (d: Buffer) => {
      chunks.push(d);
      ask(s);
    });
    s.on('error', () => {});
  };
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    raw.once('data', (first: Buffer) => {
      chunks.push(first);
      const isSslRequest = first.length >= 8 && first.readInt32BE(4) === SSL_REQUEST;
      if (!isSslRequest) {
        // A client that skipped TLS altogether: the bytes already read are its startup message.
        ask(raw);
        return;
      }
      if (!opts.tls) {
        raw.write('N');
        speak(raw);
        return;
      }
      raw.write('S');
      const secure = new tls.TLSSocket(raw, { isServer: true, cert: opts.tls.cert, key: opts.tls.key });
      sockets.add(secure);
      speak(secure);
    });
  });
  await new Promise<void>((resolve, reject) => server.listen(0, host, resolve).once('error', reject));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    received: () => Buffer.concat(chunks),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
