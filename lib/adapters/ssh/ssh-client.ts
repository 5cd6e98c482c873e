// SSH to database hosts with ssh2: key auth, pinned host keys, one connection per host reused
// across commands, a cap on concurrent commands per host, retries on handshake drops.
import { createHash } from 'node:crypto';
import { Client, type ConnectConfig } from 'ssh2';
import { HostKeyMismatchError, HostKeyNotPinnedError, SshCommandError, SshError, SshTimeoutError } from './ssh-errors';
import { redact, shellCommand } from './quote';
import { keyFor, liveSshKeys, sshKeysFromEnv, type SshKeys } from './keys';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** Pinned SHA256 fingerprint (OpenSSH form, "SHA256:..."); null on first contact. */
  hostKeyFingerprint: string | null;
  /** The server in pgherd's inventory: a key seen on first contact is pinned to it (never to an address). */
  serverId?: number;
  /** The server's environment: which of pgherd's keys it is offered (lib/adapters/ssh/keys.ts). */
  environment?: string | null;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface SshOptions {
  /** The key of environments PGHERD_SSH_KEYS does not list (the settings' PGHERD_SSH_KEY when not given). */
  privateKey?: Buffer | string;
  /** The keys per environment (default: PGHERD_SSH_KEYS, with privateKey as the fallback). */
  keys?: SshKeys | (() => SshKeys);
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Concurrent commands on one host; sshd's MaxSessions defaults to 10. */
  maxPerHost?: number;
  connectRetries?: number;
  /** Called once with the fingerprint seen on first contact, so the caller can pin it. */
  onFirstContact?: (target: SshTarget, fingerprint: string) => void | Promise<void>;
  /**
   * Called on every new connection, after the host proved it holds the key with `fingerprint` and
   * before any command runs: a throw refuses the connection (a key that belongs to another
   * environment's server, say).
   */
  onConnected?: (target: SshTarget, fingerprint: string) => void | Promise<void>;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

const TAIL = 64 * 1024;
/** How a stoppable command's wrapper announces its process id on stderr. */
const PID_MARK = 'pgherd-exec-pid:';

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** Drops that retrying may fix: sshd's MaxStartups closes surplus connections before the handshake. */
function transient(err: unknown): boolean {
  const m = err instanceof Error ? err.message : String(err);
  return /Connection lost before handshake|ECONNRESET|kex_exchange_identification|Timed out while waiting for handshake/i.test(m);
}

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

interface Conn {
  client: Client;
  ready: Promise<Client>;
  slots: Semaphore;
}

/** How long a connection may take to be ready (its handshake and authentication), unless a pool is told otherwise. */
export const CONNECT_TIMEOUT_MS = 10_000;

export class SshPool {
  private conns = new Map<string, Conn>();
  private opts: Required<Omit<SshOptions, 'onFirstContact' | 'onConnected' | 'log' | 'privateKey' | 'keys'>> &
    Pick<SshOptions, 'onFirstContact' | 'onConnected' | 'log'>;
  private keys: () => SshKeys;

  constructor(opts: SshOptions) {
    const { privateKey, keys, ...rest } = opts;
    if (typeof keys === 'function') this.keys = keys;
    else if (keys) this.keys = () => keys;
    else if (privateKey !== undefined) {
      const given = { fallback: Buffer.from(privateKey), byEnvironment: sshKeysFromEnv().byEnvironment };
      this.keys = () => given;
    } else this.keys = liveSshKeys();
    this.opts = { connectTimeoutMs: CONNECT_TIMEOUT_MS, commandTimeoutMs: 120_000, maxPerHost: 6, connectRetries: 5, ...rest };
  }

  /**
   * A connection is reused only for the host key it was verified with (a re-pin connects anew) and the
   * environment whose key authenticated it (a staging row never rides production's session).
   */
  private key(t: SshTarget) {
    return `${t.username}@${t.host}:${t.port} ${t.hostKeyFingerprint ?? 'unpinned'} ${t.environment ?? ''}`;
  }

  private connectOnce(t: SshTarget): Promise<Client> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let mismatch: HostKeyMismatchError | null = null;
      let seen = '';
      const cfg: ConnectConfig = {
        host: t.host,
        port: t.port,
        username: t.username,
        privateKey: keyFor(this.keys(), t.environment),
        readyTimeout: this.opts.connectTimeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          seen = fingerprint(key);
          if (t.hostKeyFingerprint && t.hostKeyFingerprint !== seen) {
            mismatch = new HostKeyMismatchError(t.host, t.hostKeyFingerprint, seen);
            return false;
          }
          return true;
        },
      };
      let settled = false;
      client.once('ready', () => {
        settled = true;
        const pin = !t.hostKeyFingerprint ? this.opts.onFirstContact : undefined;
        Promise.resolve()
          .then(() => this.opts.onConnected?.(t, seen))
          .then(() => pin?.(t, seen))
          .then(
            () => resolve(client),
            (err: unknown) => {
              client.end();
              reject(err instanceof Error ? err : new SshError(`${t.host}:${t.port}: ${String(err)}`, t.host));
            },
          );
      });
      // ssh2 may emit more than one error for one failed connection: keep listening, settle once.
      client.on('error', (err) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(mismatch ?? new SshError(`${t.host}:${t.port}: ${err.message}`, t.host));
      });
      client.connect(cfg);
    });
  }

  private async connect(t: SshTarget): Promise<Client> {
    let attempt = 0;
    for (;;) {
      try {
        return await this.connectOnce(t);
      } catch (err) {
        if (err instanceof HostKeyMismatchError || !transient(err) || ++attempt > this.opts.connectRetries) throw err;
        const wait = Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random());
        this.opts.log?.('ssh.connect.retry', {
          host: t.host,
          attempt,
          waitMs: Math.round(wait),
          error: err instanceof Error ? err.message : String(err),
        });
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private conn(t: SshTarget): Conn {
    const k = this.key(t);
    let c = this.conns.get(k);
    if (!c) {
      const ready = this.connect(t);
      c = { client: undefined as unknown as Client, ready, slots: new Semaphore(this.opts.maxPerHost) };
      const entry = c;
      ready.then(
        (client) => {
          entry.client = client;
          const drop = () => {
            if (this.conns.get(k) === entry) this.conns.delete(k);
          };
          client.once('close', drop);
          client.on('error', (err) => {
            drop();
            this.opts.log?.('ssh.connection.error', { host: t.host, error: err.message });
          });
        },
        () => {
          if (this.conns.get(k) === entry) this.conns.delete(k);
        },
      );
      this.conns.set(k, c);
    }
    return c;
  }

  /**
   * Opens the connection to `t` now, for a command that will need it soon (a DR failover's fence, while
   * its pre-flight asks the replicas): the handshake overlaps the wait. Only to a pinned host key; a
   * connection that fails is the command's to see, when it runs.
   */
  warm(t: SshTarget): void {
    if (t.hostKeyFingerprint) this.conn(t).ready.catch(() => {});
  }

  /**
   * Runs argv (quoted) on the host. Resolves with the exit status whatever it is; see execOk. On a
   * host without a pinned key only a command its caller declares `readOnly` runs (the first contact,
   * which pins the key); anything else is refused before connecting.
   */
  async exec(
    t: SshTarget,
    argv: readonly string[],
    opts: { timeoutMs?: number; secrets?: string[]; stdin?: string; readOnly?: boolean; signal?: AbortSignal } = {},
  ): Promise<ExecResult> {
    if (!t.hostKeyFingerprint && !opts.readOnly) throw new HostKeyNotPinnedError(t.host);
    opts.signal?.throwIfAborted();
    const shown = redact(shellCommand(argv), opts.secrets);
    // A command its caller may stop says its process id first (on stderr, taken off before anyone
    // reads it): sshd run by an unprivileged user ignores a channel's signal request, and closing the
    // channel does not stop a command that neither reads nor writes, so a stop kills its process
    // group from a second command.
    const command = shellCommand(opts.signal ? ['sh', '-c', `echo ${PID_MARK}$$ >&2; exec "$@"`, 'sh', ...argv] : argv);
    const c = this.conn(t);
    const client = await c.ready;
    await c.slots.take();
    const timeoutMs = opts.timeoutMs ?? this.opts.commandTimeoutMs;
    const started = Date.now();
    this.opts.log?.('ssh.exec.start', { host: t.host, command: shown });
    try {
      // sshd frees a closed session a little after we see it close: a full session table
      // (MaxSessions) answers "Channel open failure" for a moment; wait and try again.
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.run(client, t, command, shown, timeoutMs, started, opts.stdin, opts.signal);
        } catch (err) {
          if (!(err instanceof Error) || !/Channel open failure/.test(err.message) || attempt >= 6) throw err;
          await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
        }
      }
    } finally {
      c.slots.give();
    }
  }

  private run(
    client: Client,
    t: SshTarget,
    command: string,
    shown: string,
    timeoutMs: number,
    started: number,
    stdin?: string,
    abort?: AbortSignal,
  ): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      client.exec(command, (err, stream) => {
        if (err) {
          reject(new SshError(`${t.host}: ${err.message}`, t.host));
          return;
        }
        // Stopped by its caller (a step abandoned when the herd's lease is lost): the command is killed
        // on the host, not left running there for whoever takes the herd next.
        let pid: number | null = null;
        let head = abort ? '' : null;
        const onAbort = () => {
          stream.signal('KILL');
          stream.close();
          if (pid !== null) this.killGroup(client, t, pid, shown);
          this.opts.log?.('ssh.exec.killed', { host: t.host, command: shown, pid, ms: Date.now() - started });
          reject(abort?.reason instanceof Error ? abort.reason : new SshError(`${t.host}: ${shown} was stopped`, t.host));
        };
        if (abort?.aborted) return void onAbort();
        abort?.addEventListener('abort', onAbort, { once: true });
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        let signal: string | null = null;
        const timer = setTimeout(() => {
          stream.signal('KILL');
          stream.close();
          reject(new SshTimeoutError(t.host, shown, timeoutMs));
        }, timeoutMs);
        stream.on('data', (d: Buffer) => {
          stdout = (stdout + d.toString()).slice(-TAIL);
        });
        stream.stderr.on('data', (d: Buffer) => {
          let text = d.toString();
          if (head !== null) {
            // The first line is the process id the wrapper printed: kept, not shown.
            head += text;
            const nl = head.indexOf('\n');
            if (nl < 0) return;
            const first = head.slice(0, nl);
            text = head.slice(nl + 1);
            head = null;
            if (first.startsWith(PID_MARK)) pid = Number(first.slice(PID_MARK.length)) || null;
            else text = `${first}\n${text}`;
            if (pid !== null && abort?.aborted) this.killGroup(client, t, pid, shown);
          }
          stderr = (stderr + text).slice(-TAIL);
        });
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s ?? null;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          abort?.removeEventListener('abort', onAbort);
          this.opts.log?.('ssh.exec.end', { host: t.host, command: shown, code, ms: Date.now() - started });
          resolve({ code, signal, stdout, stderr });
        });
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      });
    });
  }

  /** Kills the process group of a stopped command on its host (sshd made it a group of its own). */
  private killGroup(client: Client, t: SshTarget, pid: number, shown: string): void {
    const kill = shellCommand(['sh', '-c', 'g=$(ps -o pgid= -p "$1" | tr -d " "); [ -n "$g" ] && pkill -KILL -g "$g"', 'sh', String(pid)]);
    client.exec(kill, (err, stream) => {
      if (err) return void this.opts.log?.('ssh.exec.kill_failed', { host: t.host, command: shown, pid, error: err.message });
      stream.on('data', () => {}).stderr.on('data', () => {});
      stream.on('close', () => this.opts.log?.('ssh.exec.kill_sent', { host: t.host, command: shown, pid }));
    });
  }

  /** exec, and an SshCommandError (naming host, command, exit code and stderr) unless it exits 0. */
  async execOk(
    t: SshTarget,
    argv: readonly string[],
    opts: { timeoutMs?: number; secrets?: string[]; readOnly?: boolean } = {},
  ): Promise<ExecResult> {
    const r = await this.exec(t, argv, opts);
    if (r.code !== 0) throw new SshCommandError(t.host, redact(shellCommand(argv), opts.secrets), r.code, r.signal, r.stderr);
    return r;
  }

  async close(): Promise<void> {
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(
      all.map(async (c) => {
        try {
          (await c.ready).end();
        } catch {
          /* never connected: nothing to close */
        }
      }),
    );
  }
}
