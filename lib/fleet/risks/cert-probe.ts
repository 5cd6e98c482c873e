// A server's certificate as a new TLS handshake shows it, now: the refresh's kept session shows the one
// it was opened with, and a certificate renewed since (reloaded) is the one clients get. An SSLRequest,
// the handshake, and the connection dropped before a startup packet (Postgres logs nothing for one that
// sends no data after the handshake): no login, no backend beyond the one forked to answer. The
// certificate is read, not trusted: only its dates and subject are kept.
import net from 'node:net';
import tls from 'node:tls';

export interface SeenCertificate {
  notAfter: string;
  subject: string | null;
}

/** Null when the server takes no TLS (it answered 'N'); throws when it cannot be reached. */
export function probeCertificate(e: { host: string; port: number }, timeoutMs: number): Promise<SeenCertificate | null> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(e.port, e.host);
    let secure: tls.TLSSocket | null = null;
    let settled = false;
    const done = (err: Error | null, v: SeenCertificate | null = null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure?.destroy();
      socket.destroy();
      if (err) reject(err);
      else resolve(v);
    };
    const timer = setTimeout(() => done(new Error(`no TLS handshake within ${String(timeoutMs)} ms`)), timeoutMs);
    socket.on('error', (err) => done(err));
    socket.on('connect', () => {
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(80877103, 4); // SSLRequest
      socket.write(request);
    });
    socket.once('data', (d) => {
      if (d[0] !== 0x53) return void done(null, null); // 'N': no TLS here
      const s = tls.connect({ socket, rejectUnauthorized: false, servername: net.isIP(e.host) ? undefined : e.host });
      secure = s;
      s.on('error', (err: Error) => {
        done(err);
      });
      s.once('secureConnect', () => {
        const c = s.getPeerCertificate();
        if (!c.valid_to) return void done(new Error('the server sent no certificate'));
        const cn = (c.subject as Partial<typeof c.subject> | undefined)?.CN;
        done(null, { notAfter: new Date(c.valid_to).toISOString(), subject: Array.isArray(cn) ? (cn[0] ?? null) : (cn ?? null) });
      });
    });
  });
}

/** The certificate an HTTPS endpoint (Patroni's REST API) shows: a TLS handshake, nothing asked, nothing trusted. */
export function probeTlsCertificate(e: { host: string; port: number }, timeoutMs: number): Promise<SeenCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: e.host, port: e.port, rejectUnauthorized: false, servername: net.isIP(e.host) ? undefined : e.host });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no TLS handshake within ${String(timeoutMs)} ms`));
    }, timeoutMs);
    s.once('error', (err: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    });
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const c = s.getPeerCertificate();
      s.destroy();
      if (!c.valid_to) return void reject(new Error('the server sent no certificate'));
      const cn = (c.subject as Partial<typeof c.subject> | undefined)?.CN;
      resolve({ notAfter: new Date(c.valid_to).toISOString(), subject: Array.isArray(cn) ? (cn[0] ?? null) : (cn ?? null) });
    });
  });
}
