export class SshError extends Error {
  constructor(
    message: string,
    readonly host: string,
  ) {
    super(message);
    this.name = 'SshError';
  }
}

/** The server presented another host key than the one pinned: possibly not the server at all. */
export class HostKeyMismatchError extends SshError {
  constructor(
    host: string,
    readonly expected: string,
    readonly received: string,
  ) {
    super(
      `host key of ${host} changed: expected ${expected}, received ${received}; refusing to connect (update the pinned fingerprint on the server's page if the change is legitimate)`,
      host,
    );
    this.name = 'HostKeyMismatchError';
  }
}

/** No host key is pinned for the server: pgherd runs nothing that changes anything on a host it has not verified. */
export class HostKeyNotPinnedError extends SshError {
  constructor(host: string) {
    super(
      `no host key is pinned for ${host}: pgherd runs nothing that changes anything on a host it has not verified. Run "Check SSH (pin the host key)" on one of its instances first, and compare the fingerprint it shows with the host's own`,
      host,
    );
    this.name = 'HostKeyNotPinnedError';
  }
}

export class SshTimeoutError extends SshError {
  constructor(
    host: string,
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`${host}: ${command} did not finish within ${timeoutMs} ms`, host);
    this.name = 'SshTimeoutError';
  }
}

export class SshCommandError extends SshError {
  constructor(
    host: string,
    readonly command: string,
    readonly code: number | null,
    readonly signal: string | null,
    readonly stderr: string,
  ) {
    super(
      `${host}: ${command} exited ${code ?? `by signal ${signal ?? 'unknown'}`}${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
      host,
    );
    this.name = 'SshCommandError';
  }
}
